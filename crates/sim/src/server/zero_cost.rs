//! The zero-cost server for overhead benchmarks: no scheduler, no model of anything. Every
//! request gets exactly `tokens` tokens, token `k` at `start + (k+1)·itl` on an absolute
//! schedule (no drift), so the only variable in a benchmark is what sits between the
//! client and this server. Chunks are rendered once per request and shared by reference.
//! Tokens leave within microseconds of their schedule ([`Timers`]), not on tokio's
//! 1 ms timer grid, so the schedule is the ground truth a client is measured against.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
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
    timers: Arc<Timers>,
}

pub(super) fn router(z: ZeroCost) -> Router {
    let st = Arc::new(Zc {
        z,
        next: AtomicU64::new(1),
        timers: Arc::default(),
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
        s.timers.sleep_until(start + s.z.itl * n).await;
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
    let (itl, timers) = (s.z.itl, Arc::clone(&s.timers));
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        for k in 0..n {
            timers.sleep_until(start + itl * (k + 1)).await;
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

/// Precise deadlines for every stream of one server: one driver task sleeps on tokio's
/// timer until [`TIMER_SLACK`] before the earliest deadline, then yields to the runtime
/// until it passes and wakes every stream that is due. Streams wait parked, so a thread
/// serving C streams spins one task, not one per stream waiting for its instant.
#[derive(Default)]
struct Timers {
    /// Pending deadlines, earliest first; a stream that went away leaves a stale waker.
    due: Mutex<BinaryHeap<Reverse<Entry>>>,
    /// Tells the driver that a deadline earlier than the ones it sleeps towards arrived.
    earlier: Notify,
    /// Whether the driver task was spawned (lazily, on the first wait, inside a runtime).
    started: AtomicBool,
}

struct Entry {
    at: Instant,
    waker: Waker,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        self.at == o.at
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.at.cmp(&o.at)
    }
}

impl Timers {
    /// Returns within microseconds after `deadline` (when the thread is not starved).
    async fn sleep_until(self: &Arc<Self>, deadline: Instant) {
        if !self.started.swap(true, Ordering::Relaxed) {
            tokio::spawn(Arc::clone(self).drive());
        }
        let mut registered: Option<Waker> = None;
        std::future::poll_fn(|cx| {
            if Instant::now() >= deadline {
                return Poll::Ready(());
            }
            if registered.as_ref().is_none_or(|w| !w.will_wake(cx.waker())) {
                registered = Some(cx.waker().clone());
                self.push(deadline, cx.waker().clone());
            }
            Poll::Pending
        })
        .await;
    }

    fn push(&self, at: Instant, waker: Waker) {
        let mut due = self.lock();
        let earliest = due.peek().is_none_or(|Reverse(e)| at < e.at);
        due.push(Reverse(Entry { at, waker }));
        drop(due);
        if earliest {
            self.earlier.notify_one();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BinaryHeap<Reverse<Entry>>> {
        // The heap stays consistent even if a holder panicked (push and pop are whole).
        strata_core::sync::lock(&self.due)
    }

    /// The driver: wakes due streams, then waits for the next deadline (timer, then yields).
    async fn drive(self: Arc<Self>) {
        let mut woken = Vec::new();
        loop {
            let now = Instant::now();
            let next = {
                let mut due = self.lock();
                while due.peek().is_some_and(|Reverse(e)| e.at <= now) {
                    if let Some(Reverse(e)) = due.pop() {
                        woken.push(e.waker);
                    }
                }
                due.peek().map(|Reverse(e)| e.at)
            };
            for w in woken.drain(..) {
                w.wake();
            }
            match next {
                None => self.earlier.notified().await,
                Some(at) if at > now + TIMER_SLACK => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at - TIMER_SLACK) => {}
                        _ = self.earlier.notified() => {}
                    }
                }
                Some(_) => tokio::task::yield_now().await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn median_lateness(mut late: Vec<Duration>) -> Duration {
        late.sort_unstable();
        late[late.len() / 2]
    }

    #[tokio::test(flavor = "current_thread")]
    async fn zero_cost_sleeps_end_within_a_fraction_of_a_millisecond() {
        let timers = Arc::new(Timers::default());
        let mut late = Vec::new();
        for k in 0..40u32 {
            // Deadlines off the 1 ms grid, where tokio's timer alone is up to 2 ms late.
            let d = Instant::now() + Duration::from_micros(3_000 + 137 * u64::from(k));
            timers.sleep_until(d).await;
            late.push(Instant::now() - d);
        }
        let m = median_lateness(late);
        assert!(m < Duration::from_micros(100), "median lateness {m:?}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn many_concurrent_sleepers_on_one_thread_each_end_on_time() {
        let timers = Arc::new(Timers::default());
        let t0 = Instant::now();
        let tasks: Vec<_> = (0..500u64)
            .map(|k| {
                let timers = Arc::clone(&timers);
                // Interleaved deadlines, several per millisecond, some sharing an instant.
                let d = t0 + Duration::from_micros(3_000 + 23 * (k % 250));
                tokio::spawn(async move {
                    timers.sleep_until(d).await;
                    Instant::now() - d
                })
            })
            .collect();
        let mut late = Vec::new();
        for t in tasks {
            late.push(t.await.unwrap());
        }
        let m = median_lateness(late);
        assert!(m < Duration::from_micros(200), "median lateness {m:?}");
    }
}
