//! Every dialect's `/metrics`, served for real: it parses with zero errors, Strata's
//! dialect detection names the right engine (and vLLM version), and counters only grow.

use std::collections::HashMap;

use expo::MetricType;
use sim::server::{self, Running};
use sim::{EngineKind, SimConfig, VirtualRun, VllmMetrics};
use tokio::net::TcpListener;

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn start(cfg: &SimConfig) -> Running {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let g = TcpListener::bind("127.0.0.1:0").await.unwrap();
    server::start(cfg, 20.0, l, Some(g)).await.unwrap()
}

/// Parses a body, insisting on zero errors, and returns its sample names.
fn names(body: &str) -> Vec<String> {
    let e = expo::parse(body, expo::Format::Prometheus);
    assert!(e.errors.is_empty(), "{:?}", e.errors);
    assert!(e.sample_count() > 10, "{body}");
    e.samples().map(|s| s.name.to_string()).collect()
}

fn detected(body: &str) -> (String, String) {
    let n = names(body);
    let d = sources::dialect::detect(n.iter().map(String::as_str)).expect("a known dialect");
    (d.table.name.clone(), d.version.to_string())
}

#[tokio::test]
async fn each_dialect_is_recognised_on_the_wire() {
    let cases = [
        (EngineKind::Vllm, VllmMetrics::V1, "vllm", "0.12-0.32"),
        (EngineKind::Vllm, VllmMetrics::V0, "vllm", "V0"),
        (EngineKind::Tgi, VllmMetrics::V1, "tgi", "v2+"),
        (EngineKind::Sglang, VllmMetrics::V1, "sglang", "0.5.3-0.5.9"),
        (EngineKind::Llamacpp, VllmMetrics::V1, "llamacpp", "current"),
    ];
    let c = client();
    for (engine, v, dialect, version) in cases {
        let mut cfg = SimConfig::new(engine);
        cfg.vllm_metrics = v;
        let r = start(&cfg).await;
        let resp = c
            .get(format!("http://{}/metrics", r.engine_addr))
            .send()
            .await
            .unwrap();
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
        let body = resp.text().await.unwrap();
        assert_eq!(
            detected(&body),
            (dialect.to_string(), version.to_string()),
            "{engine:?}"
        );
        let gpu = c
            .get(format!("http://{}/metrics", r.gpu_addr.unwrap()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(detected(&gpu).0, "dcgm");
        r.shutdown().await;
    }
}

/// Counter values (counters, histogram buckets, sums and counts) by series.
fn monotonic_series(body: &str) -> HashMap<String, f64> {
    let e = expo::parse(body, expo::Format::Prometheus);
    let mut out = HashMap::new();
    for f in &e.families {
        if !matches!(f.metric_type, MetricType::Counter | MetricType::Histogram) {
            continue;
        }
        for s in &f.samples {
            out.insert(format!("{}{:?}", s.name, s.labels.to_pairs()), s.value);
        }
    }
    out
}

#[test]
fn counters_only_grow_in_every_dialect() {
    for engine in EngineKind::ALL {
        for scenario in [sim::Scenario::Healthy, sim::Scenario::CacheThrash] {
            let mut cfg = SimConfig::new(engine);
            cfg.scenario = scenario;
            let scrapes: Vec<_> = VirtualRun::new(&cfg, 120.0, 5.0).collect();
            for body in [
                |s: &sim::Scrape| s.engine_body.clone(),
                |s: &sim::Scrape| s.gpu_body.clone(),
            ] {
                let mut prev: Option<HashMap<String, f64>> = None;
                let mut grew = false;
                for s in &scrapes {
                    let now = monotonic_series(&body(s));
                    assert!(!now.is_empty());
                    if let Some(p) = &prev {
                        for (k, v) in &now {
                            let before = p.get(k).copied().unwrap_or(0.0);
                            assert!(
                                *v >= before,
                                "{engine:?} {scenario}: {k} went {before} -> {v}"
                            );
                            grew |= *v > before;
                        }
                    }
                    prev = Some(now);
                }
                assert!(grew, "{engine:?}: nothing counted");
            }
        }
    }
}

#[test]
fn histograms_record_each_requests_simulated_times() {
    let mut run = VirtualRun::new(&SimConfig::new(EngineKind::Vllm), 60.0, 60.0);
    let scrape = run.next().unwrap();
    let records = run.take_records();
    let e = expo::parse(&scrape.engine_body, expo::Format::Prometheus);
    let get = |n: &str| e.samples().find(|s| s.name == n).unwrap().value;
    assert_eq!(
        get("vllm:e2e_request_latency_seconds_count") as usize,
        records.len()
    );
    let e2e: f64 = records.iter().map(|r| r.e2e_s).sum();
    assert!((get("vllm:e2e_request_latency_seconds_sum") - e2e).abs() < 1e-6);
    let generated: u32 = records.iter().map(|r| r.completion_tokens).sum();
    assert_eq!(get("vllm:request_generation_tokens_sum") as u32, generated);
    assert!(get("vllm:generation_tokens_total") >= generated as f64);
    // Buckets exactly as vLLM declares them.
    let les: Vec<String> = e
        .samples()
        .filter(|s| s.name == "vllm:time_to_first_token_seconds_bucket")
        .map(|s| {
            s.labels
                .to_pairs()
                .into_iter()
                .find(|(k, _)| k == "le")
                .unwrap()
                .1
        })
        .collect();
    assert_eq!(les.first().map(String::as_str), Some("0.001"));
    assert_eq!(les.len(), 23);
    assert!(les.contains(&"2560.0".to_string()) && les.last().unwrap() == "+Inf");
}
