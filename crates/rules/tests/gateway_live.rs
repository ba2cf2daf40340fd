//! The packs against the real gateway: the simulator behind a real `gateway` on loopback,
//! streamed requests through it (some cut at `max_tokens`, some ending on `stop`), its
//! `/metrics` scraped twice through the real parser into a real `tsdb::Store`. Every
//! `strata_gateway_*` selector in every built-in pack must select at least one series
//! (names and label values are the gateway's own, not guesses), and the SLO error ratios
//! must be computed from the gateway alone (the store holds no engine series to fall back
//! on).

use std::sync::Arc;
use std::time::Duration;

use promql_parser::parser::{Expr, VectorSelector};
use promql_parser::util::{ExprVisitor, walk_expr};
use sim::{EngineKind, Scenario, SimConfig};
use sources::scrape::{target_labels, to_points};
use tsdb::promql::{Engine, EngineConfig, Value};
use tsdb::{SampleRef, Store, StoreConfig};

/// Collects the gateway selectors of an expression, offsets and `@` dropped.
struct Selectors(Vec<String>);

impl ExprVisitor for Selectors {
    type Error = ();

    fn pre_visit(&mut self, e: &Expr) -> Result<bool, ()> {
        let vs: &VectorSelector = match e {
            Expr::VectorSelector(vs) => vs,
            Expr::MatrixSelector(ms) => &ms.vs,
            _ => return Ok(true),
        };
        if vs
            .name
            .as_deref()
            .is_some_and(|n| n.starts_with("strata_gateway_"))
        {
            let mut plain = vs.clone();
            plain.offset = None;
            plain.at = None;
            self.0.push(plain.to_string());
        }
        Ok(true)
    }
}

async fn scrape(client: &reqwest::Client, url: &str, store: &Store) -> i64 {
    let body = client
        .get(url)
        .send()
        .await
        .expect("scrape gateway")
        .text()
        .await
        .expect("gateway /metrics body");
    let exp = expo::parse(&body, expo::Format::Prometheus);
    assert!(exp.errors.is_empty(), "{:?}", exp.errors);
    let t = strata_core::now_ms();
    let points = to_points(&exp, &target_labels("gateway", "gw:9000", &[]), t);
    let r = store.append(
        "gateway",
        points.iter().map(|p| SampleRef {
            name: &p.name,
            labels: &p.labels,
            t_ms: p.timestamp_ms,
            value: p.value,
        }),
    );
    assert!(r.refused.is_empty(), "{:?}", r.refused.first());
    t
}

async fn traffic(client: &reqwest::Client, url: &str, model: &str) {
    let mut tasks = Vec::new();
    for i in 0..12u32 {
        // Every other request is cut at 3 tokens (`length`); the rest may end on `stop`.
        let max_tokens = if i % 2 == 0 { 3 } else { 400 };
        let body = serde_json::json!({
            "model": model,
            "stream": true,
            "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": format!("question {i}")}],
        });
        let req = client
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send();
        tasks.push(tokio::spawn(async move {
            let resp = req.await.expect("request through the gateway");
            assert!(resp.status().is_success(), "{}", resp.status());
            resp.text().await.expect("stream body");
        }));
    }
    for t in tasks {
        t.await.expect("request task");
    }
}

/// The simulator (no load of its own) playing `scenario` at `speed` behind a real gateway.
struct Stack {
    sim: sim::server::Running,
    gw: gateway::Running,
    model: String,
    metrics_url: String,
    chat_url: String,
    _log: tempfile::TempDir,
}

async fn stack(scenario: Scenario, speed: f64) -> Stack {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut sim_cfg = SimConfig::new(EngineKind::Vllm);
    sim_cfg.load = false;
    sim_cfg.scenario = scenario;
    let model = sim_cfg.model_name().to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind simulator");
    let sim = sim::server::start(&sim_cfg, speed, listener, None)
        .await
        .expect("simulator starts");

    let upstream = gateway::UpstreamConfig {
        engine: "vllm".to_string(),
        ..gateway::UpstreamConfig::new("sim", &format!("http://{}", sim.engine_addr))
    };
    let mut gw_cfg =
        gateway::GatewayConfig::new("127.0.0.1:0".parse().expect("loopback"), vec![upstream]);
    gw_cfg.admin = Some("127.0.0.1:0".parse().expect("loopback"));
    let log = tempfile::tempdir().expect("tempdir");
    gw_cfg.log.output = gateway::LogOutput::File {
        path: log.path().join("gateway.log"),
        max_bytes: 1 << 20,
        keep: 1,
    };
    let gw = gateway::start(gw_cfg).await.expect("gateway starts");
    let admin = gw.admin_addr.expect("admin address bound");
    Stack {
        metrics_url: format!("http://{admin}/metrics"),
        chat_url: format!("http://{}/v1/chat/completions", gw.addr),
        sim,
        gw,
        model,
        _log: log,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_gateway_selector_in_the_packs_selects_real_gateway_series() {
    let Stack {
        sim,
        gw,
        model,
        metrics_url,
        chat_url,
        _log,
    } = stack(Scenario::Healthy, 50.0).await;
    let client = reqwest::Client::new();
    let (store, _) = Store::open(StoreConfig::default());
    let store = Arc::new(store);
    traffic(&client, &chat_url, &model).await;
    scrape(&client, &metrics_url, &store).await;
    traffic(&client, &chat_url, &model).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let t = scrape(&client, &metrics_url, &store).await;
    let engine = Engine::new(store.clone(), EngineConfig::default());

    let mut checked = 0;
    for (file, text) in rules::packs::FILES {
        for group in rules::load(file, text).expect("pack loads") {
            for rule in &group.rules {
                let expr = promql_parser::parser::parse(rule.expr()).expect("pack expr parses");
                let mut sel = Selectors(Vec::new());
                walk_expr(&mut sel, &expr).expect("walk");
                for s in sel.0 {
                    let got = match engine.instant(&s, t).expect("selector evaluates") {
                        Value::Vector(v) => v.len(),
                        other => panic!("{s}: not a vector: {other:?}"),
                    };
                    assert!(
                        got > 0,
                        "{file}: rule {} selects {s}, which the gateway does not emit",
                        rule.name()
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 50, "only {checked} gateway selectors found");

    // The SLO error ratios come from the gateway alone, one per model, between 0 and 1.
    for group in rules::packs::groups("chat").expect("packs load") {
        for rule in group.rules.iter().filter(|r| {
            r.name().starts_with("slo:sli_error:ratio_rate5m") && !r.expr().contains("slo:queue")
        }) {
            let v = match engine.instant(rule.expr(), t).expect("SLI evaluates") {
                Value::Vector(v) => v,
                other => panic!("not a vector: {other:?}"),
            };
            assert_eq!(v.len(), 1, "{}: {:?}", rule.name(), v);
            assert!((0.0..=1.0).contains(&v[0].v), "{}: {}", rule.name(), v[0].v);
        }
    }
    gw.shutdown(Duration::from_secs(1)).await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_counts_the_simulators_refusals() {
    // 600× real time: the refusal spike begins (t = 4 min) after 0.4 s.
    let st = stack(Scenario::RefusalSpike, 600.0).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..80u32 {
        let body = serde_json::json!({
            "model": st.model,
            "stream": true,
            "max_tokens": 40,
            "messages": [{"role": "user", "content": format!("question {i}")}],
        });
        let req = client
            .post(&st.chat_url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send();
        tasks.push(tokio::spawn(async move {
            let text = req.await.expect("request").text().await.expect("body");
            // Streamed content: the first chunks carry "I", " can't", " help"...
            text.contains("\"content\":\" can't\"")
        }));
    }
    let mut refused = 0.0;
    for t in tasks {
        refused += f64::from(u8::from(t.await.expect("request task")));
    }
    let (store, _) = Store::open(StoreConfig::default());
    let t = scrape(&client, &st.metrics_url, &store).await;
    let engine = Engine::new(Arc::new(store), EngineConfig::default());
    let counted = match engine
        .instant("sum(strata_gateway_refusals_total)", t)
        .expect("query")
    {
        Value::Vector(v) => v.first().map_or(f64::NAN, |s| s.v),
        other => panic!("not a vector: {other:?}"),
    };
    // About 15 % of 80; the gateway counts exactly the responses that read as refusals.
    assert!((3.0..=25.0).contains(&refused), "{refused} refusals of 80");
    assert_eq!(counted, refused);
    st.gw.shutdown(Duration::from_secs(1)).await;
    st.sim.shutdown().await;
}
