//! `strata sim` as a user runs it: the real binary on free ports, read back through
//! `strata scrape`, plus the virtual-time and help outputs.

use live::{sim, strata};
use std::time::{Duration, Instant};
use testkit::live;

fn scrape(url: &str) -> String {
    let out = strata()
        .args(["scrape", url])
        .output()
        .expect("run strata scrape");
    let s = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{s}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s
}

#[test]
fn strata_scrape_recognises_every_simulated_dialect_and_the_gpus() {
    let cases = [
        ("vllm", "vLLM v1", "llm:kv_cache_usage_ratio"),
        ("tgi", "TGI", "llm:requests_waiting"),
        ("sglang", "SGLang", "llm:kv_cache_usage_ratio"),
        ("llamacpp", "llama.cpp server", "llm:requests_running"),
    ];
    for (engine, title, signal) in cases {
        let (child, engine_url, gpu_url) = sim(&["--engine", engine, "--speed", "5"]);
        std::thread::sleep(Duration::from_millis(300));
        let e = scrape(&engine_url);
        let g = scrape(&gpu_url);
        drop(child);
        assert!(e.contains(title), "{engine}: {e}");
        assert!(e.contains(signal), "{engine}: {e}");
        assert!(
            g.contains("DCGM exporter") && g.contains("gpu:tensor_active_ratio"),
            "{g}"
        );
    }
}

#[test]
fn vllm_v0_names_on_request() {
    let (child, engine_url, _) = sim(&["--vllm-metrics", "v0"]);
    let e = scrape(&engine_url);
    drop(child);
    assert!(e.contains("vLLM v0"), "{e}");
}

#[test]
fn virtual_time_writes_minutes_of_scrapes_in_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let out = strata()
        .args([
            "sim",
            "--virtual",
            "2m",
            "--scrape-every",
            "10s",
            "--scenario",
            "cache-thrash",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(t0.elapsed() < Duration::from_secs(30));
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let count = |p: &str| {
        files
            .iter()
            .filter(|f| f.to_string_lossy().starts_with(p))
            .count()
    };
    assert_eq!((count("engine-"), count("gpu-")), (12, 12));
    let last = dir.path().join("engine-0000120000.prom");
    let s = scrape(last.to_str().unwrap());
    assert!(s.contains("vLLM v1"), "{s}");
    let reqs = std::fs::read_to_string(dir.path().join("requests.jsonl")).unwrap();
    assert!(reqs.lines().count() > 10 && reqs.contains("\"finish_reason\""));
}

#[test]
fn help_lists_every_scenario_and_bad_flags_are_usage_errors() {
    let out = strata().args(["sim", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for s in [
        "healthy",
        "cache-thrash",
        "compute-bound",
        "thermal-throttle",
        "nccl-stall",
        "nvlink-degraded",
        "token-budget-starvation",
        "proxy-buffering",
        "burst",
    ] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(s)),
            "{s} missing:\n{help}"
        );
    }
    let out = strata()
        .args(["sim", "--scenario", "meltdown"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown scenario `meltdown`"));
}
