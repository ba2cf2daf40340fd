//! Throughput of the parser and writer against the `prometheus-parse` 0.2.5 baseline.
//!
//! `cargo bench -p expo` (plain `main`, no criterion). For every reference sample and for a
//! ~10 MB synthetic body (all samples concatenated, each copy relabelled with its own
//! `instance`), each measurement repeats the work until it has run for at least ~20 ms, and
//! the median MB/s over several measurements is reported. MB = 10^6 bytes of input (of output
//! for the writer).

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use expo::{Event, Format, Parser, Writer, parse};

const MIN_MEASURE: Duration = Duration::from_millis(20);

/// Median MB/s of `f` over `reps` measurements, `bytes` processed per call.
fn measure(bytes: usize, reps: usize, mut f: impl FnMut() -> usize) -> f64 {
    // Warm up and size the inner loop.
    let start = Instant::now();
    black_box(f());
    let once = start.elapsed().max(Duration::from_nanos(1));
    let iters = (MIN_MEASURE.as_nanos() / once.as_nanos()).clamp(1, 100_000) as usize;
    let mut rates = Vec::with_capacity(reps);
    for _ in 0..reps {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(f());
        }
        let secs = start.elapsed().as_secs_f64();
        rates.push((bytes * iters) as f64 / secs / 1e6);
    }
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

fn stream_samples(body: &str) -> usize {
    Parser::new(body, Format::Prometheus)
        .filter(|e| matches!(e, Ok(Event::Sample(_))))
        .count()
}

fn baseline_samples(body: &str) -> usize {
    let lines = body.lines().map(|l| Ok(l.to_owned()));
    prometheus_parse::Scrape::parse(lines)
        .map(|s| s.samples.len())
        .unwrap_or(0)
}

fn synthetic(samples: &[(String, String)], target: usize) -> String {
    let mut out = String::with_capacity(target + 64 * 1024);
    let mut copy = 0usize;
    while out.len() < target {
        for (_, body) in samples {
            for line in body.lines() {
                if line.starts_with('#') || line.trim().is_empty() {
                    out.push_str(line);
                } else if let Some(brace) = line.find('{') {
                    out.push_str(&line[..=brace]);
                    out.push_str(&format!("instance=\"node-{copy}:9400\","));
                    out.push_str(&line[brace + 1..]);
                } else if let Some(space) = line.find(' ') {
                    out.push_str(&line[..space]);
                    out.push_str(&format!("{{instance=\"node-{copy}:9400\"}}"));
                    out.push_str(&line[space..]);
                } else {
                    out.push_str(line);
                }
                out.push('\n');
            }
        }
        copy += 1;
    }
    out
}

struct Row {
    name: String,
    bytes: usize,
    ours: usize,
    stream: f64,
    parsed: f64,
    base: f64,
    base_samples: usize,
    w_text: f64,
    w_om: f64,
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/samples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/samples")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "prom"))
        .collect();
    files.sort();
    let mut inputs: Vec<(String, String)> = files
        .iter()
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(p).unwrap())
        })
        .collect();
    let all_samples = inputs.clone();
    let big = synthetic(&all_samples, 10_000_000);
    inputs.push(("synthetic-10MB (all, relabelled)".into(), big));
    let quick = std::env::args().any(|a| a == "--quick");
    let reps = if quick { 3 } else { 11 };

    let mut rows = Vec::new();
    for (name, body) in &inputs {
        let bytes = body.len();
        let ours = parse(body, Format::Prometheus).sample_count();
        assert_eq!(stream_samples(body), ours);
        let stream = measure(bytes, reps, || stream_samples(body));
        let parsed = measure(bytes, reps, || {
            parse(body, Format::Prometheus).sample_count()
        });
        let base_reps = if bytes > 1_000_000 { reps.min(5) } else { reps };
        let base = measure(bytes, base_reps, || baseline_samples(body));
        let base_samples = baseline_samples(body);
        let owned = parse(body, Format::Prometheus).to_owned_families();
        let text_len = Writer::render(Format::Prometheus, &owned).len();
        let om_len = Writer::render(Format::OpenMetrics, &owned).len();
        let w_text = measure(text_len, reps, || {
            Writer::render(Format::Prometheus, &owned).len()
        });
        let w_om = measure(om_len, reps, || {
            Writer::render(Format::OpenMetrics, &owned).len()
        });
        rows.push(Row {
            name: name.clone(),
            bytes,
            ours,
            stream,
            parsed,
            base,
            base_samples,
            w_text,
            w_om,
        });
    }

    println!(
        "\nmedian MB/s over {reps} runs (MB = 1e6 bytes); baseline = prometheus-parse 0.2.5 \
         Scrape::parse(lines)\n"
    );
    println!(
        "| input | KB | samples | Parser MB/s | parse() MB/s | baseline MB/s | baseline samples | \
         Parser/base | parse()/base | write 0.0.4 MB/s | write OM MB/s |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for r in &rows {
        println!(
            "| {} | {:.1} | {} | {:.0} | {:.0} | {:.1} | {} | {:.1}x | {:.1}x | {:.0} | {:.0} |",
            r.name,
            r.bytes as f64 / 1000.0,
            r.ours,
            r.stream,
            r.parsed,
            r.base,
            r.base_samples,
            r.stream / r.base,
            r.parsed / r.base,
            r.w_text,
            r.w_om,
        );
    }
}
