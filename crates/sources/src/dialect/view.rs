//! The canonical view: a scrape's native samples seen through its dialect table.
//!
//! This is what `strata scrape` prints: for every canonical signal of the dialect's layer,
//! either the mapped series, or "not in this scrape", or the table's reason why the engine
//! does not expose it.

use std::collections::BTreeMap;

use super::detect::Detected;
use super::table::MapRow;
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
    /// `(signal, what to know)` for exposed signals whose native source means something
    /// narrower or counts in other units (the table row's `note`); print next to the signal.
    pub caveats: Vec<(String, String)>,
    /// Incident signals (`incident = true`) this scrape lacks.
    pub incident_gaps: Vec<String>,
    /// Lines for the operator about the whole scrape (how to enable the missing incident
    /// signals); print after the signals.
    pub notes: Vec<String>,
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

    /// What to know about an exposed signal's value, if its source row says so.
    pub fn caveat(&self, canonical: &str) -> Option<&str> {
        self.caveats
            .iter()
            .find(|(n, _)| n == canonical)
            .map(|(_, c)| c.as_str())
    }
}

/// Builds the canonical view of `points` (native samples of one target) for `detected`.
///
/// Rows for one signal combine series by series, as PromQL's `or` does in the generated
/// rules: a later row supplies only the label sets an earlier row did not (a MIG slice
/// without `DCGM_FI_DEV_GPU_UTIL` gets its utilisation from the graphics engine activity).
pub fn canonical_view(detected: Detected, points: &[Point]) -> CanonicalView {
    let table = detected.table;
    let mut caveats = Vec::new();
    let signals: Vec<(String, SignalStatus)> = canonical()
        .layer(table.layer)
        .map(|signal| {
            let mut looked_for = Vec::new();
            let mut used = Vec::new();
            let mut series: Vec<CanonicalSeries> = Vec::new();
            let mut notes = Vec::new();
            for row in table.maps_for(&signal.name, detected.version) {
                looked_for.push(row.describe());
                let fresh: Vec<CanonicalSeries> = series_of(signal, row, detected, points)
                    .into_iter()
                    .filter(|s| series.iter().all(|have| have.labels != s.labels))
                    .collect();
                if !fresh.is_empty() {
                    used.push(row.describe());
                    notes.extend(row.note.clone());
                    series.extend(fresh);
                }
            }
            if !notes.is_empty() {
                caveats.push((signal.name.clone(), notes.join("; ")));
            }
            let status = if !series.is_empty() {
                SignalStatus::Exposed {
                    native: used.join(" or "),
                    series,
                }
            } else {
                match table.absent_for(&signal.name, detected.version) {
                    Some(a) if looked_for.is_empty() => {
                        SignalStatus::NotExposed { why: a.why.clone() }
                    }
                    _ if looked_for.is_empty() => SignalStatus::NotExposed {
                        why: format!("the {} table has no mapping for it", table.title),
                    },
                    _ => SignalStatus::NotInScrape { looked_for },
                }
            };
            (signal.name.clone(), status)
        })
        .collect();
    let incident_gaps: Vec<String> = signals
        .iter()
        .filter(|(name, status)| {
            !matches!(status, SignalStatus::Exposed { .. })
                && canonical().signal(name).is_some_and(|s| s.incident)
        })
        .map(|(name, _)| name.clone())
        .collect();
    let notes = match (&table.incident_fix, incident_gaps.is_empty()) {
        (Some(fix), false) => vec![format!(
            "{} of {} incident signals missing ({}): {fix}",
            incident_gaps.len(),
            canonical()
                .layer(table.layer)
                .filter(|s| s.incident)
                .count(),
            incident_gaps.join(", ")
        )],
        _ => Vec::new(),
    };
    CanonicalView {
        dialect: table.name.clone(),
        title: table.title.clone(),
        version: detected.version.to_string(),
        signals,
        caveats,
        incident_gaps,
        notes,
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
        caveats: Vec::new(),
        incident_gaps: Vec::new(),
        notes: Vec::new(),
    }
}

/// Native labels renamed to canonical ones, `engine` added for engine signals.
fn canonical_labels(detected: Detected, labels: &LabelSet) -> LabelSet {
    let mut out: LabelSet = labels
        .iter()
        .map(|(k, v)| (detected.table.canonical_label(k).to_string(), v.clone()))
        .collect();
    if detected.table.layer == Layer::Engine && !out.iter().any(|(k, _)| k == "engine") {
        out.push(("engine".to_string(), detected.table.name.clone()));
    }
    out.sort_unstable();
    out
}

/// One native sample family's values by native label set, after the row's filters.
fn selected(points: &[Point], name: &str, row: &MapRow) -> BTreeMap<LabelSet, f64> {
    points
        .iter()
        .filter(|p| p.name == name && !expo::is_stale_nan(p.value) && row.selects(&p.labels))
        .map(|p| (p.labels.clone(), p.value))
        .collect()
}

/// Collapses the table's replicated labels by `max`, then its split labels by `sum` (by
/// `max` for ratio gauges), as the generated rules do with `max/sum without (...)`.
fn collapse(
    detected: Detected,
    ratio: bool,
    values: BTreeMap<LabelSet, f64>,
) -> BTreeMap<LabelSet, f64> {
    let stage = |values: BTreeMap<LabelSet, f64>, replicated: bool| {
        let mut out: BTreeMap<LabelSet, f64> = BTreeMap::new();
        for (labels, v) in values {
            let key: LabelSet = labels
                .into_iter()
                .filter(|(k, _)| detected.table.collapses(k) != Some(replicated))
                .collect();
            out.entry(key)
                .and_modify(|acc| {
                    *acc = if replicated || ratio {
                        acc.max(v)
                    } else {
                        *acc + v
                    }
                })
                .or_insert(v);
        }
        out
    };
    stage(stage(values, true), false)
}

/// The series one table row gives for `signal`, in canonical labels and units.
fn series_of(
    signal: &CanonicalSignal,
    row: &MapRow,
    detected: Detected,
    points: &[Point],
) -> Vec<CanonicalSeries> {
    let ratio = signal.unit == "ratio";
    if signal.signal_type != SignalType::Histogram {
        let mut values = selected(points, &row.native, row);
        for plus in &row.plus {
            let other = selected(points, plus, row);
            values.retain(|labels, v| match other.get(labels) {
                Some(o) => {
                    *v += o;
                    true
                }
                None => false,
            });
        }
        if let Some(per) = &row.per {
            let other = selected(points, per, row);
            values.retain(|labels, v| match other.get(labels) {
                Some(&o) if o != 0.0 => {
                    *v /= o;
                    true
                }
                _ => false,
            });
        }
        return collapse(detected, ratio, values)
            .into_iter()
            .map(|(labels, v)| CanonicalSeries {
                labels: canonical_labels(detected, &labels),
                value: SeriesValue::Scalar {
                    value: v * row.scale,
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
    let native = &row.native;
    let family = |suffix: &str| {
        collapse(
            detected,
            false,
            selected(points, &format!("{native}{suffix}"), row),
        )
    };
    let without_le = |labels: &LabelSet| -> LabelSet {
        labels.iter().filter(|(k, _)| k != "le").cloned().collect()
    };
    let mut groups: BTreeMap<LabelSet, Parts> = BTreeMap::new();
    for (labels, v) in family("_bucket") {
        let Some(le) = labels
            .iter()
            .find(|(k, _)| k == "le")
            .and_then(|(_, le)| parse_le(le))
        else {
            continue;
        };
        groups
            .entry(canonical_labels(detected, &without_le(&labels)))
            .or_default()
            .buckets
            .push((le, v));
    }
    for (labels, v) in family("_sum") {
        groups
            .entry(canonical_labels(detected, &labels))
            .or_default()
            .sum = v;
    }
    for (labels, v) in family("_count") {
        groups
            .entry(canonical_labels(detected, &labels))
            .or_default()
            .count = v;
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
        assert_eq!(view.version, "0.10-0.11");
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

#[cfg(test)]
mod combine_tests {
    use super::*;
    use crate::dialect::detect::detect;

    fn pt(name: &str, labels: &[(&str, &str)], v: f64) -> Point {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Point::new(name, labels, v, 0)
    }

    fn scalars(view: &CanonicalView, signal: &str) -> Vec<(LabelSet, f64)> {
        match view.status(signal) {
            Some(SignalStatus::Exposed { series, .. }) => series
                .iter()
                .map(|s| match s.value {
                    SeriesValue::Scalar { value } => (s.labels.clone(), value),
                    SeriesValue::Histogram { count, .. } => (s.labels.clone(), count),
                })
                .collect(),
            other => panic!("{signal}: {other:?}"),
        }
    }

    #[test]
    fn ranks_collapse_by_max_and_splits_by_sum() {
        // Two TP ranks report the same batch (copies), two DP ranks their own work, and
        // a priority breakdown sits next to the total.
        let mut points = Vec::new();
        for (dp, running) in [("0", 3.0), ("1", 4.0)] {
            for tp in ["0", "1"] {
                let l = [
                    ("model_name", "m"),
                    ("tp_rank", tp),
                    ("dp_rank", dp),
                    ("engine_type", "unified"),
                ];
                points.push(pt("sglang:num_running_reqs", &l, running));
                points.push(pt(
                    "sglang:token_usage",
                    &l,
                    if dp == "0" { 0.5 } else { 0.9 },
                ));
                points.push(pt("sglang:num_retracted_requests_total", &l, 2.0));
            }
            let p = [
                ("model_name", "m"),
                ("tp_rank", "0"),
                ("dp_rank", dp),
                ("priority", "1"),
            ];
            points.push(pt("sglang:num_running_reqs", &p, 100.0));
        }
        for streaming in ["true", "false"] {
            points.push(pt(
                "sglang:prompt_tokens_total",
                &[("model_name", "m"), ("is_streaming", streaming)],
                10.0,
            ));
        }
        let d = detect(points.iter().map(|p| p.name.as_str())).expect("sglang");
        assert_eq!(d.version, "0.5.10+");
        let v = canonical_view(d, &points);
        let m = vec![
            ("engine".to_string(), "sglang".to_string()),
            ("model".to_string(), "m".to_string()),
        ];
        assert_eq!(scalars(&v, "llm:requests_running"), vec![(m.clone(), 7.0)]);
        assert_eq!(
            scalars(&v, "llm:kv_cache_usage_ratio"),
            vec![(m.clone(), 0.9)],
            "ratio: the fullest DP rank"
        );
        assert_eq!(
            scalars(&v, "llm:preemptions_total"),
            vec![(m.clone(), 4.0)],
            "2 per DP rank, TP copies once"
        );
        assert_eq!(scalars(&v, "llm:prompt_tokens_total"), vec![(m, 20.0)]);
    }

    #[test]
    fn rows_combine_series_by_series_and_notes_follow_the_row_used() {
        let gpu = |id: &'static str| vec![("gpu", "0"), ("UUID", "GPU-1"), ("GPU_I_ID", id)];
        let points = vec![
            pt(
                "DCGM_FI_DEV_GPU_UTIL",
                &[("gpu", "1"), ("UUID", "GPU-2")],
                40.0,
            ),
            pt(
                "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
                &[("gpu", "1"), ("UUID", "GPU-2")],
                0.1,
            ),
            pt("DCGM_FI_PROF_GR_ENGINE_ACTIVE", &gpu("1"), 0.25),
            pt(
                "DCGM_FI_DEV_FB_USED",
                &[
                    ("gpu", "1"),
                    ("UUID", "GPU-2"),
                    ("hostname", "n1"),
                    ("pod_name", "p"),
                ],
                1.0,
            ),
        ];
        let d = detect(points.iter().map(|p| p.name.as_str())).expect("dcgm");
        let v = canonical_view(d, &points);
        let util = scalars(&v, "gpu:util_ratio");
        assert_eq!(util.len(), 2, "{util:?}");
        assert!(
            util.iter()
                .any(|(l, x)| *x == 0.4 && !l.iter().any(|(k, _)| k == "GPU_I_ID"))
        );
        assert!(
            util.iter()
                .any(|(l, x)| *x == 0.25 && l.contains(&("GPU_I_ID".into(), "1".into())))
        );
        assert!(
            v.caveat("gpu:util_ratio")
                .is_some_and(|c| c.contains("MIG"))
        );
        let fb = scalars(&v, "gpu:fb_used_bytes");
        assert!(
            fb[0].0.contains(&("Hostname".into(), "n1".into())),
            "{fb:?}"
        );
        assert!(fb[0].0.contains(&("pod".into(), "p".into())), "{fb:?}");
        assert!(v.incident_gaps.contains(&"gpu:sm_active_ratio".to_string()));
        assert!(!v.incident_gaps.contains(&"gpu:util_ratio".to_string()));
        assert!(!v.incident_gaps.contains(&"gpu:fb_used_bytes".to_string()));
        assert!(
            v.notes[0].contains("strata generate dcgm-counters"),
            "{:?}",
            v.notes
        );
    }

    #[test]
    fn sums_ratios_and_filters() {
        let points = [
            pt("llamacpp:prompt_tokens_total", &[], 30.0),
            pt("llamacpp:prompt_tokens_cached_total", &[], 70.0),
            pt("tgi_batch_current_max_tokens", &[], 2000.0),
            pt("tgi_batch_max_total_tokens", &[], 8000.0),
            pt("tgi_queue_size", &[], 1.0),
            pt("tgi_request_failure", &[("err", "overloaded")], 5.0),
            pt("tgi_request_failure", &[("err", "generation")], 2.0),
        ];
        let llama: Vec<Point> = points[..2].to_vec();
        let d = detect(llama.iter().map(|p| p.name.as_str())).expect("llamacpp");
        let v = canonical_view(d, &llama);
        assert_eq!(scalars(&v, "llm:prompt_tokens_total")[0].1, 100.0);
        assert_eq!(v.caveat("llm:prompt_tokens_total"), None);
        let table: &'static crate::dialect::DialectTable = d.table;
        let before = Detected {
            table,
            version: crate::dialect::version_of(table, ["llamacpp:prompt_tokens_total"]),
        };
        assert_eq!(before.version, "before #26920");
        let old = canonical_view(before, &llama[..1]);
        assert_eq!(scalars(&old, "llm:prompt_tokens_total")[0].1, 30.0);
        assert!(
            old.caveat("llm:prompt_tokens_total")
                .is_some_and(|c| c.contains("left out"))
        );
        let tgi: Vec<Point> = points[2..].to_vec();
        let d = detect(tgi.iter().map(|p| p.name.as_str())).expect("tgi");
        let v = canonical_view(d, &tgi);
        assert_eq!(scalars(&v, "llm:kv_cache_usage_ratio")[0].1, 0.25);
        assert_eq!(scalars(&v, "llm:admission_rejections_total")[0].1, 5.0);
        let failed = scalars(&v, "llm:requests_failed_total");
        assert_eq!(failed.len(), 1);
        assert!(
            failed[0]
                .0
                .contains(&("reason".into(), "generation".into()))
        );
    }
}
