//! Incident mode end to end: the real `strata sim` (DCGM exporter) scraped by the real
//! `strata up`; `POST /api/v1/incident` switches GPU scraping from 5 s to 250 ms, seen as the
//! number of `up` samples per window through the query API, and it reverts on time with the
//! switch kept in the history.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `strata sim` on free ports; its DCGM exporter URL.
fn sim() -> (Kill, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .env_remove("STRATA_CONFIG")
        .args([
            "sim",
            "--listen",
            "127.0.0.1:0",
            "--gpu-listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start strata sim");
    let out = child.stdout.take().expect("stdout");
    let child = Kill(child);
    for line in BufReader::new(out).lines() {
        let line = line.expect("utf-8");
        if line.starts_with("gpu listening on")
            && let Some(url) = line.split_whitespace().find(|w| w.starts_with("http://"))
        {
            return (child, url.to_string());
        }
    }
    panic!("strata sim did not say where its GPU exporter listens");
}

async fn json(req: reqwest::RequestBuilder) -> Value {
    let body = req
        .send()
        .await
        .expect("request")
        .bytes()
        .await
        .expect("body");
    serde_json::from_slice(&body).expect("json")
}

/// `up` samples of the GPU target over the last 2 s.
async fn ups(client: &reqwest::Client, base: &str) -> f64 {
    let v = json(client.get(format!(
        "{base}/query?query=sum(count_over_time(up{{job=\"gpu\"}}[2s]))"
    )))
    .await;
    v["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posted_incident_scrapes_gpus_every_250ms_then_reverts() {
    let (_sim, gpu) = sim();
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let _up = Kill(
        Command::new(env!("CARGO_BIN_EXE_strata"))
            .env_remove("STRATA_CONFIG")
            .args([
                "up",
                "--gpu",
                &gpu,
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .arg("--data-dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start strata up"),
    );
    let base = format!("http://127.0.0.1:{port}/api/v1");
    sources::scrape::install_crypto_provider();
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while client
        .get(format!("{base}/query?query=up"))
        .send()
        .await
        .is_err()
        || ups(&client, &base).await == 0.0
    {
        assert!(Instant::now() < deadline, "strata up never scraped the GPU");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(ups(&client, &base).await <= 1.0, "steady is every 5 s");

    // A resolved-only webhook changes nothing.
    let hook = r#"{"version":"4","status":"resolved","alerts":[{"status":"resolved","labels":{"alertname":"GPUXidError"}}]}"#;
    let v = json(client.post(format!("{base}/incident")).body(hook)).await;
    assert_eq!(v["data"]["profile"], "steady", "{v}");

    let v = json(
        client
            .post(format!("{base}/incident"))
            .body(r#"{"duration":"3s"}"#),
    )
    .await;
    assert_eq!(v["data"]["profile"], "incident", "{v}");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let n = ups(&client, &base).await;
    assert!(
        n >= 5.0,
        "incident profile scrapes every 250 ms: {n} in 2 s"
    );

    let deadline = Instant::now() + Duration::from_secs(5);
    let v = loop {
        let v = json(client.get(format!("{base}/incident"))).await;
        if v["data"]["profile"] == "steady" {
            break v;
        }
        assert!(Instant::now() < deadline, "incident mode never ended: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let history = v["data"]["history"].as_array().expect("history");
    assert_eq!(history.len(), 1, "{v}");
    assert_eq!(history[0]["name"], "incident_mode");
    assert_eq!(history[0]["alert"], "POST /api/v1/incident");
    let (start, end) = (
        history[0]["started_ms"].as_i64().expect("start"),
        history[0]["ended_ms"].as_i64().expect("end"),
    );
    assert!((2900..4000).contains(&(end - start)), "{}", end - start);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(ups(&client, &base).await <= 1.0, "back to every 5 s");
}
