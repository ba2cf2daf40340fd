//! Server-sent events: a request's tokens become `data: …` chunks on the response body.
//!
//! A small task per stream turns tokens into chunks and writes them into the body. When
//! the scenario buffers (proxy-buffering), chunks are held until the next multiple of the
//! period and released together. When the client goes away the body is dropped, the task
//! stops, and the step loop aborts the request at its next token.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

use super::{Accepted, Tok};
use crate::clock::Clock;

/// Turns tokens into SSE chunks.
pub(crate) trait Chunker: Send + 'static {
    /// Chunks for one token (the last token also closes the stream).
    fn token(&mut self, tok: Tok, out: &mut Vec<Bytes>);
}

struct ChunkStream(mpsc::Receiver<Bytes>);

impl futures_core::Stream for ChunkStream {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|o| o.map(Ok))
    }
}

/// A `text/event-stream` response carrying `acc`'s tokens.
pub(crate) fn response(
    acc: Accepted,
    clock: Clock,
    mut ch: impl Chunker,
    content_type: &'static str,
) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let Accepted {
        mut tokens,
        buffer_period,
        ..
    } = acc;
    tokio::spawn(async move {
        let mut out = Vec::with_capacity(4);
        while let Some(tok) = tokens.recv().await {
            let mut done = tok.finished.is_some();
            ch.token(tok, &mut out);
            if let Some(p) = buffer_period {
                let release = (tok.t / p).ceil() * p;
                tokio::time::sleep_until(clock.instant_of(release).into()).await;
                while !done {
                    match tokens.try_recv() {
                        Ok(t) => {
                            done = t.finished.is_some();
                            ch.token(t, &mut out);
                        }
                        Err(_) => break,
                    }
                }
            }
            for b in out.drain(..) {
                if tx.send(b).await.is_err() {
                    return;
                }
            }
            if done {
                break;
            }
        }
    });
    channel_response(rx, content_type)
}

/// A `text/event-stream` response whose body is whatever arrives on `rx`.
pub(crate) fn channel_response(rx: mpsc::Receiver<Bytes>, content_type: &'static str) -> Response {
    let mut r = (StatusCode::OK, Body::from_stream(ChunkStream(rx))).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// `data: {json}\n\n`.
pub(crate) fn data(json: &str) -> Bytes {
    let mut s = String::with_capacity(json.len() + 8);
    s.push_str("data: ");
    s.push_str(json);
    s.push_str("\n\n");
    Bytes::from(s)
}

/// The OpenAI stream terminator.
pub(crate) const DONE: &[u8] = b"data: [DONE]\n\n";
