//! From `[[target]]` entries to the scraper's [`TargetSpec`]s: URLs parsed, token and CA files
//! read, labels checked, each error located in the file.

use std::collections::HashSet;
use std::path::Path;

use sources::scrape::{TargetKind, TargetSpec};
use toml::Spanned;

use super::error::ConfigError;
use super::schema::Config;

/// Default body limit when neither the target nor `[scrape]` sets one.
const DEFAULT_MAX_BODY_BYTES: usize = 16 << 20;

/// Builds the scraper's targets from `config` (text and path only for error positions).
pub fn target_specs(
    config: &Config,
    path: &Path,
    text: &str,
) -> Result<Vec<TargetSpec>, ConfigError> {
    let at = |span: std::ops::Range<usize>, message: String, fix: &str| {
        ConfigError::at(path, text, Some(span), message, fix.to_string())
    };
    let engine = config.profiles(TargetKind::Engine, path, text)?;
    let gpu = config.profiles(TargetKind::Gpu, path, text)?;
    let mut seen = HashSet::new();
    let mut specs = Vec::with_capacity(config.targets.len());
    for t in &config.targets {
        let name = t.name.get_ref();
        if !seen.insert(name.clone()) {
            return Err(at(
                t.name.span(),
                format!("target name {name:?} is used twice"),
                "give every [[target]] its own name; it becomes the job label",
            ));
        }
        // No path means /metrics, as Prometheus' metrics_path default.
        let url = sources::scrape::metrics_url(t.url.get_ref()).map_err(|e| {
            at(
                t.url.span(),
                format!("invalid url {:?}: {e}", t.url.get_ref()),
                "write a full URL such as \"http://127.0.0.1:8000/metrics\"",
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(at(
                t.url.span(),
                format!("unsupported url scheme {:?}", url.scheme()),
                "use http:// or https://",
            ));
        }
        let kind = t.kind.unwrap_or(TargetKind::Engine);
        let mut spec = TargetSpec::new(name.clone(), url, kind);
        spec.name = Some(name.clone());
        spec.node = config.node.clone();
        spec.profiles = match kind {
            TargetKind::Engine => engine,
            TargetKind::Gpu => gpu,
        };
        spec.max_body_bytes = t
            .max_body_bytes
            .or(config.scrape.max_body_bytes)
            .unwrap_or(DEFAULT_MAX_BODY_BYTES);
        spec.insecure_skip_verify = t.insecure_skip_verify;
        if t.bearer_token_file.is_some() && !spec.url.password().unwrap_or_default().is_empty() {
            return Err(at(
                t.url.span(),
                "the url carries a password and bearer_token_file is set too: only one would be sent".to_string(),
                "keep credentials in bearer_token_file and drop `user:password@` from the url",
            ));
        }
        if let Some(file) = &t.bearer_token_file {
            let token = read(file, &at)?;
            spec.bearer_token = Some(String::from_utf8_lossy(&token).trim().to_string());
        }
        if let Some(file) = &t.ca_file {
            spec.ca_pem = Some(read(file, &at)?);
        }
        for (label, value) in &t.labels {
            if let Some(canonical) = strata_core::labels::forbidden(label) {
                return Err(at(
                    value.span(),
                    format!(
                        "label {label:?} is {canonical}: per-request, it would explode the number of series"
                    ),
                    "keep request, user and session ids in traces and logs, never on metrics",
                ));
            }
            if matches!(label.as_str(), "job" | "instance") {
                return Err(at(
                    value.span(),
                    format!("label {label:?} is set by the scraper"),
                    "rename the target (job) or drop the label",
                ));
            }
            if !strata_core::labels::valid_name(label) {
                return Err(at(
                    value.span(),
                    format!("{label:?} is not a valid label name"),
                    "use letters, digits and underscores, not starting with a digit",
                ));
            }
            spec.labels.push((label.clone(), value.get_ref().clone()));
        }
        specs.push(spec);
    }
    Ok(specs)
}

fn read(
    file: &Spanned<std::path::PathBuf>,
    at: &impl Fn(std::ops::Range<usize>, String, &str) -> ConfigError,
) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(file.get_ref()).map_err(|e| {
        at(
            file.span(),
            format!("cannot read {}: {e}", file.get_ref().display()),
            "check the path and that strata may read it",
        )
    })
}
