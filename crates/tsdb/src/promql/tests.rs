use std::sync::Arc;

use super::*;
use crate::store::{STALE_NAN_BITS, SampleRef, StoreConfig};

type Fixture<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [(i64, f64)]);

fn engine(series: &[Fixture<'_>]) -> Engine {
    let (store, _) = Store::open(StoreConfig::default());
    for (name, labels, points) in series {
        let ls: Vec<(String, String)> = labels
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        store.append(
            "test",
            points.iter().map(|(t, v)| SampleRef {
                name,
                labels: &ls,
                t_ms: *t,
                value: *v,
            }),
        );
    }
    Engine::new(Arc::new(store), EngineConfig::default())
}

fn values(v: Value) -> Vec<(String, f64)> {
    match v {
        Value::Vector(s) => s.into_iter().map(|s| (s.labels.to_string(), s.v)).collect(),
        Value::Scalar { v, .. } => vec![(String::new(), v)],
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn range_windows_are_left_open() {
    let e = engine(&[(
        "c",
        &[],
        &[(0, 0.0), (10_000, 1.0), (20_000, 2.0), (30_000, 3.0)],
    )]);
    // (0, 30s] holds 3 samples; a closed window [0, 30s] (Prometheus 2.x) would hold 4.
    assert_eq!(
        values(
            e.instant("count_over_time(c[30s])", 30_000)
                .unwrap_or(Value::Vector(vec![]))
        )[0]
        .1,
        3.0
    );
    assert_eq!(
        values(
            e.instant("count_over_time(c[30001ms])", 30_000)
                .unwrap_or(Value::Vector(vec![]))
        )[0]
        .1,
        4.0
    );
}

#[test]
fn lookback_and_staleness() {
    let stale = f64::from_bits(STALE_NAN_BITS);
    let e = engine(&[
        ("g", &[("a", "1")], &[(0, 5.0), (60_000, stale)]),
        ("h", &[], &[(0, 7.0)]),
    ]);
    assert_eq!(
        values(e.instant("g", 30_000).unwrap_or(Value::Vector(vec![]))).len(),
        1
    );
    assert!(
        values(e.instant("g", 61_000).unwrap_or(Value::Vector(vec![]))).is_empty(),
        "staleness marker ends the series"
    );
    assert_eq!(
        values(e.instant("h", 299_999).unwrap_or(Value::Vector(vec![]))).len(),
        1
    );
    assert!(
        values(e.instant("h", 300_000).unwrap_or(Value::Vector(vec![]))).is_empty(),
        "5 min lookback is left-open"
    );
}

#[test]
fn rate_extrapolates_and_handles_resets() {
    let pts: Vec<(i64, f64)> = (1..=12)
        .map(|i| {
            (
                i * 5000,
                if i <= 6 {
                    i as f64 * 10.0
                } else {
                    (i - 6) as f64 * 10.0
                },
            )
        })
        .collect();
    let e = engine(&[("req_total", &[], &pts)]);
    let v = values(
        e.instant("increase(req_total[60s])", 60_000)
            .unwrap_or(Value::Vector(vec![])),
    );
    // 12 samples 5 s apart, one reset: raw increase 110 over 55 s, extrapolated to 60 s.
    assert!((v[0].1 - 120.0).abs() < 1e-9, "{v:?}");
    assert_eq!(v[0].0, "{}");
    let r = values(
        e.instant("resets(req_total[60s])", 60_000)
            .unwrap_or(Value::Vector(vec![])),
    );
    assert_eq!(r[0].1, 1.0);
}

#[test]
fn histogram_quantile_interpolates_and_needs_inf_bucket() {
    use super::functions::bucket_quantile_for_test as bq;
    let b = vec![
        (0.1, 10.0),
        (0.5, 50.0),
        (1.0, 90.0),
        (f64::INFINITY, 100.0),
    ];
    assert!((bq(0.5, b.clone()) - 0.5).abs() < 1e-12);
    assert!((bq(0.7, b.clone()) - 0.75).abs() < 1e-12);
    assert_eq!(bq(0.99, b.clone()), 1.0);
    assert!(bq(0.5, vec![(0.1, 1.0), (1.0, 2.0)]).is_nan());
    // Non-monotonic counts are fixed up rather than producing nonsense.
    assert!((bq(0.5, vec![(0.1, 10.0), (0.5, 8.0), (f64::INFINITY, 20.0)]) - 0.1).abs() < 1e-12);
}

#[test]
fn binary_matching_and_errors() {
    let e = engine(&[
        ("tok", &[("model", "a"), ("tenant", "x")], &[(0, 2.0)]),
        ("tok", &[("model", "a"), ("tenant", "y")], &[(0, 3.0)]),
        ("cost", &[("model", "a")], &[(0, 10.0)]),
    ]);
    let v = values(
        e.instant("tok * on(model) group_left cost", 1000)
            .unwrap_or(Value::Vector(vec![])),
    );
    assert_eq!(v.len(), 2);
    assert_eq!(v.iter().map(|x| x.1).sum::<f64>(), 50.0);
    let err = e
        .instant("tok * on(model) cost", 1000)
        .err()
        .map(|e| e.message)
        .unwrap_or_default();
    assert!(
        err.contains("many-to-one matching must be explicit"),
        "{err}"
    );
    let v = values(
        e.instant("tok > bool 2", 1000)
            .unwrap_or(Value::Vector(vec![])),
    );
    assert_eq!(v.iter().map(|x| x.1).collect::<Vec<_>>(), vec![0.0, 1.0]);
    assert!(
        e.instant("sum(", 0)
            .is_err_and(|e| e.kind == ErrorKind::BadData)
    );
}

#[test]
fn absent_infers_labels_and_topk_sorts() {
    let e = engine(&[
        ("g", &[("i", "1")], &[(0, 1.0)]),
        ("g", &[("i", "2")], &[(0, 3.0)]),
        ("g", &[("i", "3")], &[(0, 2.0)]),
    ]);
    let v = values(
        e.instant(r#"absent(nope{job="x", a=~"y"})"#, 0)
            .unwrap_or(Value::Vector(vec![])),
    );
    assert_eq!(v, vec![("{job=\"x\"}".to_string(), 1.0)]);
    let v = values(e.instant("topk(2, g)", 0).unwrap_or(Value::Vector(vec![])));
    assert_eq!(v.iter().map(|x| x.1).collect::<Vec<_>>(), vec![3.0, 2.0]);
    let v = values(e.instant("sort(g)", 0).unwrap_or(Value::Vector(vec![])));
    assert_eq!(
        v.iter().map(|x| x.1).collect::<Vec<_>>(),
        vec![1.0, 2.0, 3.0]
    );
    let r = e
        .range("sum(g)", 0, 60_000, 15_000)
        .unwrap_or(Value::Vector(vec![]));
    let Value::Matrix(m) = r else {
        panic!("matrix expected")
    };
    assert_eq!(m[0].points.len(), 5);
}

/// Range queries read selectors and range functions from step tables built series by
/// series; each step must equal an instant query at that time (evaluated step by step),
/// with staleness markers, gaps, counter resets, offsets and a range function that keeps
/// the metric name.
#[test]
fn range_steps_equal_instant_queries() {
    let stale = f64::from_bits(STALE_NAN_BITS);
    let a: Vec<(i64, f64)> = (0..120)
        .filter(|i| !(40..70).contains(i))
        .map(|i| (i * 5_000 + 1_234, ((i % 50) * 7) as f64))
        .chain([(700_000, stale)])
        .collect();
    let b: Vec<(i64, f64)> = (0..150)
        .map(|i| {
            (
                i * 4_000 + 77,
                if i == 90 { stale } else { (i % 13) as f64 },
            )
        })
        .collect();
    let e = engine(&[
        ("m", &[("job", "a"), ("le", "1")], &a),
        ("m", &[("job", "b"), ("le", "+Inf")], &b),
    ]);
    let queries = [
        "m",
        "m offset 1m",
        "rate(m[1m])",
        "sum by (le) (increase(m[2m] offset 30s))",
        "irate(m[30s])",
        "deriv(m[1m])",
        "changes(m[3m]) + resets(m[3m])",
        "last_over_time(m[1m])",
        "max_over_time(m[90s]) - min_over_time(m[90s])",
        "avg_over_time(m[1m]) * count_over_time(m[1m])",
        "histogram_quantile(0.9, sum by (le) (rate(m[1m])))",
        "max_over_time(rate(m[1m])[2m:15s])",
    ];
    let (start, end, step) = (-30_000, 800_000, 7_000);
    for q in queries {
        let Ok(Value::Matrix(range)) = e.range(q, start, end, step) else {
            panic!("{q}: range query failed");
        };
        let mut per_step: Vec<(String, i64, u64)> = Vec::new();
        let mut t = start;
        while t <= end {
            for (labels, v) in values(e.instant(q, t).unwrap_or(Value::Vector(vec![]))) {
                per_step.push((labels, t, v.to_bits()));
            }
            t += step;
        }
        let mut from_range: Vec<(String, i64, u64)> = range
            .iter()
            .flat_map(|s| {
                s.points
                    .iter()
                    .map(|&(t, v)| (s.labels.to_string(), t, v.to_bits()))
            })
            .collect();
        per_step.sort();
        from_range.sort();
        assert!(!from_range.is_empty(), "{q}: empty result");
        assert_eq!(from_range, per_step, "{q}");
    }
}
