//! No ghosts after a restart: the series restored from the snapshot and write-ahead log
//! were last written by a process that is gone, and no target of this one has answered
//! yet. Prometheus's instant lookback would show their last values as current for five
//! minutes (dead instances with their last queue and latency). Strata ends each of them
//! with a staleness marker at restore time instead — what Prometheus's own scrape loop
//! writes when a target disappears. A target that still exists resumes its series at its
//! first scrape; one that is gone stays ended. History before the restart is untouched.

use tsdb::{SampleRef, Store, is_stale};

/// How far back a restored series' last sample may lie and still be returned by an
/// instant query (the lookback, with margin): older ones need no marker.
const LOOKBACK_MS: i64 = 15 * 60 * 1000;

/// Ends every series of `store` that has a sample in the lookback before `now_ms` and is
/// not ended already, with a staleness marker at `now_ms`. Returns how many it ended.
pub(crate) fn end_restored_series(store: &Store, now_ms: i64) -> usize {
    let live: Vec<(String, Vec<(String, String)>)> = store
        .select(&[], now_ms - LOOKBACK_MS, now_ms)
        .into_iter()
        .filter(|(_, samples)| {
            samples
                .last()
                .is_some_and(|(t, v)| *t < now_ms && !is_stale(*v))
        })
        .map(|(labels, _)| {
            let name = labels.get("__name__").unwrap_or_default().to_string();
            let rest = labels
                .iter()
                .filter(|(k, _)| *k != "__name__")
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            (name, rest)
        })
        .collect();
    let stale = f64::from_bits(tsdb::STALE_NAN_BITS);
    let report = store.append(
        "restore",
        live.iter().map(|(name, labels)| SampleRef {
            name,
            labels,
            t_ms: now_ms,
            value: stale,
        }),
    );
    report.appended
}

#[cfg(test)]
mod tests {
    use super::*;
    use tsdb::StoreConfig;

    fn sample<'a>(name: &'a str, labels: &'a [(String, String)], t_ms: i64) -> SampleRef<'a> {
        SampleRef {
            name,
            labels,
            t_ms,
            value: 3.0,
        }
    }

    #[test]
    fn restored_series_end_at_restore_and_resume_when_their_target_answers() {
        let (store, _) = Store::open(StoreConfig::default());
        let dead = vec![("instance".to_string(), "dead:8000".to_string())];
        let back = vec![("instance".to_string(), "back:8000".to_string())];
        let old = vec![("instance".to_string(), "old:8000".to_string())];
        let now = 10_000_000;
        store.append(
            "t",
            [
                sample("llm_waiting", &dead, now - 30_000),
                sample("llm_waiting", &back, now - 30_000),
                sample("llm_waiting", &old, now - LOOKBACK_MS - 1),
            ],
        );
        assert_eq!(
            end_restored_series(&store, now),
            2,
            "dead and back, not old"
        );
        assert_eq!(end_restored_series(&store, now + 1), 0, "ended once");
        store.append("t", [sample("llm_waiting", &back, now + 10_000)]);
        let last = |labels: &[(String, String)]| {
            store
                .select(&[], now - LOOKBACK_MS, now + 20_000)
                .into_iter()
                .find(|(l, _)| l.get("instance") == labels.first().map(|p| p.1.as_str()))
                .and_then(|(_, s)| s.last().copied())
        };
        let (t, v) = last(&dead).expect("dead series");
        assert!(
            t == now && is_stale(v),
            "the dead instance ended at restore"
        );
        assert_eq!(
            last(&back),
            Some((now + 10_000, 3.0)),
            "resumed at its scrape"
        );
    }
}
