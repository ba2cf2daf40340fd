//! Strata's Prometheus HTTP API against a real Prometheus holding the same data: the same
//! samples are pushed to Prometheus (remote_write, through the production sink) and into a
//! Strata store, then every endpoint Grafana's Prometheus datasource calls is requested from
//! both, GET and form POST, with the parameter spellings Grafana sends, and the JSON answers
//! are compared structurally: keys, types, result types, order where Prometheus defines one,
//! value encodings, error types and HTTP status codes.

use testkit::peer;

use node::api;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sinks::remote_write::{RemoteWriteConfig, RemoteWriter};
use sources::Point;
use tsdb::promql::{Engine, EngineConfig};
use tsdb::{Metadata, SampleRef, Store, StoreConfig};

/// Metric metadata, served as exposition to a scraping Prometheus and set in the store.
const METADATA: [(&str, &str, &str); 3] = [
    ("http_requests_total", "counter", "Requests served."),
    ("queue_depth", "gauge", "Requests waiting."),
    ("latency_seconds", "histogram", "Request latency."),
];

/// The test data: counters, gauges and special values at 15 s over 10 minutes, starting
/// `t0` (ms), with timestamps off the 15 s grid so window boundaries never hold a sample.
fn data(t0: i64) -> Vec<Point> {
    let mut out = Vec::new();
    let l = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    for i in 0..40i64 {
        let t = t0 + i * 15_000 + 250;
        let f = i as f64;
        for (j, (instance, method)) in [("a:80", "GET"), ("a:80", "POST"), ("b:80", "GET")]
            .iter()
            .enumerate()
        {
            let labels = l(&[("instance", instance), ("job", "api"), ("method", method)]);
            let v = f * (j as f64 + 1.5) + (f * 0.37).sin().abs();
            out.push(Point::new("http_requests_total", labels, v, t));
        }
        for instance in ["a:80", "b:80"] {
            let labels = l(&[("instance", instance), ("job", "api")]);
            out.push(Point::new("queue_depth", labels, (f * 0.7).cos() * 5.0, t));
        }
        for (kind, v) in [
            ("inf", f64::INFINITY),
            ("neg", f64::NEG_INFINITY),
            ("nan", f64::NAN),
            ("tiny", 1e-7 * f),
            ("huge", 1e21 + f),
        ] {
            out.push(Point::new("weird", l(&[("kind", kind)]), v, t));
        }
    }
    out.sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
    out
}

/// Pushes `points` to Prometheus with the production remote_write sink and waits until all
/// are acknowledged.
async fn push(points: &[Point], addr: &str, dir: &std::path::Path) {
    let url = format!("http://{addr}/api/v1/write").parse().expect("url");
    let (rw, _) =
        RemoteWriter::start(RemoteWriteConfig::new(url, dir.join("queue"))).expect("sink");
    rw.push(points);
    let stats = rw.shutdown(Duration::from_secs(20)).await;
    assert_eq!(
        stats.samples_sent,
        points.len() as u64,
        "remote_write: {stats:?}"
    );
}

/// Serves the exposition text of [`METADATA`] at `/metrics` on a free port.
async fn serve_exposition() -> String {
    let mut body = String::new();
    for (name, kind, help) in METADATA {
        body.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        match kind {
            "histogram" => body.push_str(&format!(
                "{name}_bucket{{le=\"1\"}} 1\n{name}_bucket{{le=\"+Inf\"}} 1\n{name}_sum 0.5\n{name}_count 1\n"
            )),
            _ => body.push_str(&format!("{name} 1\n")),
        }
    }
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let b = body.clone();
            async move { b }
        }),
    );
    serve(app).await
}

/// Serves `app` on a free 127.0.0.1 port; returns `127.0.0.1:PORT`.
async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// One answer: HTTP status, content type and JSON body (`Null` when not JSON).
#[derive(Debug)]
struct Answer {
    status: u16,
    json: bool,
    body: Value,
}

async fn ask(client: &reqwest::Client, addr: &str, path: &str, form: Option<&str>) -> Answer {
    let url = format!("http://{addr}{path}");
    let req = match form {
        Some(f) => client
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(f.to_string()),
        None => client.get(&url),
    };
    let resp = req.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = resp.status().as_u16();
    let json = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let bytes = resp.bytes().await.expect("body");
    Answer {
        status,
        json,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// How strictly two answers are compared.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Everything, in order.
    Exact,
    /// `data.result` is a set (Prometheus does not sort instant vectors).
    Unordered,
    /// Only keys and types (build info values).
    Shape,
    /// `data` is a map with as many entries, any (metadata under `limit`: Prometheus picks
    /// metrics in map order).
    Count,
}

/// A sample value string as a float (`NaN`, `+Inf`, `-Inf` included).
fn float(s: &str) -> Option<f64> {
    match s {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// Differences between Prometheus's `p` and Strata's `s` under `path`.
fn compare(path: &str, p: &Value, s: &Value, mode: Mode, out: &mut Vec<String>) {
    if peer::json_kind(p) != peer::json_kind(s) {
        out.push(format!("{path}: prometheus {p} vs strata {s}"));
        return;
    }
    match (p, s) {
        (Value::Object(a), Value::Object(b)) if mode == Mode::Count && path == ".data" => {
            if a.len() != b.len() {
                out.push(format!(
                    "{path}: prometheus {} entries vs strata {}",
                    a.len(),
                    b.len()
                ));
            }
            for (i, (x, y)) in a.values().zip(b.values()).enumerate() {
                compare(&format!("{path}[{i}]"), x, y, Mode::Shape, out);
            }
        }
        (Value::Object(a), Value::Object(b)) => {
            let ka: Vec<&String> = a.keys().collect();
            let kb: Vec<&String> = b.keys().collect();
            if ka != kb {
                out.push(format!(
                    "{path}: prometheus keys {ka:?} vs strata keys {kb:?}"
                ));
                return;
            }
            for (k, v) in a {
                // Error texts are the engines' own words.
                if path.is_empty() && k == "error" {
                    continue;
                }
                compare(&format!("{path}.{k}"), v, &b[k], mode, out);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if mode == Mode::Shape {
                if let (Some(x), Some(y)) = (a.first(), b.first()) {
                    compare(&format!("{path}[0]"), x, y, mode, out);
                }
                return;
            }
            if a.len() != b.len() {
                out.push(format!(
                    "{path}: prometheus {} items vs strata {}: prometheus {p} vs strata {s}",
                    a.len(),
                    b.len()
                ));
                return;
            }
            let (mut a, mut b) = (a.clone(), b.clone());
            if mode == Mode::Unordered && path == ".data.result" {
                let key = |v: &Value| v["metric"].to_string();
                a.sort_by_key(key);
                b.sort_by_key(key);
            }
            for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                compare(&format!("{path}[{i}]"), x, y, mode, out);
            }
        }
        (Value::String(a), Value::String(b)) if mode != Mode::Shape && a != b => {
            match (float(a), float(b)) {
                (Some(x), Some(y)) if close(x, y) && a.contains('e') == b.contains('e') => {}
                _ => out.push(format!("{path}: prometheus {a:?} vs strata {b:?}")),
            }
        }
        (Value::Number(a), Value::Number(b))
            if mode != Mode::Shape
                && !close(
                    a.as_f64().unwrap_or(f64::NAN),
                    b.as_f64().unwrap_or(f64::NAN),
                ) =>
        {
            out.push(format!("{path}: prometheus {a} vs strata {b}"));
        }
        _ => {}
    }
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `[path?query, mode]` requests, each sent to both servers.
fn cases(t0: i64) -> Vec<(String, Mode)> {
    let sec = |ms: i64| format!("{}.{:03}", ms / 1000, ms % 1000);
    let at = sec(t0 + 300_000);
    let (start, end) = (sec(t0 + 60_000), sec(t0 + 540_000));
    let rfc = |ms: i64| {
        humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + Duration::from_millis(ms as u64))
            .to_string()
    };
    let mut out = Vec::new();
    for (q, mode) in [
        ("http_requests_total", Mode::Unordered),
        (
            "sum by (job) (rate(http_requests_total[1m]))",
            Mode::Unordered,
        ),
        ("sort_desc(rate(http_requests_total[2m]))", Mode::Exact),
        ("weird", Mode::Unordered),
        ("queue_depth > 100", Mode::Exact),
        ("scalar(sum(queue_depth))", Mode::Exact),
        ("1 + 1", Mode::Exact),
        ("time()", Mode::Exact),
        ("\"hello\"", Mode::Exact),
        ("http_requests_total[1m]", Mode::Exact),
        ("weird[45s]", Mode::Exact),
        ("rate(http_requests_total[1m])[2m:30s]", Mode::Exact),
    ] {
        out.push((format!("/api/v1/query?query={}&time={at}", enc(q)), mode));
    }
    out.push((
        format!(
            "/api/v1/query?query=queue_depth&time={}&timeout=30s",
            enc(&rfc(t0 + 120_000))
        ),
        Mode::Unordered,
    ));
    for (q, step) in [
        ("rate(http_requests_total[1m])", "15"),
        ("sum(queue_depth)", "30s"),
        ("weird", "1m"),
        ("scalar(sum(queue_depth))", "0.5m"),
        ("time()", "45.5"),
        ("absent(nothing)", "1m"),
    ] {
        out.push((
            format!(
                "/api/v1/query_range?query={}&start={start}&end={end}&step={step}",
                enc(q)
            ),
            Mode::Exact,
        ));
    }
    out.push((
        format!(
            "/api/v1/query_range?query=queue_depth&start={}&end={}&step=60&timeout=10s",
            enc(&rfc(t0 + 60_000)),
            enc(&rfc(t0 + 540_000))
        ),
        Mode::Exact,
    ));
    let m1 = enc("http_requests_total{method=\"GET\"}");
    let m2 = enc("{__name__=~\"queue.*\"}");
    for path in [
        format!("/api/v1/series?match[]={m1}"),
        format!("/api/v1/series?match[]={m1}&match[]={m2}&start={start}&end={end}"),
        format!("/api/v1/series?match[]={}", enc("weird{kind=~\"n.*\"}")),
        "/api/v1/labels".to_string(),
        format!("/api/v1/labels?match[]={m2}"),
        format!("/api/v1/labels?match[]={m1}&start={start}&end={end}"),
        "/api/v1/label/__name__/values".to_string(),
        format!("/api/v1/label/__name__/values?match[]={m2}&start={start}&end={end}"),
        "/api/v1/label/method/values".to_string(),
        format!("/api/v1/label/instance/values?match[]={m2}"),
        "/api/v1/label/nothing/values".to_string(),
        format!(
            "/api/v1/label/job/values?start={}&end={}",
            enc(&rfc(t0 + 60_000)),
            enc(&rfc(t0 + 120_000))
        ),
        "/api/v1/series?match[]=weird&start=1&end=2".to_string(),
        "/api/v1/labels?start=1&end=2".to_string(),
        "/api/v1/label/kind/values?start=1&end=2".to_string(),
    ] {
        out.push((path, Mode::Exact));
    }
    out.push(("/api/v1/metadata".to_string(), Mode::Exact));
    out.push((
        "/api/v1/metadata?metric=queue_depth".to_string(),
        Mode::Exact,
    ));
    out.push(("/api/v1/metadata?metric=nothing".to_string(), Mode::Exact));
    out.push(("/api/v1/metadata?limit=2".to_string(), Mode::Count));
    out.push(("/api/v1/metadata?limit=0".to_string(), Mode::Count));
    out.push(("/api/v1/status/buildinfo".to_string(), Mode::Shape));
    // Errors: Prometheus's status codes and error types.
    for path in [
        "/api/v1/query".to_string(),
        "/api/v1/query?query=sum(".to_string(),
        "/api/v1/query?query=up&time=yesterday".to_string(),
        "/api/v1/query?query=up&timeout=soon".to_string(),
        format!(
            "/api/v1/query?query={}&time={at}",
            enc("label_replace(http_requests_total, \"method\", \"x\", \"\", \"\")")
        ),
        "/api/v1/query_range?query=up&start=10&end=20".to_string(),
        "/api/v1/query_range?query=up&end=20&step=1".to_string(),
        "/api/v1/query_range?query=up&start=20&end=10&step=1".to_string(),
        "/api/v1/query_range?query=up&start=10&end=20&step=0".to_string(),
        "/api/v1/query_range?query=up&start=10&end=20&step=forever".to_string(),
        "/api/v1/query_range?query=up%5B1m%5D&start=10&end=20&step=1".to_string(),
        "/api/v1/query_range?query=%22s%22&start=10&end=20&step=1".to_string(),
        "/api/v1/series".to_string(),
        "/api/v1/series?match[]=sum(up)".to_string(),
        "/api/v1/series?match[]=up&start=x".to_string(),
        "/api/v1/labels?start=x".to_string(),
        "/api/v1/label/bad-name/values".to_string(),
        "/api/v1/metadata?limit=x".to_string(),
        "/api/v1/nothing".to_string(),
    ] {
        out.push((path, Mode::Exact));
    }
    out
}

/// The same request as a form POST when the endpoint takes one.
fn as_post(path: &str) -> Option<(String, String)> {
    let (p, q) = path.split_once('?')?;
    [
        "/api/v1/query",
        "/api/v1/query_range",
        "/api/v1/series",
        "/api/v1/labels",
    ]
    .contains(&p)
    .then(|| (p.to_string(), q.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strata_answers_like_prometheus_on_the_same_data() {
    let Some(bin) = peer::find("prometheus", "prometheus") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let target = serve_exposition().await;
    let (prom, scraper) = tokio::task::block_in_place(|| {
        (
            peer::prometheus(&bin, dir.path(), peer::free_port()),
            peer::scraping_prometheus(&bin, dir.path(), "meta", &target, &[]),
        )
    });
    // About 20 minutes back (inside Prometheus's head block), pinned 7 s past a whole minute:
    // every query time (t0 + whole minutes/half-minutes) and every sample (t0 + 15 s steps
    // + 250 ms) then stays off the 15 s and 30 s grids whatever the wall clock says, so no
    // window boundary or subquery step ever lands on a sample (it did ~1 run in 30 when
    // t0 + 300 s fell on a 30 s grid point).
    let t0 = (sources::now_ms() / 60_000 - 20) * 60_000 + 7_000;
    let points = data(t0);
    push(&points, &prom.addr, dir.path()).await;

    let store = Arc::new(Store::open(StoreConfig::default()).0);
    let report = store.append(
        "test",
        points.iter().map(|p| SampleRef {
            name: &p.name,
            labels: &p.labels,
            t_ms: p.timestamp_ms,
            value: p.value,
        }),
    );
    assert!(report.refused.is_empty(), "store refused samples");
    for (name, kind, help) in METADATA {
        store.set_metadata(
            name,
            Metadata {
                kind: kind.into(),
                help: help.into(),
                unit: String::new(),
            },
        );
    }
    let engine = Arc::new(Engine::new(store.clone(), EngineConfig::default()));
    let strata = serve(api::router(Arc::new(api::ApiState {
        engine,
        inflight: api::Inflight::new(20),
        query_timeout: Duration::from_secs(120),
        store,
        rules: None,
        backend: None,
    })))
    .await;

    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let a = ask(&client, &scraper.addr, "/api/v1/metadata", None).await;
        if a.body["data"]
            .as_object()
            .is_some_and(|m| m.len() == METADATA.len())
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no metadata: {a:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let mut diffs = Vec::new();
    let mut checked = 0;
    for (path, mode) in cases(t0) {
        let theirs = if path.starts_with("/api/v1/metadata") {
            &scraper.addr
        } else {
            &prom.addr
        };
        let mut requests = vec![(path.clone(), None)];
        if let Some((p, form)) = as_post(&path) {
            requests.push((p, Some(form)));
        }
        for (p, form) in requests {
            let a = ask(&client, theirs, &p, form.as_deref()).await;
            let b = ask(&client, &strata, &p, form.as_deref()).await;
            let what = format!("{} {path}", if form.is_some() { "POST" } else { "GET" });
            if a.status != b.status || a.json != b.json {
                diffs.push(format!(
                    "{what}: prometheus status {} json {} vs strata status {} json {}: prometheus {} vs strata {}",
                    a.status, a.json, b.status, b.json, a.body, b.body
                ));
                continue;
            }
            if a.status == 200 {
                assert_eq!(a.body["status"], "success", "{what}: {}", a.body);
            } else if a.json {
                assert!(
                    b.body["error"].as_str().is_some_and(|e| !e.is_empty()),
                    "{what}: {}",
                    b.body
                );
            }
            let before = diffs.len();
            compare("", &a.body, &b.body, mode, &mut diffs);
            for d in &mut diffs[before..] {
                *d = format!("{what}: {d}");
            }
            checked += 1;
        }
    }
    assert!(
        diffs.is_empty(),
        "{} differences from Prometheus:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
    assert!(checked > 70, "only {checked} requests compared");
    drop((prom, scraper));
}
