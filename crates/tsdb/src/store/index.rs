//! Series lookup: by exact label set (hash) for appends, by matchers (postings) for queries.

use std::collections::HashMap;

use promql_parser::label::{MatchOp, Matcher};

use crate::labels::{Labels, METRIC_NAME};

/// Inverted index: label name → label value → sorted series ids.
#[derive(Default)]
pub(crate) struct Postings {
    by_label: HashMap<String, HashMap<String, Vec<u32>>>,
}

impl Postings {
    pub(crate) fn add(&mut self, id: u32, labels: &Labels) {
        for (n, v) in labels.iter() {
            let ids = self
                .by_label
                .entry(n.to_string())
                .or_default()
                .entry(v.to_string())
                .or_default();
            if let Err(pos) = ids.binary_search(&id) {
                ids.insert(pos, id);
            }
        }
    }

    pub(crate) fn remove(&mut self, id: u32, labels: &Labels) {
        for (n, v) in labels.iter() {
            let Some(values) = self.by_label.get_mut(n) else {
                continue;
            };
            if let Some(ids) = values.get_mut(v) {
                ids.retain(|x| *x != id);
                if ids.is_empty() {
                    values.remove(v);
                }
            }
            if values.is_empty() {
                self.by_label.remove(n);
            }
        }
    }

    /// Candidate ids for a matcher that cannot match the empty value: the union of the
    /// postings of every value it accepts. `None` means "no narrowing possible".
    fn candidates(&self, m: &Matcher) -> Option<Vec<u32>> {
        if m.is_match("") {
            return None;
        }
        let Some(values) = self.by_label.get(&m.name) else {
            return Some(Vec::new());
        };
        if let MatchOp::Equal = m.op {
            return Some(values.get(&m.value).cloned().unwrap_or_default());
        }
        let mut ids: Vec<u32> = values
            .iter()
            .filter(|(v, _)| m.is_match(v))
            .flat_map(|(_, ids)| ids.iter().copied())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        Some(ids)
    }

    /// Ids that can satisfy every matcher (sorted), narrowed by the matchers that cannot match
    /// the empty value; `None` when no matcher narrows (every series is a candidate). The
    /// caller still checks each candidate's labels with [`matches()`].
    pub(crate) fn candidates_for(&self, matchers: &[Matcher]) -> Option<Vec<u32>> {
        let mut narrowed: Option<Vec<u32>> = None;
        for m in matchers {
            if let Some(c) = self.candidates(m) {
                narrowed = Some(match narrowed {
                    None => c,
                    Some(prev) => intersect(&prev, &c),
                });
            }
        }
        narrowed
    }

    /// All label names in use.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.by_label.keys().map(String::as_str)
    }
}

/// True when `labels` satisfy every matcher (a missing label matches as the empty value).
pub(crate) fn matches(labels: &Labels, matchers: &[Matcher]) -> bool {
    matchers
        .iter()
        .all(|m| m.is_match(labels.get(&m.name).unwrap_or("")))
}

fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// Hash of a series identity (metric name plus non-empty labels in name order), used to find
/// the series of an incoming sample without building a [`Labels`].
pub(crate) fn series_hash<'a>(name: &str, labels: impl Iterator<Item = (&'a str, &'a str)>) -> u64 {
    let mut h = Fnv::default();
    h.write(name.as_bytes());
    for (n, v) in labels.filter(|(n, v)| !v.is_empty() && *n != METRIC_NAME) {
        h.write(&[0xff]);
        h.write(n.as_bytes());
        h.write(&[0xfe]);
        h.write(v.as_bytes());
    }
    h.0
}

/// FNV-1a: a fast, dependency-free hash for series identities (stable across runs, so a
/// series keeps its shard and id through snapshots and log replay).
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}
