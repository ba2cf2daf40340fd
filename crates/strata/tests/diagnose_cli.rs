//! `strata diagnose` against a fresh `strata sim`, diagnosed at once: cache thrash is named
//! with its evidence (exit 2, a page), a healthy engine gives no finding (exit 0) although
//! its simulated GPUs ramp up after the first requests (a pattern must hold over half the
//! window). Cache thrash runs at 20× so the cache fills inside the window; healthy runs in
//! real time. `--slo` reports a configured profile over the window.

use testkit::live;

use std::process::Output;

use live::{sim, strata};

/// Diagnoses a simulator started just now, running `scenario` at `speed` × real time,
/// over 10 s; `extra` goes to `strata diagnose`.
fn diagnose(scenario: &str, speed: &str, extra: &[&str]) -> (Output, String) {
    let (_sim, engine, gpu) = sim(&["--scenario", scenario, "--speed", speed]);
    let out = strata()
        .args(["diagnose", "--engine", &engine, "--gpu", &gpu])
        .args(["--window", "10s", "--every", "1s"])
        .args(extra)
        .output()
        .expect("run strata diagnose");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, text)
}

#[test]
fn cache_thrash_is_named_with_evidence_and_a_fresh_healthy_engine_is_quiet() {
    let (out, text) = diagnose("cache-thrash", "20", &[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("cache_thrash"), "{text}");
    assert!(text.contains("Cache thrash"), "{text}");
    assert!(
        text.contains("evidence: ") && text.contains("action: "),
        "{text}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("strata.toml");
    std::fs::write(
        &config,
        "[[slo]]\nname = \"strict\"\nttft_p95 = \"1ms\"\nitl_p95 = \"10ms\"\n",
    )
    .expect("write config");
    let config = config.display().to_string();
    let (out, text) = diagnose("healthy", "1", &["--config", &config, "--slo", "strict"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("no finding"), "{text}");
    // No request gets its first token within 1 ms: the TTFT SLI misses all of them.
    assert!(
        text.contains("slo ttft: 100.00 % missed over the window, OVER its budget of 5.00 %"),
        "{text}"
    );
}

#[test]
fn an_unknown_slo_profile_is_an_error_that_lists_the_known_ones() {
    let out = strata()
        .args([
            "diagnose",
            "--engine",
            "http://127.0.0.1:9/metrics",
            "--slo",
            "nope",
        ])
        .output()
        .expect("run strata diagnose");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("unknown SLO profile \"nope\"") && err.contains("chat, rag, code"),
        "{err}"
    );
}
