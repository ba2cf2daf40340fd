//! Spans of a finished request, in the OpenTelemetry GenAI semantic conventions, chosen by
//! the tail sampler and exported over OTLP.
//!
//! Per kept request:
//!
//! ```text
//! POST /v1/chat/completions          SERVER  (request_id, tenant, http.*)
//! └── chat {model}                   CLIENT  (gen_ai.*, upstream, gpu_uuid) ← traceparent sent upstream
//!     ├── upstream wait              INTERNAL  sent → response headers
//!     ├── first token                INTERNAL  headers → first token
//!     ├── decode                     INTERNAL  first → last token, `gen_ai.tokens` events per batch
//!     └── stream out                 INTERNAL  last token → end of response
//! ```

pub mod export;
pub mod proto;
pub mod sampler;

use std::time::Instant;

use proto::{
    Event, KeyValue, Span, Status, kv_f64, kv_int, kv_str, kv_strs, span_kind, status_code,
};

use crate::record::{Endpoint, Record};

/// GenAI semantic-convention attribute names (kept here: the semconv crate marks them
/// deprecated while the conventions move).
pub mod genai {
    /// `chat`, `text_completion`.
    pub const OPERATION_NAME: &str = "gen_ai.operation.name";
    /// Newest name of the provider attribute.
    pub const PROVIDER_NAME: &str = "gen_ai.provider.name";
    /// Older name of the same, for backends that still read it.
    pub const SYSTEM: &str = "gen_ai.system";
    /// Model asked for.
    pub const REQUEST_MODEL: &str = "gen_ai.request.model";
    /// `max_tokens`.
    pub const REQUEST_MAX_TOKENS: &str = "gen_ai.request.max_tokens";
    /// `temperature`.
    pub const REQUEST_TEMPERATURE: &str = "gen_ai.request.temperature";
    /// `top_p`.
    pub const REQUEST_TOP_P: &str = "gen_ai.request.top_p";
    /// Prompt tokens.
    pub const USAGE_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
    /// Generated tokens.
    pub const USAGE_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
    /// Finish reasons (string array).
    pub const RESPONSE_FINISH_REASONS: &str = "gen_ai.response.finish_reasons";
}

/// Flags on exported spans: sampled.
const SAMPLED: u32 = 1;

fn span(
    r: &Record,
    id: [u8; 8],
    parent: Option<[u8; 8]>,
    name: String,
    kind: i32,
    (start, end): (Instant, Instant),
    attributes: Vec<KeyValue>,
) -> Span {
    Span {
        trace_id: r.trace_id.to_vec(),
        span_id: id.to_vec(),
        trace_state: r.tracestate.clone().unwrap_or_default(),
        parent_span_id: parent.map(|p| p.to_vec()).unwrap_or_default(),
        name,
        kind,
        start_time_unix_nano: r.timing.unix_ns(start),
        end_time_unix_nano: r.timing.unix_ns(end.max(start)),
        attributes,
        events: Vec::new(),
        dropped_events_count: 0,
        status: None,
        flags: SAMPLED,
    }
}

/// The spans of a kept request; `new_id` gives ids for the child spans.
pub fn spans(r: &Record, mut new_id: impl FnMut() -> [u8; 8]) -> Vec<Span> {
    let t = &r.timing;
    let end = t.end.unwrap_or(t.received);
    let error = r.error.as_ref().map(|(c, m)| {
        (
            c.as_str(),
            Status {
                message: m.clone(),
                code: status_code::ERROR,
            },
        )
    });
    let mut server_attrs = vec![
        kv_str("http.request.method", r.method.as_str()),
        kv_str("url.path", r.path.clone()),
        kv_str("http.route", r.endpoint.route()),
        kv_str("network.protocol.version", r.http_version),
        kv_str("request_id", r.request_id.clone()),
        kv_str("tenant", r.tenant.clone()),
    ];
    if r.status != 0 {
        server_attrs.push(kv_int("http.response.status_code", r.status as i64));
    }
    if let Some((class, _)) = &error {
        server_attrs.push(kv_str("error.type", *class));
    }
    let mut server = span(
        r,
        r.server_span,
        r.parent,
        format!("{} {}", r.method, r.endpoint.route()),
        span_kind::SERVER,
        (t.received, end),
        server_attrs,
    );
    server.status = error.as_ref().map(|(_, s)| s.clone());
    let mut out = vec![server];
    let Some(up) = &r.upstream else {
        return out;
    };
    if r.endpoint == Endpoint::Other {
        return out;
    }

    let model = r.model_name().to_string();
    let mut a = vec![
        kv_str(genai::OPERATION_NAME, r.endpoint.operation()),
        kv_str(genai::PROVIDER_NAME, up.engine.clone()),
        kv_str(genai::SYSTEM, up.engine.clone()),
        kv_str(genai::REQUEST_MODEL, model.clone()),
        kv_str("server.address", up.authority.host().to_string()),
        kv_str("request_id", r.request_id.clone()),
        kv_str("tenant", r.tenant.clone()),
        kv_str("upstream", up.name.clone()),
    ];
    if let Some(p) = up.authority.port_u16() {
        a.push(kv_int("server.port", p as i64));
    }
    if let Some(m) = r.params.max_tokens {
        a.push(kv_int(genai::REQUEST_MAX_TOKENS, m as i64));
    }
    if let Some(x) = r.params.temperature {
        a.push(kv_f64(genai::REQUEST_TEMPERATURE, x));
    }
    if let Some(x) = r.params.top_p {
        a.push(kv_f64(genai::REQUEST_TOP_P, x));
    }
    if let Some(n) = r.summary.prompt_tokens {
        a.push(kv_int(genai::USAGE_INPUT_TOKENS, n as i64));
    }
    a.push(kv_int(
        genai::USAGE_OUTPUT_TOKENS,
        r.generation_tokens() as i64,
    ));
    if let Some(f) = &r.summary.finish_reason {
        a.push(kv_strs(
            genai::RESPONSE_FINISH_REASONS,
            std::slice::from_ref(f),
        ));
    }
    match up.gpus.as_slice() {
        [] => {}
        [one] => a.push(kv_str("gpu_uuid", one.clone())),
        many => a.push(kv_strs("gpu_uuid", many)),
    }
    if let Some(ttft) = t.ttft() {
        a.push(kv_f64("strata.ttft_seconds", ttft.as_secs_f64()));
    }
    if let Some((class, _)) = &error {
        a.push(kv_str("error.type", *class));
    }
    let sent = t.upstream_sent.unwrap_or(t.received);
    let mut chat = span(
        r,
        r.chat_span,
        Some(r.server_span),
        format!("{} {model}", r.endpoint.operation()),
        span_kind::CLIENT,
        (sent, end),
        a,
    );
    chat.status = error.map(|(_, s)| s);
    out.push(chat);

    let mut child = |name: &str, from: Instant, to: Instant| {
        span(
            r,
            new_id(),
            Some(r.chat_span),
            name.to_string(),
            span_kind::INTERNAL,
            (from, to),
            Vec::new(),
        )
    };
    let Some(headers) = t.headers else {
        out.push(child("upstream wait", sent, end));
        return out;
    };
    out.push(child("upstream wait", sent, headers));
    if let (Some(first), Some(last)) = (t.first_token, t.last_token) {
        out.push(child("first token", headers, first));
        let mut decode = child("decode", first, last);
        let mut total = 0u64;
        for (at, n) in &t.batches {
            total += *n as u64;
            decode.events.push(Event {
                time_unix_nano: t.unix_ns(*at),
                name: "gen_ai.tokens".to_string(),
                attributes: vec![kv_int("count", *n as i64), kv_int("total", total as i64)],
            });
        }
        out.push(decode);
        out.push(child("stream out", last, end));
    } else {
        out.push(child("stream out", headers, end));
    }
    out
}
