//! The web UI in a real browser: Debian's `chromium` driven by `playwright-core`
//! (`tests/browser/ui.mjs`) against a live Strata — `strata up` with its gateway in front of
//! two `strata sim` engines (their GPUs scraped too), the rule packs loaded, and streamed
//! traffic from two tenants. Every page loads without console errors, charts have data, the
//! requests table has rows, the drill-down shows the timeline beside engine and GPU series;
//! light and dark screenshots land in `target/ui-screenshots/`.
//!
//! Needs `node`, `/usr/bin/chromium` and `npm ci` in `tests/browser/` (scripts/test.sh does
//! both); without them the test is skipped, or fails when `STRATA_REQUIRE_PEERS=1`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod live;
use live::{sim, up};

const MODEL: &str = "meta-llama/Llama-3.1-8B-Instruct";

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// What is missing to run the browser test, if anything.
fn missing_peers() -> Vec<String> {
    let mut missing = Vec::new();
    if Command::new("node").arg("--version").output().is_err() {
        missing.push("node (apt-get install nodejs)".to_string());
    }
    if !Path::new("/usr/bin/chromium").exists() {
        missing.push("/usr/bin/chromium (apt-get install chromium)".to_string());
    }
    if !browser_dir().join("node_modules/playwright-core").exists() {
        missing.push("playwright-core (npm ci in crates/strata/tests/browser)".to_string());
    }
    missing
}

fn packs(names: &[&str]) -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/packs");
    names
        .iter()
        .flat_map(|n| ["--rules".to_string(), dir.join(n).display().to_string()])
        .collect()
}

/// Streams chat completions through the gateway from two tenants until `stop`.
fn traffic(gateway: String, stop: Arc<AtomicBool>, done: Arc<AtomicU64>) {
    for worker in 0..3 {
        let (gateway, stop, done) = (gateway.clone(), stop.clone(), done.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let tenant = if worker == 0 {
                "team-search"
            } else {
                "team-chat"
            };
            let mut k = 0u64;
            while !stop.load(Ordering::Relaxed) {
                k += 1;
                let body = format!(
                    r#"{{"model":"{MODEL}","messages":[{{"role":"user","content":"hello {k}"}}],"max_tokens":{},"stream":true}}"#,
                    16 + (k * 7 + worker) % 48
                );
                let sent = client
                    .post(format!("{gateway}/v1/chat/completions"))
                    .header("content-type", "application/json")
                    .header("x-tenant", tenant)
                    .body(body)
                    .send()
                    .await;
                if let Ok(r) = sent
                    && r.bytes().await.is_ok()
                {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_ui_pages_charts_and_request_drilldown_in_chromium() {
    let started = Instant::now();
    let (_a, engine_a, gpu_a) = sim(&["--seed", "1"]);
    let (_b, engine_b, gpu_b) = sim(&["--seed", "2"]);
    let gw_port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let dir = tempfile::tempdir().expect("tempdir");
    let base_of = |metrics: &str| metrics.trim_end_matches("/metrics").to_string();
    let config = format!(
        "[gateway]\nlisten = \"127.0.0.1:{gw_port}\"\nadmin = \"127.0.0.1:0\"\n\n[gateway.tenant]\nheader = \"x-tenant\"\n\n\
         [[gateway.upstream]]\nname = \"sim-a\"\nurl = \"{}\"\nengine = \"vllm\"\n\n\
         [[gateway.upstream]]\nname = \"sim-b\"\nurl = \"{}\"\nengine = \"vllm\"\n",
        base_of(&engine_a),
        base_of(&engine_b)
    );
    let config_path = dir.path().join("strata.toml");
    std::fs::write(&config_path, config).expect("config");
    let mut args: Vec<String> = vec![
        "--engine".into(),
        engine_a,
        "--engine".into(),
        engine_b,
        "--gpu".into(),
        gpu_a,
        "--gpu".into(),
        gpu_b,
    ];
    args.extend(packs(&[
        "canonical.yml",
        "alerts.yml",
        "diagnoses.yml",
        "slo-chat.yml",
    ]));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let config_flag = config_path.display().to_string();
    let mut full = vec!["--config", config_flag.as_str()];
    full.extend(args);
    let (_up, base) = up(&full, &dir.path().join("data")).await;

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    traffic(
        format!("http://127.0.0.1:{gw_port}"),
        stop.clone(),
        done.clone(),
    );
    // Three canonical-rule evaluations (10 s apart) give every rate() in the charts' steps
    // its two points.
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let v = live::json(client.get(format!(
            "{base}/api/v1/query?query=min(count_over_time(llm:ttft_seconds_count[1m]))%20%3E%3D%203%20and%20on()%20count(gpu:power_watts)"
        )))
        .await;
        if v["data"]["result"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
            && done.load(Ordering::Relaxed) > 5
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no three canonical-rule evaluations or GPU series after 45 s: {v}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let setup = started.elapsed();
    requests_api(&client, &base).await;

    let missing = missing_peers();
    if !missing.is_empty() {
        assert!(
            std::env::var("STRATA_REQUIRE_PEERS").as_deref() != Ok("1"),
            "the browser test needs {} (scripts/test.sh installs them)",
            missing.join(", ")
        );
        eprintln!("skipping the browser test: missing {}", missing.join(", "));
        return;
    }

    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-screenshots");
    let browser = Command::new("node")
        .arg(browser_dir().join("ui.mjs"))
        .arg(&base)
        .arg(&shots)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node");
    let out = tokio::task::spawn_blocking(move || bounded(browser, Duration::from_secs(120)))
        .await
        .expect("browser task");
    stop.store(true, Ordering::Relaxed);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "setup {:.1} s, browser {:.1} s, {} requests sent\n{stdout}",
        setup.as_secs_f64(),
        (started.elapsed() - setup).as_secs_f64(),
        done.load(Ordering::Relaxed)
    );
    assert!(out.status.success(), "{stderr}\n{stdout}");
    for page in [
        "overview", "engines", "gpus", "tenants", "requests", "request",
    ] {
        for scheme in ["light", "dark"] {
            let png = shots.join(format!("{page}-{scheme}.png"));
            let len = std::fs::metadata(&png).map_or(0, |m| m.len());
            assert!(len > 10_000, "{} is {len} bytes", png.display());
        }
    }
}

/// Waits for `child` up to `limit`, then kills it; its output.
fn bounded(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("wait for node").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("node output");
            panic!(
                "the browser run took over {} s\n{}{}",
                limit.as_secs(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().expect("node output")
}

/// `/api/v1/requests` as its contract says: last finished first, slowest by E2E, limits, one by
/// id, errors in the Prometheus envelope, and nothing of the prompts.
async fn requests_api(client: &reqwest::Client, base: &str) {
    let get = |path: String| live::json(client.get(format!("{base}{path}")));
    let recent = get("/api/v1/requests?order=recent&limit=5".into()).await;
    assert_eq!(recent["status"], "success", "{recent}");
    let list = recent["data"].as_array().expect("a list");
    assert_eq!(list.len(), 5, "{recent}");
    // Most recently finished first.
    let ended: Vec<f64> = list
        .iter()
        .map(|r| {
            r["received_ms"].as_f64().expect("received_ms") + r["e2e_ms"].as_f64().expect("e2e")
        })
        .collect();
    assert!(ended.windows(2).all(|w| w[0] + 1.0 >= w[1]), "{ended:?}");
    for r in list {
        assert_eq!(r["model"], MODEL);
        assert_eq!(r["status"], 200);
        assert!(
            r["tenant"] == "team-search" || r["tenant"] == "team-chat",
            "{r}"
        );
        assert!(r["upstream"] == "sim-a" || r["upstream"] == "sim-b", "{r}");
        let offsets = r["token_offsets_ms"].as_array().expect("offsets");
        let out = r["output_tokens"].as_u64().expect("output_tokens");
        assert_eq!(offsets.len() as u64, out.min(256), "{r}");
        let ttft = r["ttft_ms"].as_f64().expect("ttft");
        let e2e = r["e2e_ms"].as_f64().expect("e2e");
        let first = offsets[0].as_f64().expect("offset");
        let last = offsets[offsets.len() - 1].as_f64().expect("offset");
        assert!(
            (first - ttft).abs() < 0.01 && ttft <= last && last <= e2e,
            "{r}"
        );
        assert!(!r.to_string().contains("hello "), "a prompt leaked: {r}");
    }
    let slow = get("/api/v1/requests?order=slowest&limit=3".into()).await;
    let e2e: Vec<f64> = slow["data"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| r["e2e_ms"].as_f64().expect("e2e"))
        .collect();
    assert!(
        e2e.len() == 3 && e2e.windows(2).all(|w| w[0] >= w[1]),
        "{e2e:?}"
    );
    let id = list[0]["request_id"].as_str().expect("id");
    let one = get(format!("/api/v1/requests/{id}")).await;
    assert_eq!(one["data"], list[0]);
    let resp = client
        .get(format!("{base}/api/v1/requests/no-such-request"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 404);
    let bad = client
        .get(format!("{base}/api/v1/requests?order=fastest"))
        .send()
        .await
        .expect("request");
    assert_eq!(bad.status(), 400);
    let v: serde_json::Value =
        serde_json::from_slice(&bad.bytes().await.expect("body")).expect("json");
    assert_eq!(v["errorType"], "bad_data", "{v}");
}
