//! `/api/v1/query_exemplars` against a real Prometheus (`--enable-feature=exemplar-storage`)
//! scraping the same OpenMetrics target: both answer the same requests, and their JSON is
//! compared field by field — keys, JSON types, series and label names, exemplar counts, error
//! statuses — not values (each stamps its own scrape time). Skipped when no `prometheus`
//! binary is installed (`scripts/test.sh` installs it).

use std::sync::Arc;
use std::time::Duration;

use node::api;
use node::{Batch, Ingest};
use serde_json::Value;
use sources::scrape::{TargetKind, TargetSpec, TargetState};
use testkit::peer;
use tsdb::promql::{Engine, EngineConfig};
use tsdb::{Store, StoreConfig};

/// An OpenMetrics histogram with exemplars on two buckets, one on a counter, and a series
/// without any.
fn body(t_s: i64) -> String {
    format!(
        "# TYPE x histogram\n\
         x_bucket{{le=\"0.5\"}} 3 # {{trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\",span_id=\"00f067aa0ba902b7\"}} 0.42 {t_s}.123\n\
         x_bucket{{le=\"1.0\"}} 5 # {{trace_id=\"5bf92f3577b34da6a3ce929d0e0e4736\"}} 0.9 {t_s}.5\n\
         x_bucket{{le=\"+Inf\"}} 6\n\
         x_sum 3.1\n\
         x_count 6\n\
         # TYPE tokens counter\n\
         tokens_total 17 # {{trace_id=\"6bf92f3577b34da6a3ce929d0e0e4736\"}} 1 {t_s}\n\
         # TYPE plain gauge\n\
         plain 1\n\
         # EOF\n"
    )
}

async fn serve_openmetrics(text: String) -> String {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let b = text.clone();
            async move {
                (
                    [(
                        "content-type",
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    b,
                )
            }
        }),
    );
    serve(app).await
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn ask(client: &reqwest::Client, addr: &str, path: &str, post: bool) -> (u16, Value) {
    let (p, q) = path.split_once('?').unwrap_or((path, ""));
    let req = if post {
        client
            .post(format!("http://{addr}{p}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(q.to_string())
    } else {
        client.get(format!("http://{addr}{path}"))
    };
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    // Prometheus answers an expression without selectors with 204 and no body.
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
    };
    (status, body)
}

/// Differences in shape between Prometheus's `p` and Strata's `s`: object keys, JSON types,
/// array lengths; under `seriesLabels` and `labels` the label names (values differ: scrape
/// times); the error message text is each server's own.
fn compare(path: &str, p: &Value, s: &Value, out: &mut Vec<String>) {
    if peer::json_kind(p) != peer::json_kind(s) {
        out.push(format!("{path}: prometheus {p} vs strata {s}"));
        return;
    }
    match (p, s) {
        (Value::Object(a), Value::Object(b)) => {
            let ka: Vec<&String> = a.keys().collect();
            let kb: Vec<&String> = b.keys().collect();
            if ka != kb {
                out.push(format!("{path}: prometheus keys {ka:?} vs strata {kb:?}"));
                return;
            }
            for (k, v) in a {
                if !(path.is_empty() && k == "error") {
                    compare(&format!("{path}.{k}"), v, &b[k], out);
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                out.push(format!("{path}: prometheus {p} vs strata {s}"));
                return;
            }
            let key = |v: &Value| v["seriesLabels"].to_string();
            let (mut a, mut b) = (a.clone(), b.clone());
            a.sort_by_key(key);
            b.sort_by_key(key);
            for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                compare(&format!("{path}[{i}]"), x, y, out);
            }
        }
        (Value::String(a), Value::String(b))
            if (path.ends_with(".status")
                || path.ends_with("errorType")
                || path.contains("Labels.") && !path.ends_with(".instance"))
                && a != b =>
        {
            out.push(format!("{path}: prometheus {a:?} vs strata {b:?}"));
        }
        (Value::String(a), Value::String(b))
            if path.ends_with(".value") && a.parse::<f64>().ok() != b.parse::<f64>().ok() =>
        {
            out.push(format!("{path}: prometheus {a:?} vs strata {b:?}"));
        }
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_exemplars_answers_like_prometheus() {
    let Some(bin) = peer::find("prometheus", "prometheus") else {
        return;
    };
    let now_s = sources::now_ms() / 1000;
    let target = serve_openmetrics(body(now_s - 30)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let prom = tokio::task::block_in_place(|| {
        peer::scraping_prometheus(
            &bin,
            dir.path(),
            "om",
            &target,
            &["--enable-feature=exemplar-storage"],
        )
    });

    // Strata scrapes the same target through the production scrape and ingest path.
    let store = Arc::new(Store::open(StoreConfig::default()).0);
    let ingest = Ingest::new(store.clone(), None, Vec::new());
    let url = format!("http://{target}/metrics").parse().expect("url");
    let spec = TargetSpec::new("om", url, TargetKind::Engine);
    let settings = spec.profiles.steady;
    let mut state = TargetState::new(spec).expect("target");
    let report = state.scrape(settings).await;
    assert_eq!(report.error, None, "strata scrape failed");
    assert_eq!(report.exemplars.len(), 3, "{:?}", report.exemplars);
    ingest.write(Batch::scrape(report));
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
        let (_, b) = ask(
            &client,
            &prom.addr,
            "/api/v1/query_exemplars?query=x_bucket",
            false,
        )
        .await;
        if b["data"].as_array().is_some_and(|d| d.len() == 2) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "prometheus stored no exemplars: {b}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let enc = |s: &str| -> String { form_urlencoded::byte_serialize(s.as_bytes()).collect() };
    let (from, to) = (now_s - 600, now_s + 600);
    let cases = [
        format!(
            "query={}",
            enc("histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))")
        ),
        format!("query={}&start={from}&end={to}", enc("x_bucket")),
        format!(
            "query={}&start={from}.5&end={to}",
            enc("x_bucket{le=\"0.5\"} or tokens_total")
        ),
        format!("query={}", enc("{__name__=~\"x_.*|tokens_total\"}")),
        format!("query={}", enc("plain")),
        format!(
            "query={}&start={}&end={}",
            enc("x_bucket"),
            now_s + 3600,
            now_s + 7200
        ),
        format!("query={}", enc("1 + 1")),
        format!("query={}", enc("rate(x_bucket[5m]")),
        format!("query={}&start={to}&end={from}", enc("x_bucket")),
        format!("query={}&start=yesterday", enc("x_bucket")),
        String::new(),
    ];
    let mut diffs = Vec::new();
    for q in &cases {
        for post in [false, true] {
            let path = format!("/api/v1/query_exemplars?{q}");
            let (ps, pb) = ask(&client, &prom.addr, &path, post).await;
            let (ss, sb) = ask(&client, &strata, &path, post).await;
            if ps != ss {
                diffs.push(format!(
                    "{path} (post {post}): prometheus status {ps} {pb} vs strata {ss} {sb}"
                ));
                continue;
            }
            let before = diffs.len();
            compare("", &pb, &sb, &mut diffs);
            if diffs.len() > before {
                diffs.push(format!(
                    "  ^ in {path} (post {post}): prometheus {pb} vs strata {sb}"
                ));
            }
        }
    }
    // The one value both must agree on: the exemplar's own timestamp and trace id.
    let (_, sb) = ask(
        &client,
        &strata,
        "/api/v1/query_exemplars?query=x_bucket%7Ble%3D%220.5%22%7D",
        false,
    )
    .await;
    let ex = &sb["data"][0]["exemplars"][0];
    assert_eq!(ex["labels"]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(ex["value"], "0.42");
    assert_eq!(ex["timestamp"].as_f64(), Some((now_s - 30) as f64 + 0.123));
    assert!(
        diffs.is_empty(),
        "{} differences from Prometheus:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
    drop(prom);
}
