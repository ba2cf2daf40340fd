//! The zero-cost server for overhead benchmarks: no scheduler, no model of anything. Every
//! request gets exactly `tokens` tokens, token `k` at `start + (k+1)·itl` on an absolute
//! schedule (no drift), so the only variable in a benchmark is what sits between the
//! client and this server. Chunks are rendered once per request and shared by reference.
//! Tokens leave within microseconds of their schedule ([`sleep_precisely`]), not on tokio's
//! 1 ms timer grid, so the schedule is the ground truth a client is measured against.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::errors::{ApiError, json_response};
use super::sse::{self, DONE};
use crate::config::EngineKind;

/// Zero-cost mode settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ZeroCost {
    /// Tokens per response.
    pub tokens: u32,
    /// Gap between tokens (and before the first).
    pub itl: Duration,
    /// Model name reported.
    pub model: String,
}

struct Zc {
    z: ZeroCost,
    next: AtomicU64,
}

pub(super) fn router(z: ZeroCost) -> Router {
    let st = Arc::new(Zc {
        z,
        next: AtomicU64::new(1),
    });
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/v1/models", get(models))
        .route("/health", get(|| async { StatusCode::OK }))
        .with_state(st)
        .layer(axum::middleware::from_fn(super::echo_request_id))
}

async fn models(State(s): State<Arc<Zc>>) -> Response {
    json_response(
        200,
        json!({"object": "list", "data": [{"id": s.z.model, "object": "model", "created": 0, "owned_by": "strata-sim"}]}).to_string(),
    )
}

async fn chat(State(s): State<Arc<Zc>>, h: HeaderMap, body: Bytes) -> Response {
    serve(s, h, body, true).await
}

async fn completions(State(s): State<Arc<Zc>>, h: HeaderMap, body: Bytes) -> Response {
    serve(s, h, body, false).await
}

async fn serve(s: Arc<Zc>, h: HeaderMap, body: Bytes, chat: bool) -> Response {
    let start = Instant::now();
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return ApiError::Malformed(e.to_string()).response(EngineKind::Vllm),
    };
    let stream = v.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let usage = v
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let n = s.z.tokens;
    let id = h
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| format!("{:032x}", s.next.fetch_add(1, Ordering::Relaxed)));
    let (id, object) = if chat {
        (format!("chatcmpl-{id}"), "chat.completion.chunk")
    } else {
        (format!("cmpl-{id}"), "text_completion")
    };
    let model = serde_json::to_string(&s.z.model).unwrap_or_default();
    let head =
        format!(r#"{{"id":"{id}","object":"{object}","created":0,"model":{model},"choices":["#);
    let usage_json = format!(
        r#""usage":{{"prompt_tokens":1,"total_tokens":{},"completion_tokens":{n}}}"#,
        n + 1
    );
    if !stream {
        sleep_precisely(start + s.z.itl * n).await;
        let text = " tok".repeat(n as usize);
        let body = if chat {
            json!({"id": id, "object": "chat.completion", "created": 0, "model": s.z.model,
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "length"}],
                   "usage": {"prompt_tokens": 1, "total_tokens": n + 1, "completion_tokens": n}})
        } else {
            json!({"id": id, "object": "text_completion", "created": 0, "model": s.z.model,
                   "choices": [{"index": 0, "text": text, "finish_reason": "length"}],
                   "usage": {"prompt_tokens": 1, "total_tokens": n + 1, "completion_tokens": n}})
        };
        return json_response(200, body.to_string());
    }
    let chunk = |choice: &str, extra: &str| sse::data(&format!("{head}{choice}]{extra}}}"));
    let (first, mid, last) = if chat {
        (
            Some(chunk(
                r#"{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}"#,
                "",
            )),
            chunk(
                r#"{"index":0,"delta":{"content":" tok"},"finish_reason":null}"#,
                "",
            ),
            chunk(
                r#"{"index":0,"delta":{"content":" tok"},"finish_reason":"length"}"#,
                "",
            ),
        )
    } else {
        (
            None,
            chunk(r#"{"index":0,"text":" tok","finish_reason":null}"#, ""),
            chunk(r#"{"index":0,"text":" tok","finish_reason":"length"}"#, ""),
        )
    };
    let usage_chunk = usage.then(|| chunk("", &format!(",{usage_json}")));
    let itl = s.z.itl;
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        for k in 0..n {
            sleep_precisely(start + itl * (k + 1)).await;
            if k == 0
                && let Some(f) = &first
                && tx.send(f.clone()).await.is_err()
            {
                return;
            }
            let c = if k + 1 == n {
                last.clone()
            } else {
                mid.clone()
            };
            if tx.send(c).await.is_err() {
                return;
            }
        }
        if let Some(u) = usage_chunk {
            let _ = tx.send(u).await;
        }
        let _ = tx.send(Bytes::from_static(DONE)).await;
    });
    sse::channel_response(rx, "text/event-stream; charset=utf-8").into_response()
}

/// How long before a deadline the timer hands over to yielding: tokio's timer rounds a
/// deadline up to its 1 ms grid and the driver's wait is in whole milliseconds.
const TIMER_SLACK: Duration = Duration::from_millis(2);

/// Returns within microseconds after `deadline` (when the thread is not starved): sleeps on
/// tokio's timer until [`TIMER_SLACK`] before it, then yields to the runtime until it
/// passes, so other streams and I/O run while this one waits for its instant.
async fn sleep_precisely(deadline: Instant) {
    if let Some(early) = deadline.checked_sub(TIMER_SLACK)
        && early > Instant::now()
    {
        tokio::time::sleep_until(early).await;
    }
    while Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn zero_cost_sleeps_end_within_a_fraction_of_a_millisecond() {
        let mut late = Vec::new();
        for k in 0..40u32 {
            // Deadlines off the 1 ms grid, where tokio's timer alone is up to 2 ms late.
            let d = Instant::now() + Duration::from_micros(3_000 + 137 * u64::from(k));
            sleep_precisely(d).await;
            late.push(Instant::now() - d);
        }
        late.sort_unstable();
        assert!(
            late[20] < Duration::from_micros(100),
            "median lateness {:?}",
            late[20]
        );
    }
}
