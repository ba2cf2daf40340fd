//! A real fleet: two `strata agent`s (two simulated nodes, each a `strata sim` engine and its
//! DCGM exporter) ship through remote_write to a real VictoriaMetrics single-node or a real
//! Prometheus (`--web.enable-remote-write-receiver`); `strata up --backend` reads that store.
//! One node is switched to `cache-thrash`: the brain shows both nodes and opens
//! `cache_thrash` for that node only, and `strata diagnose --backend` on the stored history
//! names it. (vmalert is not packaged by Debian, so the vmalert → Alertmanager leg is not
//! run here; see docs/scale.md.)

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::live::{self, Kill, json, wait_until};
use testkit::peer::{self, Peer};

/// Scrapes every 2 s (the demo's pace): a finding within seconds, not minutes.
const FAST_SCRAPES: &str = "[scrape.engine.steady]\ninterval = \"2s\"\ntimeout = \"2s\"\n\n\
                            [scrape.gpu.steady]\ninterval = \"2s\"\ntimeout = \"2s\"\n";

/// One simulated node: its simulator and its agent.
struct Node {
    _sim: Kill,
    _agent: Kill,
    /// The engine's `instance` label, as the agent names it (`NODE:PORT`).
    instance: String,
    /// The engine's base URL (scenario switch).
    engine: String,
    /// The agent's base URL (health, `/api/v1/incident`).
    agent: String,
}

/// `strata sim` at 4× and a `strata agent` named `name` shipping it to `write`, reading the
/// alerts about its node from `backend` (the cache-thrash diagnosis switches its incident mode).
async fn node(name: &str, write: &str, backend: &str, dir: &std::path::Path) -> Node {
    let (sim, engine, gpu) = live::sim(&["--speed", "4"]);
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(&config, FAST_SCRAPES).expect("agent config");
    let port = peer::free_port();
    let agent = Kill(
        live::strata()
            .arg("--config")
            .arg(&config)
            .args(["agent", "--engine", &engine, "--gpu", &gpu])
            .args(["--remote-write", write, "--node", name])
            .args(["--incident-from", backend])
            .args(["--incident-alert", "DiagnosisCacheThrash"])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(dir.join(name))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start strata agent"),
    );
    // Health and /metrics only: no query API on an agent.
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = client.get(format!("{base}/-/ready")).send().await
            && r.status() == 200
        {
            break;
        }
        assert!(Instant::now() < deadline, "agent {name} never ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = client
        .get(format!("{base}/api/v1/query?query=up"))
        .send()
        .await
        .expect("agent answers");
    assert_eq!(r.status(), 404, "an agent serves no query API");
    let m = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(m.contains("strata_"), "the agent's own metrics: {m}");
    let url = reqwest::Url::parse(&engine).expect("engine url");
    Node {
        _sim: sim,
        _agent: agent,
        // Loopback targets are named for the node: `127.0.0.1:8000` is on every node.
        instance: format!("{name}:{}", url.port().expect("engine port")),
        engine: engine.trim_end_matches("/metrics").to_string(),
        agent: base,
    }
}

/// The open `cache_thrash` findings' instances.
fn thrashing(f: &Value) -> Vec<String> {
    f["data"]["open"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|x| x["name"] == "cache_thrash")
        .filter_map(|x| x["affected"]["instance"].as_str().map(str::to_string))
        .collect()
}

/// The whole fleet over `store` (its query API base and remote_write URL).
async fn fleet(store: &Peer) {
    sources::scrape::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let write = format!("http://{}/api/v1/write", store.addr);
    let backend = format!("http://{}", store.addr);
    let a = node("node-a", &write, &backend, dir.path()).await;
    let b = node("node-b", &write, &backend, dir.path()).await;
    let brain_dir = dir.path().join("brain");
    let (_brain, base) = live::up(
        &["--backend", &backend, "--rule-interval", "2s"],
        &brain_dir,
    )
    .await;
    let client = reqwest::Client::new();
    let query = |q: &str| {
        client.get(
            reqwest::Url::parse_with_params(&format!("{base}/api/v1/query"), [("query", q)])
                .expect("url"),
        )
    };

    // Both nodes, each labelled by its agent, through the brain's (forwarded) API.
    let nodes = wait_until(
        "both nodes in the brain",
        Duration::from_secs(40),
        async || {
            let v = json(query("count by (node) (up{job=\"engine\"})")).await;
            let mut n: Vec<String> = v["data"]["result"]
                .as_array()?
                .iter()
                .filter_map(|s| s["metric"]["node"].as_str().map(str::to_string))
                .collect();
            n.sort();
            (n.len() == 2).then(|| Value::from(n))
        },
    )
    .await;
    assert_eq!(nodes, serde_json::json!(["node-a", "node-b"]));
    // The brain's rules ran against the backend and wrote their results back.
    wait_until(
        "recorded llm:* in the backend",
        Duration::from_secs(40),
        async || {
            let v = json(query("count by (node) (llm:kv_cache_usage_ratio)")).await;
            (v["data"]["result"].as_array()?.len() == 2).then_some(v)
        },
    )
    .await;
    let v = json(query(&format!("up{{instance=\"{}\"}}", b.instance))).await;
    assert_eq!(v["data"]["result"][0]["metric"]["node"], "node-b", "{v}");

    let r = client
        .post(format!("{}/sim/scenario", b.engine))
        .header("content-type", "application/json")
        .body(r#"{"scenario":"cache-thrash"}"#)
        .send()
        .await
        .expect("switch");
    assert!(r.status().is_success(), "{}", r.status());
    let switched = Instant::now();
    let f = wait_until(
        "cache_thrash on node-b",
        Duration::from_secs(90),
        async || {
            let f = json(client.get(format!("{base}/api/v1/findings"))).await;
            (!thrashing(&f).is_empty()).then_some(f)
        },
    )
    .await;
    eprintln!("cache_thrash after {:?}", switched.elapsed());
    assert_eq!(
        thrashing(&f),
        std::slice::from_ref(&b.instance),
        "node-b only: {f}"
    );
    assert!(!thrashing(&f).contains(&a.instance));
    // The brain's alert reached the backend as ALERTS, written back like vmalert's.
    wait_until(
        "ALERTS in the backend",
        Duration::from_secs(30),
        async || {
            let v = json(query(
                "ALERTS{alertname=\"DiagnosisCacheThrash\",alertstate=\"firing\"}",
            ))
            .await;
            (!v["data"]["result"].as_array()?.is_empty()).then_some(v)
        },
    )
    .await;
    // The thrashing node's agent read that alert from the backend and scrapes its GPUs at
    // 250 ms; the healthy node's agent stays steady.
    let profile = |n: &Node| {
        let url = format!("{}/api/v1/incident", n.agent);
        let client = client.clone();
        async move { json(client.get(url)).await["data"]["profile"].clone() }
    };
    wait_until(
        "node-b's agent in incident mode",
        Duration::from_secs(90),
        async || (profile(&b).await == "incident").then_some(Value::Null),
    )
    .await;
    assert_eq!(
        profile(&a).await,
        "steady",
        "node-a is not the one thrashing"
    );

    // strata diagnose from the stored history alone names the thrashing node, once the
    // pattern has held for half its window (as live triage requires).
    let diagnose = |extra: &[&str]| {
        let out = live::strata()
            .args([
                "diagnose",
                "--backend",
                &backend,
                "--since",
                "1m",
                "--every",
                "2s",
                "--json",
            ])
            .args(extra)
            .output()
            .expect("diagnose");
        let report: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        (out, report)
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let (out, report) = loop {
        let (out, report) = diagnose(&[]);
        let found = report["findings"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["name"] == "cache_thrash"));
        if found {
            break (out, report);
        }
        assert!(
            Instant::now() < deadline,
            "diagnose --backend never found cache_thrash: {report}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let found: Vec<&Value> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["name"] == "cache_thrash")
        .collect();
    assert!(
        found
            .iter()
            .all(|f| f["affected"]["instance"] == b.instance.as_str()),
        "{report}"
    );
    assert_eq!(out.status.code(), Some(2), "a page-severity finding");
    let out = live::strata()
        .args([
            "diagnose",
            "--backend",
            &backend,
            "--since",
            "2m",
            "--node",
            "node-a",
            "--json",
        ])
        .output()
        .expect("diagnose");
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        !report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .any(|f| f["name"] == "cache_thrash"),
        "node-a is healthy: {report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_on_victoria_metrics() {
    let Some(bin) = peer::find("victoria-metrics", "victoria-metrics") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let vm = peer::victoria_metrics(&bin, dir.path(), peer::free_port());
    fleet(&vm).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_on_prometheus() {
    let Some(bin) = peer::find("prometheus", "prometheus") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let prom = peer::prometheus(&bin, dir.path(), peer::free_port());
    fleet(&prom).await;
}
