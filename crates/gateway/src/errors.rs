//! How a request went wrong (the error class in metrics, logs and spans) and the OpenAI
//! error JSON the gateway answers with when it, not the engine, ends a request.

use bytes::Bytes;
use http::StatusCode;

/// Why a request did not end normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The engine answered 4xx.
    Upstream4xx,
    /// The engine answered 5xx, or sent an error event mid-stream.
    Upstream5xx,
    /// No TCP connection to the engine.
    Connect,
    /// The engine did not answer (first byte, whole response or between chunks) in time.
    Timeout,
    /// The engine's connection broke mid-response.
    UpstreamReset,
    /// The client went away before the response ended.
    ClientDisconnect,
    /// The gateway refused the request (body too large or late, unknown API key, no
    /// upstream for the model).
    Rejected,
    /// The gateway shut down before the response ended (the stream got an error event).
    Shutdown,
}

impl ErrorClass {
    /// Every class, in label order.
    pub const ALL: [ErrorClass; 8] = [
        ErrorClass::Upstream4xx,
        ErrorClass::Upstream5xx,
        ErrorClass::Connect,
        ErrorClass::Timeout,
        ErrorClass::UpstreamReset,
        ErrorClass::ClientDisconnect,
        ErrorClass::Rejected,
        ErrorClass::Shutdown,
    ];

    /// The label value / log field.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Upstream4xx => "upstream_4xx",
            ErrorClass::Upstream5xx => "upstream_5xx",
            ErrorClass::Connect => "connect",
            ErrorClass::Timeout => "timeout",
            ErrorClass::UpstreamReset => "upstream_reset",
            ErrorClass::ClientDisconnect => "client_disconnect",
            ErrorClass::Rejected => "rejected",
            ErrorClass::Shutdown => "shutdown",
        }
    }

    /// Index into [`ErrorClass::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// `{"error": {"message", "type", "param": null, "code"}}` as OpenAI sends it.
pub fn openai_error_json(message: &str, kind: &str, code: u16) -> Bytes {
    Bytes::from(
        serde_json::json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
            .to_string(),
    )
}

/// The OpenAI error `type` for a gateway status.
pub fn openai_error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        404 => "not_found_error",
        408 | 504 => "timeout",
        413 => "invalid_request_error",
        429 => "rate_limit_error",
        502 | 503 => "api_connection_error",
        _ if status.is_client_error() => "invalid_request_error",
        _ => "server_error",
    }
}

/// An SSE error event (`data: {"error": …}`) for failures after the stream started.
pub fn sse_error_event(message: &str, kind: &str, code: u16) -> Bytes {
    let json = openai_error_json(message, kind, code);
    let mut out = Vec::with_capacity(json.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(&json);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}
