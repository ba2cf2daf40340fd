//! `/v1/chat/completions` and `/v1/completions`, streamed and not, in each engine's flavour
//! (chunk shapes as vLLM, SGLang, TGI's Messages API and llama.cpp server send them).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};

use super::errors::{ApiError, json_response};
use super::sse::{self, Chunker, DONE};
use super::text::{count_chat, count_tokens, token_text};
use super::{Accepted, Shared, Tok};
use crate::config::EngineKind;
use crate::scheduler::FinishReason;

/// A parsed OpenAI request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Parsed {
    pub prompt: u32,
    pub max_tokens: Option<u32>,
    pub stream: bool,
    pub include_usage: bool,
}

fn content_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

pub(crate) fn parse(s: &Shared, body: &[u8], chat: bool) -> Result<Parsed, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| ApiError::Malformed(e.to_string()))?;
    let Some(obj) = v.as_object() else {
        return Err(ApiError::Invalid(
            "the request body must be a JSON object".into(),
        ));
    };
    let prompt = if chat {
        let Some(msgs) = obj.get("messages") else {
            return Err(ApiError::Missing("messages"));
        };
        let Some(msgs) = msgs.as_array().filter(|m| !m.is_empty()) else {
            return Err(ApiError::Invalid(
                "`messages` must be a non-empty list".into(),
            ));
        };
        let texts: Vec<String> = msgs
            .iter()
            .map(|m| m.get("content").map(content_text).unwrap_or_default())
            .collect();
        count_chat(&texts.iter().map(String::as_str).collect::<Vec<_>>())
    } else {
        match obj.get("prompt") {
            None => return Err(ApiError::Missing("prompt")),
            Some(Value::String(p)) => count_tokens(p) + 1,
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| match i {
                    Value::String(p) => count_tokens(p),
                    Value::Number(_) => 1,
                    Value::Array(ids) => ids.len() as u32,
                    _ => 0,
                })
                .sum::<u32>()
                .max(1),
            Some(_) => {
                return Err(ApiError::Invalid(
                    "`prompt` must be a string or a list".into(),
                ));
            }
        }
    };
    if let Some(m) = obj.get("model").and_then(Value::as_str)
        && matches!(s.kind, EngineKind::Vllm | EngineKind::Sglang)
        && m != s.model
    {
        return Err(ApiError::UnknownModel(m.to_string()));
    }
    let max_tokens = match obj
        .get("max_completion_tokens")
        .or_else(|| obj.get("max_tokens"))
    {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => Some(n.min(u32::MAX as u64) as u32),
            _ => {
                return Err(ApiError::Invalid(format!(
                    "max_tokens must be at least 1, got {v}."
                )));
            }
        },
    };
    let stream = obj.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let include_usage = obj
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(Parsed {
        prompt,
        max_tokens,
        stream,
        include_usage,
    })
}

/// The output length to run, or the engine's context error.
pub(crate) fn budget(
    kind: EngineKind,
    context: u32,
    prompt: u32,
    max_tokens: Option<u32>,
) -> Result<u32, ApiError> {
    let overflow = ApiError::ContextOverflow {
        prompt,
        max_tokens,
        context,
    };
    if prompt >= context {
        return Err(overflow);
    }
    let room = context - prompt;
    match (kind, max_tokens) {
        // llama.cpp stops at the end of its context instead of refusing.
        (EngineKind::Llamacpp, m) => Ok(m.unwrap_or(room).min(room)),
        (_, Some(m)) if m > room => Err(overflow),
        (_, m) => Ok(m.unwrap_or(room)),
    }
}

pub(crate) async fn chat(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(s, headers, body, true).await
}

pub(crate) async fn completions(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(s, headers, body, false).await
}

async fn handle(s: Arc<Shared>, headers: HeaderMap, body: Bytes, chat: bool) -> Response {
    let accepted = parse(&s, &body, chat).and_then(|p| {
        let max = budget(s.kind, s.context, p.prompt, p.max_tokens)?;
        Ok((p, s.submit(p.prompt, max)?))
    });
    let (p, acc) = match accepted {
        Ok(x) => x,
        Err(e) => {
            if e != ApiError::Overloaded {
                s.invalid();
            }
            return e.response(s.kind);
        }
    };
    let rid = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| s.request_hex());
    let id = match (s.kind, chat) {
        (EngineKind::Vllm, true) | (EngineKind::Llamacpp, _) => format!("chatcmpl-{rid}"),
        (EngineKind::Vllm, false) => format!("cmpl-{rid}"),
        (EngineKind::Sglang, _) => rid,
        (EngineKind::Tgi, _) => String::new(),
    };
    let st = OaiStream {
        kind: s.kind,
        chat,
        include_usage: p.include_usage,
        prompt: p.prompt,
        seed: s.seed,
        seq: acc.id,
        refusal: acc.refusal,
        arrival: acc.arrival,
        first_t: None,
        n: 0,
        head: head(s.kind, chat, &id, s.created, &s.model),
        tail: tail(s.kind, chat, &id, s.created, &s.model),
    };
    if p.stream {
        let ct = if s.kind == EngineKind::Tgi {
            "text/event-stream"
        } else {
            "text/event-stream; charset=utf-8"
        };
        return sse::response(acc, s.clock, st, ct);
    }
    whole(&s, acc, st, &id).await
}

fn js(v: &str) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "\"\"".into())
}

/// Everything before the choices array.
fn head(kind: EngineKind, chat: bool, id: &str, created: u64, model: &str) -> String {
    let (id, model) = (js(id), js(model));
    let object = if chat {
        "chat.completion.chunk"
    } else {
        "text_completion"
    };
    match kind {
        EngineKind::Vllm | EngineKind::Sglang => {
            format!(
                r#"{{"id":{id},"object":"{object}","created":{created},"model":{model},"choices":["#
            )
        }
        EngineKind::Tgi if chat => format!(
            r#"{{"object":"{object}","id":{id},"created":{created},"model":{model},"system_fingerprint":"{TGI_FINGERPRINT}","choices":["#
        ),
        EngineKind::Tgi => format!(
            r#"{{"id":{id},"created":{created},"model":{model},"system_fingerprint":"{TGI_FINGERPRINT}","choices":["#
        ),
        EngineKind::Llamacpp => r#"{"choices":["#.to_string(),
    }
}

/// Everything after the choices array (before any usage).
fn tail(kind: EngineKind, chat: bool, id: &str, created: u64, model: &str) -> String {
    let object = if chat {
        "chat.completion.chunk"
    } else {
        "text_completion"
    };
    match kind {
        EngineKind::Llamacpp => format!(
            r#"],"created":{created},"id":{},"model":{},"system_fingerprint":"b0-unknown","object":"{object}""#,
            js(id),
            js(model)
        ),
        EngineKind::Tgi if chat => r#"],"usage":null"#.to_string(),
        _ => "]".to_string(),
    }
}

const TGI_FINGERPRINT: &str = "3.3.4-native";

struct OaiStream {
    kind: EngineKind,
    chat: bool,
    include_usage: bool,
    prompt: u32,
    seed: u64,
    seq: u64,
    refusal: bool,
    arrival: f64,
    first_t: Option<f64>,
    n: u32,
    head: String,
    tail: String,
}

fn reason_json(kind: EngineKind, r: Option<FinishReason>) -> &'static str {
    match (kind, r) {
        (_, None) => "null",
        (_, Some(FinishReason::Length)) => "\"length\"",
        (_, Some(FinishReason::Stop)) => "\"stop\"",
        (_, Some(FinishReason::Abort)) => "\"abort\"",
    }
}

impl OaiStream {
    fn chunk(&self, choice: &str, extra: &str) -> Bytes {
        self.chunk_with(choice, &self.tail, extra)
    }

    fn chunk_with(&self, choice: &str, tail: &str, extra: &str) -> Bytes {
        let mut s =
            String::with_capacity(self.head.len() + choice.len() + tail.len() + extra.len());
        s.push_str(&self.head);
        s.push_str(choice);
        s.push_str(tail);
        s.push_str(extra);
        s.push('}');
        sse::data(&s)
    }

    fn usage(&self) -> String {
        let (p, n) = (self.prompt, self.n);
        match self.kind {
            EngineKind::Llamacpp => format!(
                r#""completion_tokens":{n},"prompt_tokens":{p},"total_tokens":{},"prompt_tokens_details":{{"cached_tokens":0}}"#,
                p + n
            ),
            EngineKind::Tgi => format!(
                r#""prompt_tokens":{p},"completion_tokens":{n},"total_tokens":{}"#,
                p + n
            ),
            _ => format!(
                r#""prompt_tokens":{p},"total_tokens":{},"completion_tokens":{n}"#,
                p + n
            ),
        }
    }

    fn timings(&self, last_t: f64) -> String {
        let first = self.first_t.unwrap_or(last_t);
        let prompt_ms = ((first - self.arrival) * 1000.0).max(0.001);
        let predicted_ms = ((last_t - first) * 1000.0).max(0.001);
        format!(
            r#","timings":{{"cache_n":0,"prompt_n":{p},"prompt_ms":{prompt_ms:.3},"prompt_per_token_ms":{:.6},"prompt_per_second":{:.3},"predicted_n":{n},"predicted_ms":{predicted_ms:.3},"predicted_per_token_ms":{:.6},"predicted_per_second":{:.3}}}"#,
            prompt_ms / self.prompt as f64,
            self.prompt as f64 * 1000.0 / prompt_ms,
            predicted_ms / self.n.max(1) as f64,
            self.n as f64 * 1000.0 / predicted_ms,
            p = self.prompt,
            n = self.n,
        )
    }
}

impl Chunker for OaiStream {
    fn token(&mut self, tok: Tok, out: &mut Vec<Bytes>) {
        let text = js(token_text(self.seed, self.seq, tok.index, self.refusal));
        self.n = tok.index + 1;
        let fr = reason_json(self.kind, tok.finished);
        let first = self.first_t.is_none();
        if first {
            self.first_t = Some(tok.t);
        }
        let k = self.kind;
        match (k, self.chat) {
            (EngineKind::Vllm | EngineKind::Sglang, true) => {
                if first {
                    out.push(self.chunk(
                        r#"{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}"#,
                        "",
                    ));
                }
                let stop = if tok.finished.is_some() { r#","stop_reason":null"# } else { "" };
                out.push(self.chunk(
                    &format!(r#"{{"index":0,"delta":{{"content":{text}}},"logprobs":null,"finish_reason":{fr}{stop}}}"#),
                    "",
                ));
            }
            (EngineKind::Vllm | EngineKind::Sglang, false) => out.push(self.chunk(
                &format!(r#"{{"index":0,"text":{text},"logprobs":null,"finish_reason":{fr},"stop_reason":null}}"#),
                "",
            )),
            (EngineKind::Tgi, true) => out.push(self.chunk(
                &format!(r#"{{"index":0,"delta":{{"role":"assistant","content":{text}}},"logprobs":null,"finish_reason":{fr}}}"#),
                "",
            )),
            (EngineKind::Tgi, false) => out.push(self.chunk(
                &format!(r#"{{"index":0,"text":{text},"logprobs":null,"finish_reason":{fr}}}"#),
                "",
            )),
            (EngineKind::Llamacpp, true) => {
                if first {
                    out.push(self.chunk(
                        r#"{"finish_reason":null,"index":0,"delta":{"role":"assistant","content":null}}"#,
                        "",
                    ));
                }
                out.push(self.chunk(
                    &format!(r#"{{"finish_reason":null,"index":0,"delta":{{"content":{text}}}}}"#),
                    "",
                ));
                if tok.finished.is_some() {
                    let timings = if self.include_usage { String::new() } else { self.timings(tok.t) };
                    out.push(self.chunk(&format!(r#"{{"finish_reason":{fr},"index":0,"delta":{{}}}}"#), &timings));
                }
            }
            (EngineKind::Llamacpp, false) => {
                out.push(self.chunk(
                    &format!(r#"{{"text":{text},"index":0,"logprobs":null,"finish_reason":null}}"#),
                    "",
                ));
                if tok.finished.is_some() {
                    // llama.cpp's completions stream always ends with usage and timings.
                    let extra = format!(r#","usage":{{{}}}{}"#, self.usage(), self.timings(tok.t));
                    out.push(self.chunk(
                        &format!(r#"{{"text":"","index":0,"logprobs":null,"finish_reason":{fr}}}"#),
                        &extra,
                    ));
                }
            }
        }
        if tok.finished.is_some() {
            let llama_completion = k == EngineKind::Llamacpp && !self.chat;
            if self.include_usage && !llama_completion {
                let mut extra = format!(r#","usage":{{{}}}"#, self.usage());
                if k == EngineKind::Llamacpp {
                    extra.push_str(&self.timings(tok.t));
                }
                // TGI's chat chunks end in `"usage":null`; the usage chunk carries it instead.
                let tail = if k == EngineKind::Tgi {
                    "]"
                } else {
                    self.tail.as_str()
                };
                out.push(self.chunk_with("", tail, &extra));
            }
            out.push(Bytes::from_static(DONE));
        }
    }
}

/// A non-streamed response: waits for every token.
async fn whole(s: &Shared, acc: Accepted, mut st: OaiStream, id: &str) -> Response {
    let Accepted { mut tokens, .. } = acc;
    let mut text = String::new();
    let mut reason = FinishReason::Abort;
    let mut last_t = st.arrival;
    while let Some(tok) = tokens.recv().await {
        if st.first_t.is_none() {
            st.first_t = Some(tok.t);
        }
        text.push_str(token_text(s.seed, st.seq, tok.index, st.refusal));
        st.n = tok.index + 1;
        last_t = tok.t;
        if let Some(r) = tok.finished {
            reason = r;
            break;
        }
    }
    let (p, n) = (st.prompt, st.n);
    let model = &s.model;
    let created = s.created;
    let r = reason.as_str();
    let body = match (s.kind, st.chat) {
        (EngineKind::Vllm | EngineKind::Sglang, true) => json!({
            "id": id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "tool_calls": []},
                         "logprobs": null, "finish_reason": r, "stop_reason": null}],
            "usage": {"prompt_tokens": p, "total_tokens": p + n, "completion_tokens": n},
            "prompt_logprobs": null,
        }),
        (EngineKind::Vllm | EngineKind::Sglang, false) => json!({
            "id": id, "object": "text_completion", "created": created, "model": model,
            "choices": [{"index": 0, "text": text, "logprobs": null, "finish_reason": r, "stop_reason": null}],
            "usage": {"prompt_tokens": p, "total_tokens": p + n, "completion_tokens": n},
        }),
        (EngineKind::Tgi, chat) => {
            let choice = if chat {
                json!({"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": null, "finish_reason": r})
            } else {
                json!({"index": 0, "text": text, "logprobs": null, "finish_reason": r})
            };
            json!({
                "object": if chat { "chat.completion" } else { "text_completion" }, "id": id,
                "created": created, "model": model, "system_fingerprint": TGI_FINGERPRINT,
                "choices": [choice],
                "usage": {"prompt_tokens": p, "completion_tokens": n, "total_tokens": p + n},
            })
        }
        (EngineKind::Llamacpp, chat) => {
            let choice = if chat {
                json!({"finish_reason": r, "index": 0, "message": {"role": "assistant", "content": text}})
            } else {
                json!({"text": text, "index": 0, "logprobs": null, "finish_reason": r})
            };
            let timings: Value = serde_json::from_str(&format!("{{{}}}", &st.timings(last_t)[1..]))
                .map(|v: Value| v["timings"].clone())
                .unwrap_or(Value::Null);
            json!({
                "choices": [choice], "created": created, "model": model,
                "system_fingerprint": "b0-unknown",
                "object": if chat { "chat.completion" } else { "text_completion" },
                "usage": {"completion_tokens": n, "prompt_tokens": p, "total_tokens": p + n,
                          "prompt_tokens_details": {"cached_tokens": 0}},
                "id": id, "timings": timings,
            })
        }
    };
    json_response(200, body.to_string())
}
