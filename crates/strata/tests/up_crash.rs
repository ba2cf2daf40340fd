//! `kill -9` of `strata up` loses at most the write-ahead log's flush interval (1 s): every
//! sample older than that is back after a restart on the same data dir, though no snapshot was
//! ever written; and a second `strata up` on the same data dir is refused with the fix.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::live::{self, Kill};

/// `strata up` on `port` scraping `engine`, its data in `dir/data`; snapshots far apart so
/// only the log can bring data back.
fn up(dir: &std::path::Path, port: u16, engine: &str) -> Kill {
    Kill(
        live::strata()
            .current_dir(dir)
            .args(["up", "--engine", engine, "--no-packs"])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--data-dir", "data", "--snapshot-interval", "1h"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start strata up"),
    )
}

/// The value of a one-series instant query at `t` (seconds), when there is one.
async fn value_at(client: &reqwest::Client, base: &str, q: &str, t: f64) -> Option<f64> {
    let url = reqwest::Url::parse_with_params(
        &format!("{base}/api/v1/query"),
        &[("query", q), ("time", &format!("{t:.3}"))],
    )
    .expect("url");
    // Not answering yet (starting up) reads as no value.
    let body = client.get(url).send().await.ok()?.bytes().await.ok()?;
    let v: Value = serde_json::from_slice(&body).ok()?;
    v["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
}

fn now_s() -> f64 {
    strata_core::now_ms() as f64 / 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_at_most_the_flush_interval_and_a_second_process_is_refused() {
    sources::scrape::install_crypto_provider();
    let engine = live::serve_sample();
    let dir = tempfile::tempdir().expect("tempdir");
    let port = testkit::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut first = up(dir.path(), port, &engine);

    // Two engine scrapes (10 s apart) in the store, the last one over 1.5 s old.
    let q = "count_over_time(up{job=\"engine\"}[10m])";
    let deadline = Instant::now() + Duration::from_secs(40);
    let (t, before) = loop {
        let t = now_s();
        let last = value_at(&client, &base, "timestamp(up{job=\"engine\"})", t).await;
        let n = value_at(&client, &base, q, t).await;
        if let (Some(last), Some(n)) = (last, n)
            && n >= 2.0
            && t - last > 1.5
            && t - last < 8.0
        {
            break (t, n);
        }
        assert!(Instant::now() < deadline, "no two scrapes within 40 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // A second process on the same data dir is refused, naming the other one and the fix.
    let other = live::strata()
        .current_dir(dir.path())
        .args(["up", "--engine", &engine, "--no-packs"])
        .args(["--listen", &format!("127.0.0.1:{}", testkit::free_port())])
        .args(["--data-dir", "data"])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(!other.status.success(), "{err}");
    assert!(
        err.contains("in use by another process") && err.contains("pid"),
        "{err}"
    );

    first.0.kill().expect("kill -9");
    let _ = first.0.wait();
    assert!(
        !dir.path().join("data/tsdb/snapshot").exists(),
        "no snapshot was written: only the log can restore the data"
    );

    let _second = up(dir.path(), port, &engine);
    let deadline = Instant::now() + Duration::from_secs(20);
    let after = loop {
        if let Some(n) = value_at(&client, &base, q, t).await {
            break n;
        }
        assert!(
            Instant::now() < deadline,
            "restarted strata up never answered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        after, before,
        "samples older than the 1 s flush interval survive kill -9"
    );
}
