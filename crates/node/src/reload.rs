//! Config reload: `POST /-/reload` (admin token when one is set) and SIGHUP ask the binary
//! for a fresh [`Plan`] (it re-reads its config file and flags) and apply it to the running
//! node through [`Running::apply`](crate::Running::apply): changed scrape targets start and
//! removed ones stop (unchanged ones keep running), the rule groups are swapped (unchanged
//! groups keep their alert state). Settings that need a restart are reported, not applied.
//! A plan that cannot be built keeps everything running as it was.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use serde::Serialize;
use serde_json::json;

use crate::Plan;
use crate::http::{error, success};

/// Builds the plan a reload applies (the binary re-reads its config file and flags); its
/// error is answered with 400 and logged.
pub type PlanSource =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<Plan, String>> + Send>> + Send + Sync>;

/// What one applied plan changed.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Applied {
    /// Scrape targets started, stopped and kept (by instance).
    pub targets: TargetsChanged,
    /// Rule groups before and after, and how many kept their alert state.
    pub rule_groups: GroupsChanged,
    /// Settings that changed but only apply after a restart.
    pub needs_restart: Vec<&'static str>,
}

/// The scrape targets a plan started, stopped and left running.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct TargetsChanged {
    /// Started.
    pub added: Vec<String>,
    /// Stopped.
    pub removed: Vec<String>,
    /// How many were left running as they were.
    pub unchanged: usize,
}

/// The rule groups before and after a plan.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct GroupsChanged {
    /// Group names before.
    pub before: Vec<String>,
    /// Group names after.
    pub after: Vec<String>,
    /// Groups whose rules did not change and kept their pending/firing state.
    pub kept_state: usize,
}

/// Serves reloads of one running node, one at a time.
pub(crate) struct Reloader {
    source: PlanSource,
    node: Arc<crate::Shared>,
    busy: tokio::sync::Mutex<()>,
}

impl Reloader {
    pub(crate) fn new(source: PlanSource, node: Arc<crate::Shared>) -> Reloader {
        Reloader {
            source,
            node,
            busy: tokio::sync::Mutex::new(()),
        }
    }

    /// Builds a fresh plan and applies it; logged and counted in the self-metrics either way.
    pub(crate) async fn reload(&self) -> Result<Applied, String> {
        let _one = self.busy.lock().await;
        let outcome = match (self.source)().await {
            Ok(plan) => self.node.apply(plan),
            Err(e) => Err(e),
        };
        self.node.metrics.config_loaded(outcome.is_ok());
        match &outcome {
            Ok(v) => eprintln!("strata up: config reloaded: {}", json!(v)),
            Err(e) => eprintln!("strata up: config reload failed, the running config stays: {e}"),
        }
        outcome
    }

    /// `POST /-/reload`: 200 with what changed, 400 with the error and its fix.
    pub(crate) fn router(self: &Arc<Reloader>) -> Router {
        Router::new()
            .route("/-/reload", post(reload))
            .with_state(self.clone())
    }

    /// Reloads on every SIGHUP until the handle is aborted.
    pub(crate) fn on_sighup(self: &Arc<Reloader>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let kind = tokio::signal::unix::SignalKind::hangup();
            let mut hup = match tokio::signal::unix::signal(kind) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("strata up: no reload on SIGHUP: {e} (use POST /-/reload)");
                    return;
                }
            };
            while hup.recv().await.is_some() {
                // The outcome is logged and counted by `reload`.
                let _ = me.reload().await;
            }
        })
    }
}

async fn reload(State(r): State<Arc<Reloader>>) -> Response {
    match r.reload().await {
        Ok(v) => success(json!(v)),
        Err(e) => error(StatusCode::BAD_REQUEST, "bad_data", &e),
    }
}
