//! Incident mode end to end: the real `strata sim` (DCGM exporter) scraped by the real
//! `strata up`; `POST /api/v1/incident` switches GPU scraping from 5 s to 250 ms, seen as the
//! number of `up` samples per window through the query API, and it reverts on time with the
//! switch kept in the history.

use testkit::live;

use std::time::{Duration, Instant};

use live::{json, sim, up};

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
    let (_sim, _, gpu) = sim(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let (_up, base) = up(&["--gpu", &gpu], dir.path()).await;
    let base = format!("{base}/api/v1");
    let client = reqwest::Client::new();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(ups(&client, &base).await <= 1.0, "steady is every 5 s");

    // Without an admin token, a web page still cannot switch it: cross-origin requests are
    // refused, and a body must be JSON (a cross-origin page cannot send that unpreflighted).
    let huge = r#"{"duration":"10000000000h"}"#;
    let r = client
        .post(format!("{base}/incident"))
        .header("origin", "http://evil.example")
        .header("content-type", "text/plain")
        .body(huge)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 403);
    let r = client
        .post(format!("{base}/incident"))
        .header("content-type", "text/plain")
        .body(huge)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 415);
    let r = client
        .post(format!("{base}/incident"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 400, "durations are bounded");
    let v = json(client.get(format!("{base}/incident"))).await;
    assert_eq!(v["data"]["profile"], "steady", "{v}");

    // A resolved-only webhook changes nothing.
    let hook = r#"{"version":"4","status":"resolved","alerts":[{"status":"resolved","labels":{"alertname":"GPUXidError"}}]}"#;
    let v = json(
        client
            .post(format!("{base}/incident"))
            .header("content-type", "application/json")
            .body(hook),
    )
    .await;
    assert_eq!(v["data"]["profile"], "steady", "{v}");

    let v = json(
        client
            .post(format!("{base}/incident"))
            .header("content-type", "application/json")
            .body(r#"{"duration":"3s"}"#),
    )
    .await;
    assert_eq!(v["data"]["profile"], "incident", "{v}");
    let f = json(client.get(format!("{base}/findings"))).await;
    assert_eq!(f["data"]["open"][0]["name"], "incident_mode", "{f}");
    assert!(f["data"]["open"][0]["ended_ms"].is_null(), "{f}");
    assert!(
        f["data"]["open"][0]["affected"]["trigger"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "the card names what triggered it: {f}"
    );
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
