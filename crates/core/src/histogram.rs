//! One cumulative histogram for every crate that measures durations (the gateway's TTFT and
//! ITL, the simulator's engine histograms, Strata's own scrape and rule timings): fixed upper
//! bounds, lock-free counts, and one exemplar slot per bucket (the last trace that landed
//! there), as OpenMetrics exposes them.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// A sample's trace link: its labels (`trace_id`, `span_id`), value and time.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    /// Exemplar labels, e.g. `trace_id` and `span_id`.
    pub labels: Vec<(String, String)>,
    /// The observed value.
    pub value: f64,
    /// Unix seconds, when known.
    pub timestamp: Option<f64>,
}

/// One bucket as exposed: its upper bound (`f64::INFINITY` for `+Inf`), the cumulative count
/// and its exemplar.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    /// Upper bound (`le`).
    pub le: f64,
    /// Observations at or below `le`.
    pub cumulative: u64,
    /// The last exemplar put on this bucket.
    pub exemplar: Option<Exemplar>,
}

/// A cumulative histogram; share it by reference (`&self` everywhere).
#[derive(Debug)]
pub struct Histogram {
    bounds: Box<[f64]>,
    /// Per-bucket (not cumulative) counts; the last one is `+Inf`.
    counts: Box<[AtomicU64]>,
    /// The sum as `f64` bits, added with compare-and-swap.
    sum_bits: AtomicU64,
    exemplars: Mutex<Box<[Option<Exemplar>]>>,
}

impl Histogram {
    /// An empty histogram over `bounds` (ascending; `+Inf` is implied).
    pub fn new(bounds: &[f64]) -> Histogram {
        Histogram {
            bounds: bounds.into(),
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_bits: AtomicU64::new(0f64.to_bits()),
            exemplars: Mutex::new(vec![None; bounds.len() + 1].into_boxed_slice()),
        }
    }

    /// The upper bounds, `+Inf` excluded.
    pub fn bounds(&self) -> &[f64] {
        &self.bounds
    }

    fn bucket(&self, v: f64) -> usize {
        self.bounds.partition_point(|b| *b < v)
    }

    /// Counts one value.
    pub fn observe(&self, v: f64) {
        self.counts[self.bucket(v)].fetch_add(1, Ordering::Relaxed);
        let mut cur = self.sum_bits.load(Ordering::Relaxed);
        loop {
            let next = (f64::from_bits(cur) + v).to_bits();
            match self.sum_bits.compare_exchange_weak(
                cur,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Counts one duration, in seconds.
    pub fn observe_duration(&self, d: std::time::Duration) {
        self.observe(d.as_secs_f64());
    }

    /// Puts `exemplar` on the bucket `v` falls in (`v` observed already).
    pub fn exemplar(&self, v: f64, exemplar: Exemplar) {
        let i = self.bucket(v);
        crate::sync::lock(&self.exemplars)[i] = Some(exemplar);
    }

    /// Observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Sum of observations.
    pub fn sum(&self) -> f64 {
        f64::from_bits(self.sum_bits.load(Ordering::Relaxed))
    }

    /// Every bucket, cumulative, `+Inf` last.
    pub fn buckets(&self) -> Vec<Bucket> {
        let exemplars = crate::sync::lock(&self.exemplars).clone();
        let mut cumulative = 0;
        self.counts
            .iter()
            .zip(exemplars)
            .enumerate()
            .map(|(i, (c, exemplar))| {
                cumulative += c.load(Ordering::Relaxed);
                Bucket {
                    le: self.bounds.get(i).copied().unwrap_or(f64::INFINITY),
                    cumulative,
                    exemplar,
                }
            })
            .collect()
    }
}

impl Clone for Histogram {
    fn clone(&self) -> Histogram {
        Histogram {
            bounds: self.bounds.clone(),
            counts: self
                .counts
                .iter()
                .map(|c| AtomicU64::new(c.load(Ordering::Relaxed)))
                .collect(),
            sum_bits: AtomicU64::new(self.sum_bits.load(Ordering::Relaxed)),
            exemplars: Mutex::new(crate::sync::lock(&self.exemplars).clone()),
        }
    }
}

impl PartialEq for Histogram {
    fn eq(&self, other: &Histogram) -> bool {
        self.bounds == other.bounds
            && self.buckets() == other.buckets()
            && self.sum() == other.sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn buckets_are_cumulative_with_le_inclusive_and_inf_last() {
        let h = Histogram::new(&[0.1, 1.0]);
        for v in [0.05, 0.1, 0.5, 1.0, 7.0] {
            h.observe(v);
        }
        let b = h.buckets();
        let got: Vec<(f64, u64)> = b.iter().map(|b| (b.le, b.cumulative)).collect();
        assert_eq!(got, vec![(0.1, 2), (1.0, 4), (f64::INFINITY, 5)]);
        assert_eq!(h.count(), 5);
        assert!((h.sum() - 8.65).abs() < 1e-12);
    }

    #[test]
    fn exemplars_sit_on_the_bucket_of_their_value() {
        let h = Histogram::new(&[0.1, 1.0]);
        let ex = Exemplar {
            labels: vec![("trace_id".into(), "abc".into())],
            value: 0.5,
            timestamp: Some(1.0),
        };
        h.observe(0.5);
        h.exemplar(0.5, ex.clone());
        let b = h.buckets();
        assert_eq!(b[0].exemplar, None);
        assert_eq!(b[1].exemplar, Some(ex));
        assert_eq!(b[2].exemplar, None);
    }

    proptest! {
        #[test]
        fn counts_and_sums_match_the_observations(vs in proptest::collection::vec(0.0f64..100.0, 0..200)) {
            let h = Histogram::new(&[1.0, 10.0, 50.0]);
            for v in &vs { h.observe(*v); }
            let b = h.buckets();
            prop_assert_eq!(b.last().map(|b| b.cumulative), Some(vs.len() as u64));
            prop_assert!(b.windows(2).all(|w| w[0].cumulative <= w[1].cumulative));
            let below_10 = vs.iter().filter(|v| **v <= 10.0).count() as u64;
            prop_assert_eq!(b[1].cumulative, below_10);
            prop_assert!((h.sum() - vs.iter().sum::<f64>()).abs() < 1e-6);
        }
    }
}
