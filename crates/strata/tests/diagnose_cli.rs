//! `strata diagnose` against the real `strata sim`: cache thrash is named with its evidence
//! (exit 2, a page), a healthy engine gives no finding (exit 0). Cache thrash runs at 10×
//! so the cache fills inside the window; healthy runs in real time.

mod live;

use std::process::Output;

use live::{sim, strata};

/// Diagnoses a simulator running `scenario` at `speed` × real time over 8 s, after 3 s of warm-up.
fn diagnose(scenario: &str, speed: &str) -> (Output, String) {
    let (_sim, engine, gpu) = sim(&["--scenario", scenario, "--speed", speed]);
    // An engine that has been up a while: the simulated GPU's activity ramps up over its
    // first seconds while requests already run, which reads as tensor cores idle under load.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let out = strata()
        .args(["diagnose", "--engine", &engine, "--gpu", &gpu])
        .args(["--window", "8s", "--every", "1s"])
        .output()
        .expect("run strata diagnose");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, text)
}

#[test]
fn cache_thrash_is_named_with_evidence_and_healthy_is_quiet() {
    let (out, text) = diagnose("cache-thrash", "10");
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

    let (out, text) = diagnose("healthy", "1");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("no finding"), "{text}");
}
