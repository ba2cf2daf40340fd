//! One series in memory: its labels, closed chunks and the head chunk being appended to.

use crate::chunk::Chunk;
use crate::labels::Labels;

/// A series' samples as compressed chunks, oldest first.
pub(crate) struct MemSeries {
    pub(crate) labels: Labels,
    pub(crate) closed: Vec<Chunk>,
    pub(crate) head: Chunk,
}

impl MemSeries {
    pub(crate) fn new(labels: Labels) -> MemSeries {
        MemSeries {
            labels,
            closed: Vec::new(),
            head: Chunk::default(),
        }
    }

    /// Timestamp of the newest sample, `None` for a series without samples.
    pub(crate) fn last_t(&self) -> Option<i64> {
        if !self.head.is_empty() {
            return Some(self.head.max_t());
        }
        self.closed.last().map(Chunk::max_t)
    }

    /// Timestamp of the oldest sample still held.
    pub(crate) fn first_t(&self) -> Option<i64> {
        match self.closed.first() {
            Some(c) => Some(c.min_t()),
            None => (!self.head.is_empty()).then(|| self.head.min_t()),
        }
    }

    /// Appends an in-order sample; returns the bytes the series grew by.
    pub(crate) fn push(&mut self, t: i64, v: f64) -> isize {
        let before = self.head.bytes();
        self.head.push(t, v);
        let grown = self.head.bytes() as isize - before as isize;
        if self.head.is_full() {
            let mut full = std::mem::take(&mut self.head);
            full.shrink();
            self.closed.push(full);
        }
        grown
    }

    /// All chunks, oldest first (closed ones, then the head if it holds samples).
    pub(crate) fn chunks(&self) -> impl Iterator<Item = &Chunk> {
        self.closed
            .iter()
            .chain((!self.head.is_empty()).then_some(&self.head))
    }

    /// Encoded bytes held by the series.
    pub(crate) fn bytes(&self) -> usize {
        self.chunks().map(Chunk::bytes).sum()
    }

    /// Samples with `mint <= t <= maxt`, in time order.
    pub(crate) fn samples_between(&self, mint: i64, maxt: i64, out: &mut Vec<(i64, f64)>) {
        for c in self.chunks() {
            if c.max_t() < mint || c.min_t() > maxt {
                continue;
            }
            out.extend(c.iter().filter(|(t, _)| *t >= mint && *t <= maxt));
        }
    }

    /// True when the series holds a sample in `[mint, maxt]`.
    pub(crate) fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        matches!((self.first_t(), self.last_t()), (Some(a), Some(b)) if a <= maxt && b >= mint)
    }
}
