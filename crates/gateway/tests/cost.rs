//! Cost per request: the log line carries `cost` and `currency` when the model has token
//! prices and nothing otherwise; the useful-token counters leave out truncated requests.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use gateway::TokenPrice;
use serde_json::{Value, json};

/// An upstream streaming two tokens that end on `finish`, then usage 1000 + 250.
async fn upstream(finish: &str) -> Fake {
    fake(vec![
        sse_head(),
        chunk("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"finish_reason\":null}]}\n\n"),
        Step::Sleep(Duration::from_millis(5)),
        chunk(&format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\" there\"}},\"finish_reason\":\"{finish}\"}}]}}\n\ndata: {{\"choices\":[],\"usage\":{{\"prompt_tokens\":1000,\"completion_tokens\":250}}}}\n\ndata: [DONE]\n\n")),
        last_chunk(),
    ])
    .await
}

fn request(model: &str) -> Value {
    json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn priced_models_get_a_cost_in_the_log_line_and_others_none() {
    let (_d, log) = temp_log();
    let (stop, cut) = (upstream("stop").await, upstream("length").await);
    let mut cfg = config(
        &[
            ("stop", url(stop.addr, ""), "vllm"),
            ("cut", url(cut.addr, ""), "vllm"),
        ],
        &log,
    );
    cfg.upstreams[0].models = vec!["priced".into(), "free".into()];
    cfg.upstreams[1].models = vec!["priced-cut".into()];
    let price = TokenPrice {
        prompt_per_million: 0.5,
        generation_per_million: 2.0,
    };
    cfg.prices.currency = "EUR".into();
    cfg.prices.models = HashMap::from([
        ("priced".to_string(), price),
        ("priced-cut".to_string(), price),
    ]);
    let gw = gateway(cfg).await;
    for model in ["priced", "free", "priced-cut"] {
        let r = client()
            .post(url(gw.addr, "/v1/chat/completions"))
            .json(&request(model))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap();
    }
    let lines = log_lines(&log, 3).await;
    let by_model = |m: &str| {
        lines
            .iter()
            .find(|l| l["model"] == m)
            .unwrap_or_else(|| panic!("no line for {m}: {lines:?}"))
    };
    // (1000 × 0.5 + 250 × 2.0) / 1e6 = 0.001 EUR.
    for m in ["priced", "priced-cut"] {
        let l = by_model(m);
        let cost = l["cost"].as_f64().expect("cost");
        assert!((cost - 0.001).abs() < 1e-12, "{l}");
        assert_eq!(l["currency"], "EUR");
    }
    let free = by_model("free");
    assert!(
        free.get("cost").is_none() && free.get("currency").is_none(),
        "{free}"
    );

    let body = metrics(&gw, false).await;
    let labels =
        |m: &str, u: &str| format!("{{model=\"{m}\",tenant=\"default\",upstream=\"{u}\"}}");
    for (m, u, useful) in [("priced", "stop", 250.0), ("priced-cut", "cut", 0.0)] {
        assert_eq!(
            sample(
                &body,
                &format!("strata_gateway_generation_tokens_total{}", labels(m, u))
            ),
            Some(250.0),
            "{body}"
        );
        assert_eq!(
            sample(
                &body,
                &format!(
                    "strata_gateway_useful_generation_tokens_total{}",
                    labels(m, u)
                )
            ),
            Some(useful),
            "truncated at max_tokens is billed, not useful:\n{body}"
        );
        assert_eq!(
            sample(
                &body,
                &format!("strata_gateway_useful_prompt_tokens_total{}", labels(m, u))
            ),
            Some(useful * 4.0),
        );
    }
    gw.shutdown(Duration::from_secs(2)).await;
}
