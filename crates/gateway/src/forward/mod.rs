//! The forwarder: one request from arrival to the first response byte, as a list of steps.
//! What happens to the body after that is `body`; what is recorded at the end is
//! `exchange`.

mod body;
mod exchange;
pub mod request;
pub(crate) mod upstream;

use std::sync::Arc;
use std::time::Instant;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use hyper::body::Incoming;

use body::Tap;
pub use body::{BoxError, GwBody, TapBody};
use exchange::Exchange;

use crate::Shared;
use crate::errors::{ErrorClass, openai_error_json, openai_error_type};
use crate::ids::{self, parse_traceparent, traceparent};
use crate::limits::{BodyError, human, read_body};
use crate::record::{Endpoint, Params, Record};
use crate::sse::{Dialect, SseTap, Summary};
use crate::tenant::TenantError;
use crate::timing::Timing;

/// Handles one client request.
pub(crate) async fn handle(gw: Arc<Shared>, req: Request<Incoming>) -> Response<GwBody> {
    let timing = Timing::start();
    let (parts, body) = req.into_parts();

    // 1. Identity: request id and trace context.
    let endpoint = Endpoint::of(&parts.method, parts.uri.path());
    let (request_id, _) = ids::request_id(&parts.headers, &gw.ids);
    let parent = parts
        .headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_traceparent);
    let tracestate = parts
        .headers
        .get("tracestate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let rec = Record {
        request_id,
        trace_id: parent.map_or_else(|| gw.ids.trace_id(), |p| p.trace_id),
        server_span: gw.ids.span_id(),
        chat_span: gw.ids.span_id(),
        parent: parent.map(|p| p.span_id),
        tracestate,
        method: parts.method.clone(),
        path: parts.uri.path().to_string(),
        http_version: if parts.version == Version::HTTP_2 {
            "2"
        } else {
            "1.1"
        },
        endpoint,
        tenant: String::new(),
        model: None,
        upstream: None,
        params: Params::default(),
        timing,
        status: 0,
        error: None,
        summary: Summary::default(),
        prompt_capture: None,
        cost: None,
    };
    let mut ex = Exchange::new(gw.clone(), rec);

    // 2. Tenant.
    match gw.tenants.resolve(&parts.headers) {
        Ok(t) => ex.rec().tenant = t,
        Err(e) => {
            ex.rec().tenant = "unauthenticated".to_string();
            let msg = match e {
                TenantError::MissingKey => {
                    "no API key: send `Authorization: Bearer <key>` with a key configured for your tenant"
                }
                TenantError::UnknownKey => "unknown API key: it is not configured for any tenant",
            };
            return reject(ex, StatusCode::UNAUTHORIZED, msg.to_string());
        }
    }

    // 3. Body, within its limits.
    let limits = gw.cfg.limits;
    let body = match read_body(body, limits.max_body_bytes, limits.body_timeout).await {
        Ok(b) => b,
        Err(BodyError::TooLarge(max)) => {
            return reject(
                ex,
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body is larger than the gateway's limit of {max} bytes"),
            );
        }
        Err(BodyError::Timeout(d)) => {
            return reject(
                ex,
                StatusCode::REQUEST_TIMEOUT,
                format!("the request body did not arrive within {}", human(d)),
            );
        }
        Err(BodyError::Io(e)) => {
            return reject(
                ex,
                StatusCode::BAD_REQUEST,
                format!("reading the request body failed: {e}"),
            );
        }
    };

    // 4. Model and parameters.
    let mut inspected =
        (endpoint != Endpoint::Other).then(|| request::inspect(endpoint, body.clone()));
    if let Some(i) = &inspected {
        let capture = gw.capture.as_ref().map(|c| c.max_bytes);
        let r = ex.rec();
        r.params = i.params.clone();
        r.model = i.model.clone();
        if let Some(cap) = capture {
            let b = &i.body[..i.body.len().min(cap)];
            r.prompt_capture = Some(String::from_utf8_lossy(b).into_owned());
        }
    }

    // 5. Route.
    let model = ex.rec().model.clone();
    let in_flight = match gw.routes.pick(model.as_deref()) {
        Ok(f) => f,
        Err(no) => {
            ex.attach(None);
            return reject(
                ex,
                StatusCode::NOT_FOUND,
                format!(
                    "model {:?} is not served by this gateway (served: {})",
                    no.model,
                    no.served.join(", ")
                ),
            );
        }
    };
    let upstream = in_flight.0.clone();

    // Usage asked for on the client's behalf (llama.cpp drops its `timings` when asked, so
    // its streams are counted from `timings` instead).
    let body = match &mut inspected {
        Some(i) => {
            if gw.cfg.inject_usage && upstream.engine != "llamacpp" {
                i.inject_usage();
                ex.rec().params.usage_injected = i.params.usage_injected;
            }
            i.body.clone()
        }
        None => body,
    };
    ex.attach(Some(in_flight));

    // 6. Forward.
    let pq = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let uri = match upstream.uri(&pq) {
        Ok(u) => u,
        Err(e) => {
            return reject(
                ex,
                StatusCode::BAD_REQUEST,
                format!("cannot build the upstream URL for {pq:?}: {e}"),
            );
        }
    };
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    // The body is already read whole: the upstream is not asked to confirm it first.
    headers.remove(header::EXPECT);
    let (rid, trace_id, chat_span, flags) = {
        let r = ex.rec();
        (
            r.request_id.clone(),
            r.trace_id,
            r.chat_span,
            parent.map_or(1, |p| p.flags | 1),
        )
    };
    if let Ok(v) = HeaderValue::from_str(&rid) {
        headers.insert("x-request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&traceparent(&trace_id, &chat_span, flags)) {
        headers.insert("traceparent", v);
    }
    let up_req = upstream::Request::new(
        parts.method,
        upstream.authority.clone(),
        uri.path_and_query().map_or("/", |p| p.as_str()),
        &headers,
        &body,
    );
    drop(body);

    let stream = ex.rec().params.stream;
    let wait = if stream {
        limits.first_byte_timeout
    } else {
        limits.response_timeout
    };
    ex.rec().timing.upstream_sent = Some(Instant::now());
    let retried = |e: &upstream::Error| {
        tracing::debug!(
            "upstream {}: pooled connection closed ({e}); sending again",
            upstream.name
        );
        gw.metrics.upstream_retry(&upstream.name);
    };
    let sent = tokio::select! {
        r = tokio::time::timeout(wait, gw.pool.send(&up_req, retried)) => r,
        _ = gw.cut_signal() => {
            return fail(
                ex,
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorClass::Shutdown,
                format!(
                    "the gateway is shutting down: upstream {} had not answered yet",
                    upstream.name
                ),
            );
        }
    };
    let resp = match sent {
        Ok(Ok(r)) => r,
        Err(_) => {
            let what = if stream {
                "did not start its response"
            } else {
                "did not answer"
            };
            return fail(
                ex,
                StatusCode::GATEWAY_TIMEOUT,
                ErrorClass::Timeout,
                format!("upstream {} {what} within {}", upstream.name, human(wait)),
            );
        }
        Ok(Err(e)) => {
            let (class, message) = match e {
                upstream::Error::Connect(e) => (
                    ErrorClass::Connect,
                    format!(
                        "cannot connect to upstream {} ({}): {e}",
                        upstream.name, upstream.url
                    ),
                ),
                upstream::Error::Closed(e) => (
                    ErrorClass::UpstreamReset,
                    format!(
                        "upstream {} closed the connection before answering: {e}",
                        upstream.name
                    ),
                ),
                upstream::Error::Malformed(why) => (
                    ErrorClass::UpstreamReset,
                    format!(
                        "upstream {} sent a response that is not HTTP/1.1: {why}",
                        upstream.name
                    ),
                ),
            };
            return fail(ex, StatusCode::BAD_GATEWAY, class, message);
        }
    };

    // 7. Response head; the body is forwarded and read by `TapBody`.
    let upstream::Response {
        status,
        headers: mut up_headers,
        body: up_body,
    } = resp;
    {
        let r = ex.rec();
        r.timing.headers = Some(Instant::now());
        r.status = status.as_u16();
        if status.is_client_error() {
            r.error = Some((
                ErrorClass::Upstream4xx,
                format!("upstream {} answered {status}", upstream.name),
            ));
        } else if status.is_server_error() {
            r.error = Some((
                ErrorClass::Upstream5xx,
                format!("upstream {} answered {status}", upstream.name),
            ));
        }
        // TGI reports token counts in headers of non-streamed responses.
        let num = |h: &str| {
            up_headers
                .get(h)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
        };
        r.summary.prompt_tokens = num("x-prompt-tokens");
        r.summary.completion_tokens = num("x-generated-tokens");
    }
    strip_hop_by_hop(&mut up_headers);
    // A chunked body is passed on with its own framing: a length sent beside it is void.
    if up_body.remaining().is_none() {
        up_headers.remove(header::CONTENT_LENGTH);
    }
    let is_sse = up_headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("text/event-stream"));
    let capture = gw.capture.as_ref().map_or(0, |c| c.max_bytes);
    let (usage_injected, dialect) = {
        let r = ex.rec();
        let d = match endpoint {
            Endpoint::Chat => Dialect::Chat,
            Endpoint::Completion => Dialect::Completion,
            _ => Dialect::Tgi,
        };
        (r.params.usage_injected, d)
    };
    let tap = if endpoint == Endpoint::Other {
        Tap::None
    } else if is_sse {
        let strip = usage_injected && status.is_success();
        if strip {
            up_headers.remove(header::CONTENT_LENGTH);
        }
        Tap::Sse(Box::new(SseTap::new(dialect, strip, capture)))
    } else {
        Tap::Whole {
            dialect,
            buf: Vec::new(),
            capture,
        }
    };
    if let Ok(v) = HeaderValue::from_str(&rid) {
        up_headers.insert("x-request-id", v);
    }
    let idle = limits.idle_timeout;
    let cut = Box::pin(gw.cut_signal());
    let body = GwBody::Tap(Box::new(TapBody::new(up_body, ex, tap, idle, cut)));
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    *resp.headers_mut() = up_headers;
    resp
}

/// The gateway refuses the request itself.
fn reject(ex: Exchange, status: StatusCode, message: String) -> Response<GwBody> {
    fail(ex, status, ErrorClass::Rejected, message)
}

/// The gateway ends the request with an OpenAI error.
fn fail(
    mut ex: Exchange,
    status: StatusCode,
    class: ErrorClass,
    message: String,
) -> Response<GwBody> {
    let rid = {
        let r = ex.rec();
        r.status = status.as_u16();
        r.request_id.clone()
    };
    let body = openai_error_json(&message, openai_error_type(status), status.as_u16());
    ex.fail(class, message);
    ex.complete();
    let mut resp = Response::new(GwBody::Full(Some(body)));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&rid) {
        h.insert("x-request-id", v);
    }
    resp
}

/// Removes connection-level headers (and those the `Connection` header names).
fn strip_hop_by_hop(h: &mut HeaderMap) {
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        h.remove(n);
    }
    for n in [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        h.remove(n);
    }
}
