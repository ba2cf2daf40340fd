//! Retention: drop whole chunks older than the retention window, then the oldest closed
//! chunks until the store fits `max_bytes`. Every dropped chunk is counted. Runs under the
//! ingest lock, taking one shard's write lock at a time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::{Ingest, Store, forget, shard_of_id};
use strata_core::sync::{read, write};

impl Store {
    pub(super) fn enforce_retention(&self, ing: &mut Ingest) {
        ing.retention_checked_at = ing.max_t;
        let cutoff = ing
            .max_t
            .saturating_sub(i64::try_from(self.cfg.retention.as_millis()).unwrap_or(i64::MAX));
        for shard in self.shards.iter() {
            let mut emptied = Vec::new();
            {
                let mut shard = write(shard);
                for (id, s) in shard.iter_mut() {
                    let old = s.closed.iter().take_while(|c| c.max_t() < cutoff).count();
                    for c in s.closed.drain(..old) {
                        ing.bytes = ing.bytes.saturating_sub(c.bytes());
                        ing.samples = ing.samples.saturating_sub(c.len() as u64);
                        ing.drops.retention_time_chunks += 1;
                    }
                    if s.last_t().is_none_or(|t| t < cutoff) {
                        if !s.head.is_empty() {
                            ing.drops.retention_time_chunks += 1;
                        }
                        emptied.push(id);
                    }
                }
            }
            if emptied.is_empty() {
                continue;
            }
            let mut postings = write(&self.postings);
            let mut shard = write(shard);
            for id in emptied {
                if let Some(s) = shard.remove(id) {
                    forget(ing, &mut postings, id, &s);
                }
            }
        }
        if ing.bytes <= self.cfg.max_bytes {
            return;
        }
        let mut oldest: BinaryHeap<Reverse<(i64, u32)>> = BinaryHeap::new();
        for shard in self.shards.iter() {
            let shard = read(shard);
            oldest.extend(
                shard
                    .iter()
                    .filter_map(|(id, s)| s.closed.first().map(|c| Reverse((c.min_t(), id)))),
            );
        }
        while ing.bytes > self.cfg.max_bytes {
            let Some(Reverse((_, id))) = oldest.pop() else {
                break;
            };
            let mut shard = write(&self.shards[shard_of_id(id)]);
            let Some(s) = shard.get_mut(id) else {
                continue;
            };
            if s.closed.is_empty() {
                continue;
            }
            let c = s.closed.remove(0);
            ing.bytes = ing.bytes.saturating_sub(c.bytes());
            ing.samples = ing.samples.saturating_sub(c.len() as u64);
            ing.drops.retention_bytes_chunks += 1;
            if let Some(next) = s.closed.first() {
                oldest.push(Reverse((next.min_t(), id)));
            }
        }
    }
}
