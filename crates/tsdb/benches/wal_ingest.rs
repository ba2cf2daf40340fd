//! Ingest throughput with and without the write-ahead log, in the same run (medians of
//! alternating runs, ratio), and WAL bytes per sample.
//! Run: `nice -n 15 cargo bench -p tsdb --bench wal_ingest`
//!
//! Each run appends 360 scrapes (30 min at 5 s) of 5,000 series, 2,000 samples per `append`
//! as a scrape loop would, into a fresh store: in memory only (`Store::open`) and durable
//! (`Store::open_durable`, default `WalOptions`: 1 s background flush with fsync, 32 MiB
//! segments) in a temporary directory. The time includes everything `append` does; the
//! durable run's time also includes `close()` (the final flush and fsync). Replay: reopening
//! that directory (no checkpoint, the whole log replayed).

use std::time::Instant;

use tsdb::{SampleRef, Store, StoreConfig, WalOptions};

const SERIES: usize = 5_000;
const SCRAPES: i64 = 360;
const BATCH: usize = 2_000;
const RUNS: usize = 3;

type Labelled = (String, Vec<(String, String)>);

fn series() -> Vec<Labelled> {
    (0..SERIES)
        .map(|i| {
            (
                format!("bench_metric_{}", i % 50),
                vec![
                    ("instance".to_string(), format!("vllm-{}", i / 50)),
                    ("model".to_string(), format!("m{}", i % 5)),
                ],
            )
        })
        .collect()
}

/// Appends every scrape; returns samples per second.
fn ingest(store: &Store, all: &[Labelled]) -> f64 {
    let start = Instant::now();
    let mut total = 0;
    for k in 0..SCRAPES {
        let t = 1_700_000_000_000 + k * 5_000;
        for batch in all.chunks(BATCH) {
            let r = store.append(
                "bench",
                batch
                    .iter()
                    .enumerate()
                    .map(|(i, (name, labels))| SampleRef {
                        name,
                        labels,
                        t_ms: t,
                        // Counters and gauges: mostly small integers, some fractions.
                        value: if i % 3 == 0 {
                            (k * (i as i64 % 17)) as f64
                        } else {
                            ((k + i as i64) % 100) as f64 / 4.0
                        },
                    }),
            );
            total += r.appended;
        }
    }
    total as f64 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let all = series();
    let samples = SERIES as f64 * SCRAPES as f64;
    let (mut mem, mut wal, mut per_sample) = (Vec::new(), Vec::new(), Vec::new());
    let mut replay = Vec::new();
    for run in 0..RUNS {
        let (store, _) = Store::open(StoreConfig::default());
        mem.push(ingest(&store, &all));
        drop(store);

        let dir = std::env::temp_dir().join(format!("tsdb-wal-bench-{}-{run}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (store, _) =
            match Store::open_durable(StoreConfig::default(), &dir, WalOptions::default()) {
                Ok(x) => x,
                Err(e) => panic!("{e}"),
            };
        let start = Instant::now();
        ingest(&store, &all);
        let stats = store.stats();
        if let Err(e) = store.close() {
            panic!("close: {e}");
        }
        wal.push(samples / start.elapsed().as_secs_f64());
        assert_eq!(stats.wal.write_errors, 0);
        per_sample.push(stats.wal.bytes_written as f64 / stats.appended_total as f64);
        let start = Instant::now();
        let (store, report) =
            match Store::open_durable(StoreConfig::default(), &dir, WalOptions::default()) {
                Ok(x) => x,
                Err(e) => panic!("{e}"),
            };
        replay.push(report.wal_samples as f64 / start.elapsed().as_secs_f64());
        assert_eq!(report.wal_samples as f64, samples);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
    let (m, w) = (median(mem), median(wal));
    println!(
        "ingest of {SCRAPES} scrapes x {SERIES} series ({BATCH} samples per append), median of {RUNS} alternating runs:"
    );
    println!("  memory only            {m:>12.0} samples/s");
    println!("  with write-ahead log   {w:>12.0} samples/s");
    println!("  ratio (WAL / memory)   {:>12.2}", w / m);
    println!(
        "  replay at open         {:>12.0} samples/s",
        median(replay)
    );
    println!(
        "  WAL bytes per sample   {:>12.2} (series records included)",
        median(per_sample)
    );
}
