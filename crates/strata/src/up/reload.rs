//! Config reload of `strata up`: `POST /-/reload` (admin token when one is set) and SIGHUP
//! re-read the config file `strata up` started with. Changed scrape targets start and
//! removed ones stop (unchanged ones keep running), the rule groups are swapped (unchanged
//! groups keep their alert state). Settings that need a restart are reported, not applied.
//! An invalid file keeps everything running as it was.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use serde_json::{Value, json};
use sources::scrape::Scraper;

use super::eval::Evaluator;
use super::http::{error, success};
use super::selfmetrics::SelfMetrics;
use super::settings::Settings;
use super::{UpArgs, rules, targets};
use crate::config;

/// What a reload re-reads: the config file (none: started from flags only) and the flags,
/// which still win over the file.
pub(crate) struct Source {
    /// The config file `strata up` started with.
    pub path: Option<PathBuf>,
    /// The command line.
    pub args: UpArgs,
}

/// Applies reloads to the running pipeline, one at a time.
pub(crate) struct Reloader {
    source: Source,
    /// The settings in force that only a restart changes, as `(name, value)`.
    fixed: Vec<(&'static str, String)>,
    scraper: Arc<Scraper>,
    evaluator: Arc<Evaluator>,
    metrics: Arc<SelfMetrics>,
    busy: tokio::sync::Mutex<()>,
}

/// The settings a reload cannot apply, with a comparable rendering of each.
fn fixed(
    settings: &Settings,
    gateway: Option<&gateway::GatewayConfig>,
) -> Vec<(&'static str, String)> {
    vec![
        (
            "listen address ([api] listen / --listen)",
            settings.listen.to_string(),
        ),
        (
            "data dir ([store] data_dir / --data-dir)",
            settings.data_dir.display().to_string(),
        ),
        ("retention ([store])", format!("{:?}", settings.retention)),
        (
            "snapshot interval ([store])",
            format!("{:?}", settings.snapshot_interval),
        ),
        (
            "admin token ([api] admin_token_file)",
            format!("{:?}", settings.admin_token),
        ),
        (
            "remote_write ([sinks])",
            format!("{:?}", settings.remote_write),
        ),
        (
            "alert receivers ([sinks])",
            format!("{:?}", settings.receivers),
        ),
        ("external labels", format!("{:?}", settings.external_labels)),
        (
            "incident mode ([incident])",
            format!(
                "{:?} {:?}",
                settings.incident_alerts, settings.incident_duration
            ),
        ),
        (
            "gateway ([gateway], its listen address included)",
            format!("{gateway:?}"),
        ),
    ]
}

impl Reloader {
    /// A reloader over the running `scraper` and `evaluator`; `settings` and `gateway` are
    /// the ones in force.
    pub(crate) fn new(
        source: Source,
        settings: &Settings,
        gateway: Option<&gateway::GatewayConfig>,
        scraper: Arc<Scraper>,
        evaluator: Arc<Evaluator>,
        metrics: Arc<SelfMetrics>,
    ) -> Reloader {
        Reloader {
            fixed: fixed(settings, gateway),
            source,
            scraper,
            evaluator,
            metrics,
            busy: tokio::sync::Mutex::new(()),
        }
    }

    /// Re-reads the config and applies it; what changed, or why nothing did. Logged and
    /// counted in the self-metrics either way.
    pub(crate) async fn reload(&self) -> Result<Value, String> {
        let _one = self.busy.lock().await;
        let outcome = self.apply().await;
        self.metrics.config_loaded(outcome.is_ok());
        match &outcome {
            Ok(v) => eprintln!("strata up: config reloaded: {v}"),
            Err(e) => eprintln!("strata up: config reload failed, the running config stays: {e}"),
        }
        outcome
    }

    async fn apply(&self) -> Result<Value, String> {
        let Some(path) = &self.source.path else {
            return Err("strata up was started without a config file: there is nothing to re-read (start it with --config strata.toml)".to_string());
        };
        let (config, text) = config::load(path).map_err(|e| e.to_string())?;
        let loaded = targets::Loaded {
            config,
            path: path.clone(),
            text,
        };
        let args = &self.source.args;
        let settings = Settings::resolve(&loaded.config, args)?;
        let groups = rules::rule_groups(&loaded.config, &settings)?;
        let gateway = crate::gateway_cmd::embedded_settings(Some(path))?;
        let new_targets = targets::targets(Some(&loaded), args).await?;
        if new_targets.is_empty() && gateway.is_none() {
            return Err(format!(
                "{}: nothing to scrape: add a [[target]] or [[gateway.upstream]] (or keep one of the running targets)",
                path.display()
            ));
        }
        let needs_restart: Vec<&str> = fixed(&settings, gateway.as_ref())
            .into_iter()
            .zip(&self.fixed)
            .filter(|(new, old)| new.1 != old.1)
            .map(|(new, _)| new.0)
            .collect();
        let changes = self
            .scraper
            .set_targets(new_targets)
            .map_err(|e| format!("{}: a target cannot be scraped: {e}", path.display()))?;
        let before = self.evaluator.group_names();
        let kept = self.evaluator.reload(groups);
        let after = self.evaluator.group_names();
        Ok(json!({
            "config": path.display().to_string(),
            "targets": {
                "added": changes.added,
                "removed": changes.removed,
                "unchanged": changes.kept,
            },
            "rule_groups": {
                "before": before,
                "after": after,
                "kept_state": kept,
            },
            "needs_restart": needs_restart,
        }))
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
        Ok(v) => success(v),
        Err(e) => error(StatusCode::BAD_REQUEST, "bad_data", &e),
    }
}
