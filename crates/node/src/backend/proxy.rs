//! The Prometheus API of a node over a backend: `query`, `query_range`, `query_exemplars`,
//! `series`, `labels`, `label/<name>/values` and `metadata` are forwarded as they came (query string, form body,
//! the backend's own status and JSON), so the UI, `strata top`, `strata cost` and Grafana
//! read the fleet's history; `rules` and `alerts` stay the node's own.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::Backend;
use crate::http::error;

type Shared = State<Arc<Backend>>;

/// The forwarded endpoints.
pub fn router(backend: Arc<Backend>) -> Router {
    let same = get(forward_same).post(forward_same);
    Router::new()
        .route("/api/v1/query", same.clone())
        .route("/api/v1/query_range", same.clone())
        .route("/api/v1/query_exemplars", same.clone())
        .route("/api/v1/series", same.clone())
        .route("/api/v1/labels", same)
        .route("/api/v1/label/{name}/values", get(forward_values))
        .route("/api/v1/metadata", get(forward_same))
        .with_state(backend)
}

/// Forwards a request to the same path on the backend.
async fn forward_same(
    State(b): Shared,
    m: Method,
    uri: Uri,
    RawQuery(q): RawQuery,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    forward(&b, m, uri.path().trim_start_matches('/'), q, &h, body).await
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
