//! The Prometheus API of a node over a backend: `query`, `query_range`, `series`, `labels`,
//! `label/<name>/values` and `metadata` are forwarded as they came (query string, form body,
//! the backend's own status and JSON), so the UI, `strata top`, `strata cost` and Grafana
//! read the fleet's history; `rules` and `alerts` stay the node's own.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::Backend;
use crate::http::error;

type Shared = State<Arc<Backend>>;

/// The forwarded endpoints.
pub fn router(backend: Arc<Backend>) -> Router {
    Router::new()
        .route("/api/v1/query", get(forward_query).post(forward_query))
        .route(
            "/api/v1/query_range",
            get(forward_range).post(forward_range),
        )
        .route("/api/v1/series", get(forward_series).post(forward_series))
        .route("/api/v1/labels", get(forward_labels).post(forward_labels))
        .route("/api/v1/label/{name}/values", get(forward_values))
        .route("/api/v1/metadata", get(forward_metadata))
        .with_state(backend)
}

async fn forward_query(
    State(b): Shared,
    m: Method,
    RawQuery(q): RawQuery,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    forward(&b, m, "api/v1/query", q, &h, body).await
}

async fn forward_range(
    State(b): Shared,
    m: Method,
    RawQuery(q): RawQuery,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    forward(&b, m, "api/v1/query_range", q, &h, body).await
}

async fn forward_series(
    State(b): Shared,
    m: Method,
    RawQuery(q): RawQuery,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    forward(&b, m, "api/v1/series", q, &h, body).await
}

async fn forward_labels(
    State(b): Shared,
    m: Method,
    RawQuery(q): RawQuery,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    forward(&b, m, "api/v1/labels", q, &h, body).await
}

async fn forward_values(
    State(b): Shared,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    if !strata_core::labels::valid_name(&name) {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_data",
            &format!("invalid label name: {name:?}"),
        );
    }
    let path = format!("api/v1/label/{name}/values");
    forward(&b, Method::GET, &path, q, &HeaderMap::new(), Bytes::new()).await
}

async fn forward_metadata(State(b): Shared, RawQuery(q): RawQuery) -> Response {
    forward(
        &b,
        Method::GET,
        "api/v1/metadata",
        q,
        &HeaderMap::new(),
        Bytes::new(),
    )
    .await
}

/// Sends the request on to the backend and its answer back; a backend that cannot be
/// reached or times out is a Prometheus error (502 / 504) that names it.
async fn forward(
    b: &Backend,
    method: Method,
    path: &str,
    query: Option<String>,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let mut url = b.url(path);
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        url = format!("{url}?{q}");
    }
    let method = if method == Method::POST {
        reqwest::Method::POST
    } else {
        reqwest::Method::GET
    };
    let mut req = b.request_to(method, &url);
    if let Some(ct) = headers.get(header::CONTENT_TYPE)
        && let Ok(v) = reqwest::header::HeaderValue::from_bytes(ct.as_bytes())
    {
        req = req.header(reqwest::header::CONTENT_TYPE, v);
    }
    if !body.is_empty() {
        req = req.body(body.to_vec());
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return error(
                StatusCode::GATEWAY_TIMEOUT,
                "timeout",
                &format!(
                    "backend {url} did not answer within {:?} (raise [backend] timeout or narrow the query)",
                    b.cfg.timeout
                ),
            );
        }
        Err(e) => {
            return error(
                StatusCode::BAD_GATEWAY,
                "unavailable",
                &format!("backend {url} unreachable: {e} (check --backend / [backend] url)"),
            );
        }
    };
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    match resp.bytes().await {
        Ok(bytes) => (status, [(header::CONTENT_TYPE, content_type)], bytes).into_response(),
        Err(e) => error(
            StatusCode::BAD_GATEWAY,
            "unavailable",
            &format!("backend {url}: cannot read the answer: {e}"),
        ),
    }
}
