//! Hardware check for the direct NVML collector: prints the collector's status, then one
//! table row per GPU every `--interval-ms` for `--count` iterations, and each error once.
//!
//! ```text
//! cargo run --release -p sources --example nvml_dump -- [--interval-ms 1000] [--count 5] [--reduced]
//! ```

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use sources::gpu::FieldSet;
use sources::gpu::nvml::NvmlCollector;
use sources::{Point, now_ms};

/// The columns: header, canonical signal, scale applied, decimals.
const COLUMNS: [(&str, &str, f64, usize); 23] = [
    ("util%", "gpu:util_ratio", 100.0, 0),
    ("mcpy%", "gpu:mem_copy_util_ratio", 100.0, 0),
    ("gr%", "gpu:gr_engine_active_ratio", 100.0, 1),
    ("sm%", "gpu:sm_active_ratio", 100.0, 1),
    ("occ%", "gpu:sm_occupancy_ratio", 100.0, 1),
    ("tens%", "gpu:tensor_active_ratio", 100.0, 1),
    ("dram%", "gpu:dram_active_ratio", 100.0, 1),
    ("usedGiB", "gpu:fb_used_bytes", 1.0 / 1073741824.0, 2),
    ("freeGiB", "gpu:fb_free_bytes", 1.0 / 1073741824.0, 2),
    ("W", "gpu:power_watts", 1.0, 1),
    ("kJ", "gpu:energy_joules_total", 1e-3, 1),
    ("C", "gpu:temp_celsius", 1.0, 0),
    ("memC", "gpu:memory_temp_celsius", 1.0, 0),
    ("smMHz", "gpu:sm_clock_hz", 1e-6, 0),
    ("memMHz", "gpu:mem_clock_hz", 1e-6, 0),
    ("thr", "gpu:throttle_reasons", 1.0, 0),
    ("pcieRxMB/s", "gpu:pcie_rx_bytes_per_second", 1e-6, 1),
    ("pcieTxMB/s", "gpu:pcie_tx_bytes_per_second", 1e-6, 1),
    ("replays", "gpu:pcie_replays_total", 1.0, 0),
    ("nvlRxGB/s", "gpu:nvlink_rx_bytes_per_second", 1e-9, 2),
    ("nvlTxGB/s", "gpu:nvlink_tx_bytes_per_second", 1e-9, 2),
    ("xid", "gpu:xid_last", 1.0, 0),
    ("eccUE", "gpu:ecc_uncorrected_errors_total", 1.0, 0),
];

/// Command-line options.
struct Args {
    interval: Duration,
    count: u32,
    fields: FieldSet,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        interval: Duration::from_millis(1000),
        count: 5,
        fields: FieldSet::Full,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a number"))
        };
        match arg.as_str() {
            "--interval-ms" => args.interval = Duration::from_millis(number("--interval-ms")?),
            "--count" => {
                args.count = u32::try_from(number("--count")?).map_err(|e| e.to_string())?
            }
            "--reduced" => args.fields = FieldSet::Reduced,
            "-h" | "--help" => {
                return Err("usage: nvml_dump [--interval-ms N] [--count N] [--reduced]".into());
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

/// `HH:MM:SS.mmm` (UTC) of a Unix-epoch millisecond timestamp, to line rows up with nvidia-smi.
fn time_of_day(ts_ms: i64) -> String {
    let ms = ts_ms.rem_euclid(86_400_000);
    let (h, m, s) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60);
    format!("{h:02}:{m:02}:{s:02}.{:03}", ms % 1000)
}

fn cell(points: &[&Point], name: &str, scale: f64, decimals: usize) -> String {
    match points.iter().find(|p| p.name == name) {
        None => "-".into(),
        Some(p) if name == "gpu:throttle_reasons" => format!("{:#x}", p.value as u64),
        Some(p) => format!("{:.*}", decimals, p.value * scale),
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let hostname = std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    let mut collector = match NvmlCollector::open(&hostname) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", collector.status());

    let header: Vec<String> = ["utc", "gpu", "collect_ms"]
        .iter()
        .map(|s| s.to_string())
        .chain(COLUMNS.iter().map(|c| c.0.to_string()))
        .collect();
    println!("{}", header.join("\t"));
    for i in 0..args.count {
        let started = Instant::now();
        let ts = now_ms();
        let collection = collector.collect(args.fields, ts);
        let took = started.elapsed();
        for e in &collection.errors {
            println!("# error: {e}");
        }
        let mut by_gpu: BTreeMap<u32, Vec<&Point>> = BTreeMap::new();
        for p in &collection.points {
            let gpu = p
                .label("gpu")
                .and_then(|g| g.parse().ok())
                .unwrap_or(u32::MAX);
            by_gpu.entry(gpu).or_default().push(p);
        }
        for (gpu, points) in &by_gpu {
            if i == 0
                && let Some(p) = points.first()
            {
                println!("# gpu {gpu} labels: {:?}", p.labels);
            }
            let mut row = vec![
                time_of_day(ts),
                gpu.to_string(),
                format!("{:.1}", took.as_secs_f64() * 1e3),
            ];
            row.extend(COLUMNS.iter().map(|(_, n, s, d)| cell(points, n, *s, *d)));
            println!("{}", row.join("\t"));
        }
        if i + 1 < args.count {
            std::thread::sleep(args.interval.saturating_sub(took));
        }
    }
    ExitCode::SUCCESS
}
