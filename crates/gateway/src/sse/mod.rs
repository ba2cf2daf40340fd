//! The tee parser: reads the bytes the client receives (never changes them, except to
//! remove the usage-only chunk the gateway itself asked for) and keeps what timing, token
//! counts, quality signals and capture need.
//!
//! - [`SseTap`]: a `text/event-stream` body (OpenAI chat/completions chunks, TGI's
//!   `/generate_stream` events), fed chunk by chunk as they are forwarded.
//! - [`parse_whole`]: a non-streamed JSON body, read once at the end.

mod json;

use bytes::Bytes;

pub use json::Dialect;
use json::{Parsed, parse_event};

/// Bytes of response text kept for refusal detection.
pub const HEAD_BYTES: usize = 512;
/// Longest SSE line read; a longer one is counted malformed and skipped.
const MAX_LINE: usize = 1 << 20;
/// Most bytes held back while waiting for the end of an event that might be removed.
const MAX_HELD: usize = 64 << 10;

/// What the response said, as far as the gateway needs it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Events that carried generated text or a token.
    pub token_events: u64,
    /// The (first) finish reason, normalised (`eos_token`/`stop_sequence` → `stop`).
    pub finish_reason: Option<String>,
    /// `usage.prompt_tokens` (or TGI's `x-prompt-tokens`).
    pub prompt_tokens: Option<u64>,
    /// `usage.completion_tokens` (or TGI's `generated_tokens`).
    pub completion_tokens: Option<u64>,
    /// The first [`HEAD_BYTES`] of the text.
    pub head: String,
    /// Characters of text in all.
    pub chars: u64,
    /// Events or bodies that were not the JSON expected.
    pub malformed: u64,
    /// The message of an error event sent by the engine.
    pub error: Option<String>,
    /// `[DONE]` (or TGI's final event) seen.
    pub done: bool,
    /// The whole text, up to the capture limit, when capturing.
    pub capture: Option<String>,
    capture_cap: usize,
    /// Token counts came from `usage`: later `timings` do not replace them.
    from_usage: bool,
}

impl Summary {
    /// A summary that also keeps up to `capture_cap` bytes of text (0: none).
    pub fn new(capture_cap: usize) -> Summary {
        Summary {
            capture: (capture_cap > 0).then(String::new),
            capture_cap,
            ..Summary::default()
        }
    }

    fn text(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        self.chars += s.chars().count() as u64;
        push_capped(&mut self.head, s, HEAD_BYTES);
        let cap = self.capture_cap;
        if let Some(c) = &mut self.capture {
            push_capped(c, s, cap);
        }
    }

    fn finish(&mut self, reason: &str) {
        if self.finish_reason.is_none() {
            self.finish_reason = Some(normalise_finish(reason).to_string());
        }
    }

    fn apply(&mut self, p: Parsed<'_>) {
        for t in p.texts.iter() {
            self.text(t);
        }
        if let Some(r) = p.finish {
            self.finish(&r);
        }
        if p.prompt_tokens.is_some() || p.completion_tokens.is_some() {
            self.from_usage = true;
            self.prompt_tokens = p.prompt_tokens.or(self.prompt_tokens);
            self.completion_tokens = p.completion_tokens.or(self.completion_tokens);
        } else if !self.from_usage {
            self.prompt_tokens = p.timings_prompt.or(self.prompt_tokens);
            self.completion_tokens = p.timings_completion.or(self.completion_tokens);
        }
        if let Some(e) = p.error
            && self.error.is_none()
        {
            self.error = Some(e);
        }
        self.done |= p.done;
    }
}

fn push_capped(dst: &mut String, s: &str, cap: usize) {
    if dst.len() >= cap {
        return;
    }
    let room = cap - dst.len();
    if s.len() <= room {
        dst.push_str(s);
    } else {
        let mut end = room;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        dst.push_str(&s[..end]);
    }
}

/// TGI's finish reasons in OpenAI's words.
pub fn normalise_finish(r: &str) -> &str {
    match r {
        "eos_token" | "stop_sequence" => "stop",
        other => other,
    }
}

/// What one chunk held.
#[derive(Debug, Default, PartialEq)]
pub struct Fed {
    /// Events with tokens in this chunk.
    pub tokens: u64,
    /// What to forward instead of the chunk (only when removing the usage chunk):
    /// `Some(empty)` when everything is held back or removed.
    pub replace: Option<Bytes>,
}

/// Reads an SSE body chunk by chunk.
#[derive(Debug)]
pub struct SseTap {
    dialect: Dialect,
    strip_usage: bool,
    line: Vec<u8>,
    skipping_line: bool,
    data: Vec<u8>,
    has_data: bool,
    held: Vec<u8>,
    /// What the stream said so far.
    pub summary: Summary,
}

impl SseTap {
    /// A tap for `dialect`; `strip_usage` removes usage-only events (the gateway asked for
    /// them, the client did not).
    pub fn new(dialect: Dialect, strip_usage: bool, capture_cap: usize) -> SseTap {
        SseTap {
            dialect,
            strip_usage,
            line: Vec::new(),
            skipping_line: false,
            data: Vec::with_capacity(256),
            has_data: false,
            held: Vec::new(),
            summary: Summary::new(capture_cap),
        }
    }

    /// Whether the forwarded bytes may differ from the upstream's (usage chunk removal).
    pub fn rewrites(&self) -> bool {
        self.strip_usage
    }

    /// Bytes held back at the end of the stream (an unfinished event): forwarded as is.
    pub fn take_held(&mut self) -> Option<Bytes> {
        (!self.held.is_empty()).then(|| Bytes::from(std::mem::take(&mut self.held)))
    }

    /// Reads one chunk.
    pub fn feed(&mut self, chunk: &Bytes) -> Fed {
        let mut fed = Fed::default();
        let len = chunk.len();
        let mut pos = 0;
        let mut ev_start = 0;
        let mut last_boundary: Option<usize> = None;
        let mut removed: Vec<(usize, usize)> = Vec::new();
        let mut drop_held = false;
        while pos < len {
            let Some(i) = memchr::memchr(b'\n', &chunk[pos..]) else {
                if !self.skipping_line {
                    self.line.extend_from_slice(&chunk[pos..]);
                    if self.line.len() > MAX_LINE {
                        self.line = Vec::new();
                        self.skipping_line = true;
                        self.summary.malformed += 1;
                    }
                }
                break;
            };
            let end = pos + i;
            if self.skipping_line {
                self.skipping_line = false;
                pos = end + 1;
                continue;
            }
            let line: &[u8] = if self.line.is_empty() {
                &chunk[pos..end]
            } else {
                self.line.extend_from_slice(&chunk[pos..end]);
                &self.line
            };
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                if self.has_data {
                    let mut data = std::mem::take(&mut self.data);
                    let p = parse_event(self.dialect, &data);
                    if p.malformed {
                        self.summary.malformed += 1;
                    }
                    fed.tokens += p.token_events;
                    let usage_only = p.usage_only;
                    self.summary.token_events += p.token_events;
                    self.summary.apply(p);
                    data.clear();
                    self.data = data;
                    self.has_data = false;
                    if self.strip_usage && usage_only {
                        removed.push((ev_start, end + 1));
                        if ev_start == 0 {
                            drop_held = true;
                        }
                    }
                }
                last_boundary = Some(end + 1);
                ev_start = end + 1;
            } else if let Some(payload) = line.strip_prefix(b"data:") {
                let payload = payload.strip_prefix(b" ").unwrap_or(payload);
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(payload);
                self.has_data = true;
            } else if !is_other_field(line) {
                // Not `data:`, a comment, or another SSE field: forwarded as is, counted.
                self.summary.malformed += 1;
            }
            self.line.clear();
            pos = end + 1;
        }
        if !self.strip_usage {
            return fed;
        }
        // Strip mode: forward whole events only, minus the removed ones.
        let upto = last_boundary.unwrap_or(0);
        if removed.is_empty() && self.held.is_empty() && upto == len {
            return fed;
        }
        let mut out = Vec::new();
        if upto > 0 || last_boundary.is_some() {
            if !drop_held {
                out.extend_from_slice(&self.held);
            }
            self.held.clear();
            let mut at = 0;
            for (s, e) in removed {
                out.extend_from_slice(&chunk[at..s]);
                at = e;
            }
            out.extend_from_slice(&chunk[at..upto]);
        }
        self.held.extend_from_slice(&chunk[upto..]);
        if self.held.len() > MAX_HELD {
            // No event boundary in sight: stop holding back, forward as is from now on.
            out.append(&mut self.held);
            self.strip_usage = false;
        }
        fed.replace = Some(Bytes::from(out));
        fed
    }
}

/// Whether a non-empty, non-`data:` line is a comment (`:`) or an SSE field the gateway
/// does not read (`event`, `id`, `retry`, or a bare `data`).
fn is_other_field(line: &[u8]) -> bool {
    if line.starts_with(b":") {
        return true;
    }
    let name = line.split(|b| *b == b':').next().unwrap_or(line);
    matches!(name, b"event" | b"id" | b"retry" | b"data")
}

/// Reads a whole non-streamed JSON response body.
pub fn parse_whole(dialect: Dialect, body: &[u8], capture_cap: usize) -> Summary {
    let mut s = Summary::new(capture_cap);
    let p = json::parse_whole(dialect, body);
    if p.malformed {
        s.malformed += 1;
    }
    s.token_events = p.token_events;
    s.apply(p);
    s
}

#[cfg(test)]
mod tests;
