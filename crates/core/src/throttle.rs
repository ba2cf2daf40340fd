//! Log throttling: a warning that could repeat on every scrape or request (a refused sample,
//! a tenant past the limit) is logged at most once per interval per key, so the log stays
//! readable while every occurrence is still counted by a metric.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Keys remembered before old ones are forgotten (a key unseen for an interval logs again
/// anyway, so forgetting it loses nothing).
const PRUNE_ABOVE: usize = 4096;

/// Which keys may log now.
#[derive(Debug)]
pub struct Throttle<K> {
    every: Duration,
    last: HashMap<K, Instant>,
}

impl<K: Hash + Eq> Throttle<K> {
    /// Allows each key once per `every`.
    pub fn new(every: Duration) -> Throttle<K> {
        Throttle {
            every,
            last: HashMap::new(),
        }
    }

    /// Whether `key` may log at `now` (its first time, or `every` after it last did); if so,
    /// `now` becomes its last time.
    pub fn allow(&mut self, key: K, now: Instant) -> bool {
        if self
            .last
            .get(&key)
            .is_some_and(|t| now.saturating_duration_since(*t) < self.every)
        {
            return false;
        }
        if self.last.len() >= PRUNE_ABOVE {
            let every = self.every;
            self.last
                .retain(|_, t| now.saturating_duration_since(*t) < every);
        }
        self.last.insert(key, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_interval_per_key() {
        let t0 = Instant::now();
        let minute = Duration::from_secs(60);
        let mut t = Throttle::new(minute);
        assert!(t.allow("a", t0));
        assert!(!t.allow("a", t0 + Duration::from_secs(1)));
        assert!(t.allow("b", t0 + Duration::from_secs(1)), "keys are apart");
        assert!(!t.allow("a", t0 + Duration::from_secs(59)));
        assert!(t.allow("a", t0 + minute));
        assert!(!t.allow("a", t0 + minute + Duration::from_secs(30)));
    }

    #[test]
    fn memory_stays_bounded_and_old_keys_log_again() {
        let t0 = Instant::now();
        let mut t = Throttle::new(Duration::from_secs(60));
        for i in 0..PRUNE_ABOVE {
            assert!(t.allow(i, t0));
        }
        let later = t0 + Duration::from_secs(61);
        assert!(t.allow(usize::MAX, later));
        assert!(t.last.len() <= 2, "{} keys kept", t.last.len());
        assert!(t.allow(0, later), "a forgotten key logs again");
    }
}
