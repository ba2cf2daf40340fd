//! A [`strata_core::Histogram`] as exposition samples: cumulative `_bucket{le}` (with their
//! exemplars), `_sum` and `_count` — one writer of histograms for the gateway, the simulator
//! and Strata's own `/metrics`.

use strata_core::Histogram;

use crate::{OwnedExemplar, OwnedSample};

/// How a finite bucket bound is spelled in `le`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeStyle {
    /// Python's client and the gateway: `1.0`, `0.25`.
    Decimal,
    /// Rust's metrics exporters: `1`, `0.25`.
    Integer,
}

impl LeStyle {
    /// `v` as an `le` label value (`+Inf` for infinity).
    pub fn format(self, v: f64) -> String {
        if v.is_infinite() {
            return "+Inf".to_string();
        }
        if v.fract() == 0.0 && v.abs() < 1e15 {
            return match self {
                LeStyle::Decimal => format!("{v:.1}"),
                LeStyle::Integer => format!("{}", v as i64),
            };
        }
        format!("{v}")
    }
}

/// The samples of one histogram series named `name` with `labels` (the `le` label is added
/// last), in exposition order.
pub fn histogram_samples(
    name: &str,
    labels: &[(String, String)],
    h: &Histogram,
    le: LeStyle,
) -> Vec<OwnedSample> {
    let bucket = format!("{name}_bucket");
    let mut out: Vec<OwnedSample> = h
        .buckets()
        .into_iter()
        .map(|b| {
            let mut l = labels.to_vec();
            l.push(("le".to_string(), le.format(b.le)));
            OwnedSample {
                name: bucket.clone(),
                labels: l,
                value: b.cumulative as f64,
                timestamp_ms: None,
                exemplar: b.exemplar.map(|e| OwnedExemplar {
                    labels: e.labels,
                    value: e.value,
                    timestamp: e.timestamp,
                }),
            }
        })
        .collect();
    for (suffix, value) in [("_sum", h.sum()), ("_count", h.count() as f64)] {
        out.push(OwnedSample {
            name: format!("{name}{suffix}"),
            labels: labels.to_vec(),
            value,
            timestamp_ms: None,
            exemplar: None,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_sum_and_count_in_order() {
        let h = Histogram::new(&[0.5, 1.0]);
        h.observe(0.2);
        h.observe(3.0);
        let s = histogram_samples("x", &[("job".into(), "a\"b".into())], &h, LeStyle::Decimal);
        let got: Vec<(String, String, f64)> = s
            .iter()
            .map(|s| {
                let le = s.labels.iter().find(|(k, _)| k == "le");
                (
                    s.name.clone(),
                    le.map_or(String::new(), |l| l.1.clone()),
                    s.value,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("x_bucket".into(), "0.5".into(), 1.0),
                ("x_bucket".into(), "1.0".into(), 1.0),
                ("x_bucket".into(), "+Inf".into(), 2.0),
                ("x_sum".into(), String::new(), 3.2),
                ("x_count".into(), String::new(), 2.0),
            ]
        );
        assert_eq!(LeStyle::Integer.format(5.0), "5");
    }
}
