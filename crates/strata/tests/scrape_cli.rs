//! `strata scrape` and `strata config` as a user runs them: the real binary, real files,
//! a real HTTP server on loopback.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use live::serve_sample;
use testkit::live;

/// Runs strata in its own empty directory (a strata.toml left in a shared temp dir would be
/// picked up).
fn strata(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .env_remove("STRATA_CONFIG")
        .current_dir(dir.path())
        .output()
        .expect("run strata")
}

fn samples() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../expo/tests/samples"
    ))
}

fn sample(name: &str) -> String {
    samples().join(name).to_string_lossy().into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn every_reference_sample_shows_its_canonical_signals() {
    let cases = [
        (
            "vllm-0.10.2.prom",
            "vLLM 0.10-0.11",
            "llm:kv_cache_usage_ratio             42.0 %",
            "llm:requests_swapped",
        ),
        (
            "vllm-0.8.5-v0.prom",
            "vLLM V0",
            "← vllm:gpu_cache_usage_perc",
            "llm:batch_size",
        ),
        (
            "tgi-3.3.7.prom",
            "TGI",
            "← tgi_queue_size",
            "llm:ttft_seconds",
        ),
        (
            "sglang-0.5.23.prom",
            "SGLang 0.5.10+",
            "← sglang:num_retracted_requests_total",
            "llm:requests_swapped",
        ),
        (
            "llamacpp-server-captured.prom",
            "llama.cpp server",
            "← llamacpp:requests_deferred",
            "llm:kv_cache_usage_ratio",
        ),
        (
            "dcgm-4.5.3-default.prom",
            "DCGM exporter",
            "strata generate dcgm-counters",
            "",
        ),
        (
            "dcgm-4.5.3-mig-old-namespace.prom",
            "DCGM exporter",
            "MIG slice 2 (3g.40gb)",
            "",
        ),
    ];
    for (file, title, mapped, not_exposed) in cases {
        let o = strata(&["scrape", &sample(file)]);
        let out = stdout(&o);
        assert!(o.status.success(), "{file}: {}", stderr(&o));
        assert!(out.contains(title), "{file}: no {title}\n{out}");
        assert!(out.contains(mapped), "{file}: no {mapped:?}\n{out}");
        if !not_exposed.is_empty() {
            let line = out
                .lines()
                .find(|l| l.trim_start().starts_with(not_exposed))
                .unwrap_or("");
            assert!(
                line.contains("not exposed by"),
                "{file}: {not_exposed} should be explained\n{out}"
            );
        }
    }
}

#[test]
fn several_sources_at_once_and_json() {
    let o = strata(&[
        "scrape",
        "--json",
        &sample("vllm-0.10.2.prom"),
        &sample("tgi-3.3.7.prom"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("valid JSON");
    let arr = v.as_array().expect("array");
    assert_eq!(arr.len(), 2);
    assert_eq!(arr[0]["samples"], 311);
    assert_eq!(arr[0]["view"]["dialect"], "vllm");
    assert_eq!(arr[1]["view"]["dialect"], "tgi");
    let signals = arr[1]["view"]["signals"].as_array().expect("signals");
    let ttft = signals
        .iter()
        .find(|s| s[0] == "llm:ttft_seconds")
        .expect("ttft");
    assert_eq!(ttft[1]["status"], "not_exposed");
}

#[test]
fn garbage_empty_and_missing_inputs_fail_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tmp");
    let garbage = dir.path().join("garbage.bin");
    std::fs::write(
        &garbage,
        b"\x00\x01\x02 this is { not metrics\n<html><body>502 Bad Gateway</body></html>\n",
    )
    .expect("write");
    let empty = dir.path().join("empty.prom");
    std::fs::write(&empty, b"# just a comment\n").expect("write");

    let o = strata(&["scrape", garbage.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no metrics could be read"),
        "{}",
        stderr(&o)
    );

    let o = strata(&["scrape", empty.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no metrics in the body"),
        "{}",
        stderr(&o)
    );

    let o = strata(&["scrape", "/nonexistent/metrics.prom"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("cannot read /nonexistent/metrics.prom"),
        "{}",
        stderr(&o)
    );

    // One bad source does not hide the good one.
    let o = strata(&["scrape", &sample("tgi-3.3.7.prom"), "/nonexistent/x"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("← tgi_queue_size"));
}

#[test]
fn partly_bad_files_keep_the_good_lines_and_list_the_bad_ones() {
    let dir = tempfile::tempdir().expect("tmp");
    let f = dir.path().join("mixed.prom");
    std::fs::write(&f, "vllm:num_requests_waiting{model_name=\"m\"} 4\nthis line is wrong\nvllm:num_requests_running{model_name=\"m\"} 2\n").expect("write");
    let o = strata(&["scrape", f.to_str().expect("utf8")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("1 line(s) skipped"), "{out}");
    assert!(out.contains("skipped line 2:"), "{out}");
    assert!(out.contains("← vllm:num_requests_waiting"), "{out}");
}

#[test]
fn standard_input_is_a_source() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["scrape", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let body = std::fs::read(sample("llamacpp-server-captured.prom")).expect("sample");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&body)
        .expect("write");
    let o = child.wait_with_output().expect("wait");
    assert!(o.status.success());
    assert!(stdout(&o).contains("llama.cpp server"));
}

#[test]
fn nvml_without_a_driver_says_so_and_exits_1() {
    if std::path::Path::new("/dev/nvidiactl").exists() {
        return; // a GPU machine: covered by the hardware run in the NVML notes
    }
    let o = strata(&["scrape", "nvml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("NVML not available:"), "{}", stdout(&o));
}

#[test]
fn infiniband_and_kubelet_report_their_layer_and_never_fail_when_absent() {
    let o = strata(&["scrape", "infiniband", "kubelet"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    assert!(out.contains("== infiniband"), "{out}");
    assert!(out.contains("== kubelet"), "{out}");
    if std::path::Path::new("/sys/class/infiniband")
        .read_dir()
        .is_ok_and(|mut d| d.next().is_none())
        || !std::path::Path::new("/sys/class/infiniband").exists()
    {
        assert!(out.contains("fabric not visible from this node"), "{out}");
    } else {
        assert!(out.contains("fabric:ib_port_state"), "{out}");
    }
    if !std::path::Path::new("/var/lib/kubelet/pod-resources/kubelet.sock").exists() {
        assert!(out.contains("kubelet: not in Kubernetes"), "{out}");
    }
}

#[test]
fn version_help_and_config_commands() {
    let o = strata(&["--version"]);
    let v = stdout(&o);
    assert!(
        v.starts_with(concat!("strata ", env!("CARGO_PKG_VERSION"), " (commit ")),
        "{v}"
    );
    let o = strata(&["--help"]);
    let help = stdout(&o);
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        commands,
        [
            "scrape",
            "config",
            "diagnose",
            "cardinality",
            "sim",
            "up",
            "agent",
            "demo",
            "gateway",
            "bench",
            "cost",
            "generate",
            "top",
            "help"
        ],
        "{help}"
    );

    let o = strata(&["config", "example"]);
    assert!(stdout(&o).contains("[[target]]"));

    let dir = tempfile::tempdir().expect("tmp");
    let bad = dir.path().join("strata.toml");
    std::fs::write(&bad, "[scrape]\nprofil = \"steady\"\n").expect("write");
    let o = strata(&["--config", bad.to_str().expect("utf8"), "config", "check"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("strata.toml:2:1: unknown field `profil`"), "{e}");

    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "[[target]]\nname = \"v\"\nurl = \"http://127.0.0.1:1/metrics\"\n",
    )
    .expect("write");
    let o = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["config", "check"])
        .env("STRATA_CONFIG", &good)
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("1 target(s)"));
}

#[test]
fn live_url_dead_url_and_config_targets() {
    let url = serve_sample();
    let o = strata(&["scrape", &url]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("vLLM 0.10-0.11 · engine vllm@127.0.0.1:")
            && stdout(&o).contains("· 311 samples"),
        "{}",
        stdout(&o)
    );

    let o = strata(&["scrape", "--timeout", "1s", "http://127.0.0.1:1/metrics"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cannot reach"), "{}", stderr(&o));

    let dir = tempfile::tempdir().expect("tmp");
    let cfg = dir.path().join("strata.toml");
    std::fs::write(
        &cfg,
        format!("[nvml]\nenabled = \"off\"\n[[target]]\nname = \"vllm\"\nurl = \"{url}\"\n"),
    )
    .expect("write");
    let o = strata(&["--config", cfg.to_str().expect("utf8"), "scrape", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v[0]["view"]["version"], "0.10-0.11");

    // A URL without a path means /metrics, as in Prometheus (the server 404s on `/`).
    let bare = url.trim_end_matches("/metrics");
    let o = strata(&["scrape", "--json", bare]);
    assert!(o.status.success(), "{bare}: {}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v[0]["view"]["dialect"], "vllm", "{v}");
}

#[test]
fn watch_refreshes_until_stopped() {
    let url = serve_sample();
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            "scrape",
            "--watch",
            "200ms",
            "--json",
            &url,
            &sample("tgi-3.3.7.prom"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let started = Instant::now();
    let (mut files, mut urls) = (0, 0);
    while started.elapsed() < Duration::from_secs(20) && (files < 3 || urls < 1) {
        let Some(Ok(line)) = lines.next() else { break };
        let v: serde_json::Value = serde_json::from_str(&line).expect("one JSON object per line");
        if v["view"]["dialect"] == "tgi" {
            files += 1;
        }
        if v["view"]["dialect"] == "vllm" {
            urls += 1;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        files >= 3 && urls >= 1,
        "file refreshed {files} times, url {urls} times"
    );
}
