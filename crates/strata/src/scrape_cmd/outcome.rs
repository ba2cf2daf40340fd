//! What reading one source produced, whatever the source was: the canonical view, or a
//! clear reason why there is none.

use expo::ParseError;
use sources::Point;
use sources::dialect::{self, CanonicalView, Layer};
use sources::gpu::FieldSet;
use sources::host::ENGINE_GPU_JOB;
use sources::scrape::{ENGINE_INFO, NVML_JOB, ScrapeReport};

/// The host collectors' jobs: `(job, title, the prefix of their canonical signals)`.
const HOST_VIEWS: [(&str, &str, &str); 4] = [
    (sources::logs::NCCL_JOB, "NCCL logs", "nccl:"),
    (sources::host::PROCESS_JOB, "engine process", "proc:"),
    (sources::host::NODE_JOB, "node pressure", "node:"),
    (
        sources::host::infiniband::INFINIBAND_JOB,
        "InfiniBand/RoCE ports",
        "fabric:",
    ),
];

/// The result of reading one source once.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    /// What was read (URL, file path, `nvml`, `-`).
    pub source: String,
    /// Why nothing could be shown, when that is the case.
    pub error: Option<String>,
    /// Samples read.
    pub samples: usize,
    /// Lines that were skipped.
    #[serde(serialize_with = "errors_as_strings")]
    pub parse_errors: Vec<ParseError>,
    /// The canonical view, when the dialect was recognised.
    pub view: Option<CanonicalView>,
    /// A line of context (NVML status, unrecognised dialect).
    pub note: Option<String>,
    /// The engine's display name and served model (`strata_engine_info`), for engines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// Engine↔GPU links found (`engine-gpu` source), one line each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
}

fn errors_as_strings<S: serde::Serializer>(errors: &[ParseError], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(errors.iter().map(ToString::to_string))
}

impl Outcome {
    /// A source that could not be read at all.
    pub fn failed(source: &str, error: String) -> Outcome {
        Outcome {
            source: source.to_string(),
            error: Some(error),
            samples: 0,
            parse_errors: Vec::new(),
            view: None,
            note: None,
            engine: None,
            links: Vec::new(),
        }
    }

    /// The outcome of native samples (from a URL, a file or stdin).
    pub fn from_native(source: &str, points: &[Point], parse_errors: Vec<ParseError>) -> Outcome {
        let mut out = Outcome {
            source: source.to_string(),
            error: None,
            samples: points.len(),
            parse_errors,
            view: None,
            note: None,
            engine: None,
            links: Vec::new(),
        };
        if points.is_empty() {
            out.error = Some(match out.parse_errors.first() {
                Some(first) => format!(
                    "no metrics could be read: {} line(s) are not Prometheus text or OpenMetrics (first: {first})",
                    out.parse_errors.len()
                ),
                None => "no metrics in the body (it is empty or only comments)".to_string(),
            });
            return out;
        }
        match dialect::detect(points.iter().map(|p| p.name.as_str())) {
            Some(detected) => out.view = Some(dialect::canonical_view(detected, points)),
            None => {
                out.note = Some(
                    "dialect not recognised: no vllm:, tgi_, sglang:, llamacpp: or DCGM_FI_ metrics; nothing to map".to_string(),
                )
            }
        }
        out
    }

    /// The outcome of one scrape report: native samples through their dialect, NVML's
    /// canonical samples directly.
    pub fn from_report(source: &str, report: &ScrapeReport, fields: FieldSet) -> Outcome {
        if let Some(error) = &report.error {
            return Outcome::failed(source, error.clone());
        }
        let points: Vec<Point> = report.native_points().collect();
        let host = HOST_VIEWS.iter().find(|(job, ..)| *job == report.job);
        let mut out = if let Some((job, title, prefix)) = host {
            let mut view = dialect::direct_view(job, title, Layer::Host, &points, |_| {
                "not read yet, or not present on this node (see the status line)".to_string()
            });
            view.signals.retain(|(name, _)| name.starts_with(prefix));
            Outcome::viewed(source, points.len(), view)
        } else if report.job == NVML_JOB {
            let warnings = report.warnings.join("; ");
            let mut view = dialect::direct_view("nvml", "NVML", Layer::Gpu, &points, |name| {
                if !fields.includes(name) {
                    "not collected under the incident profile (reduced field set)".to_string()
                } else if warnings.is_empty() {
                    "NVML does not report it on this GPU".to_string()
                } else {
                    format!("NVML does not report it on this GPU ({warnings})")
                }
            });
            // Series outside the vocabulary (MIG slices, NVSwitch links) are listed as notes.
            view.notes.extend(
                points
                    .iter()
                    .filter(|p| dialect::canonical().signal(&p.name).is_none())
                    .map(series_line),
            );
            Outcome::viewed(source, points.len(), view)
        } else if report.job == ENGINE_GPU_JOB {
            Outcome {
                links: points.iter().map(link_line).collect(),
                samples: points.len(),
                ..Outcome::failed(source, String::new())
            }
            .succeeded()
        } else {
            // The count is what the endpoint exposed: Strata's own `strata_engine_info` is
            // shown as the engine line instead.
            let exposed: Vec<Point> = points
                .iter()
                .filter(|p| p.name != ENGINE_INFO)
                .cloned()
                .collect();
            Outcome::from_native(source, &exposed, report.parse_errors.clone())
        };
        out.engine = points
            .iter()
            .find(|p| p.name == ENGINE_INFO)
            .map(|p| engine_line(&p.labels));
        if out.note.is_none() && report.job != NVML_JOB && !report.warnings.is_empty() {
            // Host collectors' warnings (unreadable files, an XID's meaning) show here too.
            out.note = Some(report.warnings.join("; "));
        }
        out
    }

    /// A source read through a canonical view built here (host collectors, NVML).
    fn viewed(source: &str, samples: usize, view: CanonicalView) -> Outcome {
        Outcome {
            view: Some(view),
            samples,
            ..Outcome::failed(source, String::new())
        }
        .succeeded()
    }

    fn succeeded(mut self) -> Outcome {
        self.error = None;
        self
    }

    /// The outcome of a driver-less host collector (InfiniBand ports, kubelet): its status
    /// line (which says when the layer is not visible from this node) and every series it
    /// read, one per line; an absent layer is not a failure.
    pub fn from_host(source: &str, report: &ScrapeReport, status: String) -> Outcome {
        if let Some(error) = &report.error {
            return Outcome::failed(source, error.clone());
        }
        let mut points: Vec<Point> = report.native_points().collect();
        points.sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
        let mut note = status;
        if !report.warnings.is_empty() {
            note.push_str(&format!("\n   warnings: {}", report.warnings.join("; ")));
        }
        for p in &points {
            note.push_str(&format!("\n   {}", series_line(p)));
        }
        Outcome {
            source: source.to_string(),
            error: None,
            samples: points.len(),
            parse_errors: Vec::new(),
            view: None,
            note: Some(note),
            engine: None,
            links: Vec::new(),
        }
    }

    /// True when the source failed (exit status 1).
    pub fn is_failure(&self) -> bool {
        self.error.is_some()
    }
}

/// `name{label="value",...} value`, without the target labels.
fn series_line(p: &Point) -> String {
    let labels: Vec<String> = p
        .labels
        .iter()
        .filter(|(k, _)| k != "job" && k != "instance")
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    format!("{}{{{}}} {}", p.name, labels.join(","), p.value)
}

fn label<'a>(labels: &'a [(String, String)], name: &str) -> &'a str {
    labels
        .iter()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v.as_str())
}

/// `vllm-a · meta-llama/Llama-3.1-8B-Instruct` (the model left out when unknown).
fn engine_line(labels: &[(String, String)]) -> String {
    match label(labels, "model") {
        "" => label(labels, "name").to_string(),
        m => format!("{} · {m}", label(labels, "name")),
    }
}

/// `vllm-a (127.0.0.1:8000) → node-1 · GPU 0 · NVIDIA H100 (GPU-…)`.
fn link_line(p: &Point) -> String {
    let l = &p.labels;
    let (name, instance) = (label(l, "name"), label(l, "instance"));
    // An engine given by URL alone is named by its address until a scrape detects it: say
    // the address once.
    let engine = if name == instance {
        instance.to_string()
    } else {
        format!("{name} ({instance})")
    };
    format!(
        "{engine} → {} · GPU {} · {} ({})",
        label(l, "node"),
        label(l, "gpu"),
        label(l, "gpu_model"),
        label(l, "gpu_uuid")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn engine_and_link_lines() {
        assert_eq!(
            engine_line(&labels(&[("name", "tgi"), ("model", "Qwen")])),
            "tgi · Qwen"
        );
        assert_eq!(
            engine_line(&labels(&[("name", "llamacpp@h:1"), ("model", "")])),
            "llamacpp@h:1"
        );
        let p = Point::new(
            "strata_engine_gpu_info",
            labels(&[
                ("name", "vllm-a"),
                ("instance", "h:1"),
                ("node", "n"),
                ("gpu", "2"),
                ("gpu_model", "H100"),
                ("gpu_uuid", "GPU-1"),
            ]),
            1.0,
            0,
        );
        assert_eq!(link_line(&p), "vllm-a (h:1) → n · GPU 2 · H100 (GPU-1)");
        let mut by_address = p.clone();
        for (k, v) in &mut by_address.labels {
            if k == "name" {
                *v = "h:1".into();
            }
        }
        assert_eq!(link_line(&by_address), "h:1 → n · GPU 2 · H100 (GPU-1)");
    }
}
