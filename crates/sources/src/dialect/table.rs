//! Dialect tables (`dialects/*.toml`): native metric names mapped onto the canonical vocabulary.
//!
//! The tables are data so that the same rows drive the canonical view here and, in later
//! stages, the generated recording rules for the embedded evaluator and for Prometheus.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

use super::vocabulary::Layer;

/// One engine's or exporter's table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DialectTable {
    /// Short name used in config and labels (`vllm`, `tgi`, `sglang`, `llamacpp`, `dcgm`).
    pub name: String,
    /// Display name.
    pub title: String,
    /// The layer its canonical signals belong to.
    pub layer: Layer,
    /// Metric-name prefix that identifies the dialect in a body.
    pub prefix: String,
    /// Identity labels that must survive every aggregation (MIG slices, GPU ids).
    #[serde(default)]
    pub pin: Vec<String>,
    /// How per-rank and per-split series of one engine collapse into one canonical series.
    #[serde(default)]
    pub aggregate: Aggregate,
    /// What to tell the operator when incident signals are missing from a scrape of this
    /// dialect (the exporter can emit them once configured).
    pub incident_fix: Option<String>,
    /// Known versions, newest first.
    #[serde(rename = "version")]
    pub versions: Vec<Version>,
    /// Native label name -> canonical label name.
    pub labels: BTreeMap<String, String>,
    /// Mappings, in preference order per canonical name.
    #[serde(rename = "map", default)]
    pub maps: Vec<MapRow>,
    /// Canonical signals this dialect cannot give, with the reason.
    #[serde(rename = "absent", default)]
    pub absent: Vec<AbsentRow>,
}

/// A version of a dialect and how to recognise it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Version {
    /// Version label (`v0`, `v1`).
    pub name: String,
    /// Metric names whose presence marks this version.
    pub detect: Vec<String>,
}

/// Labels an engine splits its series by, and how each kind collapses.
///
/// `replicated` labels carry copies of the same state (every tensor-parallel rank reports the
/// same batch), so they collapse with `max` whatever the type: summing would count the work
/// once per rank. `split` labels partition the work (data-parallel ranks, streaming vs not,
/// cache source), so counters, histograms and count-like gauges collapse with `sum`, and
/// ratio gauges with `max` (the fullest replica is the one that saturates).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Aggregate {
    /// Labels whose values are copies of one state: collapsed by `max`.
    #[serde(default)]
    pub replicated: Vec<String>,
    /// Labels whose values partition the work: collapsed by `sum` (ratios by `max`).
    #[serde(default)]
    pub split: Vec<String>,
}

/// `canonical = (native + plus...) / per * scale` over the series that pass `only` and
/// `except`, labels renamed by the table's `labels`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapRow {
    /// Canonical signal name.
    pub canonical: String,
    /// Native metric name (for histograms: the family name, without `_bucket`).
    pub native: String,
    /// Unit conversion factor.
    #[serde(default = "one")]
    pub scale: f64,
    /// Versions the row applies to (all when absent).
    pub versions: Option<Vec<String>>,
    /// Keep only series whose native label equals the value (a missing label equals "",
    /// as in PromQL).
    #[serde(default)]
    pub only: BTreeMap<String, String>,
    /// Drop series whose native label equals the value.
    #[serde(default)]
    pub except: BTreeMap<String, String>,
    /// Native metrics added to `native`, series by series (same labels); the row applies
    /// only where all of them are present.
    #[serde(default)]
    pub plus: Vec<String>,
    /// Native metric `native` is divided by, series by series (a ratio of two gauges).
    pub per: Option<String>,
    /// What the operator must know about the value when this row supplies it (a different
    /// unit, a narrower meaning); shown next to the signal and in the generated rule.
    pub note: Option<String>,
}

/// A canonical signal the dialect does not expose.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbsentRow {
    /// Canonical signal name.
    pub canonical: String,
    /// Why, and what to use instead; shown to the operator.
    pub why: String,
    /// Versions the row applies to (all when absent).
    pub versions: Option<Vec<String>>,
}

fn one() -> f64 {
    1.0
}

fn applies(versions: &Option<Vec<String>>, version: &str) -> bool {
    versions
        .as_ref()
        .is_none_or(|vs| vs.iter().any(|v| v == version))
}

impl MapRow {
    /// Whether this row applies to `version`.
    pub fn applies_to(&self, version: &str) -> bool {
        applies(&self.versions, version)
    }

    /// Whether a series with these native labels passes `only` and `except`.
    pub fn selects(&self, labels: &[(String, String)]) -> bool {
        let value = |name: &str| {
            labels
                .iter()
                .find(|(k, _)| k == name)
                .map_or("", |(_, v)| v.as_str())
        };
        self.only.iter().all(|(k, v)| value(k) == v)
            && self.except.iter().all(|(k, v)| value(k) != v)
    }

    /// The PromQL label matchers of `only` and `except` (`{a="x",b!="y"}`, or "" for none).
    pub fn matchers(&self) -> String {
        let m: Vec<String> = self
            .only
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .chain(self.except.iter().map(|(k, v)| format!("{k}!=\"{v}\"")))
            .collect();
        if m.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", m.join(","))
        }
    }

    /// Every native metric the row reads: `native`, then `plus`, then `per`.
    pub fn natives(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.native.as_str())
            .chain(self.plus.iter().map(String::as_str))
            .chain(self.per.as_deref())
    }

    /// How the row reads in the view and in comments: `a + b`, `a / b`, `a{x="y"}`.
    pub fn describe(&self) -> String {
        let mut d = format!("{}{}", self.native, self.matchers());
        for p in &self.plus {
            d.push_str(&format!(" + {p}"));
        }
        if let Some(per) = &self.per {
            d.push_str(&format!(" / {per}"));
        }
        d
    }
}

impl AbsentRow {
    /// Whether this row applies to `version`.
    pub fn applies_to(&self, version: &str) -> bool {
        applies(&self.versions, version)
    }
}

impl DialectTable {
    /// How a native label collapses: `Some(true)` replicated (max), `Some(false)` split
    /// (sum), `None` kept.
    pub fn collapses(&self, native_label: &str) -> Option<bool> {
        if self.aggregate.replicated.iter().any(|l| l == native_label) {
            Some(true)
        } else if self.aggregate.split.iter().any(|l| l == native_label) {
            Some(false)
        } else {
            None
        }
    }

    /// The canonical name of a native label.
    pub fn canonical_label<'a>(&'a self, native: &'a str) -> &'a str {
        self.labels.get(native).map_or(native, String::as_str)
    }

    /// Mapping rows for `canonical` that apply to `version`, in preference order.
    pub fn maps_for<'a>(
        &'a self,
        canonical: &'a str,
        version: &'a str,
    ) -> impl Iterator<Item = &'a MapRow> + 'a {
        self.maps
            .iter()
            .filter(move |m| m.canonical == canonical && m.applies_to(version))
    }

    /// Why `canonical` is not exposed in `version`, if the table says so.
    pub fn absent_for(&self, canonical: &str, version: &str) -> Option<&AbsentRow> {
        self.absent
            .iter()
            .find(|a| a.canonical == canonical && a.applies_to(version))
    }
}

/// Every dialect table compiled into the binary.
pub fn tables() -> &'static [DialectTable] {
    static TABLES: OnceLock<Vec<DialectTable>> = OnceLock::new();
    TABLES.get_or_init(|| {
        [
            ("vllm.toml", include_str!("../../dialects/vllm.toml")),
            ("tgi.toml", include_str!("../../dialects/tgi.toml")),
            ("sglang.toml", include_str!("../../dialects/sglang.toml")),
            (
                "llamacpp.toml",
                include_str!("../../dialects/llamacpp.toml"),
            ),
            ("dcgm.toml", include_str!("../../dialects/dcgm.toml")),
        ]
        .into_iter()
        // The tables are part of the source tree and validated by unit tests; a parse
        // failure is a build defect, not bad input.
        .map(|(file, text)| {
            toml::from_str(text).unwrap_or_else(|e| panic!("dialects/{file} is invalid: {e}"))
        })
        .collect()
    })
}

/// The table called `name`.
pub fn table(name: &str) -> Option<&'static DialectTable> {
    tables().iter().find(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::{SignalType, canonical};

    #[test]
    fn every_row_names_a_canonical_signal_of_the_tables_layer() {
        for t in tables() {
            for name in t
                .maps
                .iter()
                .map(|m| &m.canonical)
                .chain(t.absent.iter().map(|a| &a.canonical))
            {
                let s = canonical()
                    .signal(name)
                    .unwrap_or_else(|| panic!("{}: {name} is not canonical", t.name));
                assert_eq!(s.layer, t.layer, "{}: {name}", t.name);
            }
            for m in &t.maps {
                assert!(m.native.starts_with(&t.prefix), "{}: {}", t.name, m.native);
                assert!(m.scale.is_finite() && m.scale > 0.0);
                let s = canonical().signal(&m.canonical).map(|s| s.signal_type);
                if s == Some(SignalType::Histogram) {
                    assert_eq!(
                        m.scale, 1.0,
                        "histogram buckets cannot be rescaled by a factor"
                    );
                }
            }
        }
    }

    #[test]
    fn every_signal_of_the_layer_is_mapped_or_explained_in_every_version() {
        for t in tables() {
            for v in &t.versions {
                for s in canonical().layer(t.layer) {
                    let mapped = t.maps_for(&s.name, &v.name).next().is_some();
                    let absent = t.absent_for(&s.name, &v.name).is_some();
                    assert!(
                        mapped || absent,
                        "{} {}: {} neither mapped nor explained",
                        t.name,
                        v.name,
                        s.name
                    );
                }
            }
        }
    }

    #[test]
    fn all_five_dialects_are_present() {
        let names: Vec<_> = tables().iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["vllm", "tgi", "sglang", "llamacpp", "dcgm"]);
        assert_eq!(
            table("dcgm").map(|t| t.canonical_label("UUID")),
            Some("gpu_uuid")
        );
        assert_eq!(
            table("vllm").map(|t| t.canonical_label("model_name")),
            Some("model")
        );
    }
}
