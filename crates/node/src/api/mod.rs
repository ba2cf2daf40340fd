//! The Prometheus HTTP API served by Strata (`/api/v1/query`, `query_range`, `query_exemplars`, `series`,
//! `labels`, `label/<name>/values`, `metadata`, `rules`, `alerts`, `status/buildinfo`) with
//! Prometheus's JSON and error shapes, so Grafana's Prometheus datasource works unchanged.

mod exemplars;
mod inflight;
mod params;
pub mod requests;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tsdb::promql::{Engine, QueryError, QueryOptions};

use params::Params;

pub use inflight::Inflight;

/// What the API reads from.
pub struct ApiState {
    /// The PromQL engine over the store.
    pub engine: Arc<Engine>,
    /// Queries running now: bounded, each cancelled when its client leaves or at shutdown.
    pub inflight: Arc<Inflight>,
    /// How long a query may run unless its `timeout` parameter says less.
    pub query_timeout: std::time::Duration,
    /// The store (metadata).
    pub store: Arc<tsdb::Store>,
    /// The rule engine, when rules are loaded.
    pub rules: Option<Arc<rules::RuleEngine>>,
    /// The backend the data endpoints are forwarded to, when the node reads one.
    pub backend: Option<Arc<crate::backend::Backend>>,
}

type Shared = State<Arc<ApiState>>;

/// The router with every endpoint; GET and form-encoded POST as Prometheus accepts. With a
/// backend, the data endpoints are forwarded there ([`crate::backend::proxy`]).
pub fn router(state: Arc<ApiState>) -> Router {
    let data = match &state.backend {
        Some(b) => crate::backend::proxy::router(b.clone()),
        None => Router::new()
            .route("/api/v1/query", get(query).post(query))
            .route("/api/v1/query_range", get(query_range).post(query_range))
            .route(
                "/api/v1/query_exemplars",
                get(exemplars::query_exemplars).post(exemplars::query_exemplars),
            )
            .route("/api/v1/series", get(series).post(series))
            .route("/api/v1/labels", get(labels).post(labels))
            .route("/api/v1/label/{name}/values", get(label_values))
            .route("/api/v1/metadata", get(metadata))
            .with_state(state.clone()),
    };
    Router::new()
        .route("/api/v1/rules", get(rules_list))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/status/buildinfo", get(buildinfo))
        .with_state(state)
        .merge(data)
}

/// A failed request: Prometheus's error JSON and status code.
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) kind: &'static str,
    pub(crate) message: String,
}

impl ApiError {
    fn bad(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            kind: "bad_data",
            message: message.into(),
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> ApiError {
        ApiError {
            status: StatusCode::from_u16(e.http_status())
                .unwrap_or(StatusCode::UNPROCESSABLE_ENTITY),
            kind: e.error_type(),
            message: e.message,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"status": "error", "errorType": self.kind, "error": self.message});
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

fn success(data: Value) -> Response {
    let body = json!({"status": "success", "data": data});
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

type ApiResult = Result<Response, ApiError>;

/// A slot for one query (waiting at most its timeout) and the engine options that carry its
/// timeout (`timeout` parameter, capped by the configured one) and cancellation token. The
/// ticket must live in the handler until the query returns: dropping it cancels the query.
async fn admit(s: &ApiState, p: &Params) -> Result<(inflight::Ticket, QueryOptions), ApiError> {
    let timeout = match p.timeout()? {
        Some(ms) => std::time::Duration::from_millis(ms.max(1) as u64).min(s.query_timeout),
        None => s.query_timeout,
    };
    let ticket = s.inflight.admit(timeout).await?;
    let opts = QueryOptions {
        timeout: Some(timeout),
        cancel: Some(ticket.cancel()),
    };
    Ok((ticket, opts))
}

/// Runs a store/engine call off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        kind: "internal",
        message: format!("query task failed: {e}"),
    })
}

async fn query(
    State(s): Shared,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = Params::parse(q.as_deref(), &headers, &body)?;
    let expr = p.required("query")?.to_string();
    let t = p.time("time")?.unwrap_or_else(sources::now_ms);
    let (ticket, opts) = admit(&s, &p).await?;
    let value = blocking(move || s.engine.instant_with(&expr, t, &opts)).await??;
    drop(ticket);
    Ok(success(serde_json::to_value(&value).unwrap_or(Value::Null)))
}

async fn query_range(
    State(s): Shared,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = Params::parse(q.as_deref(), &headers, &body)?;
    let expr = p.required("query")?.to_string();
    let start = p
        .time("start")?
        .ok_or_else(|| ApiError::bad("invalid parameter \"start\": missing"))?;
    let end = p
        .time("end")?
        .ok_or_else(|| ApiError::bad("invalid parameter \"end\": missing"))?;
    let step = p.step()?;
    let (ticket, opts) = admit(&s, &p).await?;
    if end < start {
        return Err(ApiError::bad("end timestamp must not be before start time"));
    }
    if (end - start) / step > 11_000 {
        return Err(ApiError::bad(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let value = blocking(move || s.engine.range_with(&expr, start, end, step, &opts)).await??;
    drop(ticket);
    Ok(success(serde_json::to_value(&value).unwrap_or(Value::Null)))
}

async fn series(
    State(s): Shared,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = Params::parse(q.as_deref(), &headers, &body)?;
    let matchers = p.all("match[]");
    if matchers.is_empty() {
        return Err(ApiError::bad("no match[] parameter provided"));
    }
    let (start, end) = p.window()?;
    let found = blocking(move || {
        let m: Vec<&str> = matchers.iter().map(String::as_str).collect();
        s.engine.series(&m, start, end)
    })
    .await??;
    Ok(success(serde_json::to_value(&found).unwrap_or(Value::Null)))
}

async fn labels(
    State(s): Shared,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = Params::parse(q.as_deref(), &headers, &body)?;
    let mut matchers = p.all("match[]");
    let (start, end) = p.window()?;
    if matchers.is_empty() && (p.get("start").is_some() || p.get("end").is_some()) {
        // Only the names of series with samples in the window, as Prometheus answers.
        matchers.push("{__name__=~\".+\"}".to_string());
    }
    let names = blocking(move || {
        let m: Vec<&str> = matchers.iter().map(String::as_str).collect();
        s.engine.label_names(&m, start, end)
    })
    .await??;
    Ok(success(json!(names)))
}

async fn label_values(
    State(s): Shared,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult {
    let p = Params::parse(q.as_deref(), &headers, &Bytes::new())?;
    if !strata_core::labels::valid_name(&name) {
        return Err(ApiError::bad(format!("invalid label name: {name:?}")));
    }
    let matchers = p.all("match[]");
    let (start, end) = p.window()?;
    let values = blocking(move || {
        let m: Vec<&str> = matchers.iter().map(String::as_str).collect();
        s.engine.label_values(&name, &m, start, end)
    })
    .await??;
    Ok(success(json!(values)))
}

async fn metadata(State(s): Shared, RawQuery(q): RawQuery, headers: HeaderMap) -> ApiResult {
    let p = Params::parse(q.as_deref(), &headers, &Bytes::new())?;
    let only = p.get("metric").map(str::to_string);
    let limit = match p.get("limit") {
        Some(l) => l.parse::<i64>().map_err(|_| {
            ApiError::bad(format!(
                "invalid parameter \"limit\": {l:?} is not a number"
            ))
        })?,
        None => -1,
    };
    let mut out = serde_json::Map::new();
    for (metric, meta) in s.store.metadata() {
        if only.as_ref().is_some_and(|m| *m != metric) || (limit >= 0 && out.len() as i64 >= limit)
        {
            continue;
        }
        out.insert(metric, json!([meta]));
    }
    Ok(success(Value::Object(out)))
}

async fn rules_list(State(s): Shared, RawQuery(q): RawQuery, headers: HeaderMap) -> ApiResult {
    let p = Params::parse(q.as_deref(), &headers, &Bytes::new())?;
    let kind = p.get("type");
    if kind.is_some_and(|k| k != "alert" && k != "record") {
        return Err(ApiError::bad(
            "invalid parameter \"type\": use alert or record",
        ));
    }
    Ok(success(match &s.rules {
        Some(r) => r.rules_json(kind),
        None => json!({"groups": []}),
    }))
}

async fn alerts(State(s): Shared) -> ApiResult {
    Ok(success(match &s.rules {
        Some(r) => r.alerts_json(),
        None => json!({"alerts": []}),
    }))
}

async fn buildinfo() -> ApiResult {
    Ok(success(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "revision": crate::REVISION,
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
    })))
}
