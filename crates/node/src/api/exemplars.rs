//! `/api/v1/query_exemplars` (GET and form POST; `query`, `start`, `end`) in Prometheus's
//! JSON shape, so Grafana's Prometheus datasource shows the exemplars Strata stored (scraped
//! OpenMetrics exemplars and the embedded gateway's trace links) on its panels.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use tsdb::exemplars::SeriesExemplars;
use tsdb::promql::format_float;

use super::params::Params;
use super::{ApiError, ApiResult, ApiState, blocking, success};

/// The exemplars of every series the selectors in `query` select, in `[start, end]` (the
/// whole buffer when absent). An expression without a selector (`1 + 1`) answers
/// `204 No Content` with no body, as Prometheus does.
pub(super) async fn query_exemplars(
    State(s): State<Arc<ApiState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = Params::parse(q.as_deref(), &headers, &body)?;
    let (start, end) = p.window()?;
    if end < start {
        return Err(ApiError::bad(
            "end timestamp must not be before start timestamp",
        ));
    }
    let expr = p.get("query").unwrap_or_default().to_string();
    let found = blocking(move || s.engine.query_exemplars(&expr, start, end)).await??;
    Ok(match found {
        None => StatusCode::NO_CONTENT.into_response(),
        Some(series) => success(Value::Array(series.iter().map(series_json).collect())),
    })
}

/// `{"seriesLabels": {...}, "exemplars": [{"labels", "value" (a string), "timestamp"
/// (seconds, a number)}]}`.
fn series_json(s: &SeriesExemplars) -> Value {
    let exemplars: Vec<Value> = s
        .exemplars
        .iter()
        .map(|e| {
            json!({
                "labels": e.labels,
                "value": format_float(e.value),
                "timestamp": e.t_ms as f64 / 1000.0,
            })
        })
        .collect();
    json!({"seriesLabels": s.series, "exemplars": exemplars})
}
