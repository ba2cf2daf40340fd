//! GPU sources: the DCGM exporter (scraped, mapped by its dialect table) and NVML (read directly).

mod dcgm_counters;
pub mod nvml;
mod nvml_ffi;
pub mod xid;

pub use dcgm_counters::dcgm_counters_csv;

/// Which GPU fields a collection reads: everything (*steady* profile) or the small set the
/// *incident* profile polls every 250 ms (`incident = true` in `dialects/canonical.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldSet {
    /// Every field the source has.
    Full,
    /// Only the incident fields.
    Reduced,
}

impl FieldSet {
    /// Whether a canonical `gpu:*` signal is collected under this field set.
    pub fn includes(self, canonical: &str) -> bool {
        match self {
            FieldSet::Full => true,
            FieldSet::Reduced => crate::dialect::canonical()
                .signal(canonical)
                .is_some_and(|s| s.incident),
        }
    }
}
