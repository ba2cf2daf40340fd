//! Queries cannot take `strata up` down or hold it: expressions nested 10,000 deep answer
//! 400 instead of overflowing the stack, a subquery over a century at 1 s is refused before it
//! allocates, the `timeout` parameter is honoured, and SIGTERM with a long query in flight
//! stops the process in seconds (the query is cancelled first).

use std::process::Stdio;
use std::time::{Duration, Instant};

use testkit::live::{self, Kill};

/// A query sent as a form POST (as Grafana does; the 10-120 KB expressions below do not fit
/// in a URL), its HTTP status and the start of its body.
async fn ask(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    params: &[(&str, &str)],
) -> (u16, String) {
    let form = reqwest::Url::parse_with_params("http://form/", params).expect("encode");
    let r = client
        .post(format!("{base}{path}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.query().unwrap_or_default().to_string())
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    let body: String = r
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_and_heavy_queries_are_bounded_and_shutdown_cancels_them() {
    sources::scrape::install_crypto_provider();
    let engine = live::serve_sample();
    let dir = tempfile::tempdir().expect("tempdir");
    let port = testkit::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut up = Kill(
        live::strata()
            .current_dir(dir.path())
            .args(["up", "--engine", &engine, "--no-packs"])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--data-dir", "data", "--query-timeout", "60s"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start strata up"),
    );
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let scraped = || async {
        let url = format!("{base}/api/v1/query?query=up");
        match client.get(url).send().await {
            Ok(r) => r.text().await.unwrap_or_default().contains("\"job\""),
            Err(_) => false, // still starting
        }
    };
    while !scraped().await {
        assert!(Instant::now() < deadline, "strata up never scraped");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // ~10 KB expressions that used to abort the process with a stack overflow.
    let deep = [
        format!("{}up", "-".repeat(10_000)),
        vec!["up"; 10_000].join("+"),
        format!("{}up{}", "(".repeat(20_000), ")".repeat(20_000)),
        format!("{}up{}", "abs(".repeat(5_000), ")".repeat(5_000)),
    ];
    for q in &deep {
        let (status, body) = ask(&client, &base, "/api/v1/query", &[("query", q)]).await;
        assert_eq!(status, 400, "{}…: {body}", &q[..20]);
        assert!(body.contains("nest"), "the error names the limit: {body}");
    }
    assert_eq!(up.0.try_wait().expect("wait"), None, "still running");

    // A century at 1 s steps: refused at once, not 8 GB later.
    let started = Instant::now();
    let (status, body) = ask(
        &client,
        &base,
        "/api/v1/query",
        &[("query", "sum_over_time(up[100y:1s])")],
    )
    .await;
    assert!(status == 400 || status == 422, "{status}: {body}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // A heavy range query (~20 s here): 11,000 steps, each a 1 h subquery at 200 ms.
    let end = strata_core::now_ms() / 1000;
    let (start, end) = ((end - 11_000).to_string(), end.to_string());
    let heavy = [
        ("query", "max_over_time(up[1h:200ms])"),
        ("start", start.as_str()),
        ("end", end.as_str()),
        ("step", "1"),
    ];
    // The timeout parameter is honoured.
    let mut with_timeout = heavy.to_vec();
    with_timeout.push(("timeout", "1s"));
    let started = Instant::now();
    let (status, body) = ask(&client, &base, "/api/v1/query_range", &with_timeout).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("timeout") || body.contains("timed out"),
        "{body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // SIGTERM while the heavy query runs (60 s allowed): the process is gone in seconds.
    let (c, b) = (client.clone(), base.clone());
    let params: Vec<(String, String)> = heavy
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let inflight = tokio::spawn(async move {
        let p: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        ask(&c, &b, "/api/v1/query_range", &p).await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let signalled = Instant::now();
    let pid = up.0.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    loop {
        if let Some(s) = up.0.try_wait().expect("wait") {
            assert!(s.code().is_some(), "exited, not killed: {s:?}");
            break;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(10),
            "SIGTERM with a query in flight took over 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "stopped {:?} after SIGTERM with a heavy query in flight",
        signalled.elapsed()
    );
    inflight.abort();
}
