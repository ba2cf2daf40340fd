//! TGI's native API: `POST /generate`, `POST /generate_stream`, `GET /info`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::Response;
use serde_json::{Value, json};

use super::errors::{ApiError, json_response};
use super::sse::{self, Chunker};
use super::text::{count_tokens, token_id, token_text};
use super::{Accepted, Shared, Tok};
use crate::scheduler::FinishReason;

struct Parsed {
    prompt: u32,
    max_new_tokens: Option<u32>,
    details: bool,
}

fn parse(body: &[u8]) -> Result<Parsed, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| ApiError::Malformed(e.to_string()))?;
    let Some(inputs) = v.get("inputs") else {
        return Err(ApiError::Missing("inputs"));
    };
    let Some(inputs) = inputs.as_str() else {
        return Err(ApiError::Malformed(
            "invalid type: expected a string for `inputs`".into(),
        ));
    };
    if inputs.is_empty() {
        return Err(ApiError::Invalid("`inputs` cannot be empty".into()));
    }
    let params = v.get("parameters");
    let max_new_tokens = match params.and_then(|p| p.get("max_new_tokens")) {
        None | Some(Value::Null) => None,
        Some(m) => match m.as_u64() {
            Some(n) if n >= 1 => Some(n.min(u32::MAX as u64) as u32),
            _ => {
                return Err(ApiError::Invalid(
                    "`max_new_tokens` must be strictly positive".into(),
                ));
            }
        },
    };
    let details = params
        .and_then(|p| p.get("details"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(Parsed {
        prompt: count_tokens(inputs) + 1,
        max_new_tokens,
        details,
    })
}

fn accept(s: &Shared, body: &[u8]) -> Result<(Parsed, Accepted), ApiError> {
    let p = parse(body)?;
    let max = super::openai::budget(s.kind, s.context, p.prompt, p.max_new_tokens)?;
    let acc = s.submit(p.prompt, max)?;
    Ok((p, acc))
}

fn refuse(s: &Shared, e: ApiError) -> Response {
    if e != ApiError::Overloaded {
        s.invalid();
    }
    e.response(s.kind)
}

fn reason(r: FinishReason) -> &'static str {
    match r {
        FinishReason::Stop => "eos_token",
        FinishReason::Length | FinishReason::Abort => "length",
    }
}

/// Deterministic log-probability of a token (for the `logprob` field).
fn logprob(id: u32) -> f64 {
    -((id % 1000) as f64) / 400.0
}

pub(crate) async fn generate_stream(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let (p, acc) = match accept(&s, &body) {
        Ok(x) => x,
        Err(e) => return refuse(&s, e),
    };
    let st = TgiStream {
        seed: s.seed,
        seq: acc.id,
        refusal: acc.refusal,
        prompt: p.prompt,
        text: String::new(),
    };
    sse::response(acc, s.clock, st, "text/event-stream")
}

struct TgiStream {
    seed: u64,
    seq: u64,
    refusal: bool,
    prompt: u32,
    text: String,
}

impl Chunker for TgiStream {
    fn token(&mut self, tok: Tok, out: &mut Vec<Bytes>) {
        let t = token_text(self.seed, self.seq, tok.index, self.refusal);
        let id = token_id(self.seed, self.seq, tok.index);
        self.text.push_str(t);
        let token = json!({"id": id, "text": t, "logprob": logprob(id), "special": false});
        let ev = match tok.finished {
            None => {
                json!({"index": tok.index + 1, "token": token, "generated_text": null, "details": null})
            }
            Some(r) => json!({
                "index": tok.index + 1, "token": token, "generated_text": self.text,
                "details": {"finish_reason": reason(r), "generated_tokens": tok.index + 1,
                            "seed": null, "input_length": self.prompt},
            }),
        };
        out.push(sse::data(&ev.to_string()));
    }
}

pub(crate) async fn generate(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let (p, acc) = match accept(&s, &body) {
        Ok(x) => x,
        Err(e) => return refuse(&s, e),
    };
    let Accepted {
        mut tokens,
        id: seq,
        refusal,
        ..
    } = acc;
    let mut text = String::new();
    let mut list = Vec::new();
    let mut fin = FinishReason::Abort;
    let mut n = 0;
    while let Some(tok) = tokens.recv().await {
        let t = token_text(s.seed, seq, tok.index, refusal);
        let id = token_id(s.seed, seq, tok.index);
        text.push_str(t);
        n = tok.index + 1;
        if p.details {
            list.push(json!({"id": id, "text": t, "logprob": logprob(id), "special": false}));
        }
        if let Some(r) = tok.finished {
            fin = r;
            break;
        }
    }
    let body = if p.details {
        json!({"generated_text": text, "details": {
            "finish_reason": reason(fin), "generated_tokens": n, "seed": null,
            "prefill": [], "tokens": list,
        }})
    } else {
        json!({"generated_text": text})
    };
    let mut r = json_response(200, body.to_string());
    let h = r.headers_mut();
    h.insert("x-compute-type", HeaderValue::from_static("gpu+optimized"));
    if let Ok(v) = HeaderValue::from_str(&p.prompt.to_string()) {
        h.insert("x-prompt-tokens", v);
    }
    if let Ok(v) = HeaderValue::from_str(&n.to_string()) {
        h.insert("x-generated-tokens", v);
    }
    r
}

pub(crate) async fn info(State(s): State<Arc<Shared>>) -> Response {
    let body = json!({
        "model_id": s.model, "model_sha": null, "model_pipeline_tag": "text-generation",
        "max_concurrent_requests": 128, "max_best_of": 2, "max_stop_sequences": 4,
        "max_input_tokens": s.context - 1, "max_total_tokens": s.context,
        "validation_workers": 2, "max_client_batch_size": 4,
        "router": "text-generation-router", "version": "3.3.4", "sha": null, "docker_label": null,
    });
    json_response(200, body.to_string())
}
