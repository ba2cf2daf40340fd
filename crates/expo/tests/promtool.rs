//! `promtool check metrics` accepts what the classic-text writer produces.
//!
//! Runs when `promtool` is on PATH (Debian: `apt-get install prometheus`); skipped otherwise,
//! unless `STRATA_REQUIRE_PEERS=1`, in which case a missing promtool fails the test.

use std::io::Write;
use std::process::{Command, Stdio};

use expo::{Format, MetricType, OwnedExemplar, OwnedFamily, OwnedSample, Writer, parse};

fn s(name: &str, labels: &[(&str, &str)], value: f64) -> OwnedSample {
    OwnedSample::new(name, labels, value)
}

fn fam(name: &str, t: MetricType, help: &str, samples: Vec<OwnedSample>) -> OwnedFamily {
    OwnedFamily {
        name: name.into(),
        metric_type: t,
        help: Some(help.into()),
        unit: None,
        samples,
    }
}

fn families() -> Vec<OwnedFamily> {
    let mut c = s(
        "strata_requests_total",
        &[("model", "llama \"8b\"\\x\ny"), ("code", "200")],
        1027.0,
    );
    c.timestamp_ms = Some(1_700_000_000_123);
    c.exemplar = Some(OwnedExemplar {
        labels: vec![("trace_id".into(), "0af7651916cd43dd8448eb211c80319c".into())],
        value: 1.0,
        timestamp: Some(1.7e9),
    });
    let mut hist = Vec::new();
    for (le, n) in [("0.1", 1.0), ("0.5", 4.0), ("1", 7.0), ("+Inf", 9.0)] {
        hist.push(s(
            "strata_ttft_seconds_bucket",
            &[("model", "m"), ("le", le)],
            n,
        ));
    }
    hist.push(s("strata_ttft_seconds_sum", &[("model", "m")], 3.25));
    hist.push(s("strata_ttft_seconds_count", &[("model", "m")], 9.0));
    hist.push(s("strata_ttft_seconds_created", &[("model", "m")], 1.7e9));
    vec![
        fam(
            "strata_requests",
            MetricType::Counter,
            "Requests seen.\nSecond line \\ backslash.",
            vec![
                c,
                s(
                    "strata_requests_created",
                    &[("model", "m"), ("code", "200")],
                    1.7e9,
                ),
            ],
        ),
        fam(
            "strata_queue_depth",
            MetricType::Gauge,
            "Queue depth.",
            vec![
                s("strata_queue_depth", &[("engine", "vllm")], 3.0),
                s("strata_queue_depth", &[("engine", "tgi")], f64::NAN),
                s(
                    "strata_queue_depth",
                    &[("engine", "sglang")],
                    expo::stale_nan(),
                ),
            ],
        ),
        fam(
            "strata_ttft_seconds",
            MetricType::Histogram,
            "Time to first token.",
            hist,
        ),
        fam(
            "strata_itl_seconds",
            MetricType::Summary,
            "Inter-token latency.",
            vec![
                s("strata_itl_seconds", &[("quantile", "0.5")], 0.012),
                s("strata_itl_seconds", &[("quantile", "0.99")], 0.25),
                s("strata_itl_seconds_sum", &[], 12.5),
                s("strata_itl_seconds_count", &[], 1000.0),
            ],
        ),
        fam(
            "strata_build",
            MetricType::Info,
            "Build information.",
            vec![s(
                "strata_build_info",
                &[("version", "0.1.0"), ("commit", "abc")],
                1.0,
            )],
        ),
        fam(
            "strata_engine_state",
            MetricType::StateSet,
            "Engine state.",
            vec![
                s("strata_engine_state", &[("strata_engine_state", "up")], 1.0),
                s(
                    "strata_engine_state",
                    &[("strata_engine_state", "down")],
                    0.0,
                ),
            ],
        ),
        fam(
            "strata_kv_blocks",
            MetricType::GaugeHistogram,
            "KV blocks in use.",
            vec![
                s("strata_kv_blocks_bucket", &[("le", "100")], 3.0),
                s("strata_kv_blocks_bucket", &[("le", "+Inf")], 5.0),
                s("strata_kv_blocks_gsum", &[], 410.0),
                s("strata_kv_blocks_gcount", &[], 5.0),
            ],
        ),
        fam(
            "strata_misc",
            MetricType::Unknown,
            "Something untyped.",
            vec![
                s("strata_misc", &[], f64::INFINITY),
                s("strata_misc", &[("x", "y")], -1e-300),
            ],
        ),
        // (No `vllm:`-style names here: promtool's linter flags colons, which are valid.)
    ]
}

fn promtool_available() -> bool {
    Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[test]
fn promtool_accepts_classic_text() {
    let text = Writer::render(Format::Prometheus, &families());
    // Our own parser agrees first.
    let exp = parse(&text, Format::Prometheus);
    assert!(exp.errors.is_empty(), "{:?}", exp.errors);
    assert!(!text.contains("trace_id"), "no exemplars in 0.0.4");

    if !promtool_available() {
        if std::env::var("STRATA_REQUIRE_PEERS").as_deref() == Ok("1") {
            panic!(
                "STRATA_REQUIRE_PEERS=1 but `promtool` is not on PATH (apt-get install prometheus)"
            );
        }
        eprintln!("skipping: promtool not on PATH");
        return;
    }
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{report}\n---\n{text}"
    );
    assert!(
        report.trim().is_empty(),
        "promtool lint findings:\n{report}\n---\n{text}"
    );
}
