//! Exemplar storage: the trace links (`trace_id`, `span_id`) that explain a histogram bucket,
//! kept so Grafana can draw them over a latency panel (`/api/v1/query_exemplars`).
//!
//! Like Prometheus's `--enable-feature=exemplar-storage`, exemplars live in one circular
//! buffer shared by every series ([`DEFAULT_EXEMPLARS_LIMIT`] entries unless configured,
//! Prometheus's `--storage.exemplars.exemplars-limit`): the newest exemplar overwrites the
//! oldest, whatever its series. Each series keeps its exemplars in time order: one equal to
//! the series' newest is a duplicate (a scrape re-exposes the same exemplar until a new
//! observation replaces it) and is skipped; an older one is refused and counted. Exemplars are
//! memory only; they do not survive a restart (Prometheus keeps them in the head block alone).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use promql_parser::label::Matcher;

use crate::labels::{Labels, METRIC_NAME};
use crate::store::index::matches;

/// How many exemplars are kept unless configured (Prometheus's default
/// `--storage.exemplars.exemplars-limit`).
pub const DEFAULT_EXEMPLARS_LIMIT: usize = 100_000;

/// OpenMetrics' limit on an exemplar's label names and values together, in characters;
/// Prometheus refuses longer ones too.
pub const MAX_EXEMPLAR_LABEL_CHARS: usize = 128;

/// One stored exemplar.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredExemplar {
    /// Its labels (`trace_id`, `span_id`).
    pub labels: Labels,
    /// The observed value.
    pub value: f64,
    /// When it was observed, ms since the epoch (the scrape time when the source gave none).
    pub t_ms: i64,
}

/// The exemplars of one series, oldest first (one element of `/api/v1/query_exemplars`).
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesExemplars {
    /// The series' labels, `__name__` included (`x_bucket{le="0.5",...}`).
    pub series: Labels,
    /// Its exemplars in the queried window, oldest first.
    pub exemplars: Vec<StoredExemplar>,
}

/// What [`Exemplars::add`] did with one exemplar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    /// Stored (possibly overwriting the oldest exemplar of any series).
    Stored,
    /// The same as the series' newest exemplar: skipped, as Prometheus does.
    Duplicate,
    /// Older than the series' newest exemplar: refused and counted.
    OutOfOrder,
    /// Labels longer than [`MAX_EXEMPLAR_LABEL_CHARS`]: refused and counted.
    TooLong,
    /// The series carries a per-request label (`request_id`...): refused and counted.
    ForbiddenSeries,
    /// Storage is off (limit 0): ignored.
    Disabled,
}

/// Counters of the exemplar buffer, for Strata's own `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExemplarStats {
    /// Exemplars held now.
    pub held: usize,
    /// Series with at least one exemplar held.
    pub series: usize,
    /// The buffer's capacity.
    pub limit: usize,
    /// Exemplars stored since start.
    pub appended_total: u64,
    /// Exemplars refused for being older than their series' newest.
    pub out_of_order_total: u64,
    /// Exemplars refused for labels over [`MAX_EXEMPLAR_LABEL_CHARS`] or on a series with a
    /// per-request label.
    pub invalid_total: u64,
}

/// The circular exemplar buffer; `Send + Sync`, every method takes `&self`.
#[derive(Debug)]
pub struct Exemplars {
    limit: usize,
    ring: Mutex<Ring>,
}

#[derive(Debug, Default)]
struct Ring {
    /// Oldest first; never longer than the limit.
    slots: VecDeque<(Labels, StoredExemplar)>,
    /// Per series: its newest exemplar and how many of its exemplars the ring holds (the
    /// entry goes when the last one is overwritten, so this map is bounded by the limit).
    newest: HashMap<Labels, (StoredExemplar, usize)>,
    stats: ExemplarStats,
}

impl Exemplars {
    /// A buffer holding at most `limit` exemplars (0 turns storage off).
    pub fn new(limit: usize) -> Exemplars {
        Exemplars {
            limit,
            ring: Mutex::new(Ring::default()),
        }
    }

    /// Adds `exemplar` to the series `name{labels}`, observed at its own timestamp or, when it
    /// has none, at `default_t_ms` (the scrape or feed time).
    pub fn add(
        &self,
        name: &str,
        labels: &[(String, String)],
        exemplar: &strata_core::Exemplar,
        default_t_ms: i64,
    ) -> AddOutcome {
        if self.limit == 0 {
            return AddOutcome::Disabled;
        }
        let mut ring = strata_core::sync::lock(&self.ring);
        let chars: usize = exemplar
            .labels
            .iter()
            .map(|(n, v)| n.chars().count() + v.chars().count())
            .sum();
        if chars > MAX_EXEMPLAR_LABEL_CHARS {
            ring.stats.invalid_total += 1;
            return AddOutcome::TooLong;
        }
        if labels
            .iter()
            .any(|(n, _)| strata_core::labels::forbidden(n).is_some())
        {
            ring.stats.invalid_total += 1;
            return AddOutcome::ForbiddenSeries;
        }
        let mut pairs = labels.to_vec();
        pairs.retain(|(n, _)| n != METRIC_NAME);
        pairs.push((METRIC_NAME.to_string(), name.to_string()));
        let series = Labels::new(pairs);
        let ex = StoredExemplar {
            labels: Labels::new(exemplar.labels.clone()),
            value: exemplar.value,
            t_ms: exemplar
                .timestamp
                .map_or(default_t_ms, |s| (s * 1000.0).round() as i64),
        };
        if let Some((last, _)) = ring.newest.get(&series) {
            if last.labels == ex.labels && same_value(last.value, ex.value) && last.t_ms == ex.t_ms
            {
                return AddOutcome::Duplicate;
            }
            if ex.t_ms <= last.t_ms {
                ring.stats.out_of_order_total += 1;
                return AddOutcome::OutOfOrder;
            }
        }
        if ring.slots.len() == self.limit
            && let Some((old, _)) = ring.slots.pop_front()
            && let Some(entry) = ring.newest.get_mut(&old)
        {
            entry.1 -= 1;
            if entry.1 == 0 {
                ring.newest.remove(&old);
            }
        }
        let held = ring.newest.get(&series).map_or(0, |(_, n)| *n);
        ring.newest.insert(series.clone(), (ex.clone(), held + 1));
        ring.slots.push_back((series, ex));
        ring.stats.appended_total += 1;
        AddOutcome::Stored
    }

    /// The exemplars in `[start_ms, end_ms]` of the series matching any of `selectors` (each
    /// a list of matchers that must all hold), grouped by series in label order, each
    /// series' exemplars oldest first.
    pub fn select(
        &self,
        selectors: &[Vec<Matcher>],
        start_ms: i64,
        end_ms: i64,
    ) -> Vec<SeriesExemplars> {
        let ring = strata_core::sync::lock(&self.ring);
        let mut verdict: HashMap<&Labels, bool> = HashMap::new();
        let mut out: BTreeMap<Labels, Vec<StoredExemplar>> = BTreeMap::new();
        for (series, ex) in &ring.slots {
            if ex.t_ms < start_ms || ex.t_ms > end_ms {
                continue;
            }
            let wanted = *verdict
                .entry(series)
                .or_insert_with(|| selectors.iter().any(|m| matches(series, m)));
            if wanted {
                out.entry(series.clone()).or_default().push(ex.clone());
            }
        }
        out.into_iter()
            .map(|(series, exemplars)| SeriesExemplars { series, exemplars })
            .collect()
    }

    /// The buffer's counters.
    pub fn stats(&self) -> ExemplarStats {
        let ring = strata_core::sync::lock(&self.ring);
        ExemplarStats {
            held: ring.slots.len(),
            series: ring.newest.len(),
            limit: self.limit,
            ..ring.stats
        }
    }
}

/// Values compare equal when both are NaN too (an exemplar re-exposed unchanged is a duplicate).
fn same_value(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || a == b
}

#[cfg(test)]
mod tests {
    use super::*;
    use promql_parser::label::MatchOp;

    fn ex(trace: &str, value: f64, t_s: f64) -> strata_core::Exemplar {
        strata_core::Exemplar {
            labels: vec![("trace_id".to_string(), trace.to_string())],
            value,
            timestamp: Some(t_s),
        }
    }

    fn le(v: &str) -> Vec<(String, String)> {
        vec![
            ("le".to_string(), v.to_string()),
            ("job".to_string(), "vllm".to_string()),
        ]
    }

    fn name_is(n: &str) -> Vec<Matcher> {
        vec![Matcher::new(MatchOp::Equal, METRIC_NAME, n)]
    }

    #[test]
    fn duplicates_are_skipped_and_older_exemplars_refused() {
        let e = Exemplars::new(10);
        assert_eq!(
            e.add("x_bucket", &le("1"), &ex("a", 0.5, 10.0), 0),
            AddOutcome::Stored
        );
        assert_eq!(
            e.add("x_bucket", &le("1"), &ex("a", 0.5, 10.0), 0),
            AddOutcome::Duplicate
        );
        assert_eq!(
            e.add("x_bucket", &le("1"), &ex("b", 0.7, 9.0), 0),
            AddOutcome::OutOfOrder
        );
        // Another series has its own order.
        assert_eq!(
            e.add("x_bucket", &le("2"), &ex("c", 1.5, 9.0), 0),
            AddOutcome::Stored
        );
        let s = e.stats();
        assert_eq!(
            (s.held, s.series, s.appended_total, s.out_of_order_total),
            (2, 2, 2, 1)
        );
    }

    #[test]
    fn a_full_buffer_overwrites_the_oldest_exemplar_of_any_series() {
        let e = Exemplars::new(3);
        e.add("x_bucket", &le("1"), &ex("a", 0.5, 1.0), 0);
        for (i, t) in [2.0, 3.0, 4.0].into_iter().enumerate() {
            e.add("x_bucket", &le("2"), &ex(&format!("b{i}"), 1.5, t), 0);
        }
        let got = e.select(&[name_is("x_bucket")], i64::MIN, i64::MAX);
        assert_eq!(got.len(), 1, "series le=1 lost its only exemplar: {got:?}");
        let traces: Vec<_> = got[0]
            .exemplars
            .iter()
            .map(|x| x.labels.get("trace_id").unwrap_or_default().to_string())
            .collect();
        assert_eq!(traces, ["b0", "b1", "b2"]);
        assert_eq!(e.stats().series, 1, "the evicted series' entry went too");
    }

    #[test]
    fn select_filters_by_matchers_and_time_and_fills_missing_timestamps() {
        let e = Exemplars::new(10);
        e.add("x_bucket", &le("1"), &ex("a", 0.5, 10.0), 0);
        e.add("y_bucket", &le("1"), &ex("b", 0.5, 10.0), 0);
        let untimed = strata_core::Exemplar {
            timestamp: None,
            ..ex("c", 0.6, 0.0)
        };
        e.add("x_bucket", &le("1"), &untimed, 20_500);
        let got = e.select(&[name_is("x_bucket")], 15_000, 30_000);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].series.get("le"), Some("1"));
        assert_eq!(got[0].series.name(), "x_bucket");
        assert_eq!(got[0].exemplars.len(), 1);
        assert_eq!(got[0].exemplars[0].t_ms, 20_500);
        let both = e.select(&[name_is("x_bucket"), name_is("y_bucket")], 0, 30_000);
        assert_eq!(both.len(), 2);
    }

    #[test]
    fn long_labels_per_request_series_and_a_zero_limit_are_refused() {
        let e = Exemplars::new(10);
        let long = ex(&"t".repeat(200), 1.0, 1.0);
        assert_eq!(e.add("x_bucket", &le("1"), &long, 0), AddOutcome::TooLong);
        let mut bad = le("1");
        bad.push(("request_id".to_string(), "r".to_string()));
        assert_eq!(
            e.add("x_bucket", &bad, &ex("a", 1.0, 1.0), 0),
            AddOutcome::ForbiddenSeries
        );
        assert_eq!(e.stats().invalid_total, 2);
        let off = Exemplars::new(0);
        assert_eq!(
            off.add("x_bucket", &le("1"), &ex("a", 1.0, 1.0), 0),
            AddOutcome::Disabled
        );
        assert!(
            off.select(&[name_is("x_bucket")], i64::MIN, i64::MAX)
                .is_empty()
        );
    }
}
