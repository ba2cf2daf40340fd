//! Ingest, bytes per sample and dashboard-query latency of Strata's store against a real
//! Prometheus and a real VictoriaMetrics holding the same data, measured in the same run
//! (medians, ratios).
//! Run: `cargo bench -p tsdb --bench store_query` (peers: Debian's `prometheus` and
//! `victoria-metrics`; a missing one is skipped).
//!
//! Ingest: samples per CPU-second of the whole process. Strata — `Store::append` in
//! scrape order (one call per timestamp with that timestamp's sample of every series of a
//! kind), into a store opened with its
//! write-ahead log (`Store::open_durable`, default `WalOptions`, as `strata up` opens it),
//! the final fsync included; memory only is shown beside it. Prometheus and
//! VictoriaMetrics — the CPU their process spends taking the same samples over
//! remote_write (snappy protobuf from Strata's own sink encoder, 200 series per request),
//! VictoriaMetrics' flush of its buffers into parts (`/internal/force_flush`) included,
//! its later background merge not (reported on its own).
//!
//! Bytes per sample: Strata — encoded chunk bytes (`StoreStats::bytes`, no per-chunk struct
//! overhead, no index); Prometheus — the chunk files of a TSDB snapshot taken with the head
//! (per-chunk framing included, no index); VictoriaMetrics — its `data/` directory after
//! `/internal/force_merge` has finished (timestamps, values, block headers and metaindex of
//! every part), its `indexdb/` reported apart per series.
//!
//! Queries, wall time: the time of an HTTP GET over loopback (keep-alive client), parsing,
//! evaluation, JSON encoding and reading the whole body (not decoded), against Strata's own
//! Prometheus API (`node::api`, served in this process over the same store), Prometheus and
//! VictoriaMetrics (no response cache, no latency offset). Prometheus is asked with a new
//! HTTP/1.0 connection per query (its test helper; loopback connect is ~0.1 ms). Strata's
//! in-process time (parse, evaluate, `serde_json` encode) is shown beside. Queries, CPU
//! time (less disturbed by other load on the machine than wall time): Strata's in-process
//! evaluation; the peers' whole process over their HTTP requests. CPU time: Strata's, the
//! process' CPU clock (every thread, those that have exited included: a large range query
//! spreads over worker threads that end with it); the peers', the sum of every live thread's
//! time on CPU (`/proc/PID/task/*/schedstat`), ingest included.
//! Strata's ingest runs `INGEST_RUNS` times each way, the median reported; the peers'
//! once (one instance, one load).

/// The allocator of the `strata` binary, so the store and its API run as they do there.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "store_query/peers.rs"]
mod peers;

use std::sync::Arc;
use std::time::Instant;

use peers::{Http, Victoria, cpu_secs, pid_with_arg};
use testkit::prometheus::{BUCKETS, Prometheus, Rng, Series, histogram, secs};
use tsdb::promql::{Engine, EngineConfig};
use tsdb::{SampleRef, Store, StoreConfig, WalOptions};

const STEP: i64 = 5_000;
const POINTS: i64 = 720; // 1 h at 5 s
/// Strata's ingest runs (each mode); the median is reported.
const INGEST_RUNS: usize = 3;

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

/// Appends every series of `data` in scrape order.
fn ingest(store: &Store, data: &[Series]) {
    type Prepared<'a> = (String, Vec<(String, String)>, &'a Series);
    let prepared: Vec<Prepared> = data
        .iter()
        .map(|s| {
            let (name, labels) = s.name_and_labels();
            (name, labels, s)
        })
        .collect();
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
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// What [`timed`] measured: the median wall time and the mean CPU time per call, ms.
#[derive(Clone, Copy)]
struct Timed {
    wall: f64,
    cpu: f64,
}

/// Times `runs` calls after one warm-up call: wall clock, and the CPU time process `pid`
/// spent over them; `None` if any call failed.
fn timed(runs: usize, pid: &str, mut f: impl FnMut() -> Result<(), String>) -> Option<Timed> {
    if let Err(e) = f() {
        eprintln!("  query failed: {e}");
        return None;
    }
    let mut times = Vec::new();
    let cpu = cpu_secs(pid);
    for _ in 0..runs {
        let t = Instant::now();
        f().ok()?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Some(Timed {
        wall: median(times),
        cpu: (cpu_secs(pid) - cpu) * 1000.0 / runs as f64,
    })
}

/// One row of the result table: Strata, Prometheus, VictoriaMetrics.
struct Row {
    what: String,
    strata: Option<f64>,
    prom: Option<f64>,
    vm: Option<f64>,
    /// Shown in the row's last column (Strata's in-process time, for query rows).
    note: String,
}

impl Row {
    fn new(
        what: impl Into<String>,
        strata: Option<f64>,
        prom: Option<f64>,
        vm: Option<f64>,
    ) -> Row {
        Row {
            what: what.into(),
            strata,
            prom,
            vm,
            note: String::new(),
        }
    }
}

fn print_table(rows: &[Row]) {
    let cell = |v: Option<f64>| match v {
        Some(v) if v >= 1000.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.3}"),
        None => "–".into(),
    };
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "–".into(),
    };
    println!(
        "\n| | Strata | Prometheus | VictoriaMetrics | Strata / Prometheus | Strata / VictoriaMetrics | |"
    );
    println!("|---|--:|--:|--:|--:|--:|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.what,
            cell(r.strata),
            cell(r.prom),
            cell(r.vm),
            ratio(r.strata, r.prom),
            ratio(r.strata, r.vm),
            r.note
        );
    }
}

/// Series in a query answer's `data.result`.
fn result_len(body: &[u8]) -> usize {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["data"]["result"].as_array().map(Vec::len))
        .unwrap_or(0)
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
    let total_samples: f64 = kinds.iter().map(|(_, d)| d.len() as f64).sum::<f64>() * POINTS as f64;
    let per_sample =
        |bytes: usize, data: &[Series]| bytes as f64 / (data.len() as f64 * POINTS as f64);
    let me = std::process::id().to_string();
    let mut rows = Vec::new();

    // Strata, memory only (for comparison with earlier runs) and with its write-ahead log,
    // alternating, INGEST_RUNS times each; the last durable store answers the queries.
    let wal_dir = std::env::temp_dir().join(format!("tsdb-store-query-{me}"));
    let (mut mem_rates, mut wal_rates, mut wall_rates) = (Vec::new(), Vec::new(), Vec::new());
    let mut kept = None;
    for _ in 0..INGEST_RUNS {
        let (mem, _) = Store::open(StoreConfig::default());
        let cpu = cpu_secs(&me);
        kinds.iter().for_each(|(_, d)| ingest(&mem, d));
        mem_rates.push(total_samples / (cpu_secs(&me) - cpu));
        drop(mem);
        let _ = std::fs::remove_dir_all(&wal_dir);
        drop(kept.take());
        let store =
            match Store::open_durable(StoreConfig::default(), &wal_dir, WalOptions::default()) {
                Ok((s, _)) => s,
                Err(e) => panic!("open_durable: {e}"),
            };
        let (cpu, start) = (cpu_secs(&me), Instant::now());
        let mut bytes = Vec::new();
        for (_, data) in kinds {
            let before = store.stats().bytes;
            ingest(&store, data);
            bytes.push(per_sample(store.stats().bytes - before, data));
        }
        if let Err(e) = store.flush() {
            panic!("WAL flush: {e}");
        }
        wal_rates.push(total_samples / (cpu_secs(&me) - cpu));
        wall_rates.push(total_samples / start.elapsed().as_secs_f64());
        kept = Some((store, bytes));
    }
    let Some((store, ours)) = kept else {
        panic!("no ingest run");
    };
    let store = Arc::new(store);
    let (mem_rate, wal_rate) = (median(mem_rates.clone()), median(wal_rates.clone()));
    println!(
        "strata ingest of {total_samples} samples, per CPU-second: memory only {mem_rates:.0?}, with WAL {wal_rates:.0?} (wall: {wall_rates:.0?}/s); WAL {} bytes",
        store.stats().wal.bytes_written
    );

    // Prometheus.
    let prom = Prometheus::start();
    let mut theirs = vec![None; kinds.len()];
    let mut prom_cpu = None;
    let prom_pid = prom
        .as_ref()
        .and_then(|_| pid_with_arg(&format!("tsdb-prom-{me}-")));
    if let Some(p) = &prom {
        let pid = prom_pid.clone();
        let (mut spent, mut before) = (0.0, 0);
        for (i, (_, data)) in kinds.iter().enumerate() {
            let cpu = pid.as_deref().map(cpu_secs).unwrap_or(0.0);
            p.remote_write(data);
            spent += pid.as_deref().map(cpu_secs).unwrap_or(0.0) - cpu;
            match p.snapshot_chunk_bytes() {
                Ok(total) => {
                    theirs[i] = Some(per_sample(total.saturating_sub(before) as usize, data));
                    before = total;
                }
                Err(e) => eprintln!("prometheus snapshot failed: {e}"),
            }
        }
        prom_cpu = pid.map(|_| total_samples / spent);
    }

    // VictoriaMetrics.
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => Arc::new(rt),
        Err(e) => panic!("tokio runtime: {e}"),
    };
    let vm = Victoria::start(rt.clone());
    let mut vms = vec![None; kinds.len()];
    let mut vm_cpu = None;
    if let Some(v) = &vm {
        let pid = v.pid();
        let (mut spent, mut merge_cpu, mut before) = (0.0, 0.0, 0);
        for (i, (_, data)) in kinds.iter().enumerate() {
            let cpu = cpu_secs(&pid);
            if let Err(e) = v.remote_write(data) {
                panic!("VictoriaMetrics: {e}");
            }
            let mid = cpu_secs(&pid);
            if let Err(e) = v.force_merge() {
                panic!("VictoriaMetrics: {e}");
            }
            spent += mid - cpu;
            merge_cpu += cpu_secs(&pid) - mid;
            let (data_bytes, _) = v.disk_bytes();
            vms[i] = Some(per_sample(data_bytes.saturating_sub(before) as usize, data));
            before = data_bytes;
        }
        vm_cpu = Some(total_samples / spent);
        let (data_bytes, index_bytes) = v.disk_bytes();
        let series: usize = kinds.iter().map(|(_, d)| d.len()).sum();
        println!(
            "victoria-metrics: data/ {data_bytes} bytes, indexdb/ {index_bytes} bytes ({:.0} per series); forced merges took {merge_cpu:.2} CPU-s",
            index_bytes as f64 / series as f64
        );
    }
    rows.push(Row {
        note: format!("memory only: {mem_rate:.0}"),
        ..Row::new(
            "ingest, samples per CPU-second (higher is better)",
            Some(wal_rate),
            prom_cpu,
            vm_cpu,
        )
    });
    for (((kind, _), o), (p, v)) in kinds.iter().zip(&ours).zip(theirs.iter().zip(&vms)) {
        rows.push(Row::new(format!("bytes/sample, {kind}"), Some(*o), *p, *v));
    }

    // Queries.
    let strata_http = peers::serve_strata(rt.clone(), store.clone());
    let engine = Engine::new(store, EngineConfig::default());
    let (start, end) = (base + 600_500, base + 3_600_500);
    let queries = [
        "sum(rate(vllm:generation_tokens_total[1m]))",
        "sum by (gpu) (rate(vllm:generation_tokens_total[5m]))",
        "histogram_quantile(0.95, sum(rate(vllm:time_to_first_token_seconds_bucket[5m])) by (le))",
        "histogram_quantile(0.99, sum by (model, le) (rate(vllm:time_to_first_token_seconds_bucket[5m])))",
        "avg by (model) (vllm:gpu_cache_usage_perc) * 100",
    ];
    let http_timed =
        |h: Option<&Http>, pid: Option<String>, runs, path: &str, params: &[(&str, String)]| {
            let (h, pid) = (h?, pid?);
            timed(runs, &pid, || h.get(path, params).map(drop))
        };
    let answers = |path: &str, params: &[(&str, String)]| {
        let n = |h: Option<&Http>| {
            h.and_then(|h| h.get(path, params).ok())
                .map_or("–".to_string(), |b: Vec<u8>| result_len(&b).to_string())
        };
        let p = prom
            .as_ref()
            .and_then(|p| p.query_raw(path, params).ok())
            .map_or("–", |_| "ok");
        format!(
            "series: strata {} | prometheus {p} | victoria-metrics {}",
            n(strata_http.as_ref()),
            n(vm.as_ref().map(|v| &v.http))
        )
    };
    let (mut walls, mut cpus) = (Vec::new(), Vec::new());
    for (range, runs) in [(true, 5), (false, 21)] {
        for q in queries {
            let (path, params) = if range {
                (
                    "/api/v1/query_range",
                    vec![
                        ("query", q.to_string()),
                        ("start", secs(start)),
                        ("end", secs(end)),
                        ("step", secs(STEP)),
                    ],
                )
            } else {
                (
                    "/api/v1/query",
                    vec![("query", q.to_string()), ("time", secs(end))],
                )
            };
            let in_process = timed(runs, &me, || {
                let v = if range {
                    engine.range(q, start, end, STEP)
                } else {
                    engine.instant(q, end)
                };
                let v = v.map_err(|e| e.to_string())?;
                serde_json::to_vec(&v).map(drop).map_err(|e| e.to_string())
            });
            let ours = http_timed(strata_http.as_ref(), Some(me.clone()), runs, path, &params);
            let theirs = prom
                .as_ref()
                .zip(prom_pid.as_deref())
                .and_then(|(p, pid)| timed(runs, pid, || p.query_raw(path, &params).map(drop)));
            let mut vm_params = params.clone();
            vm_params.push(("nocache", "1".into()));
            let vms = http_timed(
                vm.as_ref().map(|v| &v.http),
                vm.as_ref().map(Victoria::pid),
                runs,
                path,
                &vm_params,
            );
            let kind = if range { "range" } else { "instant" };
            println!("{kind} {q}: {}", answers(path, &vm_params));
            let wall = |t: Option<Timed>| t.map(|t| t.wall);
            let cpu = |t: Option<Timed>| t.map(|t| t.cpu);
            walls.push(Row {
                note: format!(
                    "in process {}",
                    wall(in_process).map_or("–".into(), |t| format!("{t:.1} ms"))
                ),
                ..Row::new(
                    format!("{kind}, wall ms (median of {runs}), `{q}`"),
                    wall(ours),
                    wall(theirs),
                    wall(vms),
                )
            });
            cpus.push(Row::new(
                format!("{kind}, CPU ms per query (mean of {runs}), `{q}`"),
                cpu(in_process),
                cpu(theirs),
                cpu(vms),
            ));
        }
    }
    rows.extend(walls);
    rows.extend(cpus);
    println!(
        "range queries: {} min at 5 s steps; instant queries at the end of that range",
        (end - start) / 60_000
    );
    print_table(&rows);
    let _ = std::fs::remove_dir_all(&wal_dir);
}
