//! Per-request timing as the client feels it (definitions: `docs/latency-definitions.md`).
//!
//! All times are `std::time::Instant`s taken when a network read returns, so every event
//! completed by one read shares its timestamp. Only events that carry output text count
//! as tokens: a role-only first chunk or a usage chunk moves no clock.

use std::time::{Duration, Instant};

use serde::Serialize;

/// Timing of one request while its stream is read.
#[derive(Debug)]
pub struct Timer {
    start: Instant,
    first: Option<Instant>,
    last: Option<Instant>,
    gaps: Vec<u64>,
    chunks: u32,
}

impl Timer {
    /// Starts timing a request sent at `start` (just before the request is written).
    pub fn new(start: Instant) -> Timer {
        Timer {
            start,
            first: None,
            last: None,
            gaps: Vec::new(),
            chunks: 0,
        }
    }

    /// A content-bearing event arrived at `at`.
    pub fn content(&mut self, at: Instant) {
        match self.last {
            None => self.first = Some(at),
            Some(prev) => self.gaps.push(nanos(at.saturating_duration_since(prev))),
        }
        self.last = Some(at);
        self.chunks += 1;
    }

    /// Number of content-bearing events so far.
    pub fn chunks(&self) -> u32 {
        self.chunks
    }

    /// Closes the request at `end`; `usage_tokens` is the server's count of output tokens
    /// when it sent one. `None` when no content arrived.
    pub fn finish(self, end: Instant, usage_tokens: Option<u32>) -> Option<Timing> {
        let first = self.first?;
        Some(Timing {
            ttft: first.saturating_duration_since(self.start),
            e2e: end.saturating_duration_since(self.start),
            output_tokens: usage_tokens.unwrap_or(self.chunks),
            tokens_from_usage: usage_tokens.is_some(),
            chunks: self.chunks,
            gaps_ns: self.gaps,
        })
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The measured times of one successful request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timing {
    /// Time to first token: request sent → first content-bearing event.
    pub ttft: Duration,
    /// End to end: request sent → end of the response body.
    pub e2e: Duration,
    /// Output tokens: the server's usage count when sent, else content-bearing events.
    pub output_tokens: u32,
    /// Whether `output_tokens` came from the server's usage.
    pub tokens_from_usage: bool,
    /// Content-bearing events received.
    pub chunks: u32,
    /// Every gap between consecutive content-bearing events (ITL), in nanoseconds.
    pub gaps_ns: Vec<u64>,
}

impl Timing {
    /// Time per output token: (E2E − TTFT) / (output tokens − 1); `None` for one token.
    pub fn tpot(&self) -> Option<Duration> {
        let n = self.output_tokens.checked_sub(1).filter(|&n| n > 0)?;
        Some(self.e2e.saturating_sub(self.ttft) / n)
    }
}

/// Why a request failed. Failed requests never enter the latency statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// No connection (refused, reset before the response, DNS).
    Connect,
    /// The request took longer than the timeout.
    Timeout,
    /// HTTP 429: the server refused for load.
    RateLimited,
    /// Another HTTP 4xx: the request is wrong for this server (model, API, size).
    ClientError,
    /// HTTP 5xx.
    ServerError,
    /// The server sent an error event inside a 200 stream.
    StreamError,
    /// The body broke off before the end of the stream (no `[DONE]` or final event).
    Incomplete,
    /// The stream ended properly without any output text.
    Empty,
}

impl ErrorClass {
    /// Every class, in report order.
    pub const ALL: [ErrorClass; 8] = [
        ErrorClass::Connect,
        ErrorClass::Timeout,
        ErrorClass::RateLimited,
        ErrorClass::ClientError,
        ErrorClass::ServerError,
        ErrorClass::StreamError,
        ErrorClass::Incomplete,
        ErrorClass::Empty,
    ];

    /// The class for an HTTP status that is not a success.
    pub fn of_status(status: u16) -> ErrorClass {
        match status {
            429 => ErrorClass::RateLimited,
            500.. => ErrorClass::ServerError,
            _ => ErrorClass::ClientError,
        }
    }

    /// The name used in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::Connect => "connect",
            ErrorClass::Timeout => "timeout",
            ErrorClass::RateLimited => "rate_limited",
            ErrorClass::ClientError => "client_error",
            ErrorClass::ServerError => "server_error",
            ErrorClass::StreamError => "stream_error",
            ErrorClass::Incomplete => "incomplete",
            ErrorClass::Empty => "empty",
        }
    }
}

/// A failed request: its class and what the server or the network said.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    /// Why it failed.
    pub class: ErrorClass,
    /// The status line, error message or body excerpt.
    pub detail: String,
}

/// What became of one request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// The `x-request-id` it was sent with.
    pub request_id: String,
    /// When it was sent, from the start of its run.
    pub sent_at: Duration,
    /// Its timing, or why it failed.
    pub result: Result<Timing, Failure>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttft_gaps_tpot_and_usage() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut t = Timer::new(t0);
        for at in [100, 120, 150, 150] {
            t.content(ms(at));
        }
        let tm = t.finish(ms(160), None).unwrap();
        assert_eq!(tm.ttft, Duration::from_millis(100));
        assert_eq!(tm.gaps_ns, [20_000_000, 30_000_000, 0]);
        assert_eq!((tm.output_tokens, tm.tokens_from_usage), (4, false));
        assert_eq!(tm.tpot(), Some(Duration::from_millis(20)));
        let mut t = Timer::new(t0);
        t.content(ms(10));
        t.content(ms(20));
        let tm = t.finish(ms(40), Some(7)).unwrap();
        assert_eq!((tm.output_tokens, tm.tokens_from_usage), (7, true));
        assert_eq!(tm.tpot(), Some(Duration::from_millis(5)));
    }

    #[test]
    fn one_token_has_no_tpot_and_no_content_no_timing() {
        let t0 = Instant::now();
        let mut t = Timer::new(t0);
        t.content(t0 + Duration::from_millis(5));
        assert_eq!(
            t.finish(t0 + Duration::from_millis(6), None)
                .unwrap()
                .tpot(),
            None
        );
        assert!(Timer::new(t0).finish(t0, Some(3)).is_none());
        assert_eq!(ErrorClass::of_status(429), ErrorClass::RateLimited);
        assert_eq!(ErrorClass::of_status(404), ErrorClass::ClientError);
        assert_eq!(ErrorClass::of_status(503), ErrorClass::ServerError);
    }
}
