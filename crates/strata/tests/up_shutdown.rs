//! `strata up` shut down by SIGTERM while it scrapes, answers queries and remote-writes to a
//! receiver that never answers: every component is stopped in order within the deadline, and
//! the log names each step and its outcome — what was flushed (the snapshot), what stays
//! queued (remote_write's samples, on disk for the next start). A step missing from the log
//! fails the test: nothing may be skipped without a word.

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use testkit::live::{self, Kill};

/// Every step a node with remote_write and no gateway logs at shutdown, in order.
const STEPS: [&str; 7] = [
    "API server",
    "background loops",
    "scraping",
    "rule evaluation",
    "queued scrape reports",
    "store snapshot",
    "remote_write",
];

/// A remote_write receiver that accepts connections and never answers (a stuck backend).
fn stuck_receiver() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    format!("http://{addr}/api/v1/write")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_stops_every_step_in_order_within_the_deadline() {
    sources::scrape::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let (_sim, engine, gpu) = live::sim(&[]);
    let port = testkit::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = live::strata()
        .current_dir(dir.path())
        .args(["up", "--engine", &engine, "--gpu", &gpu])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--remote-write", &stuck_receiver()])
        .args(["--shutdown-timeout", "8s", "--rule-interval", "1s"])
        .args(["--data-dir", "data"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start strata up");
    let mut stderr = child.stderr.take().expect("stderr");
    let log = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let child = Kill(child);

    // Wait until samples reach the store (so remote_write has something queued).
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let url = format!("{base}/api/v1/query?query=count(llm:requests_running)");
        // Connection refused while it starts reads as "not yet".
        let body = match client.get(url).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if body.contains("\"value\"") {
            break;
        }
        assert!(Instant::now() < deadline, "strata up never scraped: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Load: range queries in flight while the signal arrives.
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (client, base) = (client.clone(), base.clone());
            tokio::spawn(async move {
                for _ in 0..50 {
                    let url = reqwest::Url::parse_with_params(
                        &format!("{base}/api/v1/query_range"),
                        &[
                            (
                                "query",
                                "sum by (instance) (rate(llm:generation_tokens_total[1m]))",
                            ),
                            ("start", "0"),
                            ("end", "4102444800"),
                            ("step", "3600"),
                        ],
                    )
                    .expect("url");
                    let _ = client.get(url).send().await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let pid = child.0.id().to_string();
    let signalled = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let mut child = child;
    let code = loop {
        if let Some(s) = child.0.try_wait().expect("wait") {
            break s;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(15),
            "strata up still running 15 s after SIGTERM with an 8 s deadline"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let took = signalled.elapsed();
    for t in load {
        t.abort();
    }
    let log = log.join().expect("log");

    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("strata up: shutdown: "))
        .collect();
    let named: Vec<&str> = lines
        .iter()
        .filter_map(|l| {
            let rest = l.trim_start_matches("strata up: shutdown: ");
            STEPS.iter().copied().find(|s| rest.starts_with(s))
        })
        .collect();
    assert_eq!(named, STEPS, "every step, in order, once:\n{log}");
    let snapshot = lines
        .iter()
        .find(|l| l.contains("store snapshot"))
        .expect("snapshot line");
    assert!(
        snapshot.contains("done") && snapshot.contains("written to"),
        "{snapshot}"
    );
    assert!(dir.path().join("data/tsdb/snapshot").exists());
    let remote = lines
        .iter()
        .find(|l| l.contains("remote_write"))
        .expect("remote_write line");
    assert!(
        remote.contains("stay queued on disk") || remote.contains("MISSED"),
        "the stuck receiver's samples are accounted for: {remote}"
    );
    assert!(
        took < Duration::from_secs(8 + 3),
        "shutdown took {took:?} with an 8 s deadline:\n{log}"
    );
    // Exit 0 when every step finished in time, 1 (and the incomplete steps named) otherwise.
    if lines
        .iter()
        .any(|l| l.contains("MISSED") || l.contains("FAILED"))
    {
        assert_eq!(code.code(), Some(1), "{log}");
        assert!(log.contains("shutdown incomplete:"), "{log}");
    } else {
        assert!(code.success(), "{log}");
    }
}
