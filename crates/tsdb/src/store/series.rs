//! One series in memory: its labels, closed chunks and the head chunk being appended to.

use std::sync::Arc;

use crate::chunk::Chunk;
use crate::labels::Labels;

/// A series' samples as compressed chunks, oldest first. Closed chunks are immutable and
/// shared (`Arc`), so a reader copies references under the lock and decodes outside it.
pub(crate) struct MemSeries {
    pub(crate) labels: Labels,
    pub(crate) closed: Vec<Arc<Chunk>>,
    pub(crate) head: Chunk,
}

/// The chunks of one series overlapping a time range, detached from the store: closed chunks
/// by reference, the head copied. Decoding it takes no lock.
pub(crate) struct SeriesView {
    pub(crate) labels: Labels,
    chunks: Vec<Arc<Chunk>>,
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
        self.closed.last().map(|c| c.max_t())
    }

    /// Timestamp of the oldest sample still held.
    pub(crate) fn first_t(&self) -> Option<i64> {
        match self.closed.first() {
            Some(c) => Some(c.min_t()),
            None => (!self.head.is_empty()).then(|| self.head.min_t()),
        }
    }

    /// Appends an in-order sample; returns the bytes the series grew by (negative when the
    /// head filled up and sealed smaller).
    pub(crate) fn push(&mut self, t: i64, v: f64) -> isize {
        let before = self.head.bytes();
        self.head.push(t, v);
        if self.head.is_full() {
            // Sealing may re-encode the chunk smaller: the growth is what it holds now.
            let mut full = std::mem::take(&mut self.head);
            full.seal();
            let after = full.bytes();
            self.closed.push(Arc::new(full));
            return after as isize - before as isize;
        }
        self.head.bytes() as isize - before as isize
    }

    /// All chunks, oldest first (closed ones, then the head if it holds samples).
    pub(crate) fn chunks(&self) -> impl Iterator<Item = &Chunk> {
        self.closed
            .iter()
            .map(|c| &**c)
            .chain((!self.head.is_empty()).then_some(&self.head))
    }

    /// Encoded bytes held by the series.
    pub(crate) fn bytes(&self) -> usize {
        self.chunks().map(Chunk::bytes).sum()
    }

    /// Samples held.
    pub(crate) fn len(&self) -> u64 {
        self.chunks().map(|c| c.len() as u64).sum()
    }

    /// True when the series holds a sample in `[mint, maxt]`.
    pub(crate) fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        matches!((self.first_t(), self.last_t()), (Some(a), Some(b)) if a <= maxt && b >= mint)
    }

    /// Where the newest sample in `[mint, maxt]` is, cheap to take under a lock: only the
    /// one chunk that can hold it, and no chunk at all when that sample is the chunk's last
    /// (an instant selector at the present time). `None` when the series has none there.
    pub(crate) fn latest(&self, mint: i64, maxt: i64) -> Option<Latest> {
        let pick = |c: &Chunk, own: &dyn Fn() -> Arc<Chunk>| {
            if c.max_t() < mint {
                None
            } else if c.max_t() <= maxt {
                c.last().map(|(t, v)| Latest::Read(t, v))
            } else {
                Some(Latest::Decode(own()))
            }
        };
        // Chunks hold increasing times: the newest one starting at or before `maxt` holds
        // the newest sample at or before it.
        if !self.head.is_empty() && self.head.min_t() <= maxt {
            return pick(&self.head, &|| Arc::new(self.head.clone()));
        }
        let c = self.closed.iter().rev().find(|c| c.min_t() <= maxt)?;
        pick(c, &|| c.clone())
    }

    /// The chunks overlapping `[mint, maxt]`, cheap to take under a lock (reference-count
    /// bumps plus one copy of the head when it overlaps).
    pub(crate) fn view(&self, mint: i64, maxt: i64) -> SeriesView {
        let hit = |c: &Chunk| c.max_t() >= mint && c.min_t() <= maxt;
        let mut chunks: Vec<Arc<Chunk>> = self.closed.iter().filter(|c| hit(c)).cloned().collect();
        if !self.head.is_empty() && hit(&self.head) {
            chunks.push(Arc::new(self.head.clone()));
        }
        SeriesView {
            labels: self.labels.clone(),
            chunks,
        }
    }
}

/// Where the newest sample of a series at or before some time is: read from the chunk's
/// header already, or in one chunk still to decode (outside the lock).
pub(crate) enum Latest {
    Read(i64, f64),
    Decode(Arc<Chunk>),
}

impl Latest {
    /// The newest sample with `mint <= t <= maxt` (the bounds [`MemSeries::latest`] was
    /// asked with).
    pub(crate) fn sample(self, mint: i64, maxt: i64) -> Option<(i64, f64)> {
        let (t, v) = match self {
            Latest::Read(t, v) => (t, v),
            Latest::Decode(c) => c.iter().take_while(|(t, _)| *t <= maxt).last()?,
        };
        (t >= mint).then_some((t, v))
    }
}

impl SeriesView {
    /// The chunks, oldest first.
    pub(crate) fn chunks(&self) -> &[Arc<Chunk>] {
        &self.chunks
    }

    /// Samples with `mint <= t <= maxt`, in time order.
    pub(crate) fn samples_between(&self, mint: i64, maxt: i64) -> Vec<(i64, f64)> {
        let mut out = Vec::with_capacity(self.chunks.iter().map(|c| c.len()).sum());
        self.read_into(mint, maxt, &mut out);
        out
    }

    /// Appends the samples with `mint <= t <= maxt` to `out`, in time order (a reader
    /// decoding many series one after the other reuses one buffer).
    pub(crate) fn read_into(&self, mint: i64, maxt: i64, out: &mut Vec<(i64, f64)>) {
        for c in &self.chunks {
            c.read_into(mint, maxt, out);
        }
    }
}
