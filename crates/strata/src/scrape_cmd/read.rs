//! Reading saved scrapes: files and standard input, parsed in place (URLs and NVML go
//! through the scraper's targets).

use std::io::Read;
use std::path::Path;

use expo::Format;
use sources::scrape::to_points;
use sources::{LabelSet, now_ms};

use super::outcome::Outcome;

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
                    format!(
                        "cannot read {source}: {e} (give a URL with http:// or https://, a readable file, or `nvml`)"
                    ),
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
    if text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| l.trim_end() == "# EOF")
    {
        Format::OpenMetrics
    } else {
        Format::Prometheus
    }
}
