//! Label sets: the identity of a series.

use std::fmt;
use std::sync::Arc;

/// Name of the label that carries the metric name (Prometheus' model).
pub const METRIC_NAME: &str = "__name__";

/// A series' label set, sorted by name, `__name__` included (Prometheus' model).
///
/// It exists so that the store, the evaluator and the HTTP layer agree on one identity for a
/// series. The pairs live behind an `Arc`, so cloning a label set per evaluation step is a
/// reference-count bump, not a copy.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Labels(Arc<[(String, String)]>);

impl Labels {
    /// Builds a label set from pairs in any order; pairs with an empty value are dropped
    /// (an empty value means "no label" in Prometheus) and the last duplicate name wins.
    pub fn new(mut pairs: Vec<(String, String)>) -> Labels {
        pairs.retain(|(_, v)| !v.is_empty());
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        pairs.reverse();
        pairs.dedup_by(|a, b| a.0 == b.0);
        pairs.reverse();
        Labels(pairs.into())
    }

    /// Builds a label set from string slices; convenient in tests and callers with literals.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Labels {
        Labels::new(
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    /// The metric name (`__name__`), or `""` for a set without one.
    pub fn name(&self) -> &str {
        self.get(METRIC_NAME).unwrap_or("")
    }

    /// The pairs in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The pairs as a slice, in name order.
    pub fn as_slice(&self) -> &[(String, String)] {
        &self.0
    }

    /// Number of labels, `__name__` included.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for the empty label set (the labels of a scalar turned vector).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Address of the shared pairs: equal for clones of one label set, so it identifies a
    /// set cheaply while a clone is kept alive (the evaluator's per-query caches do).
    pub(crate) fn addr(&self) -> usize {
        Arc::as_ptr(&self.0).cast::<u8>() as usize
    }

    /// A copy keeping only the labels `keep` returns true for.
    pub fn filter(&self, keep: impl Fn(&str) -> bool) -> Labels {
        Labels(self.0.iter().filter(|(n, _)| keep(n)).cloned().collect())
    }

    /// A copy without `__name__` (what most PromQL operations return).
    pub fn without_name(&self) -> Labels {
        if self.get(METRIC_NAME).is_none() {
            return self.clone();
        }
        self.filter(|n| n != METRIC_NAME)
    }

    /// A copy with `name` set to `value` (removed when `value` is empty).
    pub fn with(&self, name: &str, value: &str) -> Labels {
        let mut pairs: Vec<(String, String)> =
            self.0.iter().filter(|(n, _)| n != name).cloned().collect();
        pairs.push((name.to_string(), value.to_string()));
        Labels::new(pairs)
    }
}

impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name();
        f.write_str(name)?;
        f.write_str("{")?;
        let mut first = true;
        for (n, v) in self.iter().filter(|(n, _)| *n != METRIC_NAME) {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{n}={v:?}")?;
        }
        f.write_str("}")
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for Labels {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (n, v) in self.iter() {
            map.serialize_entry(n, v)?;
        }
        map.end()
    }
}

/// A map keyed by [`Labels::addr`]: the evaluator looks one up per sample per step, where
/// SipHash (the std default) cost more than the rest of the lookup.
pub(crate) type AddrMap<V> =
    std::collections::HashMap<usize, V, std::hash::BuildHasherDefault<AddrHasher>>;

/// Hashes one address: a multiply by a 64-bit odd constant, high half folded into the low
/// half (the table indexes with low bits, its control bytes use the top ones).
#[derive(Default)]
pub(crate) struct AddrHasher(u64);

impl std::hash::Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `usize` keys are hashed with it; other input still hashes, byte by byte.
        for &b in bytes {
            self.write_u64(u64::from(b) ^ self.0.rotate_left(8));
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn write_u64(&mut self, n: u64) {
        let h = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = h ^ (h >> 29);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_deduplicated_and_empty_values_dropped() {
        let l = Labels::from_pairs(&[
            ("b", "2"),
            ("__name__", "m"),
            ("a", "1"),
            ("c", ""),
            ("a", "3"),
        ]);
        let pairs: Vec<_> = l.iter().collect();
        assert_eq!(pairs, vec![("__name__", "m"), ("a", "3"), ("b", "2")]);
        assert_eq!(l.name(), "m");
        assert_eq!(l.get("c"), None);
        assert_eq!(l.without_name().len(), 2);
        assert_eq!(l.with("a", "").get("a"), None);
        assert_eq!(l.to_string(), "m{a=\"3\", b=\"2\"}");
    }
}
