//! `strata up`'s own endpoints beside the Prometheus API: `/-/healthy`, `/-/ready`,
//! `/metrics`, `GET /api/v1/findings`, and the bearer-token check on admin POSTs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rules::findings::Finding;
use serde_json::{Value, json};
use sinks::notify::Notifier;

use super::eval::Evaluator;
use super::ingest::Ingest;
use super::selfmetrics::{Gauges, SelfMetrics};
use crate::incident::Incident;

/// What the endpoints read.
pub(crate) struct Control {
    /// Rules and findings.
    pub evaluator: Arc<Evaluator>,
    /// Incident-mode switch (its events appear among the findings).
    pub incident: Arc<Incident>,
    /// Set once the first scrape reached the store.
    pub scraped: AtomicBool,
    /// Strata's own counters.
    pub metrics: Arc<SelfMetrics>,
    /// The store and remote_write.
    pub ingest: Arc<Ingest>,
    /// Alert notifier, when receivers are configured.
    pub notifier: Option<Arc<Notifier>>,
    /// Scrape reports waiting (`max_capacity - capacity` of the channel).
    pub reports: tokio::sync::mpsc::Sender<sources::scrape::ScrapeReport>,
}

type Shared = State<Arc<Control>>;

/// Prometheus's error envelope with `status`.
pub(crate) fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"status": "error", "errorType": kind, "error": message}).to_string(),
    )
        .into_response()
}

/// Prometheus's success envelope.
pub(crate) fn success(data: Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        json!({"status": "success", "data": data}).to_string(),
    )
        .into_response()
}

/// Health, readiness, self-metrics and findings.
pub(crate) fn router(control: Arc<Control>) -> Router {
    Router::new()
        .route("/-/healthy", get(healthy).head(healthy))
        .route("/-/ready", get(ready).head(ready))
        .route("/metrics", get(metrics))
        .route("/api/v1/findings", get(findings))
        .with_state(control)
}

/// Guards the state-changing endpoints (`router`'s POSTs), with or without a token:
/// a cross-origin request from a web page is refused (`Origin` not this host, or
/// `Sec-Fetch-Site` other than `same-origin`/`none`), a body must be sent as
/// `Content-Type: application/json` (which a page cannot send cross-origin without a CORS
/// preflight Strata never grants), and when a token is configured every request but GET and
/// HEAD needs `Authorization: Bearer TOKEN`.
pub(crate) fn admin(router: Router, token: Option<String>) -> Router {
    router.layer(axum::middleware::from_fn_with_state(
        Arc::new(token),
        check_admin,
    ))
}

/// Why a state-changing request from a browser context is refused, if it is.
fn cross_origin(headers: &HeaderMap) -> Option<String> {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &header::HeaderValue| v.to_str().ok())
    };
    if let Some(site) = text("sec-fetch-site")
        && !matches!(site, "same-origin" | "none")
    {
        return Some(format!("Sec-Fetch-Site is {site:?}"));
    }
    let origin = text(header::ORIGIN.as_str())?;
    let host = text(header::HOST.as_str()).unwrap_or_default();
    let origin_authority = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    (origin_authority != host).then(|| format!("Origin {origin:?} is not this host ({host:?})"))
}

/// Whether the request carries a body (a length above zero, or a chunked one).
fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|n| n > 0)
}

async fn check_admin(
    State(token): State<Arc<Option<String>>>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    if let Some(why) = cross_origin(&headers) {
        return error(
            StatusCode::FORBIDDEN,
            "forbidden",
            &format!(
                "cross-origin admin request refused ({why}): send it from a shell or a script (curl), not from a web page"
            ),
        );
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if has_body(&headers) && !json {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "bad_data",
            "admin POSTs take a JSON body: send `Content-Type: application/json` (curl -H 'Content-Type: application/json' -d '{...}')",
        );
    }
    let Some(token) = token.as_ref() else {
        return next.run(req).await;
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
        return next.run(req).await;
    }
    let mut resp = error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "admin endpoints need `Authorization: Bearer TOKEN` with the token of --admin-token-file / [api] admin_token_file",
    );
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    resp
}

/// Compares without stopping at the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn healthy() -> &'static str {
    "Strata is Healthy.\n"
}

async fn ready(State(c): Shared) -> Response {
    let scraped = c.scraped.load(Ordering::Relaxed);
    let evaluated = c.evaluator.all_evaluated();
    if scraped && evaluated {
        return (StatusCode::OK, "Strata is Ready.\n").into_response();
    }
    let why = match (scraped, evaluated) {
        (false, false) => "no scrape and no rule evaluation yet",
        (false, true) => "no scrape has reached the store yet",
        _ => "rule groups have not all been evaluated yet",
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("Strata is not ready: {why}.\n"),
    )
        .into_response()
}

async fn metrics(State(c): Shared) -> Response {
    let gauges = Gauges {
        store: c.ingest.store.stats(),
        ingest_queue: c.reports.max_capacity() - c.reports.capacity(),
        remote_write: c.ingest.remote.as_ref().map(|r| r.stats()),
        notify: c.notifier.as_ref().map(|n| n.stats()),
        findings_open: strata_core::sync::lock(&c.evaluator.findings)
            .open()
            .count(),
        exemplars: c.ingest.store.exemplars().stats(),
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        c.metrics.render(&gauges),
    )
        .into_response()
}

/// `{"open": [...], "history": [...], "inhibited": [...]}`: diagnoses (one per cause, its
/// engines and muted symptoms nested) and incident-mode switches; history holds every one
/// (ended and open), oldest start first; `inhibited` lists every firing alert muted by
/// inhibition, which views leave out of their alert lists.
fn findings_json(c: &Control) -> Value {
    let (mut open, mut history, inhibited) = {
        let f = strata_core::sync::lock(&c.evaluator.findings);
        let open: Vec<Finding> = f.open().cloned().collect();
        let history: Vec<Finding> = f.history().cloned().collect();
        (open, history, f.inhibited().to_vec())
    };
    let (current, ended) = c.incident.events();
    history.extend(ended);
    if let Some(e) = current {
        open.push(e.clone());
        history.push(e);
    }
    open.sort_by_key(|f| f.started_ms);
    history.sort_by_key(|f| f.started_ms);
    json!({"open": open, "history": history, "inhibited": inhibited})
}

async fn findings(State(c): Shared) -> Response {
    success(findings_json(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, header::HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn browser_requests_from_other_origins_are_told_apart() {
        assert!(cross_origin(&headers(&[("host", "127.0.0.1:9464")])).is_none());
        assert!(
            cross_origin(&headers(&[
                ("host", "127.0.0.1:9464"),
                ("origin", "http://127.0.0.1:9464"),
                ("sec-fetch-site", "same-origin"),
            ]))
            .is_none()
        );
        let why = cross_origin(&headers(&[
            ("host", "127.0.0.1:9464"),
            ("origin", "http://evil.example"),
        ]))
        .unwrap();
        assert!(why.contains("evil.example"), "{why}");
        assert!(
            cross_origin(&headers(&[
                ("host", "127.0.0.1:9464"),
                ("sec-fetch-site", "cross-site")
            ]))
            .is_some()
        );
        assert!(has_body(&headers(&[("content-length", "12")])));
        assert!(!has_body(&headers(&[("content-length", "0")])));
        assert!(!has_body(&HeaderMap::new()));
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
