//! The canonical view: a scrape's native samples seen through its dialect table.
//!
//! This is what `strata scrape` prints: for every canonical signal of the dialect's layer,
//! either the mapped series, or "not in this scrape", or the table's reason why the engine
//! does not expose it.

use std::collections::BTreeMap;

use super::detect::Detected;
use super::vocabulary::{CanonicalSignal, Layer, SignalType, canonical};
use crate::point::{LabelSet, Point};

/// What a canonical signal looks like in one scrape.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SignalStatus {
    /// Mapped and present.
    Exposed {
        /// The native name it came from.
        native: String,
        /// One entry per label set.
        series: Vec<CanonicalSeries>,
    },
    /// The table maps it, but the body did not contain the native metric.
    NotInScrape {
        /// Native names that were looked for.
        looked_for: Vec<String>,
    },
    /// The engine does not expose it; the table says why.
    NotExposed {
        /// The table's reason and alternative.
        why: String,
    },
}

/// One canonical series: labels renamed, value in canonical units.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CanonicalSeries {
    /// Canonical labels (sorted), `engine` added for engine signals.
    pub labels: LabelSet,
    /// The value.
    #[serde(flatten)]
    pub value: SeriesValue,
}

/// A scalar or a histogram summary.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum SeriesValue {
    /// Gauge or counter value.
    Scalar {
        /// The value in canonical units.
        value: f64,
    },
    /// Histogram: count, sum and quantiles estimated from the buckets.
    Histogram {
        /// Observations.
        count: f64,
        /// Sum of observations.
        sum: f64,
        /// p50 from buckets (linear interpolation, as `histogram_quantile`).
        p50: Option<f64>,
        /// p99 from buckets.
        p99: Option<f64>,
    },
}

/// A scrape seen through its dialect.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CanonicalView {
    /// Dialect short name.
    pub dialect: String,
    /// Dialect display name.
    pub title: String,
    /// Detected version.
    pub version: String,
    /// Every canonical signal of the dialect's layer, in vocabulary order.
    pub signals: Vec<(String, SignalStatus)>,
}

impl CanonicalView {
    /// Signals exposed in this scrape.
    pub fn exposed(&self) -> usize {
        self.signals
            .iter()
            .filter(|(_, s)| matches!(s, SignalStatus::Exposed { .. }))
            .count()
    }

    /// The status of one canonical signal.
    pub fn status(&self, canonical: &str) -> Option<&SignalStatus> {
        self.signals
            .iter()
            .find(|(n, _)| n == canonical)
            .map(|(_, s)| s)
    }
}

/// Builds the canonical view of `points` (native samples of one target) for `detected`.
pub fn canonical_view(detected: Detected, points: &[Point]) -> CanonicalView {
    let table = detected.table;
    let signals = canonical()
        .layer(table.layer)
        .map(|signal| {
            let mut looked_for = Vec::new();
            let mut status = None;
            for row in table.maps_for(&signal.name, detected.version) {
                looked_for.push(row.native.clone());
                let series = series_of(signal, &row.native, row.scale, detected, points);
                if !series.is_empty() {
                    status = Some(SignalStatus::Exposed {
                        native: row.native.clone(),
                        series,
                    });
                    break;
                }
            }
            let status =
                status.unwrap_or_else(|| match table.absent_for(&signal.name, detected.version) {
                    Some(a) if looked_for.is_empty() => {
                        SignalStatus::NotExposed { why: a.why.clone() }
                    }
                    _ if looked_for.is_empty() => SignalStatus::NotExposed {
                        why: format!("the {} table has no mapping for it", table.title),
                    },
                    _ => SignalStatus::NotInScrape { looked_for },
                });
            (signal.name.clone(), status)
        })
        .collect();
    CanonicalView {
        dialect: table.name.clone(),
        title: table.title.clone(),
        version: detected.version.to_string(),
        signals,
    }
}

/// The view of points that are canonical already (the NVML collector emits `gpu:*` names):
/// every signal of `layer` is either present or explained by `missing(signal name)`.
pub fn direct_view(
    name: &str,
    title: &str,
    layer: Layer,
    points: &[Point],
    missing: impl Fn(&str) -> String,
) -> CanonicalView {
    let signals = canonical()
        .layer(layer)
        .map(|signal| {
            let series: Vec<CanonicalSeries> = points
                .iter()
                .filter(|p| p.name == signal.name && !expo::is_stale_nan(p.value))
                .map(|p| CanonicalSeries {
                    labels: p.labels.clone(),
                    value: SeriesValue::Scalar { value: p.value },
                })
                .collect();
            let status = if series.is_empty() {
                SignalStatus::NotExposed {
                    why: missing(&signal.name),
                }
            } else {
                SignalStatus::Exposed {
                    native: title.to_string(),
                    series,
                }
            };
            (signal.name.clone(), status)
        })
        .collect();
    CanonicalView {
        dialect: name.to_string(),
        title: title.to_string(),
        version: String::new(),
        signals,
    }
}

fn canonical_labels(detected: Detected, labels: &LabelSet, skip: &str) -> LabelSet {
    let mut out: LabelSet = labels
        .iter()
        .filter(|(k, _)| k != skip)
        .map(|(k, v)| (detected.table.canonical_label(k).to_string(), v.clone()))
        .collect();
    if detected.table.layer == Layer::Engine && !out.iter().any(|(k, _)| k == "engine") {
        out.push(("engine".to_string(), detected.table.name.clone()));
    }
    out.sort_unstable();
    out
}

fn series_of(
    signal: &CanonicalSignal,
    native: &str,
    scale: f64,
    detected: Detected,
    points: &[Point],
) -> Vec<CanonicalSeries> {
    let live = |p: &&Point| !expo::is_stale_nan(p.value);
    if signal.signal_type != SignalType::Histogram {
        return points
            .iter()
            .filter(live)
            .filter(|p| p.name == native)
            .map(|p| CanonicalSeries {
                labels: canonical_labels(detected, &p.labels, ""),
                value: SeriesValue::Scalar {
                    value: p.value * scale,
                },
            })
            .collect();
    }
    #[derive(Default)]
    struct Parts {
        buckets: Vec<(f64, f64)>,
        sum: f64,
        count: f64,
    }
    let (bucket, sum, count) = (
        format!("{native}_bucket"),
        format!("{native}_sum"),
        format!("{native}_count"),
    );
    let mut groups: BTreeMap<LabelSet, Parts> = BTreeMap::new();
    for p in points.iter().filter(live) {
        if p.name == bucket {
            let Some(le) = p.label("le").and_then(parse_le) else {
                continue;
            };
            let key = canonical_labels(detected, &p.labels, "le");
            groups.entry(key).or_default().buckets.push((le, p.value));
        } else if p.name == sum || p.name == count {
            let key = canonical_labels(detected, &p.labels, "");
            let parts = groups.entry(key).or_default();
            if p.name == sum {
                parts.sum = p.value;
            } else {
                parts.count = p.value;
            }
        }
    }
    groups
        .into_iter()
        .map(|(labels, mut parts)| {
            parts.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            CanonicalSeries {
                labels,
                value: SeriesValue::Histogram {
                    count: parts.count,
                    sum: parts.sum,
                    p50: bucket_quantile(0.5, &parts.buckets),
                    p99: bucket_quantile(0.99, &parts.buckets),
                },
            }
        })
        .collect()
}

fn parse_le(le: &str) -> Option<f64> {
    match le {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        _ => le.parse().ok(),
    }
}

/// Quantile `q` of cumulative buckets `(upper bound, count)` sorted by bound, interpolated
/// linearly inside the bucket as Prometheus' `histogram_quantile` does (the lowest bucket
/// starts at 0; a quantile in the `+Inf` bucket is the highest finite bound).
pub fn bucket_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let &(last_le, total) = buckets.last()?;
    if !last_le.is_infinite() || total <= 0.0 || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let rank = q * total;
    let i = buckets.iter().position(|&(_, c)| c >= rank)?;
    if i == buckets.len() - 1 {
        return buckets.len().checked_sub(2).map(|j| buckets[j].0);
    }
    let (upper, count) = buckets[i];
    let (lower, below) = if i == 0 { (0.0, 0.0) } else { buckets[i - 1] };
    if count == below {
        return Some(upper);
    }
    Some(lower + (upper - lower) * (rank - below) / (count - below))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::detect::detect;

    fn pt(name: &str, labels: &[(&str, &str)], v: f64) -> Point {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Point::new(name, labels, v, 0)
    }

    #[test]
    fn quantile_interpolates_like_prometheus() {
        let b = [
            (0.1, 10.0),
            (0.5, 60.0),
            (1.0, 100.0),
            (f64::INFINITY, 100.0),
        ];
        // rank 50 falls in (0.1, 0.5]: 0.1 + 0.4 * (50-10)/(60-10) = 0.42
        assert!((bucket_quantile(0.5, &b).expect("q") - 0.42).abs() < 1e-12);
        // rank 99 in (0.5, 1.0]: 0.5 + 0.5 * 39/40
        assert!((bucket_quantile(0.99, &b).expect("q") - 0.9875).abs() < 1e-12);
        assert_eq!(bucket_quantile(0.5, &[(1.0, 5.0)]), None, "no +Inf bucket");
        assert_eq!(bucket_quantile(0.5, &[(f64::INFINITY, 0.0)]), None, "empty");
        let tail = [(1.0, 1.0), (f64::INFINITY, 10.0)];
        assert_eq!(bucket_quantile(0.99, &tail), Some(1.0));
    }

    #[test]
    fn maps_scales_renames_and_explains() {
        let points = vec![
            pt(
                "vllm:num_requests_running",
                &[("model_name", "m"), ("engine", "0")],
                7.0,
            ),
            pt("vllm:kv_cache_usage_perc", &[("model_name", "m")], 0.5),
            pt(
                "vllm:request_success_total",
                &[("model_name", "m"), ("finished_reason", "length")],
                3.0,
            ),
            pt(
                "vllm:time_to_first_token_seconds_bucket",
                &[("model_name", "m"), ("le", "0.1")],
                4.0,
            ),
            pt(
                "vllm:time_to_first_token_seconds_bucket",
                &[("model_name", "m"), ("le", "+Inf")],
                8.0,
            ),
            pt(
                "vllm:time_to_first_token_seconds_sum",
                &[("model_name", "m")],
                2.0,
            ),
            pt(
                "vllm:time_to_first_token_seconds_count",
                &[("model_name", "m")],
                8.0,
            ),
        ];
        let d = detect(points.iter().map(|p| p.name.as_str())).expect("vllm");
        let view = canonical_view(d, &points);
        assert_eq!(view.version, "v1");
        let Some(SignalStatus::Exposed { series, .. }) = view.status("llm:requests_running") else {
            panic!("running not exposed: {view:?}");
        };
        assert_eq!(
            series[0].labels,
            vec![
                ("engine".to_string(), "vllm".to_string()),
                ("engine_index".to_string(), "0".to_string()),
                ("model".to_string(), "m".to_string()),
            ]
        );
        let Some(SignalStatus::Exposed { series, .. }) = view.status("llm:requests_finished_total")
        else {
            panic!("finished not exposed");
        };
        assert!(
            series[0]
                .labels
                .contains(&("finish_reason".into(), "length".into()))
        );
        let Some(SignalStatus::Exposed { series, .. }) = view.status("llm:ttft_seconds") else {
            panic!("ttft not exposed");
        };
        let SeriesValue::Histogram {
            count, sum, p50, ..
        } = series[0].value
        else {
            panic!("not a histogram");
        };
        assert_eq!((count, sum), (8.0, 2.0));
        assert!((p50.expect("p50") - 0.1).abs() < 1e-12);
        assert!(matches!(
            view.status("llm:requests_swapped"),
            Some(SignalStatus::NotExposed { .. })
        ));
        assert!(matches!(
            view.status("llm:preemptions_total"),
            Some(SignalStatus::NotInScrape { .. })
        ));
    }

    #[test]
    fn dcgm_units_and_mig_slices_stay_apart() {
        let slice = |id: &str, used: f64| {
            pt(
                "DCGM_FI_DEV_FB_USED",
                &[("gpu", "0"), ("UUID", "GPU-1"), ("GPU_I_ID", id)],
                used,
            )
        };
        let points = vec![
            slice("1", 1.0),
            slice("2", 2.0),
            pt("DCGM_FI_DEV_GPU_UTIL", &[("gpu", "0")], 50.0),
        ];
        let d = detect(points.iter().map(|p| p.name.as_str())).expect("dcgm");
        let view = canonical_view(d, &points);
        let Some(SignalStatus::Exposed { series, .. }) = view.status("gpu:fb_used_bytes") else {
            panic!("fb not exposed");
        };
        assert_eq!(series.len(), 2, "MIG slices merged");
        assert!(series.iter().any(|s| s.value
            == SeriesValue::Scalar {
                value: 2.0 * 1048576.0
            }));
        assert!(
            series[0]
                .labels
                .iter()
                .any(|(k, v)| k == "gpu_uuid" && v == "GPU-1")
        );
        let Some(SignalStatus::Exposed { series, .. }) = view.status("gpu:util_ratio") else {
            panic!("util not exposed");
        };
        assert_eq!(series[0].value, SeriesValue::Scalar { value: 0.5 });
    }
}
