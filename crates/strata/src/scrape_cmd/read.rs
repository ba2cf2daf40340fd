//! Reading each kind of source once: URLs (through the scraper's target state), files and
//! standard input (parsed in place), and local GPUs through NVML.

use std::io::Read;
use std::path::Path;

use expo::Format;
use sources::dialect::{self, Layer};
use sources::gpu::FieldSet;
use sources::gpu::nvml::NvmlCollector;
use sources::scrape::{ProfileSettings, TargetState, to_points};
use sources::{LabelSet, now_ms};

use super::outcome::Outcome;

/// Scrapes a URL target once with `settings`.
pub async fn url(state: &mut TargetState, source: &str, settings: ProfileSettings) -> Outcome {
    let report = state.scrape(settings).await;
    if let Some(error) = report.error {
        return Outcome::failed(source, error);
    }
    let native: Vec<_> = report.native_points().cloned().collect();
    Outcome::from_native(source, &native, report.parse_errors)
}

/// Reads a saved scrape from a file (`-` = standard input).
pub fn file(source: &str) -> Outcome {
    let bytes = if source == "-" {
        let mut buf = Vec::new();
        match std::io::stdin().lock().read_to_end(&mut buf) {
            Ok(_) => buf,
            Err(e) => return Outcome::failed(source, format!("cannot read standard input: {e}")),
        }
    } else {
        match std::fs::read(Path::new(source)) {
            Ok(b) => b,
            Err(e) => {
                return Outcome::failed(
                    source,
                    format!("cannot read {source}: {e} (give a URL with http:// or https://, a readable file, or `nvml`)"),
                );
            }
        }
    };
    let (text, lossy) = match String::from_utf8(bytes) {
        Ok(t) => (t, false),
        Err(e) => (String::from_utf8_lossy(e.as_bytes()).into_owned(), true),
    };
    let exposition = expo::parse(&text, sniff_format(&text));
    let points = to_points(&exposition, &LabelSet::new(), now_ms());
    let mut out = Outcome::from_native(source, &points, exposition.errors.clone());
    if lossy && out.error.is_none() {
        out.note = Some("the file is not valid UTF-8; bad bytes were replaced".to_string());
    }
    out
}

/// A file is OpenMetrics when it ends with `# EOF`, classic text otherwise.
fn sniff_format(text: &str) -> Format {
    if text.lines().rev().find(|l| !l.trim().is_empty()).is_some_and(|l| l.trim_end() == "# EOF") {
        Format::OpenMetrics
    } else {
        Format::Prometheus
    }
}

/// Reads local GPUs through NVML once (blocking: run on a blocking thread).
pub fn nvml(collector: &mut NvmlCollector, fields: FieldSet) -> Outcome {
    let collection = collector.collect(fields, now_ms());
    let errors = collection.errors.join("; ");
    let view = dialect::direct_view("nvml", "NVML", Layer::Gpu, &collection.points, |name| {
        if !fields.includes(name) {
            "not collected under the incident profile (reduced field set)".to_string()
        } else if errors.is_empty() {
            "NVML does not report it on this GPU".to_string()
        } else {
            format!("NVML does not report it on this GPU ({errors})")
        }
    });
    Outcome {
        source: "nvml".to_string(),
        error: None,
        samples: collection.points.len(),
        parse_errors: Vec::new(),
        view: Some(view),
        note: Some(collector.status()),
    }
}
