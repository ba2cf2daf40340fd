//! The gateway on loopback in front of the simulator and scripted upstreams: streaming
//! content as a direct connection sees it, usage exactly when asked, ids and trace context
//! upstream, metrics and log lines, TGI, h2c, and every error class.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use sim::EngineKind;

fn chat(stream: bool, usage: Option<bool>) -> Value {
    let mut b = json!({
        "model": "meta-llama/Llama-3.1-8B-Instruct",
        "messages": [{"role": "user", "content": "Say something about GPUs"}],
        "max_tokens": 12,
        "stream": stream,
        "temperature": 0.7,
    });
    if let Some(u) = usage {
        b["stream_options"] = json!({"include_usage": u});
    }
    b
}

/// Drops fields that differ between two simulator instances.
fn normalise(mut v: Vec<Value>) -> Vec<Value> {
    for e in &mut v {
        if let Some(o) = e.as_object_mut() {
            o.remove("created");
            o.remove("id");
            if let Some(t) = o.get_mut("timings") {
                *t = json!("measured");
            }
        }
    }
    v
}

#[tokio::test]
async fn streams_what_a_direct_connection_gets_with_usage_exactly_when_asked() {
    let (_d, log) = temp_log();
    for engine in EngineKind::ALL {
        for usage in [None, Some(false), Some(true)] {
            // Two identical simulators: one direct, one behind the gateway.
            let direct = sim(engine, 20.0, |_| {}).await;
            let behind = sim(engine, 20.0, |_| {}).await;
            let gw = gateway(config(
                &[("up", url(behind.engine_addr, ""), engine.name())],
                &log,
            ))
            .await;
            for path in ["/v1/chat/completions", "/v1/completions"] {
                let mut body = chat(true, usage);
                if path == "/v1/completions" {
                    body["prompt"] = json!("Once upon a time");
                }
                let get = |addr| {
                    let body = body.clone();
                    async move {
                        let r = client()
                            .post(url(addr, path))
                            .header("x-request-id", "req-fixed-1")
                            .json(&body)
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(r.status(), 200);
                        r.text().await.unwrap()
                    }
                };
                let a = get(direct.engine_addr).await;
                let b = get(gw.addr).await;
                let (ea, da) = events(&a);
                let (eb, db) = events(&b);
                assert!(da && db);
                let what = format!("{engine:?} {path} usage {usage:?}");
                assert_eq!(normalise(ea.clone()), normalise(eb.clone()), "{what}");
                let usage_seen = |e: &[Value]| e.iter().any(|e| !e["usage"].is_null());
                assert_eq!(usage_seen(&eb), usage_seen(&ea), "{what}");
                if engine != EngineKind::Llamacpp || path == "/v1/chat/completions" {
                    assert_eq!(usage_seen(&eb), usage == Some(true), "{what}");
                }
            }
            // The gateway knew the exact counts either way.
            let m = metrics(&gw, false).await;
            let labels =
                "{model=\"meta-llama/Llama-3.1-8B-Instruct\",tenant=\"default\",upstream=\"up\"}";
            assert_eq!(
                sample(
                    &m,
                    &format!("strata_gateway_generation_tokens_total{labels}")
                ),
                Some(24.0),
                "{engine:?} {usage:?}\n{m}"
            );
            assert!(
                sample(&m, &format!("strata_gateway_prompt_tokens_total{labels}")).unwrap() > 0.0,
                "{engine:?} {usage:?}"
            );
            assert_eq!(
                sample(&m, &format!("strata_gateway_ttft_seconds_count{labels}")),
                Some(2.0)
            );
            assert_eq!(
                sample(&m, &format!("strata_gateway_itl_seconds_count{labels}")),
                Some(22.0)
            );
            gw.shutdown(Duration::from_secs(2)).await;
            direct.shutdown().await;
            behind.shutdown().await;
        }
    }
}

#[tokio::test]
async fn ids_trace_context_metrics_exemplars_and_log_line_agree() {
    let (_d, log) = temp_log();
    let up = fake(vec![
        sse_head(),
        chunk("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"I cannot\"},\"finish_reason\":null}]}\n\n"),
        Step::Sleep(Duration::from_millis(40)),
        chunk("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" help\"},\"finish_reason\":\"stop\"}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n"),
        last_chunk(),
    ])
    .await;
    let mut cfg = config(&[("vllm-a", url(up.addr, ""), "vllm")], &log);
    cfg.tracing.sampling.baseline_percent = 100.0;
    let gw = gateway(cfg).await;
    let mut up = up;
    let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let r = client()
        .post(url(gw.addr, "/v1/chat/completions"))
        .header("traceparent", parent)
        .json(&chat(true, None))
        .send()
        .await
        .unwrap();
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(rid.len(), 32, "generated when the client sent none");
    let text = r.text().await.unwrap();
    assert!(
        !text.contains("usage"),
        "the injected usage chunk is removed: {text}"
    );
    assert!(text.ends_with("data: [DONE]\n\n"));

    let (head, body) = up.requests.recv().await.unwrap();
    let head = head.to_lowercase();
    assert!(head.contains(&format!("x-request-id: {rid}")), "{head}");
    assert!(
        head.contains("traceparent: 00-0af7651916cd43dd8448eb211c80319c-"),
        "the trace continues upstream: {head}"
    );
    assert!(
        !head.contains("b7ad6b7169203331"),
        "with the gateway's span as parent"
    );
    let sent: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(sent["stream_options"]["include_usage"], true);

    let lines = log_lines(&log, 1).await;
    let l = &lines[0];
    assert_eq!(l["request_id"], rid.as_str());
    assert_eq!(l["trace_id"], "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(l["tenant"], "default");
    assert_eq!(l["model"], "meta-llama/Llama-3.1-8B-Instruct");
    assert_eq!(l["upstream"], "vllm-a");
    assert_eq!(l["gpu_id"], "GPU-vllm-a");
    assert_eq!(l["prompt_tokens"], 9);
    assert_eq!(l["generation_tokens"], 2);
    assert_eq!(l["finish_reason"], "stop");
    assert_eq!(l["status"], 200);
    assert!(l["error_class"].is_null());
    assert!(l["ttft_ms"].as_f64().unwrap() > 0.0);
    assert!(l["e2e_ms"].as_f64().unwrap() >= 40.0);
    assert_eq!(l["sampled"], true);
    assert!(
        !l.to_string().contains("cannot"),
        "no completion text in logs"
    );
    let span_id = l["span_id"].as_str().unwrap();

    let om = metrics(&gw, true).await;
    let ex = format!("# {{trace_id=\"0af7651916cd43dd8448eb211c80319c\",span_id=\"{span_id}\"}}");
    for h in ["ttft", "itl", "e2e", "tpot"] {
        assert!(
            om.lines().any(
                |x| x.starts_with(&format!("strata_gateway_{h}_seconds_bucket")) && x.contains(&ex)
            ),
            "{h} exemplar in\n{om}"
        );
    }
    let labels =
        "{model=\"meta-llama/Llama-3.1-8B-Instruct\",tenant=\"default\",upstream=\"vllm-a\"}";
    assert_eq!(
        sample(&om, &format!("strata_gateway_refusals_total{labels}")),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &om,
            &format!("strata_gateway_short_responses_total{labels}")
        ),
        Some(0.0)
    );
    let text = metrics(&gw, false).await;
    assert!(!text.contains("trace_id"), "classic text has no exemplars");
    assert_eq!(
        sample(
            &text,
            "strata_gateway_requests_total{model=\"meta-llama/Llama-3.1-8B-Instruct\",tenant=\"default\",upstream=\"vllm-a\",status=\"200\",finish_reason=\"stop\"}"
        ),
        Some(1.0)
    );
    gw.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn tenants_keys_routing_and_limits() {
    let (_d, log) = temp_log();
    let a = sim(EngineKind::Vllm, 50.0, |c| c.model = Some("m-a".into())).await;
    let b1 = sim(EngineKind::Vllm, 50.0, |c| c.model = Some("m-b".into())).await;
    let b2 = sim(EngineKind::Vllm, 50.0, |c| c.model = Some("m-b".into())).await;
    let mut cfg = config(
        &[
            ("a", url(a.engine_addr, ""), "vllm"),
            ("b1", url(b1.engine_addr, ""), "vllm"),
            ("b2", url(b2.engine_addr, ""), "vllm"),
        ],
        &log,
    );
    cfg.upstreams[0].models = vec!["m-a".into()];
    cfg.upstreams[1].models = vec!["m-b".into()];
    cfg.upstreams[2].models = vec!["m-b".into()];
    cfg.tenant
        .api_keys
        .insert("sk-ent".into(), "enterprise_a".into());
    cfg.limits.max_body_bytes = 2000;
    let gw = gateway(cfg).await;
    let post = |key: Option<&'static str>, body: Value| {
        let mut r = client()
            .post(url(gw.addr, "/v1/chat/completions"))
            .json(&body);
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        r.send()
    };
    let msg = |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3});

    let r = post(None, msg("m-a")).await.unwrap();
    assert_eq!(r.status(), 401);
    let e: Value = r.json().await.unwrap();
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no API key"),
        "{e}"
    );
    let r = post(Some("sk-wrong"), msg("m-a")).await.unwrap();
    assert_eq!(r.status(), 401);

    let r = post(Some("sk-ent"), msg("m-zzz")).await.unwrap();
    assert_eq!(r.status(), 404);
    let e: Value = r.json().await.unwrap();
    let m = e["error"]["message"].as_str().unwrap();
    assert!(m.contains("m-zzz") && m.contains("m-a, m-b"), "{m}");

    let big = json!({"model": "m-a", "messages": [{"role": "user", "content": "x".repeat(5000)}]});
    let r = post(Some("sk-ent"), big).await.unwrap();
    assert_eq!(r.status(), 413);
    let e: Value = r.json().await.unwrap();
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2000 bytes")
    );

    // Concurrent requests for m-b spread over both of its upstreams.
    let mut streams = Vec::new();
    for _ in 0..2 {
        let mut body = msg("m-b");
        body["stream"] = json!(true);
        body["max_tokens"] = json!(200);
        streams.push(post(Some("sk-ent"), body).await.unwrap());
    }
    let r = post(Some("sk-ent"), msg("m-a")).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["model"], "m-a");
    let m = metrics(&gw, false).await;
    for up in ["b1", "b2"] {
        assert_eq!(
            sample(
                &m,
                &format!(
                    "strata_gateway_requests_in_flight{{model=\"m-b\",tenant=\"enterprise_a\",upstream=\"{up}\"}}"
                )
            ),
            Some(1.0),
            "{m}"
        );
    }
    for s in streams {
        assert!(s.text().await.unwrap().ends_with("data: [DONE]\n\n"));
    }
    let m = metrics(&gw, false).await;
    assert_eq!(
        sample(
            &m,
            "strata_gateway_errors_total{model=\"m-zzz\",tenant=\"enterprise_a\",upstream=\"none\",class=\"rejected\"}"
        ),
        Some(1.0),
        "{m}"
    );
    gw.shutdown(Duration::from_secs(1)).await;
    for s in [a, b1, b2] {
        s.shutdown().await;
    }
}

#[tokio::test]
async fn tgi_native_stream_and_h2c_clients() {
    let (_d, log) = temp_log();
    let tgi = sim(EngineKind::Tgi, 20.0, |_| {}).await;
    let gw = gateway(config(&[("tgi-a", url(tgi.engine_addr, ""), "tgi")], &log)).await;
    let h2 = {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .http2_prior_knowledge()
            .build()
            .unwrap()
    };
    let r = h2
        .post(url(gw.addr, "/generate_stream"))
        .json(&json!({"inputs": "Hello", "parameters": {"max_new_tokens": 6}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    let (ev, _) = events(&r.text().await.unwrap());
    assert_eq!(ev.len(), 6);
    assert_eq!(ev[5]["details"]["finish_reason"], "length");
    // Non-streamed TGI: counts from x-prompt-tokens / x-generated-tokens.
    let r = client()
        .post(url(gw.addr, "/generate"))
        .json(&json!({"inputs": "Hello", "parameters": {"max_new_tokens": 4}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Other paths pass through untimed.
    let r = client().get(url(gw.addr, "/info")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let lines = log_lines(&log, 3).await;
    let stream = lines
        .iter()
        .find(|l| l["path"] == "/generate_stream")
        .unwrap();
    assert_eq!(stream["generation_tokens"], 6);
    assert_eq!(stream["finish_reason"], "length");
    assert!(stream["ttft_ms"].as_f64().is_some());
    let whole = lines.iter().find(|l| l["path"] == "/generate").unwrap();
    assert!(whole["error_class"].is_null(), "{whole}");
    assert_eq!(whole["generation_tokens"], 4);
    assert!(whole["prompt_tokens"].as_u64().unwrap() > 0);
    let m = metrics(&gw, false).await;
    assert_eq!(
        sample(&m, "strata_gateway_passthrough_requests_total"),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            "strata_gateway_output_ratio_count{model=\"unknown\",tenant=\"default\",upstream=\"tgi-a\"}"
        ),
        Some(2.0),
        "{m}"
    );
    gw.shutdown(Duration::from_secs(1)).await;
    tgi.shutdown().await;
}

#[tokio::test]
async fn upstream_failures_become_named_openai_errors() {
    let (_d, log) = temp_log();
    // Connect failure: nothing listens there.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    // Never answers.
    let silent = fake(vec![Step::Sleep(Duration::from_secs(30))]).await;
    // Breaks mid-stream.
    let broken = fake(vec![
        sse_head(),
        chunk("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n"),
        Step::Close,
    ])
    .await;
    // Goes quiet mid-stream.
    let stalls = fake(vec![
        sse_head(),
        chunk("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n"),
        Step::Sleep(Duration::from_secs(30)),
    ])
    .await;
    // Sends garbage.
    let garbage = fake(vec![
        sse_head(),
        chunk("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"}}]}\n\ndata: <html>oops\n\n"),
        chunk("data: [DONE]\n\n"),
        last_chunk(),
    ])
    .await;
    // Answers 503.
    let overloaded = fake(vec![Step::Write(
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: 17\r\n\r\n{\"error\":\"busy\"}\n".to_vec(),
    )])
    .await;
    let mut cfg = config(
        &[
            ("dead", url(dead_addr, ""), "vllm"),
            ("silent", url(silent.addr, ""), "vllm"),
            ("broken", url(broken.addr, ""), "vllm"),
            ("stalls", url(stalls.addr, ""), "vllm"),
            ("garbage", url(garbage.addr, ""), "vllm"),
            ("overloaded", url(overloaded.addr, ""), "vllm"),
        ],
        &log,
    );
    for u in &mut cfg.upstreams {
        u.models = vec![u.name.clone()];
    }
    cfg.limits.first_byte_timeout = Duration::from_millis(300);
    cfg.limits.idle_timeout = Duration::from_millis(300);
    let gw = gateway(cfg).await;
    let ask = |model: &str| {
        let body = json!({"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": true});
        client()
            .post(url(gw.addr, "/v1/chat/completions"))
            .json(&body)
            .send()
    };

    let r = ask("dead").await.unwrap();
    assert_eq!(r.status(), 502);
    let e: Value = r.json().await.unwrap();
    let m = e["error"]["message"].as_str().unwrap();
    assert!(
        m.starts_with("cannot connect to upstream dead (http://127.0.0.1:"),
        "{m}"
    );

    let t0 = Instant::now();
    let r = ask("silent").await.unwrap();
    assert_eq!(r.status(), 504);
    assert!(t0.elapsed() < Duration::from_secs(3));
    let e: Value = r.json().await.unwrap();
    assert_eq!(
        e["error"]["message"],
        "upstream silent did not start its response within 300 ms"
    );

    for (model, want) in [
        ("broken", "upstream broken broke the response after"),
        (
            "stalls",
            "upstream stalls sent nothing for 300 ms in the middle of the response",
        ),
    ] {
        let body = ask(model).await.unwrap().text().await.unwrap();
        let (ev, done) = events(&body);
        assert!(!done);
        assert_eq!(
            ev[0]["choices"][0]["delta"]["content"], "Hel",
            "forwarded before the failure"
        );
        let m = ev.last().unwrap()["error"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(m.starts_with(want), "{m}");
    }

    let body = ask("garbage").await.unwrap().text().await.unwrap();
    assert!(
        body.contains("data: <html>oops\n\n"),
        "forwarded as is: {body}"
    );

    let r = ask("overloaded").await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.text().await.unwrap(),
        "{\"error\":\"busy\"}\n",
        "upstream errors pass unchanged"
    );

    let m = metrics(&gw, false).await;
    let class = |up: &str, c: &str| {
        sample(
            &m,
            &format!(
                "strata_gateway_errors_total{{model=\"{up}\",tenant=\"default\",upstream=\"{up}\",class=\"{c}\"}}"
            ),
        )
    };
    assert_eq!(class("dead", "connect"), Some(1.0), "{m}");
    assert_eq!(class("silent", "timeout"), Some(1.0));
    assert_eq!(class("broken", "upstream_reset"), Some(1.0));
    assert_eq!(class("stalls", "timeout"), Some(1.0));
    assert_eq!(class("overloaded", "upstream_5xx"), Some(1.0));
    assert_eq!(
        sample(
            &m,
            "strata_gateway_malformed_responses_total{model=\"garbage\",tenant=\"default\",upstream=\"garbage\"}"
        ),
        Some(1.0)
    );
    // Every error trace is kept by default.
    assert!(sample(&m, "strata_gateway_traces_kept_total{policy=\"error\"}").unwrap() >= 5.0);
    let lines = log_lines(&log, 6).await;
    let classes: Vec<&str> = lines
        .iter()
        .filter_map(|l| l["error_class"].as_str())
        .collect();
    assert_eq!(classes.len(), 5, "{lines:?}");
    gw.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_client_that_disconnects_cancels_the_upstream_request() {
    let (_d, log) = temp_log();
    let mut script = vec![sse_head()];
    for _ in 0..50 {
        script.push(chunk("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"},\"finish_reason\":null}]}\n\n"));
        script.push(Step::Sleep(Duration::from_millis(50)));
    }
    let mut up = fake(script).await;
    let gw = gateway(config(&[("slow", url(up.addr, ""), "vllm")], &log)).await;
    let mut r = client()
        .post(url(gw.addr, "/v1/chat/completions"))
        .json(&chat(true, Some(true)))
        .send()
        .await
        .unwrap();
    assert!(r.chunk().await.unwrap().is_some());
    drop(r);
    let t0 = Instant::now();
    tokio::time::timeout(Duration::from_secs(2), up.cancelled.recv())
        .await
        .expect("the upstream connection is closed when the client goes away");
    assert!(t0.elapsed() < Duration::from_secs(1));
    let lines = log_lines(&log, 1).await;
    assert_eq!(lines[0]["error_class"], "client_disconnect");
    gw.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn proxy_buffering_upstream_shows_in_gateway_itl() {
    let (_d, log) = temp_log();
    let s = sim(EngineKind::Vllm, 1.0, |c| {
        c.scenario = sim::Scenario::ProxyBuffering
    })
    .await;
    let gw = gateway(config(
        &[("buffered", url(s.engine_addr, ""), "vllm")],
        &log,
    ))
    .await;
    let mut body = chat(true, None);
    body["max_tokens"] = json!(40);
    let text = client()
        .post(url(gw.addr, "/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"));
    let m = metrics(&gw, false).await;
    let l = "model=\"meta-llama/Llama-3.1-8B-Instruct\",tenant=\"default\",upstream=\"buffered\"";
    let zero = sample(
        &m,
        &format!("strata_gateway_itl_seconds_bucket{{{l},le=\"0.001\"}}"),
    )
    .unwrap();
    let all = sample(&m, &format!("strata_gateway_itl_seconds_count{{{l}}}")).unwrap();
    assert_eq!(all, 39.0);
    assert!(
        zero >= 30.0,
        "bursts: most tokens arrive together ({zero} of {all})\n{m}"
    );
    gw.shutdown(Duration::from_secs(1)).await;
    s.shutdown().await;
}
