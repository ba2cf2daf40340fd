//! Series split into shards by identity hash, each behind its own lock, so an append to one
//! shard never waits for a reader of another. A series id is `local << SHARD_BITS | shard`:
//! it is stable (the shard follows from the labels) and unique across shards.

use std::collections::HashMap;

use super::series::MemSeries;
use crate::labels::Labels;

const SHARD_BITS: u32 = 4;

/// Largest slot index [`Shard::place`] accepts (16 M series per shard): a bound on the memory
/// a damaged snapshot or log can make the store reserve.
const MAX_LOCAL: usize = 1 << 24;

/// Number of shards.
pub(crate) const SHARDS: usize = 1 << SHARD_BITS;

/// The shard a series with identity hash `hash` lives in.
pub(crate) fn shard_of(hash: u64) -> usize {
    (hash >> (64 - SHARD_BITS)) as usize
}

/// The shard part of a series id.
pub(crate) fn shard_of_id(id: u32) -> usize {
    id as usize & (SHARDS - 1)
}

fn id_of(shard: usize, local: usize) -> u32 {
    ((local as u32) << SHARD_BITS) | shard as u32
}

fn local_of(id: u32) -> usize {
    (id >> SHARD_BITS) as usize
}

/// Whether `labels` are the series `name` + `pairs` (labels other than the name, sorted): one
/// pass over the stored labels, the name compared where it sorts (appends run this for every
/// sample, so no lookup of the name first).
fn same_series(labels: &Labels, name: &str, pairs: &[(&str, &str)]) -> bool {
    let mut expected = pairs.iter();
    let mut named = false;
    for (n, v) in labels.iter() {
        if n == crate::labels::METRIC_NAME {
            if v != name {
                return false;
            }
            named = true;
        } else if expected.next() != Some(&(n, v)) {
            return false;
        }
    }
    (named || name.is_empty()) && expected.next().is_none()
}

/// One shard's series: a slot per local id (freed slots are reused) and an identity-hash
/// index for appends.
#[derive(Default)]
pub(crate) struct Shard {
    index: usize,
    series: Vec<Option<MemSeries>>,
    free: Vec<usize>,
    by_hash: HashMap<u64, Vec<usize>>,
}

impl Shard {
    pub(crate) fn new(index: usize) -> Shard {
        Shard {
            index,
            ..Shard::default()
        }
    }

    /// The id of the series with this identity (`pairs`: labels other than the name, sorted,
    /// without empty values).
    pub(crate) fn find(&self, hash: u64, name: &str, pairs: &[(&str, &str)]) -> Option<u32> {
        let local = self.by_hash.get(&hash)?.iter().copied().find(|l| {
            self.series[*l]
                .as_ref()
                .is_some_and(|s| same_series(&s.labels, name, pairs))
        })?;
        Some(id_of(self.index, local))
    }

    /// Creates a series in a free slot and returns its id.
    pub(crate) fn insert(&mut self, hash: u64, labels: Labels) -> u32 {
        let local = match self.free.pop() {
            Some(l) => l,
            None => {
                self.series.push(None);
                self.series.len() - 1
            }
        };
        self.fill(local, hash, labels);
        id_of(self.index, local)
    }

    /// Puts a series at exactly `id` (replaying a snapshot or log, which name the id) and
    /// returns the series that held the slot, if any. `Err` when `id` belongs to another shard.
    pub(crate) fn place(
        &mut self,
        id: u32,
        hash: u64,
        labels: Labels,
    ) -> Result<Option<MemSeries>, String> {
        if shard_of_id(id) != self.index {
            return Err(format!(
                "series id {id} does not belong to the shard of {labels}"
            ));
        }
        let local = local_of(id);
        if local >= MAX_LOCAL {
            return Err(format!("series id {id} is out of range"));
        }
        while self.series.len() <= local {
            self.free.push(self.series.len());
            self.series.push(None);
        }
        let evicted = self.remove(id);
        self.free.retain(|l| *l != local);
        self.fill(local, hash, labels);
        Ok(evicted)
    }

    fn fill(&mut self, local: usize, hash: u64, labels: Labels) {
        self.by_hash.entry(hash).or_default().push(local);
        self.series[local] = Some(MemSeries::new(labels));
    }

    /// Removes series `id`, freeing its slot.
    pub(crate) fn remove(&mut self, id: u32) -> Option<MemSeries> {
        let local = local_of(id);
        let s = self.series.get_mut(local)?.take()?;
        let hash = super::index::series_hash(s.labels.name(), s.labels.iter());
        if let Some(locals) = self.by_hash.get_mut(&hash) {
            locals.retain(|l| *l != local);
            if locals.is_empty() {
                self.by_hash.remove(&hash);
            }
        }
        self.free.push(local);
        Some(s)
    }

    pub(crate) fn get(&self, id: u32) -> Option<&MemSeries> {
        self.series.get(local_of(id))?.as_ref()
    }

    pub(crate) fn get_mut(&mut self, id: u32) -> Option<&mut MemSeries> {
        self.series.get_mut(local_of(id))?.as_mut()
    }

    /// Every series with its id.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &MemSeries)> {
        self.series
            .iter()
            .enumerate()
            .filter_map(|(l, s)| Some((id_of(self.index, l), s.as_ref()?)))
    }

    /// Every series with its id, mutably.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (u32, &mut MemSeries)> {
        let index = self.index;
        self.series
            .iter_mut()
            .enumerate()
            .filter_map(move |(l, s)| Some((id_of(index, l), s.as_mut()?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::new(
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn same_series_compares_the_name_where_it_sorts_and_every_other_pair() {
        let stored = labels(&[("Hostname", "h"), ("__name__", "m"), ("gpu", "0")]);
        assert!(same_series(
            &stored,
            "m",
            &[("Hostname", "h"), ("gpu", "0")]
        ));
        assert!(!same_series(
            &stored,
            "n",
            &[("Hostname", "h"), ("gpu", "0")]
        ));
        assert!(!same_series(&stored, "m", &[("Hostname", "h")]));
        assert!(!same_series(
            &stored,
            "m",
            &[("Hostname", "h"), ("gpu", "1")]
        ));
        assert!(!same_series(
            &stored,
            "m",
            &[("Hostname", "h"), ("gpu", "0"), ("x", "y")]
        ));
        assert!(same_series(&labels(&[("a", "1")]), "", &[("a", "1")]));
        assert!(!same_series(&labels(&[("a", "1")]), "m", &[("a", "1")]));
    }
}
