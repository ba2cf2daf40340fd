//! Differential test: the same synthetic LLM-serving data goes into Strata's store and into a
//! real Prometheus (Debian package, remote_write receiver); every query of
//! `promql_corpus.txt` must give the same instant and range results on both.
//!
//! Prometheus in Debian is 2.42, whose windows are closed on the left while Strata follows
//! 3.x (left-open). Samples sit at 1.234 s past each 5 s boundary and queries run at .5 s,
//! so no sample ever lies on a window edge; the edge itself is unit-tested in the crate.

#[allow(dead_code)] // the benchmark uses the rest of the peer helper
use std::collections::BTreeMap;
use std::sync::Arc;

use tsdb::promql::{Engine, EngineConfig, Value};
use tsdb::{SampleRef, Store, StoreConfig};

use testkit::prometheus::{BUCKETS, Prometheus, Rng, Series, histogram};

const STEP: i64 = 5_000;
const PHASE: i64 = 1_234;
const HOURS: i64 = 2;

/// Deterministic data shaped like vLLM/TGI/DCGM scrapes.
fn dataset(base: i64) -> Vec<Series> {
    let n = HOURS * 3_600_000 / STEP;
    let ts = |i: i64| base + PHASE + i * STEP;
    let mut rng = Rng::new(0x2545_f491_4f6c_dd1d);
    let mut out: Vec<Series> = Vec::new();
    let mut push = |name: &str, labels: &[(&str, &str)], points: Vec<(i64, f64)>| {
        out.push(Series::new(name, labels, points));
    };
    for (ii, instance) in ["vllm-0", "vllm-1"].iter().enumerate() {
        let gpu = ii.to_string();
        for model in ["llama", "mistral"] {
            for tenant in ["acme", "globex"] {
                let ls = [
                    ("instance", *instance),
                    ("model", model),
                    ("tenant", tenant),
                    ("gpu", gpu.as_str()),
                ];
                let (mut gen_tok, mut prompt) = (0.0, 0.0);
                let (mut gen_pts, mut prompt_pts, mut run, mut cache) =
                    (vec![], vec![], vec![], vec![]);
                for i in 0..n {
                    gen_tok += (rng.f64() * 400.0).floor();
                    prompt += (rng.f64() * 900.0).floor();
                    gen_pts.push((ts(i), gen_tok));
                    prompt_pts.push((ts(i), prompt));
                    run.push((ts(i), (rng.f64() * 9.0).floor()));
                    cache.push((ts(i), (rng.f64() * 1000.0).round() / 1000.0));
                }
                push("vllm:generation_tokens_total", &ls, gen_pts);
                push("vllm:prompt_tokens_total", &ls, prompt_pts);
                push("vllm:num_requests_running", &ls, run);
                push("vllm:gpu_cache_usage_perc", &ls, cache);
                let mut waiting = vec![];
                let mut swapped = vec![];
                for i in 0..n {
                    waiting.push((ts(i), (rng.f64() * 30.0).floor()));
                    swapped.push((ts(i), if rng.f64() > 0.9 { 1.0 } else { 0.0 }));
                }
                push("vllm:num_requests_waiting", &ls, waiting);
                push("vllm:num_requests_swapped", &ls, swapped);
                for reason in ["stop", "length"] {
                    let mut c = 0.0;
                    let pts = (0..n).map(|i| {
                        c += (rng.f64() * if reason == "stop" { 10.0 } else { 2.0 }).floor();
                        (ts(i), c)
                    });
                    let ls2 = [
                        ("instance", *instance),
                        ("model", model),
                        ("tenant", tenant),
                        ("finish_reason", reason),
                    ];
                    push("vllm:request_success_total", &ls2, pts.collect());
                }
            }
            let ls = [("instance", *instance), ("model", model)];
            let mut pre = 0.0;
            push(
                "vllm:num_preemptions_total",
                &ls,
                (0..n)
                    .map(|i| {
                        pre += (rng.f64() * 2.0).floor();
                        (ts(i), pre)
                    })
                    .collect(),
            );
            for hist in [
                "vllm:time_to_first_token_seconds",
                "vllm:e2e_request_latency_seconds",
            ] {
                let (buckets, sums, cnts) = histogram(&mut rng, (0..n).map(ts), 3);
                for (points, (le, _)) in buckets.into_iter().zip(BUCKETS) {
                    push(
                        &format!("{hist}_bucket"),
                        &[("instance", *instance), ("model", model), ("le", le)],
                        points,
                    );
                }
                push(&format!("{hist}_sum"), &ls, sums);
                push(&format!("{hist}_count"), &ls, cnts);
            }
        }
    }
    for gpu in ["0", "1", "2", "3"] {
        let ls = [("gpu", gpu), ("Hostname", "node-a"), ("instance", "dcgm-0")];
        for (name, lo, hi) in [
            ("DCGM_FI_DEV_GPU_UTIL", 0.0, 100.0),
            ("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", 0.0, 0.6),
            ("DCGM_FI_DEV_GPU_TEMP", 50.0, 70.0),
            ("DCGM_FI_DEV_POWER_USAGE", 100.0, 700.0),
            ("DCGM_FI_DEV_FB_USED", 10_000.0, 80_000.0),
            ("DCGM_FI_DEV_FB_FREE", 100.0, 5_000.0),
        ] {
            let pts = (0..n)
                .map(|i| (ts(i), ((lo + rng.f64() * (hi - lo)) * 10.0).round() / 10.0))
                .collect();
            push(name, &ls, pts);
        }
    }
    for instance in ["tgi-0", "tgi-1"] {
        push(
            "tgi_queue_size",
            &[("instance", instance)],
            (0..n)
                .map(|i| (ts(i), (rng.f64() * 12.0).floor()))
                .collect(),
        );
        push(
            "tgi_batch_current_size",
            &[("instance", instance)],
            (0..n)
                .map(|i| (ts(i), 1.0 + (rng.f64() * 31.0).floor()))
                .collect(),
        );
    }
    push(
        "cost_per_generation_token_eur",
        &[("model", "llama")],
        (0..n).map(|i| (ts(i), 0.000_002)).collect(),
    );
    push(
        "cost_per_generation_token_eur",
        &[("model", "mistral")],
        (0..n).map(|i| (ts(i), 0.000_001_5)).collect(),
    );
    push(
        "gpu_hourly_cost_eur",
        &[],
        (0..n).map(|i| (ts(i), 2.5)).collect(),
    );
    // A counter that resets twice, a gauge with a 20 min gap, and one ended by a staleness marker.
    push(
        "reset_counter",
        &[("job", "x")],
        (0..n).map(|i| (ts(i), ((i % 500) * 3) as f64)).collect(),
    );
    push(
        "flaky_gauge",
        &[("job", "x")],
        (0..n)
            .filter(|i| !(600..840).contains(i))
            .map(|i| (ts(i), (i % 17) as f64))
            .collect(),
    );
    let mut stale: Vec<(i64, f64)> = (0..n / 2).map(|i| (ts(i), 1.0 + (i % 5) as f64)).collect();
    stale.push((ts(n / 2), f64::from_bits(tsdb::STALE_NAN_BITS)));
    push("stale_gauge", &[("job", "x")], stale);
    out
}

/// Normalised result: label set (as text) → points; values compared with tolerance.
type Norm = BTreeMap<String, Vec<(i64, f64)>>;

fn from_strata(v: &Value) -> Norm {
    let mut out = Norm::new();
    match v {
        Value::Scalar { t_ms, v } => {
            out.insert("scalar".into(), vec![(*t_ms, *v)]);
        }
        Value::Vector(s) => s.iter().for_each(|s| {
            out.insert(s.labels.to_string(), vec![(s.t_ms, s.v)]);
        }),
        Value::Matrix(m) => m.iter().for_each(|s| {
            out.insert(s.labels.to_string(), s.points.clone());
        }),
        Value::String { .. } => {}
    }
    out
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan())
        || a == b
        || (a - b).abs() <= 1e-12
        || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

fn diff(query: &str, what: &str, ours: &Norm, theirs: &Norm) -> Option<String> {
    if ours.keys().ne(theirs.keys()) {
        let only_ours: Vec<_> = ours
            .keys()
            .filter(|k| !theirs.contains_key(*k))
            .take(3)
            .collect();
        let only_theirs: Vec<_> = theirs
            .keys()
            .filter(|k| !ours.contains_key(*k))
            .take(3)
            .collect();
        return Some(format!(
            "{query} [{what}]: series differ; only Strata: {only_ours:?}; only Prometheus: {only_theirs:?}"
        ));
    }
    for (k, a) in ours {
        let b = &theirs[k];
        let same =
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.0 == y.0 && close(x.1, y.1));
        if !same {
            let first = a
                .iter()
                .zip(b)
                .find(|(x, y)| !(x.0 == y.0 && close(x.1, y.1)));
            return Some(format!(
                "{query} [{what}]: {k}: {} vs {} points, first difference {first:?}",
                a.len(),
                b.len()
            ));
        }
    }
    None
}

#[test]
fn corpus_matches_prometheus() {
    let Some(prom) = Prometheus::start() else {
        return;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let base = (now / 60_000) * 60_000 - (HOURS * 3_600_000 + 600_000);
    let data = dataset(base);

    let (store, _) = Store::open(StoreConfig::default());
    for s in &data {
        let (name, labels) = s.name_and_labels();
        let r = store.append(
            "diff",
            s.points.iter().map(|(t, v)| SampleRef {
                name: &name,
                labels: &labels,
                t_ms: *t,
                value: *v,
            }),
        );
        assert_eq!(r.appended, s.points.len(), "{name}: {r:?}");
    }
    prom.remote_write(&data);
    let engine = Engine::new(Arc::new(store), EngineConfig::default());

    let corpus = include_str!("promql_corpus.txt");
    let queries: Vec<&str> = corpus
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(queries.len() >= 150, "corpus has {} queries", queries.len());
    let end = base + HOURS * 3_600_000 - 500;
    let instants = [
        end,
        end - 1_234_500,
        base + 3_600_000 + 500,
        base + 3_900_500,
    ];
    let (rstart, rstep) = (end - 3_600_000, 30_000);
    let mut failures = Vec::new();
    for q in &queries {
        for t in instants {
            let ours = engine.instant(q, t);
            let theirs = prom.query(q, t);
            match (ours, theirs) {
                (Ok(a), Ok(b)) => {
                    failures.extend(diff(q, &format!("instant @{t}"), &from_strata(&a), &b))
                }
                (Err(_), Err(_)) => {}
                (a, b) => failures.push(format!(
                    "{q} [instant @{t}]: Strata {:?} vs Prometheus {:?}",
                    a.err(),
                    b.err()
                )),
            }
        }
        let ours = engine.range(q, rstart, end, rstep);
        let theirs = prom.query_range(q, rstart, end, rstep);
        match (ours, theirs) {
            (Ok(a), Ok(b)) => failures.extend(diff(q, "range", &from_strata(&a), &b)),
            (Err(_), Err(_)) => {}
            (a, b) => failures.push(format!(
                "{q} [range]: Strata {:?} vs Prometheus {:?}",
                a.err(),
                b.err()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} queries differ:\n{}",
        failures.len(),
        queries.len(),
        failures.join("\n")
    );
}
