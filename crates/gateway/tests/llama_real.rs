//! The gateway in front of a real llama.cpp `llama-server` (built by scripts/llama-server.sh,
//! a tiny random-weight model, 8 slots): 500 streamed chat requests one at a time and 500 at
//! concurrency 8, none failing, and the gateway's token counts equal to what the server
//! itself reported, per request (usage, `timings`) and in its own `/metrics` counters.

mod common;

use std::sync::Arc;

use common::*;
use serde_json::json;

const REQUESTS: usize = 500;

/// What one request's stream said about itself.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    prompt: u64,
    completion: u64,
    /// `timings.prompt_n` (evaluated), `timings.cache_n` (reused), `timings.predicted_n`.
    prompt_n: u64,
    cache_n: u64,
    predicted_n: u64,
    /// Chunks that carried generated text.
    content_chunks: u64,
}

impl std::ops::AddAssign for Seen {
    fn add_assign(&mut self, o: Seen) {
        self.prompt += o.prompt;
        self.completion += o.completion;
        self.prompt_n += o.prompt_n;
        self.cache_n += o.cache_n;
        self.predicted_n += o.predicted_n;
        self.content_chunks += o.content_chunks;
    }
}

async fn one(c: &reqwest::Client, base: &str, i: usize) -> Seen {
    let body = json!({
        "model": "tiny",
        "messages": [{"role": "user", "content": format!("Request {i}: say something.")}],
        "max_tokens": 2 + (i % 4),
        "stream": true,
        "stream_options": {"include_usage": true},
        "temperature": 1.0,
        "seed": i,
        // <unk>, <s> and </s> render as no text: keep every generated token a character.
        "logit_bias": {"0": -100, "1": -100, "2": -100},
    });
    let r = c
        .post(format!("{base}/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200, "request {i}");
    let text = r.text().await.expect("body");
    let (evs, done) = events(&text);
    assert!(done, "request {i} did not end with [DONE]: {text}");
    let mut seen = Seen::default();
    for e in &evs {
        let content = &e["choices"][0]["delta"]["content"];
        if content.as_str().is_some_and(|s| !s.is_empty()) {
            seen.content_chunks += 1;
        }
        if let Some(u) = e.get("usage").filter(|u| !u.is_null()) {
            seen.prompt = u["prompt_tokens"].as_u64().expect("prompt_tokens");
            seen.completion = u["completion_tokens"].as_u64().expect("completion_tokens");
        }
        if let Some(t) = e.get("timings").filter(|t| !t.is_null()) {
            let n = |k: &str| t[k].as_u64().unwrap_or(0);
            (seen.prompt_n, seen.cache_n, seen.predicted_n) =
                (n("prompt_n"), n("cache_n"), n("predicted_n"));
        }
    }
    assert!(seen.completion > 0, "request {i}: no usage: {text}");
    assert_eq!(seen.completion, seen.predicted_n, "request {i}: {text}");
    assert_eq!(
        seen.prompt,
        seen.prompt_n + seen.cache_n,
        "request {i}: {text}"
    );
    seen
}

/// Sends `n` requests through `base`, `concurrency` at a time; their sum.
async fn load(base: &str, n: usize, concurrency: usize) -> Seen {
    let c = client();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (c, base, next) = (c.clone(), base.to_string(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut sum = Seen::default();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return sum;
                }
                sum += one(&c, &base, i).await;
            }
        }));
    }
    let mut sum = Seen::default();
    for t in tasks {
        sum += t.await.expect("task");
    }
    sum
}

/// Sum of every sample of `name` in a Prometheus text body.
fn total(body: &str, name: &str) -> f64 {
    let exp = expo::parse(body, expo::Format::Prometheus);
    assert!(exp.errors.is_empty(), "{:?}", exp.errors.first());
    exp.families
        .iter()
        .flat_map(|f| &f.samples)
        .filter(|s| s.name == name)
        .map(|s| s.value)
        .sum()
}

async fn server_metrics(addr: &str) -> String {
    client()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("llama-server /metrics")
        .text()
        .await
        .expect("body")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gateway_counts_what_a_real_llama_server_reports_at_concurrency_1_and_8() {
    let Some(server) = testkit::llama::server(8, 256) else {
        return;
    };
    let (_d, log) = temp_log();
    let gw = gateway(config(
        &[("llama", format!("http://{}", server.addr), "llamacpp")],
        &log,
    ))
    .await;
    let base = url(gw.addr, "");
    let before = server_metrics(&server.addr).await;
    let mut seen = load(&base, REQUESTS, 1).await;
    seen += load(&base, REQUESTS, 8).await;
    // The server updates its counters when a slot is released, just after the last chunk.
    let mut after = String::new();
    for _ in 0..50 {
        after = server_metrics(&server.addr).await;
        let moved = total(&after, "llamacpp:tokens_predicted_total")
            - total(&before, "llamacpp:tokens_predicted_total");
        if moved as u64 == seen.predicted_n {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let delta = |name: &str| (total(&after, name) - total(&before, name)) as u64;
    assert_eq!(delta("llamacpp:tokens_predicted_total"), seen.predicted_n);
    assert_eq!(delta("llamacpp:prompt_tokens_total"), seen.prompt_n);
    assert_eq!(delta("llamacpp:prompt_tokens_cached_total"), seen.cache_n);
    // The tiny model's vocabulary has whole characters only: one chunk per token.
    assert_eq!(seen.content_chunks, seen.completion);

    let m = metrics(&gw, false).await;
    let requests = total(&m, "strata_gateway_requests_total");
    assert_eq!(requests as usize, 2 * REQUESTS, "{m}");
    let ok: f64 = {
        let exp = expo::parse(&m, expo::Format::Prometheus);
        exp.families
            .iter()
            .flat_map(|f| &f.samples)
            .filter(|s| s.name == "strata_gateway_requests_total")
            .filter(|s| s.labels.get("status").as_deref() == Some("200"))
            .map(|s| s.value)
            .sum()
    };
    assert_eq!(ok as usize, 2 * REQUESTS, "every request answered 200: {m}");
    assert_eq!(
        total(&m, "strata_gateway_errors_total"),
        0.0,
        "no request failed: {m}"
    );
    assert_eq!(
        total(&m, "strata_gateway_generation_tokens_total") as u64,
        seen.completion
    );
    assert_eq!(
        total(&m, "strata_gateway_prompt_tokens_total") as u64,
        seen.prompt
    );
}
