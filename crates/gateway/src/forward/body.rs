//! The response body the client reads: each upstream chunk becomes one frame as soon as
//! it arrives (a `Bytes` handle, not a copy), read on the way by the tee parser. It also
//! enforces the idle timeout and turns a broken upstream into an error the client sees.

use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

use super::exchange::Exchange;
use super::upstream::ResponseBody;
use crate::errors::{ErrorClass, sse_error_event};
use crate::limits::human;
use crate::sse::{Dialect, SseTap, parse_whole};

/// Error type of response bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Largest non-streamed body kept for reading usage and text (the body is forwarded
/// whole either way).
const MAX_WHOLE: usize = 4 << 20;

/// How the forwarded bytes are read.
pub(crate) enum Tap {
    /// Not at all (pass-through paths).
    None,
    /// As server-sent events.
    Sse(Box<SseTap>),
    /// As one JSON body, read at the end.
    Whole {
        dialect: Dialect,
        buf: Vec<u8>,
        capture: usize,
    },
}

/// A response body of the gateway.
pub enum GwBody {
    /// A complete body (the gateway's own answers).
    Full(Option<Bytes>),
    /// An upstream body, forwarded and read.
    Tap(Box<TapBody>),
}

/// Resolves when the gateway's shutdown cuts open streams.
pub(crate) type CutSignal = Pin<Box<dyn Future<Output = ()> + Send>>;

/// An upstream body being forwarded.
pub struct TapBody {
    upstream: ResponseBody,
    ex: Exchange,
    tap: Tap,
    idle: Duration,
    last_read: Instant,
    timer: Pin<Box<Sleep>>,
    cut: CutSignal,
    /// The waker the idle timer and the cut signal were last polled with (both pending):
    /// while it is the current one and neither fired, they need no polling per token.
    armed: Option<Waker>,
    pending: Option<Bytes>,
    done: bool,
}

impl TapBody {
    pub(crate) fn new(
        upstream: ResponseBody,
        ex: Exchange,
        tap: Tap,
        idle: Duration,
        cut: CutSignal,
    ) -> TapBody {
        let now = Instant::now();
        TapBody {
            upstream,
            ex,
            tap,
            idle,
            last_read: now,
            timer: Box::pin(tokio::time::sleep_until((now + idle).into())),
            cut,
            armed: None,
            pending: None,
            done: false,
        }
    }

    /// The client went away before the end: keep what the stream said so far (tokens
    /// forwarded count when no usage arrived), and a stream whose final event (`[DONE]`,
    /// TGI's details) was already forwarded ended normally.
    fn abandoned(&mut self) {
        if let Tap::Sse(mut t) = std::mem::replace(&mut self.tap, Tap::None) {
            let summary = std::mem::take(&mut t.summary);
            let finished = summary.done;
            self.ex.rec().summary = summary;
            if finished {
                self.ex.complete();
            }
        }
    }

    fn read(&mut self, data: Bytes, now: Instant) -> Bytes {
        match &mut self.tap {
            Tap::None => data,
            Tap::Sse(t) => {
                let fed = t.feed(&data);
                if fed.tokens > 0 {
                    self.ex.tokens(now, fed.tokens);
                }
                fed.replace.unwrap_or(data)
            }
            Tap::Whole { buf, .. } => {
                if buf.len() + data.len() <= MAX_WHOLE {
                    buf.extend_from_slice(&data);
                }
                data
            }
        }
    }

    /// The upstream ended the body.
    fn ended(&mut self) -> Option<Bytes> {
        self.done = true;
        let mut held = None;
        match std::mem::replace(&mut self.tap, Tap::None) {
            Tap::None => {}
            Tap::Sse(mut t) => {
                held = t.take_held();
                self.ex.rec().summary = std::mem::take(&mut t.summary);
            }
            Tap::Whole {
                dialect,
                buf,
                capture,
            } => {
                let rec = self.ex.rec();
                // An error body is not a completion: nothing to read from it.
                let mut s = if (200..300).contains(&rec.status) {
                    parse_whole(dialect, &buf, capture)
                } else {
                    crate::sse::Summary::default()
                };
                s.prompt_tokens = s.prompt_tokens.or(rec.summary.prompt_tokens);
                s.completion_tokens = s.completion_tokens.or(rec.summary.completion_tokens);
                rec.summary = s;
            }
        }
        self.ex.complete();
        held
    }

    /// The stream broke: an SSE error event for SSE clients, a body error otherwise.
    fn broken(
        &mut self,
        class: ErrorClass,
        message: String,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.done = true;
        let sse = matches!(self.tap, Tap::Sse(_));
        if let Tap::Sse(t) = std::mem::replace(&mut self.tap, Tap::None) {
            let mut t = t;
            self.ex.rec().summary = std::mem::take(&mut t.summary);
        }
        self.ex.fail(class, message.clone());
        self.ex.complete();
        if sse {
            let (kind, code) = match class {
                ErrorClass::Timeout => ("upstream_error", 504),
                ErrorClass::Shutdown => ("server_error", 503),
                _ => ("upstream_error", 502),
            };
            Poll::Ready(Some(Ok(Frame::data(sse_error_event(&message, kind, code)))))
        } else {
            Poll::Ready(Some(Err(message.into())))
        }
    }
}

impl Body for TapBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(b) = this.pending.take() {
            return Poll::Ready(Some(Ok(Frame::data(b))));
        }
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            match this.upstream.poll_data(cx) {
                Poll::Ready(Some(Ok(data))) => {
                    if data.is_empty() {
                        continue;
                    }
                    let now = Instant::now();
                    this.last_read = now;
                    let out = this.read(data, now);
                    // A body whose end is known with its last byte is finished now:
                    // hyper may not poll again.
                    if this.upstream.is_end() {
                        let held = this.ended();
                        let out = match (out.is_empty(), held) {
                            (true, None) => return Poll::Ready(None),
                            (true, Some(h)) => h,
                            (false, h) => {
                                this.pending = h;
                                out
                            }
                        };
                        return Poll::Ready(Some(Ok(Frame::data(out))));
                    }
                    if out.is_empty() {
                        continue;
                    }
                    return Poll::Ready(Some(Ok(Frame::data(out))));
                }
                Poll::Ready(Some(Err(e))) => {
                    let (name, after) = {
                        let r = this.ex.rec();
                        (
                            r.upstream_name().to_string(),
                            r.timing.received.elapsed().as_millis(),
                        )
                    };
                    return this.broken(
                        ErrorClass::UpstreamReset,
                        format!("upstream {name} broke the response after {after} ms: {e}"),
                    );
                }
                Poll::Ready(None) => {
                    return match this.ended() {
                        Some(b) => Poll::Ready(Some(Ok(Frame::data(b)))),
                        None => Poll::Ready(None),
                    };
                }
                Poll::Pending => {
                    // The timer and the cut signal hold this waker already: skip them
                    // unless one of them fired (both are cheap to ask).
                    let armed = this.armed.as_ref().is_some_and(|w| w.will_wake(cx.waker()));
                    if armed && !this.timer.is_elapsed() && !this.ex.cutting() {
                        return Poll::Pending;
                    }
                    if this.cut.as_mut().poll(cx).is_ready() {
                        let after = this.ex.rec().timing.received.elapsed().as_millis();
                        return this.broken(
                            ErrorClass::Shutdown,
                            format!(
                                "the gateway is shutting down: the response was cut {after} ms after the request"
                            ),
                        );
                    }
                    // The idle timer is reset lazily: when it fires, it re-arms from the
                    // last read unless the silence really lasted `idle`.
                    loop {
                        if this.timer.as_mut().poll(cx).is_pending() {
                            if !armed {
                                this.armed = Some(cx.waker().clone());
                            }
                            return Poll::Pending;
                        }
                        let deadline = this.last_read + this.idle;
                        if Instant::now() >= deadline {
                            let name = this.ex.rec().upstream_name().to_string();
                            return this.broken(
                                ErrorClass::Timeout,
                                format!(
                                    "upstream {name} sent nothing for {} in the middle of the response",
                                    human(this.idle)
                                ),
                            );
                        }
                        this.timer.as_mut().reset(deadline.into());
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.pending.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match &self.tap {
            Tap::Sse(t) if t.rewrites() => SizeHint::default(),
            _ if self.done => SizeHint::with_exact(0),
            _ => self
                .upstream
                .remaining()
                .map_or_else(SizeHint::default, SizeHint::with_exact),
        }
    }
}

impl Drop for TapBody {
    fn drop(&mut self) {
        if !self.done {
            self.abandoned();
        }
    }
}

impl Body for GwBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            GwBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            GwBody::Tap(t) => Pin::new(t.as_mut()).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            GwBody::Full(b) => b.is_none(),
            GwBody::Tap(t) => t.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            GwBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            GwBody::Full(None) => SizeHint::with_exact(0),
            GwBody::Tap(t) => t.size_hint(),
        }
    }
}
