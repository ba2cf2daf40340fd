//! Retention: drop whole chunks older than the retention window, then the oldest closed
//! chunks until the store fits `max_bytes`. Every dropped chunk is counted.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::{Inner, StoreConfig};

impl Inner {
    pub(super) fn enforce_retention(&mut self, cfg: &StoreConfig) {
        self.retention_checked_at = self.max_t;
        let cutoff = self
            .max_t
            .saturating_sub(i64::try_from(cfg.retention.as_millis()).unwrap_or(i64::MAX));
        let mut emptied = Vec::new();
        for id in 0..self.series.len() {
            let Some(s) = self.series[id].as_mut() else {
                continue;
            };
            let old = s.closed.iter().take_while(|c| c.max_t() < cutoff).count();
            for c in s.closed.drain(..old) {
                self.bytes = self.bytes.saturating_sub(c.bytes());
                self.samples = self.samples.saturating_sub(c.len() as u64);
                self.drops.retention_time_chunks += 1;
            }
            if s.last_t().is_none_or(|t| t < cutoff) {
                if !s.head.is_empty() {
                    self.drops.retention_time_chunks += 1;
                }
                emptied.push(id as u32);
            }
        }
        for id in emptied {
            self.remove_series(id);
        }
        if self.bytes <= cfg.max_bytes {
            return;
        }
        let mut oldest: BinaryHeap<Reverse<(i64, u32)>> = self
            .series
            .iter()
            .enumerate()
            .filter_map(|(id, s)| {
                s.as_ref()?
                    .closed
                    .first()
                    .map(|c| Reverse((c.min_t(), id as u32)))
            })
            .collect();
        while self.bytes > cfg.max_bytes {
            let Some(Reverse((_, id))) = oldest.pop() else {
                break;
            };
            let Some(s) = self.series[id as usize].as_mut() else {
                continue;
            };
            if s.closed.is_empty() {
                continue;
            }
            let c = s.closed.remove(0);
            self.bytes = self.bytes.saturating_sub(c.bytes());
            self.samples = self.samples.saturating_sub(c.len() as u64);
            self.drops.retention_bytes_chunks += 1;
            if let Some(next) = s.closed.first() {
                oldest.push(Reverse((next.min_t(), id)));
            }
        }
    }
}
