//! A finished request: everything metrics, the tail sampler, spans, the log line and
//! capture read. Built by the forwarder, finalised exactly once.

use std::sync::Arc;

use crate::errors::ErrorClass;
use crate::ids::{SpanId, TraceId};
use crate::route::Upstream;
use crate::sse::Summary;
use crate::timing::Timing;

/// What kind of request it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /v1/chat/completions`
    Chat,
    /// `POST /v1/completions`
    Completion,
    /// TGI `POST /generate`
    TgiGenerate,
    /// TGI `POST /generate_stream`
    TgiGenerateStream,
    /// Anything else: passed through untimed.
    Other,
}

impl Endpoint {
    /// Classifies a request line.
    pub fn of(method: &http::Method, path: &str) -> Endpoint {
        if method != http::Method::POST {
            return Endpoint::Other;
        }
        match path.trim_end_matches('/') {
            "/v1/chat/completions" => Endpoint::Chat,
            "/v1/completions" => Endpoint::Completion,
            "/generate" => Endpoint::TgiGenerate,
            "/generate_stream" => Endpoint::TgiGenerateStream,
            _ => Endpoint::Other,
        }
    }

    /// The route as a span/log attribute.
    pub fn route(self) -> &'static str {
        match self {
            Endpoint::Chat => "/v1/chat/completions",
            Endpoint::Completion => "/v1/completions",
            Endpoint::TgiGenerate => "/generate",
            Endpoint::TgiGenerateStream => "/generate_stream",
            Endpoint::Other => "other",
        }
    }

    /// `gen_ai.operation.name`.
    pub fn operation(self) -> &'static str {
        match self {
            Endpoint::Chat => "chat",
            _ => "text_completion",
        }
    }
}

/// Request parameters read from the body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    /// `stream` (always true for `/generate_stream`).
    pub stream: bool,
    /// `max_tokens` / `max_completion_tokens` / `parameters.max_new_tokens`.
    pub max_tokens: Option<u64>,
    /// `temperature`.
    pub temperature: Option<f64>,
    /// `top_p`.
    pub top_p: Option<f64>,
    /// The gateway added `stream_options.include_usage`.
    pub usage_injected: bool,
}

/// One request, as finished.
#[derive(Debug)]
pub struct Record {
    /// `x-request-id`.
    pub request_id: String,
    /// Trace id (continued or new).
    pub trace_id: TraceId,
    /// The gateway's server span.
    pub server_span: SpanId,
    /// The `{operation} {model}` span; its id went upstream in `traceparent`.
    pub chat_span: SpanId,
    /// The caller's span, when a `traceparent` came in.
    pub parent: Option<SpanId>,
    /// `tracestate` as received.
    pub tracestate: Option<String>,
    /// HTTP method.
    pub method: http::Method,
    /// Request path (no query).
    pub path: String,
    /// `1.1` or `2`.
    pub http_version: &'static str,
    /// What kind of request.
    pub endpoint: Endpoint,
    /// Tenant.
    pub tenant: String,
    /// Model asked for.
    pub model: Option<String>,
    /// Upstream that served it.
    pub upstream: Option<Arc<Upstream>>,
    /// Parameters.
    pub params: Params,
    /// Clock readings.
    pub timing: Timing,
    /// HTTP status sent to the client (0: none was sent).
    pub status: u16,
    /// Error class and message.
    pub error: Option<(ErrorClass, String)>,
    /// What the response said.
    pub summary: Summary,
    /// Prompt text kept for capture (only when capture is on).
    pub prompt_capture: Option<String>,
    /// What the request cost (set when finalised; none when its model has no price).
    pub cost: Option<Cost>,
}

/// The price of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Cost {
    /// Amount, in `currency`.
    pub amount: f64,
    /// Currency code.
    pub currency: Arc<str>,
}

impl Record {
    /// Generated tokens: usage when reported, else token events counted.
    pub fn generation_tokens(&self) -> u64 {
        self.summary
            .completion_tokens
            .unwrap_or(self.summary.token_events)
    }

    /// Whether the tokens were of use to the caller: a 2xx without error that ended on its
    /// own (not cut mid-stream, truncated at `max_tokens`, aborted or failed).
    pub fn useful(&self) -> bool {
        self.error.is_none()
            && (200..300).contains(&self.status)
            && !matches!(self.finish_reason(), "none" | "length" | "abort" | "error")
    }

    /// The finish reason, `none` when the response had none.
    pub fn finish_reason(&self) -> &str {
        self.summary.finish_reason.as_deref().unwrap_or("none")
    }

    /// The model label/attribute (`unknown` when the request named none).
    pub fn model_name(&self) -> &str {
        self.model.as_deref().unwrap_or("unknown")
    }

    /// The upstream's name (`none` when no upstream was picked).
    pub fn upstream_name(&self) -> &str {
        self.upstream.as_deref().map_or("none", |u| u.name.as_str())
    }
}
