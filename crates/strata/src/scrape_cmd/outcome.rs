//! What reading one source produced, whatever the source was: the canonical view, or a
//! clear reason why there is none.

use expo::ParseError;
use sources::Point;
use sources::dialect::{self, CanonicalView, Layer};
use sources::gpu::FieldSet;
use sources::scrape::{NVML_JOB, ScrapeReport};

/// The host collectors' jobs: `(job, title, the prefix of their canonical signals)`.
const HOST_VIEWS: [(&str, &str, &str); 3] = [
    (sources::logs::NCCL_JOB, "NCCL logs", "nccl:"),
    (sources::host::PROCESS_JOB, "engine process", "proc:"),
    (sources::host::NODE_JOB, "node pressure", "node:"),
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
        let points: Vec<Point> = report.native_points().cloned().collect();
        let host = HOST_VIEWS.iter().find(|(job, ..)| *job == report.job);
        let mut out = if let Some((job, title, prefix)) = host {
            let mut view = dialect::direct_view(job, title, Layer::Host, &points, |_| {
                "not read yet, or not present on this node (see the status line)".to_string()
            });
            view.signals.retain(|(name, _)| name.starts_with(prefix));
            Outcome {
                source: source.to_string(),
                error: None,
                samples: points.len(),
                parse_errors: Vec::new(),
                view: Some(view),
                note: None,
            }
        } else if report.job == NVML_JOB {
            let warnings = report.warnings.join("; ");
            let view = dialect::direct_view("nvml", "NVML", Layer::Gpu, &points, |name| {
                if !fields.includes(name) {
                    "not collected under the incident profile (reduced field set)".to_string()
                } else if warnings.is_empty() {
                    "NVML does not report it on this GPU".to_string()
                } else {
                    format!("NVML does not report it on this GPU ({warnings})")
                }
            });
            Outcome {
                source: source.to_string(),
                error: None,
                samples: points.len(),
                parse_errors: Vec::new(),
                view: Some(view),
                note: None,
            }
        } else {
            Outcome::from_native(source, &points, report.parse_errors.clone())
        };
        if out.note.is_none() && report.job != NVML_JOB && !report.warnings.is_empty() {
            // Host collectors' warnings (unreadable files, an XID's meaning) show here too.
            out.note = Some(report.warnings.join("; "));
        }
        out
    }

    /// True when the source failed (exit status 1).
    pub fn is_failure(&self) -> bool {
        self.error.is_some()
    }
}
