use std::sync::Arc;

use super::*;
use crate::store::{STALE_NAN_BITS, SampleRef, StoreConfig};

type Fixture<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [(i64, f64)]);
/// A fixture's labels, owned, with its points.
type Labelled<'a> = (Vec<(&'a str, &'a str)>, &'a [(i64, f64)]);

fn engine(series: &[Fixture<'_>]) -> Engine {
    engine_with(series, EngineConfig::default())
}

fn engine_with(series: &[Fixture<'_>], cfg: EngineConfig) -> Engine {
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
    Engine::new(Arc::new(store), cfg)
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

/// Series with staleness markers, gaps, counter resets, offsets, NaN, ±Inf and overflowing
/// sums, in groups of several members, under an engine with `cfg`.
fn mixed_engine(cfg: EngineConfig) -> Engine {
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
    // Values that make sums overflow (avg switches to its incremental mean), NaN and ±Inf.
    let c: Vec<(i64, f64)> = (0..100)
        .map(|i| {
            let v = match i % 9 {
                0 => f64::NAN,
                1 | 2 => 1.5e308,
                3 => -1e308,
                4 if i > 50 => f64::INFINITY,
                _ => i as f64 * 0.1,
            };
            (i * 6_000 + 500, v)
        })
        .collect();
    // More members per group, so that grouped aggregations are folded from the cells
    // (they are only when that takes less memory than the step table: few groups).
    let more: Vec<(String, Vec<(i64, f64)>)> = (0..9)
        .map(|k: i64| {
            let pts = (0..110)
                .filter(|i| (i + k) % 11 != 0)
                .map(|i| (i * 5_000 + k * 300, ((i * (k + 3)) % 17) as f64 - 4.0))
                .collect();
            (k.to_string(), pts)
        })
        .collect();
    let (jobs, les) = (["a", "b", "c"], ["1", "+Inf", "5"]);
    let mut series: Vec<(&str, Labelled)> = vec![
        ("m", (vec![("job", "a"), ("le", "1")], &a)),
        ("m", (vec![("job", "b"), ("le", "+Inf")], &b)),
        ("m", (vec![("job", "c"), ("le", "5")], &c)),
    ];
    for (k, (inst, pts)) in more.iter().enumerate() {
        let labels = vec![
            ("job", jobs[k % 3]),
            ("le", les[k / 3]),
            ("inst", inst.as_str()),
        ];
        series.push(("m", (labels, pts)));
    }
    let refs: Vec<Fixture> = series
        .iter()
        .map(|(n, (l, p))| (*n, l.as_slice(), *p))
        .collect();
    engine_with(&refs, cfg)
}

/// Range queries over [`mixed_engine`] that exercise step tables, aggregations folded from
/// them, step-by-step aggregation and subqueries.
const MIXED_QUERIES: [&str; 25] = [
    // Aggregations folded straight from a step table in a range query.
    "sum(m)",
    "avg(m)",
    "avg by (le) (m offset 40s)",
    "count without (job) (rate(m[1m]))",
    "group(delta(m[2m]))",
    "min(m) + on() group_left max(max_over_time(m[1m]))",
    "max by (job) (m)",
    "sum by (__name__) (last_over_time(m[1m]))",
    "avg(avg_over_time(m[2m]))",
    // Many groups of few members: aggregated step by step from the step table.
    "sum by (inst, job) (m) + on (inst, job) count by (inst, job) (rate(m[1m]))",
    "m",
    "m offset 1m",
    "rate(m[1m])",
    "increase(m[5m])",
    "sum by (le) (increase(m[2m] offset 30s))",
    "irate(m[30s])",
    "deriv(m[1m])",
    "changes(m[3m]) + resets(m[3m])",
    "last_over_time(m[1m])",
    "max_over_time(m[90s]) - min_over_time(m[90s])",
    "avg_over_time(m[1m]) * count_over_time(m[1m])",
    "histogram_quantile(0.9, sum by (le) (rate(m[1m])))",
    // Buckets grouped anew at every step (step by step, new label sets each time).
    "histogram_quantile(0.5, m)",
    "histogram_quantile(0.75, rate(m[1m]) * 2)",
    "max_over_time(rate(m[1m])[2m:15s])",
];

/// Steps of the range queries over [`mixed_engine`]: `(start, end, step)`.
const MIXED_RANGE: (i64, i64, i64) = (-30_000, 800_000, 7_000);

/// Range queries read selectors and range functions from step tables built series by
/// series; each step must equal an instant query at that time (evaluated step by step),
/// with staleness markers, gaps, counter resets, offsets and a range function that keeps
/// the metric name.
#[test]
fn range_steps_equal_instant_queries() {
    let e = mixed_engine(EngineConfig::default());
    let (start, end, step) = MIXED_RANGE;
    for q in MIXED_QUERIES {
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

/// A range query spread over threads (every read and step table cut into parts, the
/// threshold forced down to one unit of work) answers the same, to the bit and in the same
/// order, as one evaluated on one thread.
#[test]
fn spread_range_queries_equal_serial_ones() {
    let serial = mixed_engine(EngineConfig {
        query_threads: 1,
        ..EngineConfig::default()
    });
    let spread = mixed_engine(EngineConfig {
        query_threads: 3,
        parallel_min_work: 1,
        ..EngineConfig::default()
    });
    let bits = |e: &Engine, q: &str| -> Vec<(String, Vec<(i64, u64)>)> {
        let (start, end, step) = MIXED_RANGE;
        let Ok(Value::Matrix(m)) = e.range(q, start, end, step) else {
            panic!("{q}: range query failed");
        };
        m.into_iter()
            .map(|s| {
                let pts = s.points.iter().map(|&(t, v)| (t, v.to_bits())).collect();
                (s.labels.to_string(), pts)
            })
            .collect()
    };
    for q in MIXED_QUERIES {
        let want = bits(&serial, q);
        assert!(!want.is_empty(), "{q}: empty result");
        assert_eq!(bits(&spread, q), want, "{q}");
    }
}

fn one(e: &Engine, q: &str, t: i64) -> Vec<(String, f64)> {
    values(e.instant(q, t).unwrap_or_else(|err| panic!("{q}: {err}")))
}

#[test]
fn date_functions_and_pi() {
    // 2024-02-29T13:45:10Z as a sample value.
    let e = engine(&[("ts", &[("a", "b")], &[(0, 1_709_214_310.0)])]);
    let at = 60_000;
    for (f, want) in [
        ("minute", 45.0),
        ("hour", 13.0),
        ("day_of_week", 4.0),
        ("day_of_month", 29.0),
        ("day_of_year", 60.0),
        ("days_in_month", 29.0),
        ("month", 2.0),
        ("year", 2024.0),
    ] {
        assert_eq!(
            one(&e, &format!("{f}(ts)"), at),
            vec![("{a=\"b\"}".to_string(), want)],
            "{f}"
        );
    }
    // Without an argument: the evaluation time (1970-01-01T00:01:00Z, a Thursday).
    assert_eq!(one(&e, "minute()", at), vec![("{}".to_string(), 1.0)]);
    assert_eq!(one(&e, "day_of_week()", at), vec![("{}".to_string(), 4.0)]);
    assert_eq!(one(&e, "year()", at), vec![("{}".to_string(), 1970.0)]);
    assert_eq!(
        one(&e, "pi()", at),
        vec![(String::new(), std::f64::consts::PI)]
    );
}

#[test]
fn native_histogram_functions_ignore_classic_histograms() {
    let e = engine(&[("h_bucket", &[("le", "+Inf")], &[(0, 5.0)])]);
    for q in [
        "histogram_count(h_bucket)",
        "histogram_sum(h_bucket)",
        "histogram_avg(h_bucket)",
        "histogram_stddev(h_bucket)",
        "histogram_stdvar(h_bucket)",
        "histogram_fraction(0, 1, h_bucket)",
    ] {
        assert_eq!(one(&e, q, 1_000), vec![], "{q}");
    }
    // Argument types are still checked.
    assert!(e.instant("histogram_fraction(0, 1, 'x')", 1_000).is_err());
}

#[test]
fn clamp_with_a_nan_bound_gives_nan() {
    let e = engine(&[("g", &[], &[(0, 5.0)])]);
    for q in [
        "clamp(g, NaN, 10)",
        "clamp(g, 0, NaN)",
        "clamp_min(g, NaN)",
        "clamp_max(g, NaN)",
    ] {
        let got = one(&e, q, 1_000);
        assert_eq!(got.len(), 1, "{q}");
        assert!(got[0].1.is_nan(), "{q}: {got:?}");
    }
    assert_eq!(one(&e, "clamp(g, 0, 3)", 1_000)[0].1, 3.0);
    assert_eq!(one(&e, "clamp(g, 6, 3)", 1_000), vec![]);
}

#[test]
fn histogram_quantile_keeps_metrics_apart() {
    let buckets = |name| -> Vec<Fixture<'static>> {
        vec![
            (name, &[("le", "1")], &[(0, 1.0)]),
            (name, &[("le", "+Inf")], &[(0, 2.0)]),
        ]
    };
    let mut both = buckets("a_bucket");
    both.extend(buckets("b_bucket"));
    let e = engine(&both);
    let err = e
        .instant(
            "histogram_quantile(0.5, {__name__=~\"a_bucket|b_bucket\"})",
            1_000,
        )
        .err()
        .unwrap_or_else(|| panic!("merged the two histograms"));
    assert!(err.message.contains("same labelset"), "{}", err.message);
    assert_eq!(
        one(&e, "histogram_quantile(0.5, a_bucket)", 1_000),
        vec![("{}".to_string(), 1.0)]
    );
}

#[test]
fn sums_and_variances_are_compensated() {
    // A large offset plus small steps: 1e9 + 0.1 … 1e9 + 1.0 at 1 s intervals.
    let pts: Vec<(i64, f64)> = (1..=10)
        .map(|i| (i64::from(i) * 1_000, 1e9 + f64::from(i) / 10.0))
        .collect();
    let e = engine(&[("g", &[], &pts)]);
    let var = one(&e, "stdvar_over_time(g[10s])", 10_000)[0].1;
    assert!((var - 0.0825).abs() < 1e-7, "{var}");
    let sd = one(&e, "stddev_over_time(g[10s])", 10_000)[0].1;
    assert!((sd - 0.0825f64.sqrt()).abs() < 1e-7, "{sd}");
    // 1e16 then ones then -1e16: a plain sum loses every 1.
    let mut big = vec![(1_000, 1e16)];
    big.extend((2..=11).map(|i| (i * 1_000, 1.0)));
    big.push((12_000, -1e16));
    let e = engine(&[("s", &[], &big)]);
    assert_eq!(one(&e, "sum_over_time(s[12s])", 12_000)[0].1, 10.0);
    let series: Vec<Fixture<'_>> = vec![
        ("v", &[("i", "0")], &[(0, 1e16)]),
        ("v", &[("i", "1")], &[(0, 1.0)]),
        ("v", &[("i", "2")], &[(0, 1.0)]),
        ("v", &[("i", "3")], &[(0, -1e16)]),
    ];
    let e = engine(&series);
    assert_eq!(one(&e, "sum(v)", 1_000)[0].1, 2.0);
    assert_eq!(one(&e, "avg(v)", 1_000)[0].1, 0.5);
}

#[test]
fn parse_errors_say_where_and_do_not_echo_the_query() {
    let e = engine(&[]);
    let err = e
        .instant("sum(rate(x[5m])) by foo", 0)
        .expect_err("does not parse");
    assert_eq!(err.kind, ErrorKind::BadData);
    assert!(
        err.message.contains("at 1:18 (near \"by foo\")"),
        "{}",
        err.message
    );
    let long = format!("{}sum(x) by foo", "x + ".repeat(200));
    let err = e.instant(&long, 0).expect_err("does not parse");
    assert!(err.message.contains("at 1:808"), "{}", err.message);
    assert!(err.message.len() < 200, "echoes the query: {}", err.message);
}
