//! Ingest throughput, bytes per sample and dashboard-query latency, Strata vs a real
//! Prometheus holding the same data, measured in the same run (medians).
//! Run: `cargo bench -p tsdb --bench store_query` (needs /usr/bin/prometheus for the baseline).
//!
//! What each side's time includes: Strata — parsing, evaluation and `serde_json` encoding of
//! the result, in process. Prometheus — an HTTP/1.0 request over loopback (new connection),
//! parsing, evaluation, JSON encoding and reading the whole response body; the body is not
//! decoded. Bytes per sample: Strata — encoded chunk bytes (`StoreStats::bytes`, no per-chunk
//! struct overhead); Prometheus — the chunk files of a TSDB snapshot taken with the head
//! (per-chunk framing: length, encoding byte and CRC32 included).

use std::sync::Arc;
use std::time::Instant;

use testkit::prometheus::{BUCKETS, Prometheus, Rng, Series, histogram, secs};
use tsdb::promql::{Engine, EngineConfig};
use tsdb::{SampleRef, Store, StoreConfig};

const STEP: i64 = 5_000;
const POINTS: i64 = 720; // 1 h at 5 s

/// The query data: 1,000 counters, 1,000 gauges (a random walk with 2 decimals) and 3,000
/// histogram buckets (5,000 series).
fn dataset(base: i64) -> (Vec<Series>, Vec<Series>) {
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    let ts = |i: i64| base + 1_234 + i * STEP;
    let (mut gauges, mut counters) = (Vec::new(), Vec::new());
    for i in 0..1000 {
        let (instance, model, tenant, gpu) = (
            format!("vllm-{}", i / 10),
            format!("m{}", i % 5),
            format!("t{}", i % 2),
            (i % 8).to_string(),
        );
        let ls = [
            ("instance", instance.as_str()),
            ("model", &model),
            ("tenant", &tenant),
            ("gpu", &gpu),
        ];
        let mut c = 0.0;
        let points = (0..POINTS)
            .map(|k| {
                c += (rng.f64() * 300.0).floor();
                (ts(k), c)
            })
            .collect();
        counters.push(Series::new("vllm:generation_tokens_total", &ls, points));
        let mut g = 0.5;
        let points = (0..POINTS)
            .map(|k| {
                g = ((g + rng.f64() * 0.02 - 0.01f64).clamp(0.0, 1.0) * 100.0).round() / 100.0;
                (ts(k), g)
            })
            .collect();
        gauges.push(Series::new("vllm:gpu_cache_usage_perc", &ls, points));
    }
    for i in 0..500 {
        let (instance, model) = (format!("vllm-{}", i / 5), format!("m{}", i % 5));
        let (buckets, _, _) = histogram(&mut rng, (0..POINTS).map(ts), 2);
        for (points, (le, _)) in buckets.into_iter().zip(BUCKETS) {
            let ls = [
                ("instance", instance.as_str()),
                ("model", &model),
                ("le", le),
            ];
            counters.push(Series::new(
                "vllm:time_to_first_token_seconds_bucket",
                &ls,
                points,
            ));
        }
    }
    (gauges, counters)
}

/// Gauges shaped like the project's scrapes (bytes per sample only): KV-cache ratios that
/// move a few blocks at a time, integer queue depths, GPU temperatures in whole degrees,
/// SM clocks switching between a few frequencies and power in mW steps held for a while.
fn realistic_gauges(base: i64) -> Vec<Series> {
    let mut rng = Rng::new(0x2545_f491_4f6c_dd1d);
    let ts = |i: i64| base + 1_234 + i * STEP;
    let mut out = Vec::new();
    for i in 0..200 {
        let instance = format!("node-{}", i / 8);
        let gpu = (i % 8).to_string();
        let ls = [("instance", instance.as_str()), ("gpu", gpu.as_str())];
        // (name, start, probability of a change per scrape, change)
        type Step<'a> = &'a dyn Fn(f64, f64) -> f64;
        let kinds: [(&str, f64, f64, Step); 5] = [
            ("bench_kv_cache_usage_ratio", 300.0, 0.3, &|v, r| {
                (v + (r * 41.0).floor() - 20.0).clamp(0.0, 1000.0)
            }),
            ("bench_num_requests_waiting", 4.0, 0.5, &|v, r| {
                (v + (r * 7.0).floor() - 3.0).clamp(0.0, 64.0)
            }),
            ("DCGM_FI_DEV_GPU_TEMP", 60.0, 0.1, &|v, r| {
                (v + if r < 0.5 { -1.0 } else { 1.0 }).clamp(35.0, 90.0)
            }),
            ("DCGM_FI_DEV_SM_CLOCK", 1410.0, 0.02, &|_, r| {
                [210.0, 1410.0, 1755.0, 1980.0][(r * 4.0) as usize % 4]
            }),
            ("DCGM_FI_DEV_POWER_USAGE", 250.0, 0.2, &|_, r| {
                (80_000.0 + r * 620_000.0).round() / 1000.0
            }),
        ];
        for (name, start, p, change) in kinds {
            let mut v = start;
            let points = (0..POINTS)
                .map(|k| {
                    if rng.f64() < p {
                        v = change(v, rng.f64());
                    }
                    let shown = if name == "bench_kv_cache_usage_ratio" {
                        v / 1000.0
                    } else {
                        v
                    };
                    (ts(k), shown)
                })
                .collect();
            out.push(Series::new(name, &ls, points));
        }
    }
    out
}

fn ingest(store: &Store, data: &[Series]) -> (f64, usize) {
    type Prepared<'a> = (String, Vec<(String, String)>, &'a Series);
    let prepared: Vec<Prepared> = data
        .iter()
        .map(|s| {
            let (name, labels) = s.name_and_labels();
            (name, labels, s)
        })
        .collect();
    let before = store.stats().bytes;
    let start = Instant::now();
    // Scrape order: one sample of every series per timestamp.
    for k in 0..POINTS as usize {
        store.append(
            "bench",
            prepared.iter().map(|(name, labels, s)| SampleRef {
                name,
                labels,
                t_ms: s.points[k].0,
                value: s.points[k].1,
            }),
        );
    }
    let n = data.len() * POINTS as usize;
    (
        n as f64 / start.elapsed().as_secs_f64(),
        store.stats().bytes - before,
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn timed_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm-up, not counted
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect(),
    )
}

fn report(ours: f64, theirs: Option<f64>, q: &str) {
    match theirs {
        Some(th) => println!(
            "  {ours:8.1} ms strata | {th:8.1} ms prometheus | ratio {:.2}  {q}",
            ours / th
        ),
        None => println!("  {ours:8.1} ms strata | prometheus not installed  {q}"),
    }
}

fn main() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let base = (now / 60_000) * 60_000 - 3_700_000;
    let (gauges, counters) = dataset(base);
    let realistic = realistic_gauges(base);
    println!(
        "data: {} realistic gauge + {} random-walk gauge + {} counter/bucket series, {POINTS} samples each (1 h at 5 s)",
        realistic.len(),
        gauges.len(),
        counters.len()
    );
    let kinds = [
        ("realistic gauges", &realistic),
        ("random-walk gauges", &gauges),
        ("counters+buckets", &counters),
    ];
    let store = Arc::new(Store::open(StoreConfig::default()).0);
    let mut ours = Vec::new();
    for (kind, data) in kinds {
        let (rate, bytes) = ingest(&store, data);
        println!("strata ingest {kind:18}: {rate:>10.0} samples/s on one core");
        ours.push(bytes as f64 / (data.len() as f64 * POINTS as f64));
    }
    let prom = Prometheus::start();
    if let Some(p) = &prom {
        let start = Instant::now();
        let mut theirs = Vec::new();
        let mut before = 0;
        for (_, data) in kinds {
            p.remote_write(data);
            let total = p.snapshot_chunk_bytes().unwrap_or_else(|e| {
                eprintln!("prometheus snapshot failed: {e}");
                0
            });
            theirs
                .push((total.saturating_sub(before)) as f64 / (data.len() as f64 * POINTS as f64));
            before = total;
        }
        let n: usize = kinds.iter().map(|(_, d)| d.len()).sum();
        println!(
            "prometheus remote_write ingest (HTTP+snappy+protobuf and 3 snapshots incl.): {:.0} samples/s",
            n as f64 * POINTS as f64 / start.elapsed().as_secs_f64()
        );
        println!("bytes/sample, same data:");
        for (((kind, _), o), t) in kinds.iter().zip(&ours).zip(&theirs) {
            println!(
                "  {kind:18}: strata {o:.3} | prometheus {t:.3} | ratio {:.2}",
                o / t
            );
        }
    } else {
        for ((kind, _), o) in kinds.iter().zip(&ours) {
            println!("  {kind:18}: strata {o:.3} bytes/sample");
        }
    }
    let engine = Engine::new(store, EngineConfig::default());
    let (start, end) = (base + 600_500, base + 3_600_500);
    let queries = [
        "sum(rate(vllm:generation_tokens_total[1m]))",
        "sum by (gpu) (rate(vllm:generation_tokens_total[5m]))",
        "histogram_quantile(0.95, sum(rate(vllm:time_to_first_token_seconds_bucket[5m])) by (le))",
        "histogram_quantile(0.99, sum by (model, le) (rate(vllm:time_to_first_token_seconds_bucket[5m])))",
        "avg by (model) (vllm:gpu_cache_usage_perc) * 100",
    ];
    println!(
        "range queries over {} min at 5 s steps, median of 5 after a warm-up:",
        (end - start) / 60_000
    );
    for q in queries {
        let ours = timed_ms(5, || {
            let v = engine.range(q, start, end, STEP);
            let _ = v.map(|v| serde_json::to_vec(&v).map(|b| b.len()));
        });
        let params = [
            ("query", q.to_string()),
            ("start", secs(start)),
            ("end", secs(end)),
            ("step", secs(STEP)),
        ];
        let theirs = prom.as_ref().map(|p| {
            timed_ms(5, || {
                if let Err(e) = p.query_raw("/api/v1/query_range", &params) {
                    eprintln!("prometheus: {e}");
                }
            })
        });
        report(ours, theirs, q);
    }
    println!("instant queries at the end of the range, median of 21 after a warm-up:");
    for q in queries {
        let ours = timed_ms(21, || {
            let v = engine.instant(q, end);
            let _ = v.map(|v| serde_json::to_vec(&v).map(|b| b.len()));
        });
        let params = [("query", q.to_string()), ("time", secs(end))];
        let theirs = prom.as_ref().map(|p| {
            timed_ms(21, || {
                if let Err(e) = p.query_raw("/api/v1/query", &params) {
                    eprintln!("prometheus: {e}");
                }
            })
        });
        report(ours, theirs, q);
    }
}
