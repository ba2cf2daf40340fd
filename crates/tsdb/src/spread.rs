//! Spreading the heavy loops of one large range query (decoding the selected series,
//! computing their cells at every step) over the machine's cores. The work is cut into
//! contiguous parts, each run on a scoped thread (the first on the calling one), and the
//! parts' results come back in their original order: callers that keep every output slot
//! in one part get the same answer, to the bit, as one thread would. Work below a threshold
//! stays on the calling thread (starting a thread costs tens of microseconds).

use std::num::NonZeroUsize;
use std::ops::Range;

/// How far one piece of work may be spread: at most `threads` parts, each of at least
/// `min_per_part` units of work (samples decoded, cells computed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spread {
    threads: usize,
    min_per_part: usize,
}

impl Spread {
    /// Everything on the calling thread (instant queries, rule evaluations).
    pub(crate) const SERIAL: Spread = Spread {
        threads: 1,
        min_per_part: usize::MAX,
    };

    /// Up to `threads` parts (0: the machine's available parallelism) of at least
    /// `min_per_part` units each.
    pub(crate) fn new(threads: usize, min_per_part: usize) -> Spread {
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
            n => n,
        };
        Spread {
            threads,
            min_per_part: min_per_part.max(1),
        }
    }

    /// Into how many parts `work` units over `items` items are cut (never more parts than
    /// items).
    fn parts(&self, items: usize, work: usize) -> usize {
        (work / self.min_per_part)
            .clamp(1, self.threads.max(1))
            .min(items.max(1))
    }

    /// `f` of contiguous ranges that cover `0..items` in order, one per part, and their
    /// results in that order; `work` is the units of work of all `items`. A panic in any
    /// part is resumed on the calling thread.
    pub(crate) fn ranges<R: Send>(
        &self,
        items: usize,
        work: usize,
        f: impl Fn(Range<usize>) -> R + Sync,
    ) -> Vec<R> {
        let parts = self.parts(items, work);
        if parts == 1 {
            return vec![f(0..items)];
        }
        // Part `p` starts at `items * p / parts` (u128: no overflow for any `items`).
        let bound =
            |p: usize| usize::try_from(items as u128 * p as u128 / parts as u128).unwrap_or(items);
        let f = &f;
        std::thread::scope(|s| {
            let others: Vec<_> = (1..parts)
                .map(|p| s.spawn(move || f(bound(p)..bound(p + 1))))
                .collect();
            let mut out = Vec::with_capacity(parts);
            out.push(f(0..bound(1)));
            for h in others {
                match h.join() {
                    Ok(r) => out.push(r),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            out
        })
    }

    /// `f` of each contiguous slice of `items` (see [`Spread::ranges`]), the outputs
    /// concatenated in order.
    pub(crate) fn flat_map<I: Sync, O: Send>(
        &self,
        items: &[I],
        work: usize,
        f: impl Fn(&[I]) -> Vec<O> + Sync,
    ) -> Vec<O> {
        let mut parts = self.ranges(items.len(), work, |r| f(items.get(r).unwrap_or(&[])));
        if parts.len() == 1 {
            return parts.pop().unwrap_or_default();
        }
        let mut out = Vec::with_capacity(parts.iter().map(Vec::len).sum());
        parts.into_iter().for_each(|p| out.extend(p));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_the_items_in_order_on_their_own_threads() {
        let spread = Spread::new(3, 10);
        let parts = spread.ranges(10, 1_000, |r| (r, std::thread::current().id()));
        let ranges: Vec<_> = parts.iter().map(|(r, _)| r.clone()).collect();
        assert_eq!(ranges, [0..3, 3..6, 6..10]);
        let threads: std::collections::HashSet<_> = parts.iter().map(|(_, id)| *id).collect();
        assert_eq!(threads.len(), 3, "{threads:?}");
        assert_eq!(parts[0].1, std::thread::current().id());
    }

    #[test]
    fn small_work_stays_on_the_calling_thread() {
        let me = std::thread::current().id();
        // 25 units at 10 per part: two parts, not three.
        assert_eq!(Spread::new(3, 10).ranges(10, 25, |r| r), [0..5, 5..10]);
        let bounds = |r: Range<usize>| (r.start, r.end);
        assert_eq!(Spread::new(8, 10).ranges(10, 9, bounds), [(0, 10)]);
        assert_eq!(Spread::new(8, 1).ranges(2, 100, |r| r), [0..1, 1..2]);
        assert_eq!(Spread::new(8, 1).ranges(0, 100, bounds), [(0, 0)]);
        assert_eq!(
            Spread::SERIAL.ranges(10, usize::MAX, |_| std::thread::current().id()),
            [me]
        );
        assert!(Spread::new(0, 1).threads >= 1);
    }

    #[test]
    fn flat_map_keeps_the_order() {
        let items: Vec<u32> = (0..1000).collect();
        let out = Spread::new(4, 1).flat_map(&items, items.len(), |s| {
            s.iter().filter(|x| *x % 3 == 0).map(|x| x * 2).collect()
        });
        let serial: Vec<u32> = items
            .iter()
            .filter(|x| *x % 3 == 0)
            .map(|x| x * 2)
            .collect();
        assert_eq!(out, serial);
    }
}
