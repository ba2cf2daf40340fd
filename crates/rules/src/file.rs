//! The Prometheus rule file format (`groups:` → rules), read strictly: unknown fields are
//! errors, as with `promtool check rules`.
//!
//! YAML is read with `serde-saphyr`: pure Rust with `unsafe` forbidden, fuzzed to not panic
//! on malformed input, with budgets against resource exhaustion, and with `Spanned<T>` so
//! every error can point at a line and column (the long-standing `serde_yaml` is archived
//! and its forks wrap the C-derived `unsafe-libyaml`).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

/// A whole rule file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    /// The rule groups.
    #[serde(default)]
    pub groups: Vec<RawGroup>,
}

/// One `groups:` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGroup {
    /// Group name, unique in the file.
    pub name: Spanned<String>,
    /// Evaluation interval (`30s`); the engine default when absent.
    #[serde(default)]
    pub interval: Option<Spanned<String>>,
    /// Most series or alerts one rule may produce (0 = no limit).
    #[serde(default)]
    pub limit: Option<u64>,
    /// The rules, evaluated in order.
    #[serde(default)]
    pub rules: Vec<RawRule>,
}

/// One rule as written (recording or alerting is decided by validation).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Recording rule: the metric name written.
    #[serde(default)]
    pub record: Option<Spanned<String>>,
    /// Alerting rule: the alert name.
    #[serde(default)]
    pub alert: Option<Spanned<String>>,
    /// The PromQL expression.
    #[serde(default)]
    pub expr: Option<Spanned<String>>,
    /// How long the condition must hold before the alert fires.
    #[serde(default, rename = "for")]
    pub for_: Option<Spanned<String>>,
    /// How long a firing alert keeps firing after the condition clears.
    #[serde(default)]
    pub keep_firing_for: Option<Spanned<String>>,
    /// Labels added to the result (templated for alerts).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations (alerts only; templated).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// Parses YAML text; the error carries line and column.
pub fn parse(text: &str) -> Result<RawFile, (u32, u32, String)> {
    if text.trim().is_empty() {
        return Ok(RawFile { groups: Vec::new() });
    }
    serde_saphyr::from_str::<RawFile>(text).map_err(|e| {
        let (line, col) = e
            .location()
            .map_or((0, 0), |l| (l.line() as u32, l.column() as u32));
        (line, col, e.to_string())
    })
}
