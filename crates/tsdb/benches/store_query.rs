//! Ingest throughput, bytes per sample and dashboard-query latency, Strata vs a real
//! Prometheus holding the same data, measured in the same run (medians of 5).
//! Run: `cargo bench -p tsdb --bench store_query` (needs /usr/bin/prometheus for the baseline).

#[path = "../tests/peer/mod.rs"]
#[allow(dead_code)] // the bench uses only part of the test peer helper
mod peer;

use std::sync::Arc;
use std::time::Instant;

use peer::{Prometheus, Series};
use tsdb::promql::{Engine, EngineConfig};
use tsdb::{SampleRef, Store, StoreConfig};

const STEP: i64 = 5_000;
const POINTS: i64 = 720; // 1 h at 5 s

fn series(name: &str, labels: &[(&str, String)], points: Vec<(i64, f64)>) -> Series {
    let mut l: Vec<(String, String)> = labels
        .iter()
        .map(|(a, b)| (a.to_string(), b.clone()))
        .collect();
    l.push(("__name__".into(), name.into()));
    l.sort();
    Series { labels: l, points }
}

/// 1,000 counters, 1,000 gauges and 3,000 histogram buckets (5,000 series).
fn dataset(base: i64) -> (Vec<Series>, Vec<Series>) {
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng >> 11) as f64 / (1u64 << 53) as f64
    };
    let ts = |i: i64| base + 1_234 + i * STEP;
    let (mut gauges, mut counters) = (Vec::new(), Vec::new());
    for i in 0..1000 {
        let ls = [
            ("instance", format!("vllm-{}", i / 10)),
            ("model", format!("m{}", i % 5)),
            ("tenant", format!("t{}", i % 2)),
            ("gpu", (i % 8).to_string()),
        ];
        let mut c = 0.0;
        counters.push(series(
            "vllm:generation_tokens_total",
            &ls,
            (0..POINTS)
                .map(|k| {
                    c += (next() * 300.0).floor();
                    (ts(k), c)
                })
                .collect(),
        ));
        let mut g = 0.5;
        gauges.push(series(
            "vllm:gpu_cache_usage_perc",
            &ls,
            (0..POINTS)
                .map(|k| {
                    g = ((g + next() * 0.02 - 0.01f64).clamp(0.0, 1.0) * 100.0).round() / 100.0;
                    (ts(k), g)
                })
                .collect(),
        ));
    }
    for i in 0..500 {
        let mut counts = [0.0f64; 6];
        let mut per_le: Vec<Vec<(i64, f64)>> = vec![vec![]; 6];
        for k in 0..POINTS {
            for _ in 0..2 {
                let obs = next() * next() * 4.0;
                for (b, le) in [0.1, 0.25, 0.5, 1.0, 2.5, f64::INFINITY].iter().enumerate() {
                    if obs <= *le {
                        counts[b] += 1.0;
                    }
                }
            }
            for b in 0..6 {
                per_le[b].push((ts(k), counts[b]));
            }
        }
        for (b, le) in ["0.1", "0.25", "0.5", "1.0", "2.5", "+Inf"]
            .iter()
            .enumerate()
        {
            let ls = [
                ("instance", format!("vllm-{}", i / 5)),
                ("model", format!("m{}", i % 5)),
                ("le", le.to_string()),
            ];
            counters.push(series(
                "vllm:time_to_first_token_seconds_bucket",
                &ls,
                per_le[b].clone(),
            ));
        }
    }
    (gauges, counters)
}

fn ingest(store: &Store, data: &[Series]) -> (f64, usize) {
    type Prepared<'a> = (String, Vec<(String, String)>, &'a Series);
    let prepared: Vec<Prepared> = data
        .iter()
        .map(|s| {
            let name = s
                .labels
                .iter()
                .find(|(n, _)| n == "__name__")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            (
                name,
                s.labels
                    .iter()
                    .filter(|(n, _)| n != "__name__")
                    .cloned()
                    .collect(),
                s,
            )
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

fn prom_metric(prom: &Prometheus, name: &str) -> Option<f64> {
    let (_, body) = prom.http("GET", "/metrics", None).ok()?;
    String::from_utf8_lossy(&body)
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn main() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let base = (now / 60_000) * 60_000 - 3_700_000;
    let (gauges, counters) = dataset(base);
    println!(
        "data: {} gauge + {} counter/bucket series, {POINTS} samples each (1 h at 5 s)",
        gauges.len(),
        counters.len()
    );
    let store = Arc::new(Store::open(StoreConfig::default()).0);
    for (kind, data) in [("gauge-like", &gauges), ("counter-like", &counters)] {
        let (rate, bytes) = ingest(&store, data);
        let n = data.len() as f64 * POINTS as f64;
        println!(
            "strata ingest {kind:12}: {:>10.0} samples/s on one core, {:.3} bytes/sample (chunk bytes)",
            rate,
            bytes as f64 / n
        );
    }
    let prom = Prometheus::start();
    if let Some(p) = &prom {
        let start = Instant::now();
        p.remote_write(&gauges);
        let g_bytes =
            prom_metric(p, "prometheus_tsdb_head_chunks_storage_size_bytes").unwrap_or(f64::NAN);
        p.remote_write(&counters);
        let all_bytes =
            prom_metric(p, "prometheus_tsdb_head_chunks_storage_size_bytes").unwrap_or(f64::NAN);
        let secs = start.elapsed().as_secs_f64();
        let n = (gauges.len() + counters.len()) as f64 * POINTS as f64;
        println!(
            "prometheus remote_write ingest (HTTP+snappy+protobuf incl.): {:.0} samples/s",
            n / secs
        );
        println!(
            "prometheus mmapped head chunk bytes/sample: gauge-like {:.3}, counter-like {:.3} (head chunks still open are not counted)",
            g_bytes / (gauges.len() as f64 * POINTS as f64),
            (all_bytes - g_bytes) / (counters.len() as f64 * POINTS as f64)
        );
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
        "range queries over {} min at 5 s steps, median of 5 (Strata includes JSON encoding):",
        (end - start) / 60_000
    );
    for q in queries {
        let ours = median(
            (0..5)
                .map(|_| {
                    let t = Instant::now();
                    let v = engine.range(q, start, end, STEP);
                    let _ = v.map(|v| serde_json::to_vec(&v).map(|b| b.len()));
                    t.elapsed().as_secs_f64() * 1000.0
                })
                .collect(),
        );
        let theirs = prom.as_ref().map(|p| {
            median(
                (0..5)
                    .map(|_| {
                        let t = Instant::now();
                        let _ = p.query_range(q, start, end, STEP);
                        t.elapsed().as_secs_f64() * 1000.0
                    })
                    .collect(),
            )
        });
        match theirs {
            Some(th) => println!(
                "  {ours:8.1} ms strata | {th:8.1} ms prometheus | ratio {:.2}  {q}",
                ours / th
            ),
            None => println!("  {ours:8.1} ms strata | prometheus not installed  {q}"),
        }
    }
}
