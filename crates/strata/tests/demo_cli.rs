//! `strata demo` end to end: live engine, GPU and per-tenant gateway data within bounded
//! time, the scenario switch guarded by the admin token, the cache-thrash finding appearing
//! and ending with the scenario, and a clean SIGTERM with a snapshot.

use std::time::{Duration, Instant};

use serde_json::Value;

use live::{json, wait_until};
use testkit::live;

fn open_names(f: &Value) -> Vec<String> {
    f["data"]["open"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x["name"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_shows_live_data_switches_scenarios_and_stops_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("token");
    std::fs::write(&token, "demo-token\n").expect("token");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let log = std::fs::File::create(dir.path().join("stderr")).expect("log");
    let (mut child, base) = live::demo(dir.path(), port, Some(&token), log.into());
    sources::scrape::install_crypto_provider();
    let client = reqwest::Client::new();
    let query = |q: &str| {
        client.get(
            reqwest::Url::parse_with_params(&format!("{base}/api/v1/query"), [("query", q)])
                .expect("url"),
        )
    };
    let started = Instant::now();

    wait_until("demo ready", Duration::from_secs(30), async || {
        let r = client.get(format!("{base}/-/ready")).send().await.ok()?;
        (r.status() == 200).then_some(Value::Null)
    })
    .await;
    for q in [
        "count({__name__=~\"llm:.+\"})",
        "count({__name__=~\"gpu:.+\"})",
    ] {
        wait_until(q, Duration::from_secs(40), async || {
            let v = json(query(q)).await;
            v["data"]["result"][0]["value"][1]
                .as_str()
                .filter(|n| n.parse::<f64>().unwrap_or(0.0) >= 3.0)
                .map(|_| v.clone())
        })
        .await;
    }
    let tenants = wait_until(
        "three tenants through the gateway",
        Duration::from_secs(40),
        async || {
            let v = json(query("sum by (tenant) (strata_gateway_requests_total)")).await;
            let mut t: Vec<String> = v["data"]["result"]
                .as_array()?
                .iter()
                .filter_map(|s| s["metric"]["tenant"].as_str().map(str::to_string))
                .collect();
            t.sort();
            (t.len() == 3).then(|| Value::from(t))
        },
    )
    .await;
    assert_eq!(tenants, serde_json::json!(["acme", "globex", "initech"]));
    eprintln!("live data after {:?}", started.elapsed());

    let scenario = format!("{base}/api/v1/scenario");
    let v = json(client.get(&scenario)).await;
    assert_eq!(v["data"]["current"], "healthy", "{v}");
    assert!(
        v["data"]["available"]
            .as_array()
            .expect("available")
            .iter()
            .any(|s| s["name"] == "cache-thrash" && s["help"].is_string()),
        "{v}"
    );
    let body = r#"{"scenario":"cache-thrash"}"#;
    let r = client
        .post(&scenario)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 401);
    let v = json(
        client
            .post(&scenario)
            .bearer_auth("demo-token")
            .header("content-type", "application/json")
            .body(body),
    )
    .await;
    assert_eq!(v["data"]["current"], "cache-thrash", "{v}");
    let r = client
        .post(&scenario)
        .bearer_auth("demo-token")
        .header("content-type", "application/json")
        .body(r#"{"scenario":"no-such"}"#)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 400);

    let switched = Instant::now();
    let f = wait_until(
        "cache_thrash finding",
        Duration::from_secs(60),
        async || {
            let f = json(client.get(format!("{base}/api/v1/findings"))).await;
            open_names(&f)
                .iter()
                .any(|n| n == "cache_thrash")
                .then_some(f)
        },
    )
    .await;
    eprintln!("cache_thrash after {:?}", switched.elapsed());
    let thrash = f["data"]["open"]
        .as_array()
        .expect("open")
        .iter()
        .find(|x| x["name"] == "cache_thrash")
        .expect("finding");
    assert_eq!(thrash["severity"], "page");
    assert!(thrash["ended_ms"].is_null());
    assert!(
        thrash["action"]
            .as_str()
            .is_some_and(|a| a.contains("max_num_seqs"))
    );
    // One card per cause, naming every engine it affects.
    let cards = f["data"]["open"]
        .as_array()
        .expect("open")
        .iter()
        .filter(|x| x["name"] == "cache_thrash")
        .count();
    assert_eq!(cards, 1, "{f}");
    let engines = thrash["engines"].as_array().expect("engines");
    assert!(
        !engines.is_empty() && engines.iter().all(|e| e["name"].is_string()),
        "{thrash}"
    );
    assert!(thrash["symptoms"].is_array() && f["data"]["inhibited"].is_array());
    // Evidence in operator units, from a baseline before onset.
    let kv = thrash["evidence"]
        .as_array()
        .expect("evidence")
        .iter()
        .find(|e| e["title"] == "KV cache used")
        .expect("KV evidence");
    assert_eq!(
        (kv["unit"].as_str(), kv["threshold"].as_f64()),
        (Some("percent"), Some(0.95))
    );
    let waiting = &thrash["evidence"][0]["series"][0]["points"];
    let first = waiting[0][0].as_i64().expect("points");
    assert!(
        first < thrash["started_ms"].as_i64().expect("started"),
        "baseline before onset: {thrash}"
    );

    let v = json(
        client
            .post(&scenario)
            .bearer_auth("demo-token")
            .header("content-type", "application/json")
            .body(r#"{"scenario":"healthy"}"#),
    )
    .await;
    assert_eq!(v["data"]["current"], "healthy", "{v}");
    let healed = Instant::now();
    let f = wait_until("cache_thrash ends", Duration::from_secs(60), async || {
        let f = json(client.get(format!("{base}/api/v1/findings"))).await;
        (!open_names(&f).iter().any(|n| n == "cache_thrash")).then_some(f)
    })
    .await;
    eprintln!("cache_thrash ended after {:?}", healed.elapsed());
    assert!(
        f["data"]["history"]
            .as_array()
            .expect("history")
            .iter()
            .any(|x| x["name"] == "cache_thrash" && x["ended_ms"].is_i64()),
        "{f}"
    );

    let pid = child.0.id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.0.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "demo did not exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "{status:?}");
    assert!(dir.path().join("data/tsdb/snapshot").exists());
}
