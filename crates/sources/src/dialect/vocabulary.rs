//! The canonical vocabulary (`dialects/canonical.toml`), loaded once.

use std::sync::OnceLock;

use serde::Deserialize;

/// Which layer of the pipeline a canonical signal belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    /// Inference engine (`llm:*`).
    Engine,
    /// GPU silicon (`gpu:*`).
    Gpu,
    /// The node, the engine's processes, its logs and its RDMA ports (`node:*`, `proc:*`,
    /// `nccl:*`, `fabric:*`), written by Strata's own collectors; no dialect table maps onto
    /// them.
    Host,
}

/// Prometheus type of a canonical series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SignalType {
    /// Goes up and down.
    Gauge,
    /// Only grows; take `rate()`.
    Counter,
    /// `_bucket`/`_sum`/`_count`.
    Histogram,
}

/// One canonical signal: what dashboards and alerts are written against.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanonicalSignal {
    /// `llm:*` or `gpu:*` name.
    pub name: String,
    /// Pipeline layer.
    pub layer: Layer,
    /// Prometheus type.
    #[serde(rename = "type")]
    pub signal_type: SignalType,
    /// Base unit, for display.
    pub unit: String,
    /// One line saying what it tells an operator.
    pub help: String,
    /// Part of the reduced GPU field set polled in incident mode.
    #[serde(default)]
    pub incident: bool,
}

/// The whole canonical vocabulary, in the order of the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vocabulary {
    /// Every canonical signal.
    #[serde(rename = "signal")]
    pub signals: Vec<CanonicalSignal>,
}

impl Vocabulary {
    /// The signal called `name`, if it is canonical.
    pub fn signal(&self, name: &str) -> Option<&CanonicalSignal> {
        self.signals.iter().find(|s| s.name == name)
    }

    /// The signals of one layer, in file order.
    pub fn layer(&self, layer: Layer) -> impl Iterator<Item = &CanonicalSignal> {
        self.signals.iter().filter(move |s| s.layer == layer)
    }
}

/// The canonical vocabulary compiled into the binary.
pub fn canonical() -> &'static Vocabulary {
    static VOCABULARY: OnceLock<Vocabulary> = OnceLock::new();
    VOCABULARY.get_or_init(|| {
        // The file is part of the source tree and checked by a unit test; a parse failure
        // here is a build defect, not bad input.
        toml::from_str(include_str!("../../dialects/canonical.toml"))
            .unwrap_or_else(|e| panic!("dialects/canonical.toml is invalid: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabulary_loads_and_names_are_prefixed_by_layer() {
        let v = canonical();
        assert!(v.signals.len() > 30);
        for s in &v.signals {
            let prefixes: &[&str] = match s.layer {
                Layer::Engine => &["llm:"],
                Layer::Gpu => &["gpu:"],
                Layer::Host => &["node:", "proc:", "nccl:", "fabric:"],
            };
            assert!(
                prefixes.iter().any(|p| s.name.starts_with(p)),
                "{} in layer {:?}",
                s.name,
                s.layer
            );
            if s.signal_type == SignalType::Counter {
                assert!(
                    s.name.ends_with("_total"),
                    "counter {} lacks _total",
                    s.name
                );
            }
        }
        assert!(
            v.signal("gpu:tensor_active_ratio")
                .is_some_and(|s| s.incident)
        );
        assert!(
            v.signal("gpu:energy_joules_total")
                .is_some_and(|s| !s.incident)
        );
    }
}
