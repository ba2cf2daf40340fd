//! Runs `promqltest` scripts (Prometheus' PromQL test format) over Strata's evaluator: the
//! project's own scripts in `tests/promqltest/` always, and Prometheus' upstream
//! `promql/promqltest/testdata/*.test` when `PROMQLTEST_DIR` names a directory holding them
//! (they are not vendored: licence and size). The upstream run prints per-file pass,
//! failure and unsupported counts and fails only if a script cannot be read.

mod runner;

use std::path::Path;

fn scripts(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .map(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
            (name.unwrap_or_default(), text)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn own_scripts_pass() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/promqltest");
    let all = scripts(&dir);
    assert!(!all.is_empty(), "no .test scripts in {}", dir.display());
    for (name, text) in all {
        let report = runner::run(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            report.failed.is_empty() && report.unsupported.is_empty(),
            "{name}: {:#?}",
            report
        );
        assert!(report.passed > 0, "{name} has no eval");
    }
}

#[test]
fn upstream_scripts() {
    let Some(dir) = std::env::var_os("PROMQLTEST_DIR") else {
        println!(
            "skipped: set PROMQLTEST_DIR to a directory of Prometheus' promql/promqltest/testdata/*.test files"
        );
        return;
    };
    let verbose = std::env::var_os("PROMQLTEST_VERBOSE").is_some();
    let (mut p, mut f, mut u) = (0, 0, 0);
    println!(
        "{:<28} {:>6} {:>6} {:>11}",
        "file", "passed", "failed", "unsupported"
    );
    for (name, text) in scripts(Path::new(&dir)) {
        let r = runner::run(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        println!(
            "{name:<28} {:>6} {:>6} {:>11}",
            r.passed,
            r.failed.len(),
            r.unsupported.len()
        );
        if verbose {
            for (line, expr, why) in &r.failed {
                println!("  FAIL {name}:{line}: {expr}\n       {why}");
            }
            for (line, expr, why) in &r.unsupported {
                println!("  UNSUPPORTED {name}:{line}: {expr}\n       {why}");
            }
        }
        (p, f, u) = (p + r.passed, f + r.failed.len(), u + r.unsupported.len());
    }
    println!("{:<28} {p:>6} {f:>6} {u:>11}", "total");
}
