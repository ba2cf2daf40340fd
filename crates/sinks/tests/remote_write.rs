//! remote_write against real receivers (Prometheus, VictoriaMetrics) through an outage, and
//! the retry policy against a scripted receiver.

use testkit::peer;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sinks::remote_write::{RemoteWriteConfig, RemoteWriter, proto};
use sources::Point;

const SERIES: usize = 10;
const ROUNDS: usize = 40;
const PER_ROUND: usize = 5;
const TOTAL: usize = SERIES * ROUNDS * PER_ROUND;

fn config(url: &str, dir: &std::path::Path) -> RemoteWriteConfig {
    let mut cfg = RemoteWriteConfig::new(url.parse().expect("url"), dir.join("queue"));
    cfg.max_samples_per_send = 300;
    cfg.batch_deadline = Duration::from_millis(100);
    cfg.min_backoff = Duration::from_millis(50);
    cfg.max_backoff = Duration::from_millis(500);
    cfg.timeout = Duration::from_secs(2);
    cfg
}

fn round(metric: &str, base_ms: i64, r: usize) -> Vec<Point> {
    let mut points = Vec::new();
    for k in 0..PER_ROUND {
        let t = base_ms + ((r * PER_ROUND + k) as i64) * 10;
        for s in 0..SERIES {
            points.push(Point::new(
                metric,
                vec![("series".into(), s.to_string())],
                (r * PER_ROUND + k) as f64,
                t,
            ));
        }
    }
    points
}

async fn wait_drained(writer: &RemoteWriter) {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let s = writer.stats();
        if s.samples_sent + s.dropped_rejected + s.dropped_queue_full >= s.samples_in
            && s.queued_samples == 0
        {
            return;
        }
        assert!(Instant::now() < deadline, "queue never drained: {s:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends `TOTAL` samples while the receiver is stopped after round 10 and restarted after
/// round 25, then counts them on the receiver.
async fn outage_run(
    metric: &str,
    write_url: &str,
    start: impl Fn() -> peer::Peer,
    query_url: &str,
    dir: &std::path::Path,
) {
    let mut receiver = Some(start());
    let (writer, _) = RemoteWriter::start(config(write_url, dir)).expect("start writer");
    let base_ms = sources::now_ms() - 120_000;
    for r in 0..ROUNDS {
        writer.push(&round(metric, base_ms, r));
        tokio::time::sleep(Duration::from_millis(50)).await;
        if r == 10 {
            receiver.take().expect("running").stop();
        }
        if r == 25 {
            receiver = Some(tokio::task::block_in_place(&start));
        }
    }
    wait_drained(&writer).await;
    let stats = writer.shutdown(Duration::from_secs(1)).await;
    assert!(stats.retries > 0, "the outage caused no retry: {stats:?}");
    assert_eq!(stats.samples_sent, TOTAL as u64, "{stats:?}");
    assert_eq!(
        stats.dropped_queue_full + stats.dropped_rejected,
        0,
        "{stats:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = None;
    while Instant::now() < deadline {
        last = query_scalar(query_url).await;
        if last == Some(TOTAL as f64) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(last, Some(TOTAL as f64), "samples counted on the receiver");
    drop(receiver);
}

async fn query_scalar(url: &str) -> Option<f64> {
    sources::scrape::install_crypto_provider();
    let body = reqwest::get(url).await.ok()?.bytes().await.ok()?;
    let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

fn sum_count(metric: &str) -> String {
    format!("sum(count_over_time({metric}%5B1h%5D))")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_receiver_outage_loses_nothing() {
    let Some(bin) = peer::find("prometheus", "prometheus") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let port = peer::free_port();
    let data = dir.path().join("prom");
    std::fs::create_dir_all(&data).expect("mkdir");
    let q = format!(
        "http://127.0.0.1:{port}/api/v1/query?query={}",
        sum_count("rw_outage_prom")
    );
    outage_run(
        "rw_outage_prom",
        &format!("http://127.0.0.1:{port}/api/v1/write"),
        || peer::prometheus(&bin, &data, port),
        &q,
        dir.path(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn victoria_metrics_receiver_outage_loses_nothing() {
    let Some(bin) = peer::find("victoria-metrics", "victoria-metrics") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let port = peer::free_port();
    let data = dir.path().join("vm");
    let q = format!(
        "http://127.0.0.1:{port}/api/v1/query?query={}&latency_offset=1ms&nocache=1",
        sum_count("rw_outage_vm")
    );
    outage_run(
        "rw_outage_vm",
        &format!("http://127.0.0.1:{port}/api/v1/write"),
        || peer::victoria_metrics(&bin, &data, port),
        &q,
        dir.path(),
    )
    .await;
}

/// A receiver that answers with scripted statuses (then 204) and records what it got.
#[derive(Default)]
struct Script {
    statuses: Vec<u16>,
    requests: usize,
    accepted_samples: usize,
}

async fn scripted(script: Arc<Mutex<Script>>) -> String {
    use axum::http::StatusCode;
    let app = axum::Router::new().route(
        "/write",
        axum::routing::post(move |body: axum::body::Bytes| {
            let script = script.clone();
            async move {
                let mut s = script.lock().expect("lock");
                s.requests += 1;
                let status = if s.statuses.is_empty() {
                    204
                } else {
                    s.statuses.remove(0)
                };
                if status < 300 {
                    let req = proto::decode_body(&body).expect("valid body");
                    s.accepted_samples += req
                        .timeseries
                        .iter()
                        .map(|t| t.samples.len())
                        .sum::<usize>();
                }
                StatusCode::from_u16(status).expect("status")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/write")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_5xx_and_429_but_not_other_4xx() {
    let script = Arc::new(Mutex::new(Script {
        statuses: vec![503, 429, 500, 204, 400],
        ..Script::default()
    }));
    let url = scripted(script.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(&url, dir.path());
    cfg.min_backoff = Duration::from_millis(10);
    let (writer, _) = RemoteWriter::start(cfg).expect("start");
    let base = sources::now_ms();
    writer.push(&round("m", base, 0));
    wait_drained(&writer).await;
    writer.push(&round("m", base, 1));
    wait_drained(&writer).await;
    let stats = writer.shutdown(Duration::from_millis(100)).await;
    let s = script.lock().expect("lock");
    assert_eq!(s.requests, 5, "3 retries, 1 success, 1 refusal not retried");
    assert_eq!(stats.retries, 3);
    assert_eq!(s.accepted_samples, SERIES * PER_ROUND);
    assert_eq!(stats.samples_sent, (SERIES * PER_ROUND) as u64);
    assert_eq!(stats.dropped_rejected, (SERIES * PER_ROUND) as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_batches_survive_a_restart_of_strata() {
    let script = Arc::new(Mutex::new(Script {
        statuses: vec![503; 1000],
        ..Script::default()
    }));
    let url = scripted(script.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (writer, _) = RemoteWriter::start(config(&url, dir.path())).expect("start");
    writer.push(&round("m", sources::now_ms(), 0));
    let stats = writer.shutdown(Duration::from_millis(200)).await;
    assert_eq!(
        stats.queued_samples,
        (SERIES * PER_ROUND) as u64,
        "{stats:?}"
    );
    script.lock().expect("lock").statuses.clear();
    let (writer, recovery) = RemoteWriter::start(config(&url, dir.path())).expect("restart");
    assert_eq!(recovery.samples, (SERIES * PER_ROUND) as u64);
    wait_drained(&writer).await;
    assert_eq!(
        script.lock().expect("lock").accepted_samples,
        SERIES * PER_ROUND
    );
}
