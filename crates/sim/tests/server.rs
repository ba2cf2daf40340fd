//! The real-time servers on loopback, as clients see them: chunk shapes, errors, ids,
//! models, health, TGI's native API, scenario switching, aborts and the zero-cost mode.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sim::server::{self, Running, ZeroCost};
use sim::{EngineKind, SimConfig};
use tokio::net::TcpListener;

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn start_with(engine: EngineKind, speed: f64, f: impl FnOnce(&mut SimConfig)) -> Running {
    let mut cfg = SimConfig::new(engine);
    cfg.load = false;
    f(&mut cfg);
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let g = TcpListener::bind("127.0.0.1:0").await.unwrap();
    server::start(&cfg, speed, l, Some(g)).await.unwrap()
}

async fn start(engine: EngineKind) -> Running {
    start_with(engine, 20.0, |_| {}).await
}

fn url(r: &Running, path: &str) -> String {
    format!("http://{}{path}", r.engine_addr)
}

/// The JSON payloads of an SSE body, and whether it ended with `data: [DONE]`.
fn events(body: &str) -> (Vec<Value>, bool) {
    let mut out = Vec::new();
    let mut done = false;
    for ev in body.split("\n\n").filter(|e| !e.is_empty()) {
        let data = ev
            .strip_prefix("data: ")
            .unwrap_or_else(|| panic!("not an SSE data line: {ev:?}"));
        if data == "[DONE]" {
            done = true;
        } else {
            assert!(!done, "nothing after [DONE]");
            out.push(serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data}")));
        }
    }
    (out, done)
}

async fn post(r: &Running, path: &str, body: Value) -> reqwest::Response {
    client()
        .post(url(r, path))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// POSTs `body` to `path` and reads the JSON answer.
async fn answer(r: &Running, path: &str, body: Value) -> Value {
    post(r, path, body).await.json().await.unwrap()
}

/// POSTs `body` to `path` and reads the SSE answer through [`events`].
async fn stream(r: &Running, path: &str, body: Value) -> (Vec<Value>, bool) {
    events(&post(r, path, body).await.text().await.unwrap())
}

#[tokio::test]
async fn vllm_chat_stream_has_role_content_finish_and_usage_chunks() {
    let r = start(EngineKind::Vllm).await;
    let resp = client()
        .post(url(&r, "/v1/chat/completions"))
        .header("x-request-id", "req-42")
        .json(&json!({
            "model": "meta-llama/Llama-3.1-8B-Instruct",
            "messages": [{"role": "user", "content": "Say hello to the simulator."}],
            "max_tokens": 12, "stream": true, "stream_options": {"include_usage": true},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-request-id"], "req-42");
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let (ev, done) = events(&resp.text().await.unwrap());
    assert!(done);
    assert!(
        ev.iter()
            .all(|e| e["id"] == "chatcmpl-req-42" && e["object"] == "chat.completion.chunk")
    );
    assert_eq!(
        ev[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    let content: Vec<&Value> = ev[1..ev.len() - 1].iter().collect();
    assert_eq!(content.len(), 12);
    assert!(
        content[..11]
            .iter()
            .all(|e| e["choices"][0]["finish_reason"].is_null())
    );
    assert_eq!(content[11]["choices"][0]["finish_reason"], "length");
    let usage = ev.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 12);
    // Say|hell|o|to|the|simu|lato|r|. = 9 tokens, + 4 for the message, + 3 to prime the reply.
    assert_eq!(usage["usage"]["prompt_tokens"], 16);
    assert_eq!(usage["usage"]["total_tokens"], 12 + 16);
    r.shutdown().await;
}

#[tokio::test]
async fn vllm_non_stream_and_completions() {
    let r = start(EngineKind::Vllm).await;
    let v = answer(
        &r,
        "/v1/chat/completions",
        json!({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5}),
    )
    .await;
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(v["usage"]["completion_tokens"], 5);
    assert!(
        !v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .is_empty()
    );
    // Completions stream without include_usage: no usage chunk.
    let (ev, done) = stream(
        &r,
        "/v1/completions",
        json!({"prompt": "Once upon a time", "max_tokens": 4, "stream": true}),
    )
    .await;
    assert!(done);
    assert_eq!(ev.len(), 4);
    assert!(
        ev.iter()
            .all(|e| e["object"] == "text_completion" && e.get("usage").is_none())
    );
    assert_eq!(ev[3]["choices"][0]["finish_reason"], "length");
    r.shutdown().await;
}

#[tokio::test]
async fn natural_stop_ends_with_stop() {
    let r = start(EngineKind::Vllm).await;
    // No max_tokens: the natural output length decides, and it ends on "stop".
    let v = answer(
        &r,
        "/v1/chat/completions",
        json!({"messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    assert_eq!(v["choices"][0]["finish_reason"], "stop", "{v}");
    r.shutdown().await;
}

#[tokio::test]
async fn bad_input_gets_each_engines_error() {
    let vllm = start(EngineKind::Vllm).await;
    let c = client();
    let bad = c
        .post(url(&vllm, "/v1/chat/completions"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let v: Value = bad.json().await.unwrap();
    assert_eq!(
        (v["object"].as_str(), v["type"].as_str(), v["code"].as_i64()),
        (Some("error"), Some("BadRequestError"), Some(400))
    );
    assert!(v["param"].is_null());
    let missing = post(
        &vllm,
        "/v1/chat/completions",
        json!({"model": "meta-llama/Llama-3.1-8B-Instruct"}),
    )
    .await;
    assert_eq!(missing.status(), 400);
    assert!(missing.text().await.unwrap().contains("messages"));
    let long = "word ".repeat(9000);
    let over = post(
        &vllm,
        "/v1/completions",
        json!({"prompt": long, "max_tokens": 10}),
    )
    .await;
    assert_eq!(over.status(), 400);
    let v: Value = over.json().await.unwrap();
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("maximum context length is 8192"),
        "{v}"
    );
    let over = post(
        &vllm,
        "/v1/completions",
        json!({"prompt": "hi", "max_tokens": 9000}),
    )
    .await;
    assert_eq!(over.status(), 400);
    let unknown = post(
        &vllm,
        "/v1/chat/completions",
        json!({"model": "gpt-9", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(unknown.status(), 404);
    vllm.shutdown().await;

    let llama = start(EngineKind::Llamacpp).await;
    let bad = c
        .post(url(&llama, "/v1/chat/completions"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 500);
    assert_eq!(
        bad.json::<Value>().await.unwrap()["error"]["type"],
        "server_error"
    );
    let over = post(
        &llama,
        "/v1/chat/completions",
        json!({"messages": [{"role": "user", "content": long}]}),
    )
    .await;
    assert_eq!(over.status(), 400);
    let v: Value = over.json().await.unwrap();
    assert_eq!(v["error"]["type"], "exceed_context_size_error");
    assert_eq!(v["error"]["n_ctx"], 8192);
    assert!(v["error"]["n_prompt_tokens"].as_u64().unwrap() > 8192);
    llama.shutdown().await;

    let tgi = start(EngineKind::Tgi).await;
    let over = post(
        &tgi,
        "/generate",
        json!({"inputs": "hello", "parameters": {"max_new_tokens": 9000}}),
    )
    .await;
    assert_eq!(over.status(), 422);
    let v: Value = over.json().await.unwrap();
    assert_eq!(v["error_type"], "validation");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("Input validation error")
    );
    let missing = post(&tgi, "/generate", json!({"parameters": {}})).await;
    assert_eq!(missing.status(), 422);
    let bad = c
        .post(url(&tgi, "/generate"))
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    tgi.shutdown().await;
}

#[tokio::test]
async fn tgi_refuses_with_429_when_its_queue_is_full() {
    let r = start_with(EngineKind::Tgi, 1.0, |c| c.max_concurrent_requests = 2).await;
    let long = json!({"inputs": "hello", "parameters": {"max_new_tokens": 2000}});
    let c = client();
    let a = c
        .post(url(&r, "/generate_stream"))
        .json(&long)
        .send()
        .await
        .unwrap();
    let b = c
        .post(url(&r, "/generate_stream"))
        .json(&long)
        .send()
        .await
        .unwrap();
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    let third = post(&r, "/generate", long.clone()).await;
    assert_eq!(third.status(), 429);
    assert_eq!(
        third.json::<Value>().await.unwrap(),
        json!({"error": "Model is overloaded", "error_type": "overloaded"})
    );
    let metrics = c
        .get(url(&r, "/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("tgi_request_failure{err=\"overloaded\"} 1"),
        "{metrics}"
    );
    drop((a, b));
    r.shutdown().await;
}

#[tokio::test]
async fn tgi_generate_stream_ends_with_details() {
    let r = start(EngineKind::Tgi).await;
    let (ev, done) = stream(
        &r,
        "/generate_stream",
        json!({"inputs": "What is a KV cache?", "parameters": {"max_new_tokens": 6}}),
    )
    .await;
    assert!(!done, "TGI's native stream has no [DONE]");
    assert_eq!(ev.len(), 6);
    for (i, e) in ev.iter().enumerate() {
        assert_eq!(e["index"], i + 1);
        assert_eq!(e["token"]["special"], false);
        assert!(
            e["token"]["id"].is_u64()
                && e["token"]["text"].is_string()
                && e["token"]["logprob"].is_f64()
        );
    }
    assert!(
        ev[..5]
            .iter()
            .all(|e| e["generated_text"].is_null() && e["details"].is_null())
    );
    let last = &ev[5];
    let text: String = ev
        .iter()
        .map(|e| e["token"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(last["generated_text"], text);
    assert_eq!(last["details"]["finish_reason"], "length");
    assert_eq!(last["details"]["generated_tokens"], 6);
    let v = answer(
        &r,
        "/generate",
        json!({"inputs": "Hi", "parameters": {"max_new_tokens": 3, "details": true}}),
    )
    .await;
    assert_eq!(v["details"]["generated_tokens"], 3);
    assert_eq!(v["details"]["tokens"].as_array().unwrap().len(), 3);
    // TGI's Messages API chunks carry the role in every delta.
    let (ev, done) = stream(
        &r,
        "/v1/chat/completions",
        json!({"messages": [{"role": "user", "content": "x"}], "max_tokens": 3, "stream": true}),
    )
    .await;
    assert!(done && ev.len() == 3);
    assert!(
        ev.iter()
            .all(|e| e["choices"][0]["delta"]["role"] == "assistant")
    );
    r.shutdown().await;
}

#[tokio::test]
async fn llamacpp_chunks_match_the_captured_shapes() {
    let r = start(EngineKind::Llamacpp).await;
    let body = post(&r, "/v1/chat/completions", json!({"messages": [{"role": "user", "content": "x"}], "max_tokens": 3, "stream": true, "stream_options": {"include_usage": true}}))
        .await
        .text()
        .await
        .unwrap();
    let (ev, done) = events(&body);
    assert!(done);
    // role (content null), 3 contents, empty delta with finish_reason, usage with choices [].
    assert_eq!(ev.len(), 6, "{body}");
    assert_eq!(
        ev[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": null})
    );
    assert_eq!(ev[4]["choices"][0]["delta"], json!({}));
    assert_eq!(ev[4]["choices"][0]["finish_reason"], "length");
    assert_eq!(ev[5]["choices"], json!([]));
    assert_eq!(ev[5]["usage"]["completion_tokens"], 3);
    assert_eq!(ev[5]["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    assert!(ev[5]["timings"]["predicted_n"] == 3);
    assert!(ev.iter().all(|e| e["system_fingerprint"] == "b0-unknown"));
    // Completions streams always end with usage.
    let (ev, _) = stream(
        &r,
        "/v1/completions",
        json!({"prompt": "x", "max_tokens": 2, "stream": true}),
    )
    .await;
    assert_eq!(ev.last().unwrap()["usage"]["completion_tokens"], 2);
    // llama.cpp ignores x-request-id.
    let resp = client()
        .get(url(&r, "/health"))
        .header("x-request-id", "abc")
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("x-request-id").is_none());
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    r.shutdown().await;
}

#[tokio::test]
async fn models_health_topology_and_scenario_switch() {
    let r = start_with(EngineKind::Sglang, 20.0, |c| c.gpus = Some(2)).await;
    let c = client();
    let m: Value = c
        .get(url(&r, "/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["data"][0]["id"], "meta-llama/Llama-3.1-8B-Instruct");
    let h = c
        .get(url(&r, "/health"))
        .header("x-request-id", "h1")
        .send()
        .await
        .unwrap();
    assert_eq!(h.status(), 200);
    assert_eq!(h.headers()["x-request-id"], "h1");
    let t: Value = c
        .get(url(&r, "/sim/topology"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(t["gpus"].as_array().unwrap().len(), 2);
    let uuid = t["gpus"][0]["uuid"].as_str().unwrap().to_string();
    let dcgm = c
        .get(format!("http://{}/metrics", r.gpu_addr.unwrap()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        dcgm.contains(&uuid) && dcgm.contains(&format!("pod=\"{}\"", t["pod"].as_str().unwrap()))
    );
    let s = c
        .post(url(&r, "/sim/scenario"))
        .body(r#"{"scenario":"thermal-throttle"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(s.status(), 200);
    let now: Value = c
        .get(url(&r, "/sim/scenario"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(now["scenario"], "thermal-throttle");
    assert_eq!(
        now["scenarios"].as_array().unwrap().len(),
        sim::Scenario::ALL.len()
    );
    let bad = c
        .post(url(&r, "/sim/scenario"))
        .body(r#"{"scenario":"nope"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    r.shutdown().await;
}

#[tokio::test]
async fn a_client_that_goes_away_aborts_its_request() {
    let r = start_with(EngineKind::Vllm, 1.0, |_| {}).await;
    let mut resp = post(
        &r,
        "/v1/completions",
        json!({"prompt": "x", "max_tokens": 3000, "stream": true}),
    )
    .await;
    assert!(resp.chunk().await.unwrap().is_some());
    drop(resp);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let m = client()
            .get(url(&r, "/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if m.contains(
            "finished_reason=\"abort\",model_name=\"meta-llama/Llama-3.1-8B-Instruct\"} 1",
        ) {
            break;
        }
        assert!(Instant::now() < deadline, "no abort recorded:\n{m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    r.shutdown().await;
}

#[tokio::test]
async fn proxy_buffering_releases_chunks_in_bursts() {
    let r = start_with(EngineKind::Vllm, 1.0, |c| {
        c.scenario = sim::Scenario::ProxyBuffering
    })
    .await;
    let mut resp = post(
        &r,
        "/v1/completions",
        json!({"prompt": "x", "max_tokens": 120, "stream": true}),
    )
    .await;
    let mut arrivals = Vec::new();
    let t0 = Instant::now();
    while let Some(c) = resp.chunk().await.unwrap() {
        arrivals.push((t0.elapsed(), c.len()));
    }
    // 120 tokens take > 1 s of engine time, but reach the client in a few bursts.
    let bursts = 1 + arrivals
        .windows(2)
        .filter(|w| w[1].0 - w[0].0 > Duration::from_millis(300))
        .count();
    assert!(
        arrivals.len() >= 2 && bursts <= 4,
        "{bursts} bursts over {} reads",
        arrivals.len()
    );
    assert!(t0.elapsed() > Duration::from_millis(900));
    r.shutdown().await;
}

#[tokio::test]
async fn zero_cost_emits_fixed_tokens_on_a_fixed_schedule() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let z = ZeroCost {
        tokens: 10,
        itl: Duration::from_millis(20),
        model: "m".into(),
    };
    let r = server::start_zero_cost(z, l).await.unwrap();
    let t0 = Instant::now();
    let body = post(
        &r,
        "/v1/chat/completions",
        json!({"messages": [], "stream": true, "stream_options": {"include_usage": true}}),
    )
    .await
    .text()
    .await
    .unwrap();
    let took = t0.elapsed();
    let (ev, done) = events(&body);
    assert!(done);
    assert_eq!(ev.len(), 1 + 10 + 1, "role, 10 tokens, usage");
    assert_eq!(ev.last().unwrap()["usage"]["completion_tokens"], 10);
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_millis(600),
        "{took:?}"
    );
    r.shutdown().await;
}

/// `strata sim`'s listener queues a burst of new connections the size of a large benchmark
/// (600 at once, none accepted yet) instead of dropping SYNs past 128 (tokio's default
/// backlog), which would stall those clients for a SYN retry (≥ 1 s).
#[tokio::test]
async fn listener_queues_a_burst_of_connections() {
    let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    if somaxconn < 600 {
        eprintln!("skipping: net.core.somaxconn is {somaxconn}, below the burst");
        return;
    }
    let listener = sim::server::listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let opened = tokio::task::spawn_blocking(move || {
        (0..600)
            .map(|_| {
                std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(800))
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .unwrap();
    assert_eq!(opened.map(|c| c.len()).unwrap(), 600);
    drop(listener);
}
