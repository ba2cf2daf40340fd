//! `GET /api/v1/requests?order=recent|slowest&limit=N` and `GET /api/v1/requests/{id}`:
//! the embedded gateway's recent and slowest requests (no prompts or completions), in the
//! Prometheus API envelope. 404 when no gateway runs inside this Strata.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use gateway::recent::{Order, Recent};
use serde_json::Value;

use super::params::Params;
use super::{ApiError, ApiResult, success};

/// Default and largest `limit`.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 1000;

type Shared = State<Option<Arc<Recent>>>;

/// The requests endpoints over `recent` (`None`: no gateway runs, every call is a 404).
pub fn router(recent: Option<Arc<Recent>>) -> Router {
    Router::new()
        .route("/api/v1/requests", get(list))
        .route("/api/v1/requests/{request_id}", get(one))
        .with_state(recent)
}

fn recorder(s: &Option<Arc<Recent>>) -> Result<&Recent, ApiError> {
    s.as_deref().ok_or_else(|| ApiError {
        status: StatusCode::NOT_FOUND,
        kind: "not_found",
        message: "no gateway runs in this Strata: requests are recorded by the gateway \
                  (add [[gateway.upstream]] to strata.toml)"
            .into(),
    })
}

async fn list(State(s): Shared, RawQuery(q): RawQuery, headers: HeaderMap) -> ApiResult {
    let p = Params::parse(q.as_deref(), &headers, &Bytes::new())?;
    let order = match p.get("order").unwrap_or("recent") {
        "recent" => Order::Recent,
        "slowest" => Order::Slowest,
        other => {
            return Err(ApiError::bad(format!(
                "invalid parameter \"order\": {other:?} (use recent or slowest)"
            )));
        }
    };
    let limit = match p.get("limit") {
        Some(l) => l
            .parse::<usize>()
            .map_err(|_| {
                ApiError::bad(format!(
                    "invalid parameter \"limit\": {l:?} is not a non-negative number"
                ))
            })?
            .min(MAX_LIMIT),
        None => DEFAULT_LIMIT,
    };
    let list = recorder(&s)?.list(order, limit);
    Ok(success(serde_json::to_value(list).unwrap_or(Value::Null)))
}

async fn one(State(s): Shared, Path(id): Path<String>) -> ApiResult {
    match recorder(&s)?.get(&id) {
        Some(r) => Ok(success(serde_json::to_value(r).unwrap_or(Value::Null))),
        None => Err(ApiError {
            status: StatusCode::NOT_FOUND,
            kind: "not_found",
            message: format!(
                "request {id:?} is not among the last {} requests or the slowest {} of the last {} minutes",
                gateway::recent::RECENT,
                gateway::recent::SLOWEST,
                gateway::recent::SLOWEST_WINDOW_MS / 60_000
            ),
        }),
    }
}
