//! Append latency while heavy range queries run, against the same appends with no query, in
//! the same run (medians of several runs, ratio).
//! Run: `nice -n 15 cargo bench -p tsdb --bench append_under_query`
//!
//! Setup: 5,000 counter series preloaded with 1 h of samples at 5 s. The appender sends
//! scrape-sized batches (2,000 samples, the next 2,000 series round-robin, one new timestamp
//! per batch) every 5 ms and times each `Store::append`. In the "query" phase another thread
//! runs `sum by (model) (rate(bench_tokens_total[5m]))` over the last hour at 15 s steps
//! back to back for the whole phase (each query decodes every sample of the hour).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tsdb::promql::{Engine, EngineConfig};
use tsdb::{SampleRef, Store, StoreConfig};

const SERIES: usize = 5_000;
const BATCH: usize = 2_000;
const STEP: i64 = 5_000;
const POINTS: i64 = 720;
const BATCHES_PER_PHASE: usize = 400;
const PACE: Duration = Duration::from_millis(5);
const RUNS: usize = 5;

type Labelled = (String, Vec<(String, String)>);

fn series() -> Vec<Labelled> {
    (0..SERIES)
        .map(|i| {
            (
                "bench_tokens_total".to_string(),
                vec![
                    ("instance".to_string(), format!("vllm-{}", i / 10)),
                    ("model".to_string(), format!("m{}", i % 5)),
                    ("gpu".to_string(), (i % 8).to_string()),
                ],
            )
        })
        .collect()
}

/// Latencies (ms) of `BATCHES_PER_PHASE` paced appends; `t` is the next scrape timestamp.
fn append_phase(store: &Store, all: &[Labelled], t: &AtomicI64, cursor: &mut usize) -> Vec<f64> {
    let mut lat = Vec::with_capacity(BATCHES_PER_PHASE);
    let mut next = Instant::now();
    for _ in 0..BATCHES_PER_PHASE {
        let now = t.fetch_add(1_000, Ordering::Relaxed);
        let start = *cursor;
        *cursor = (*cursor + BATCH) % SERIES;
        let batch = (0..BATCH).map(|k| {
            let (name, labels) = &all[(start + k) % SERIES];
            SampleRef {
                name,
                labels,
                t_ms: now,
                value: (now / 1000) as f64,
            }
        });
        let began = Instant::now();
        let r = store.append("bench", batch);
        lat.push(began.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(r.appended, BATCH, "appends must all land: {r:?}");
        next += PACE;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    lat
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// (p50, p99, max) of one phase.
fn summary(mut lat: Vec<f64>) -> [f64; 3] {
    lat.sort_by(f64::total_cmp);
    [pct(&lat, 0.5), pct(&lat, 0.99), lat[lat.len() - 1]]
}

fn main() {
    let all = series();
    let store = Arc::new(Store::open(StoreConfig::default()).0);
    let base = 1_700_000_000_000i64;
    for k in 0..POINTS {
        store.append(
            "preload",
            all.iter().enumerate().map(|(i, (name, labels))| SampleRef {
                name,
                labels,
                t_ms: base + k * STEP,
                value: (k * 10 + (i as i64 % 7)) as f64,
            }),
        );
    }
    let t = Arc::new(AtomicI64::new(base + POINTS * STEP));
    let engine = Arc::new(Engine::new(store.clone(), EngineConfig::default()));
    let mut cursor = 0;
    let (mut idle, mut busy) = (Vec::new(), Vec::new());
    let mut queries = Vec::new();
    for _ in 0..RUNS {
        idle.push(summary(append_phase(&store, &all, &t, &mut cursor)));
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let worker = {
            let (engine, stop, done, t) = (engine.clone(), stop.clone(), done.clone(), t.clone());
            std::thread::spawn(move || {
                let mut ms = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let end = t.load(Ordering::Relaxed);
                    let began = Instant::now();
                    let r = engine.range(
                        "sum by (model) (rate(bench_tokens_total[5m]))",
                        end - 3_600_000,
                        end,
                        15_000,
                    );
                    assert!(r.is_ok(), "query failed: {r:?}");
                    ms.push(began.elapsed().as_secs_f64() * 1000.0);
                    done.fetch_add(1, Ordering::Relaxed);
                }
                ms
            })
        };
        while done.load(Ordering::Relaxed) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        busy.push(summary(append_phase(&store, &all, &t, &mut cursor)));
        stop.store(true, Ordering::Relaxed);
        queries.extend(worker.join().unwrap_or_default());
    }
    let col = |runs: &[[f64; 3]], i: usize| median(runs.iter().map(|r| r[i]).collect());
    println!(
        "append of {BATCH} samples every {} ms over {SERIES} series ({} h preloaded), {RUNS} runs x {BATCHES_PER_PHASE} appends, medians of the runs:",
        PACE.as_millis(),
        POINTS * STEP / 3_600_000
    );
    println!(
        "  {:<28} {:>9} {:>9} {:>9}",
        "", "p50 ms", "p99 ms", "max ms"
    );
    for (name, runs) in [("no query running", &idle), ("query_range running", &busy)] {
        println!(
            "  {name:<28} {:>9.3} {:>9.3} {:>9.3}",
            col(runs, 0),
            col(runs, 1),
            col(runs, 2)
        );
    }
    println!(
        "  {:<28} {:>9.2} {:>9.2} {:>9.2}",
        "ratio (query / none)",
        col(&busy, 0) / col(&idle, 0),
        col(&busy, 1) / col(&idle, 1),
        col(&busy, 2) / col(&idle, 2)
    );
    println!(
        "concurrent query_range (1 h, 15 s step, {SERIES} series): {} queries, median {:.1} ms",
        queries.len(),
        median(queries)
    );
}
