//! The web UI in a real browser: Debian's `chromium` driven by `playwright-core`
//! (`tests/browser/ui.mjs`) against `strata demo` (three simulated engines and their GPUs,
//! the gateway with three tenants of traffic, every rule pack; rules every 2 s with `for:`
//! waived, simulators at 4x, an admin token). Every page loads without console errors,
//! charts have data, the requests table has rows, the drill-down shows the timeline beside
//! engine and GPU series, the scenario switch (admin token typed into the page) changes the
//! simulators' scenario and the cache_thrash finding appears on the Overview; light and dark
//! screenshots land in `target/ui-screenshots/`. `/api/v1/requests` is checked against its
//! contract first (that part needs no browser).
//!
//! Needs `node`, `/usr/bin/chromium` and `npm ci` in `tests/browser/` (scripts/test.sh does
//! both); without them the browser part is skipped, or fails when `STRATA_REQUIRE_PEERS=1`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use live::json;
use testkit::live;

/// The admin token the demo is started with (and the browser types in).
const TOKEN: &str = "ui-test-token";

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// What is missing to run the browser, if anything.
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

/// The first value of instant query `q`, once `ok` accepts it, within `within`.
async fn wait_for(
    client: &reqwest::Client,
    base: &str,
    q: &str,
    within: Duration,
    ok: impl Fn(f64) -> bool,
) {
    let deadline = Instant::now() + within;
    loop {
        let url = reqwest::Url::parse_with_params(&format!("{base}/api/v1/query"), [("query", q)])
            .expect("url");
        if let Ok(r) = client.get(url).send().await
            && let Ok(b) = r.bytes().await
            && let Ok(v) = serde_json::from_slice::<Value>(&b)
            && v["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|x| x.parse::<f64>().ok())
                .is_some_and(&ok)
        {
            return;
        }
        assert!(Instant::now() < deadline, "{q} not ready within {within:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_ui_pages_drilldown_and_scenario_switch_in_chromium() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).expect("token");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let (_demo, base) = live::demo(dir.path(), port, Some(&token), Stdio::null());
    sources::scrape::install_crypto_provider();
    let client = reqwest::Client::new();
    // Enough history for every chart: three rule evaluations of the engine histograms (the
    // p95 charts' rate() needs two per step), GPU series, and gateway requests.
    let within = Duration::from_secs(45);
    wait_for(
        &client,
        &base,
        "min(count_over_time(llm:ttft_seconds_count[1m]))",
        within,
        |n| n >= 3.0,
    )
    .await;
    wait_for(&client, &base, "count(gpu:power_watts)", within, |n| {
        n >= 3.0
    })
    .await;
    wait_for(
        &client,
        &base,
        // Rates, as the charts draw them: two samples of every tenant's counters.
        "count(sum by (tenant) (rate(strata_gateway_requests_total[1m])) > 0)",
        within,
        |n| n >= 3.0,
    )
    .await;
    let setup = started.elapsed();
    requests_api(&client, &base).await;

    let missing = missing_peers();
    if !missing.is_empty() {
        assert!(
            std::env::var("STRATA_REQUIRE_PEERS").as_deref() != Ok("1"),
            "the browser test needs {} (scripts/test.sh installs them)",
            missing.join(", ")
        );
        eprintln!("skipping the browser part: missing {}", missing.join(", "));
        return;
    }

    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-screenshots");
    let browser = Command::new("node")
        .arg(browser_dir().join("ui.mjs"))
        .arg(&base)
        .arg(&shots)
        .args([
            "--scenario",
            "cache-thrash",
            "--token",
            TOKEN,
            "--expect-finding",
            "cache_thrash",
            "--finding-wait",
            "60",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node");
    let out = tokio::task::spawn_blocking(move || bounded(browser, Duration::from_secs(120)))
        .await
        .expect("browser task");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "setup {:.1} s, browser {:.1} s\n{stdout}",
        setup.as_secs_f64(),
        (started.elapsed() - setup).as_secs_f64(),
    );
    assert!(out.status.success(), "{stderr}\n{stdout}");
    let v = json(client.get(format!("{base}/api/v1/scenario"))).await;
    assert_eq!(v["data"]["current"], "cache-thrash", "{v}");
    for page in [
        "overview",
        "engines",
        "gpus",
        "tenants",
        "requests",
        "request",
        "overview-finding",
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
        let keys: Vec<&str> = r
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "cost",
                "e2e_ms",
                "error_class",
                "finish_reason",
                "gpus",
                "instance",
                "model",
                "output_tokens",
                "prompt_tokens",
                "received_ms",
                "request_id",
                "status",
                "tenant",
                "token_offsets_ms",
                "ttft_ms",
                "upstream"
            ],
            "no other field (no prompt, no completion): {r}"
        );
        assert!(
            ["acme", "globex", "initech"].contains(&r["tenant"].as_str().unwrap_or("")),
            "{r}"
        );
        assert!(
            ["vllm-a", "vllm-b", "tgi"].contains(&r["upstream"].as_str().unwrap_or("")),
            "{r}"
        );
        let offsets: Vec<f64> = r["token_offsets_ms"]
            .as_array()
            .expect("offsets")
            .iter()
            .map(|x| x.as_f64().expect("offset"))
            .collect();
        let out = r["output_tokens"].as_u64().expect("output_tokens");
        if r["status"] != 200 || out == 0 {
            continue;
        }
        assert_eq!(offsets.len() as u64, out.min(256), "{r}");
        let ttft = r["ttft_ms"].as_f64().expect("ttft");
        let e2e = r["e2e_ms"].as_f64().expect("e2e");
        assert!((offsets[0] - ttft).abs() < 0.01, "{r}");
        assert!(offsets.windows(2).all(|w| w[0] <= w[1]), "{r}");
        assert!(offsets[offsets.len() - 1] <= e2e, "{r}");
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
