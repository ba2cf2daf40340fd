//! The Strata pipeline as a library: everything `strata up` and `strata demo` run — scrape →
//! store → rules → findings → Prometheus API and UI → sinks, the embedded gateway and incident
//! mode — behind a small lifecycle:
//!
//! - [`start`] takes a [`Plan`] (plain data: settings, targets, rule groups; the binary builds
//!   it from `strata.toml` and flags) and returns a [`Running`] node;
//! - [`Running::apply`] applies a new plan (a config reload) as typed changes;
//! - [`Running::shutdown`] stops every component in order within one deadline and returns a
//!   [`ShutdownReport`] naming what finished and what missed the deadline — nothing is
//!   skipped silently.
//!
//! The crate reads no files or environment of its own: the binary resolves configuration.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), String> {
//! let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
//! let plan = node::Plan {
//!     settings: node::Settings::new("127.0.0.1:0".parse().unwrap(), dir.path().into()),
//!     targets: Vec::new(), // scrape targets: engines, DCGM exporters, NVML
//!     groups: rules::packs::shared().map_err(|e| format!("{e:?}"))?,
//!     inhibit: Vec::new(),
//!     gateway: None,
//!     scenarios: None,
//! };
//! let running = node::start(plan, None).await?;
//! let api = format!("http://{}/api/v1/query", running.addr()); // Prometheus API, UI, /metrics
//! # let _ = api;
//! let report = running.shutdown(Some(std::time::Duration::from_secs(5))).await;
//! assert!(report.clean(), "{report:?}");
//! assert!(report.steps.iter().any(|s| s.name == "store snapshot"));
//! # Ok(())
//! # }
//! ```

pub mod api;
pub mod backend;
mod eval;
mod gateway_feed;
mod ghosts;
mod http;
mod incident;
mod ingest;
mod reload;
mod scenario;
mod scrape_log;
mod selfmetrics;
pub mod settings;
mod shutdown;
pub mod ui;

pub use gateway_feed::Embedded;
pub use incident::Incident;
pub use ingest::{Batch, FamilyMeta, Ingest, StoreQuery};
pub use reload::{Applied, GroupsChanged, PlanSource, TargetsChanged};
pub use scenario::Scenarios;
pub use settings::Settings;
pub use shutdown::{ShutdownReport, Step, StepOutcome};

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rules::inhibit::InhibitRule;
use rules::{EngineConfig, GroupSpec};
use sinks::notify::{Notifier, NotifyConfig};
use sinks::remote_write::RemoteWriter;
use sources::scrape::{Profile, ScrapeReport, Scraper, Target};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tsdb::promql::{Engine, EngineConfig as QueryConfig};
use tsdb::{Store, StoreConfig, WalOptions};

/// The git commit this build was made from (`-dirty` when the tree had changes).
pub const REVISION: &str = env!("STRATA_GIT_COMMIT");

/// `strata --version`: the crate version and [`REVISION`].
pub const VERSION_LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("STRATA_GIT_COMMIT"),
    ")"
);

/// Interval of rule groups that set none.
const DEFAULT_RULE_INTERVAL: Duration = Duration::from_secs(15);

/// Everything one node runs: the binary builds it from its config file and flags.
pub struct Plan {
    /// Resolved settings.
    pub settings: Settings,
    /// Scrape targets.
    pub targets: Vec<Target>,
    /// Rule groups, in evaluation order.
    pub groups: Vec<GroupSpec>,
    /// Inhibition rules for webhook notifications.
    pub inhibit: Vec<InhibitRule>,
    /// The embedded gateway, when configured.
    pub gateway: Option<gateway::GatewayConfig>,
    /// The simulated engines' scenario switch (`strata demo`).
    pub scenarios: Option<Arc<Scenarios>>,
}

/// What the running components share; reloads and the HTTP endpoints act on it.
pub(crate) struct Shared {
    settings: std::sync::Mutex<Settings>,
    gateway_cfg: Option<gateway::GatewayConfig>,
    scraper: Arc<Scraper>,
    evaluator: Arc<eval::Evaluator>,
    pub(crate) metrics: Arc<selfmetrics::SelfMetrics>,
    ingest: Arc<Ingest>,
}

impl Shared {
    /// Applies `plan`: targets diffed by the scraper, groups swapped keeping the state of
    /// unchanged ones, settings that need a restart named.
    pub(crate) fn apply(&self, plan: Plan) -> Result<Applied, String> {
        let needs_restart = {
            let s = strata_core::sync::lock(&self.settings);
            s.needs_restart(
                &plan.settings,
                (self.gateway_cfg.as_ref(), plan.gateway.as_ref()),
            )
        };
        let instances: Vec<String> = plan
            .targets
            .iter()
            .filter_map(|t| match t {
                Target::Http(spec) => Some(spec.instance()),
                Target::Host(_) => None,
            })
            .collect();
        let changes = self
            .scraper
            .set_targets(plan.targets)
            .map_err(|e| format!("a target cannot be scraped: {e}"))?;
        self.ingest.keep_sources(&instances);
        let before = self.evaluator.group_names();
        let kept = self.evaluator.reload(plan.groups);
        let after = self.evaluator.group_names();
        Ok(Applied {
            targets: TargetsChanged {
                added: changes.added,
                removed: changes.removed,
                unchanged: changes.kept,
            },
            rule_groups: GroupsChanged {
                before,
                after,
                kept_state: kept,
            },
            needs_restart,
        })
    }
}

/// A started node.
pub struct Running {
    listen: SocketAddr,
    shared: Arc<Shared>,
    store: Arc<Store>,
    ingest: Arc<Ingest>,
    gateway: Option<Embedded>,
    incident: Arc<Incident>,
    control: Arc<http::Control>,
    /// Tells the API server to stop accepting and finish in-flight requests.
    api_stop: Arc<Notify>,
    api_task: JoinHandle<Result<(), String>>,
    ingest_stop: Arc<Notify>,
    ingest_task: JoinHandle<()>,
    background: Vec<(&'static str, JoinHandle<()>)>,
    /// API queries in flight: cancelled first at shutdown.
    inflight: Arc<api::Inflight>,
    /// Cancels a rule query in flight at shutdown.
    rules_cancel: tsdb::promql::Cancel,
    data_dir: std::path::PathBuf,
}

/// Starts every component of `plan`; `reload`, when given, serves `POST /-/reload` and
/// SIGHUP with the plans it builds.
pub async fn start(plan: Plan, reload: Option<PlanSource>) -> Result<Running, String> {
    let s = plan.settings.clone();
    sources::scrape::install_crypto_provider();
    std::fs::create_dir_all(&s.data_dir).map_err(|e| {
        format!(
            "cannot create the data dir {}: {e} (set --data-dir or [store] data_dir)",
            s.data_dir.display()
        )
    })?;
    // The store's folder: its checkpoint snapshot, write-ahead log and lock.
    let store_dir = s.data_dir.join("tsdb");
    let (store, report) = Store::open_durable(
        StoreConfig {
            retention: s.retention,
            max_exemplars: s.exemplars_limit,
            ..StoreConfig::default()
        },
        &store_dir,
        WalOptions::default(),
    )
    .map_err(|e| e.to_string())?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    if report.checkpoint_series > 0 || report.wal_samples > 0 {
        eprintln!(
            "strata up: store restored from {}: {} series from the snapshot, {} samples from {} log segment(s)",
            store_dir.display(),
            report.checkpoint_series,
            report.wal_samples,
            report.wal_segments
        );
    }
    if report.checkpoint_series > 0 || report.wal_samples > 0 {
        let ended = ghosts::end_restored_series(&store, sources::now_ms());
        tracing::info!(
            "{ended} restored series ended at restore (stale until their target answers)"
        );
    }
    let store = Arc::new(store);
    let engine = Arc::new(Engine::new(
        store.clone(),
        QueryConfig {
            timeout: s.query.timeout,
            max_samples: s.query.max_samples,
            ..QueryConfig::default()
        },
    ));
    let remote = match s.remote_write.clone() {
        Some(cfg) => {
            let (rw, recovery) = RemoteWriter::start(cfg).map_err(|e| e.to_string())?;
            if recovery.samples > 0 {
                eprintln!("remote_write: resuming {} queued samples", recovery.samples);
            }
            for why in &recovery.discarded {
                eprintln!("warning: remote_write queue segment discarded: {why}");
            }
            Some(rw)
        }
        None => None,
    };
    let ingest = Arc::new(Ingest::new(
        store.clone(),
        remote,
        s.external_labels.clone(),
    ));
    let gateway = match plan.gateway.clone() {
        Some(cfg) => Some(Embedded::start(cfg, ingest.clone()).await?),
        None => None,
    };

    let external_url = format!("http://{}", s.listen);
    let mut engine_cfg = EngineConfig::default();
    engine_cfg.external.url = external_url.clone();
    engine_cfg.external.labels = s.external_labels.clone();
    let evaluator = Arc::new(eval::Evaluator::new(
        plan.groups,
        engine_cfg,
        s.rule_interval.unwrap_or(DEFAULT_RULE_INTERVAL),
        plan.inhibit.clone(),
    ));
    let notifier = if s.receivers.is_empty() {
        None
    } else {
        let mut cfg = NotifyConfig::new(s.receivers.clone());
        cfg.external.url = external_url;
        cfg.external.labels = s.external_labels.clone();
        cfg.inhibit = plan.inhibit;
        Some(Notifier::start(cfg)?)
    };
    let metrics = Arc::new(selfmetrics::SelfMetrics::default());
    // Rules run under the same limits; shutdown cancels a rule query in flight.
    let rules_cancel = tsdb::promql::Cancel::new();
    let backend = s
        .backend
        .clone()
        .map(backend::Backend::new)
        .transpose()?
        .map(Arc::new);
    let (query, delay): (Arc<dyn strata_core::query::Query>, Duration) = match &backend {
        Some(b) => {
            let delay = b.eval_delay().await;
            eprintln!(
                "strata up: store is the backend {}: rules evaluated there {} behind now, results written back through remote_write",
                b.config().url,
                humantime::format_duration(delay)
            );
            (
                Arc::new(backend::BackendQuery::new(b.config().clone())?),
                delay,
            )
        }
        None => (
            Arc::new(StoreQuery::with(
                engine.clone(),
                tsdb::promql::QueryOptions {
                    timeout: Some(s.query.timeout),
                    cancel: Some(rules_cancel.clone()),
                },
            )),
            Duration::ZERO,
        ),
    };
    evaluator.start(
        query,
        delay,
        ingest.clone(),
        notifier.clone(),
        metrics.clone(),
    );
    metrics.config_loaded(true);

    let feed = match &s.incident_from {
        Some(cfg) => Some(incident::AlertFeed::new(
            backend::Backend::new(cfg.clone())?,
            names_of_this_node(&s, &plan.targets),
        )),
        None => None,
    };
    let (tx, reports) = mpsc::channel::<ScrapeReport>(64);
    let scraper = Arc::new(
        Scraper::start(plan.targets, Profile::Steady, tx.clone()).map_err(|e| e.to_string())?,
    );
    let incident = Incident::new(
        scraper.clone(),
        s.incident_alerts.clone(),
        s.incident_duration,
    );
    let mut background = vec![(
        "incident mode",
        incident.start(Some(evaluator.engine.clone()), feed),
    )];
    let shared = Arc::new(Shared {
        settings: std::sync::Mutex::new(s.clone()),
        gateway_cfg: plan.gateway,
        scraper: scraper.clone(),
        evaluator: evaluator.clone(),
        metrics: metrics.clone(),
        ingest: ingest.clone(),
    });
    let reloader = reload.map(|source| Arc::new(reload::Reloader::new(source, shared.clone())));
    if let Some(r) = &reloader {
        background.push(("reload on SIGHUP", r.on_sighup()));
    }
    let control = Arc::new(http::Control {
        evaluator: evaluator.clone(),
        incident: incident.clone(),
        scraped: Default::default(),
        metrics: metrics.clone(),
        ingest: ingest.clone(),
        notifier,
        reports: tx,
    });
    let ingest_stop = Arc::new(Notify::new());
    let ingest_task = tokio::spawn(ingest_loop(reports, control.clone(), ingest_stop.clone()));
    if let Some(b) = &backend {
        background.push((
            "backend probe",
            tokio::spawn(probe_backend(b.clone(), control.clone())),
        ));
    }
    background.push((
        "periodic snapshots",
        tokio::spawn(snapshot_every(store.clone(), s.snapshot_interval)),
    ));

    let listener =
        strata_core::net::listen(s.listen, strata_core::net::LISTEN_BACKLOG).map_err(|e| {
            format!(
                "cannot listen on {}: {e} (pick a free --listen address)",
                s.listen
            )
        })?;
    let listen = listener
        .local_addr()
        .map_err(|e| format!("listener address: {e}"))?;
    let mut admin_routes = incident.router();
    if let Some(sc) = &plan.scenarios {
        admin_routes = admin_routes.merge(sc.router());
    }
    if let Some(r) = &reloader {
        admin_routes = admin_routes.merge(r.router());
    }
    let inflight = api::Inflight::new(s.query.max_concurrency);
    let app = if s.agent {
        // Health, /metrics and incident mode only: the agent's data is read from where it
        // ships it.
        http::router(control.clone()).merge(http::admin(admin_routes, s.admin_token.clone()))
    } else {
        api::router(Arc::new(api::ApiState {
            engine,
            inflight: inflight.clone(),
            query_timeout: s.query.timeout,
            store: store.clone(),
            rules: Some(evaluator.engine.clone()),
            backend,
        }))
        .merge(http::router(control.clone()))
        .merge(api::requests::router(gateway.as_ref().map(|g| g.recent())))
        .merge(ui::router())
        .merge(http::admin(admin_routes, s.admin_token.clone()))
    };
    let api_stop = Arc::new(Notify::new());
    let stop = api_stop.clone();
    let api_task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.notified().await })
            .await
            .map_err(|e| format!("API server failed: {e}"))
    });
    if s.agent {
        eprintln!("strata agent: health at http://{listen}/-/ready, own metrics at /metrics");
    } else {
        eprintln!(
            "strata up: Prometheus API on http://{listen}/api/v1/, findings at /api/v1/findings, health at /-/ready, own metrics at /metrics"
        );
        eprintln!("strata up: UI on http://{listen}/");
    }
    Ok(Running {
        listen,
        shared,
        store,
        ingest,
        gateway,
        incident,
        control,
        api_stop,
        api_task,
        ingest_stop,
        ingest_task,
        background,
        inflight,
        rules_cancel,
        data_dir: s.data_dir,
    })
}

/// Writes every scrape report through the one ingest path until told to stop, then writes
/// what is still queued.
async fn ingest_loop(
    mut reports: mpsc::Receiver<ScrapeReport>,
    ctl: Arc<http::Control>,
    stop: Arc<Notify>,
) {
    let mut health = scrape_log::TargetHealth::default();
    let mut handle = |report: ScrapeReport| {
        scrape_log::log(
            health.note(&report.instance, report.error.is_some()),
            &report,
        );
        if report.error.is_none() {
            ctl.scraped.store(true, Ordering::Relaxed);
        }
        ctl.metrics.scrape(
            &report.job,
            report.duration,
            report.error.is_some(),
            report.samples_scraped,
        );
        ctl.ingest.write(Batch::scrape(report));
    };
    loop {
        tokio::select! {
            r = reports.recv() => match r {
                Some(report) => handle(report),
                None => return,
            },
            _ = stop.notified() => break,
        }
    }
    while let Ok(report) = reports.try_recv() {
        handle(report);
    }
}

impl Running {
    /// Where the API, UI and `/metrics` listen.
    pub fn addr(&self) -> SocketAddr {
        self.listen
    }

    /// Where the embedded gateway takes clients, when one runs.
    pub fn gateway_addr(&self) -> Option<SocketAddr> {
        self.gateway.as_ref().map(Embedded::addr)
    }

    /// Applies a new plan (a config reload) as typed changes; see [`Applied`].
    pub fn apply(&self, plan: Plan) -> Result<Applied, String> {
        self.shared.apply(plan)
    }

    /// Resolves when the API server stopped on its own (it failed): the caller should shut
    /// the node down.
    pub async fn api_failed(&mut self) -> String {
        match (&mut self.api_task).await {
            Ok(Ok(())) => "API server stopped".to_string(),
            Ok(Err(e)) => e,
            Err(e) => format!("API server task failed: {e}"),
        }
    }

    /// Stops every component in order within `deadline` (the settings' shutdown deadline
    /// when `None`): the API (in-flight queries get a short grace, then are cancelled),
    /// scraping and rules, queued scrape reports, the store snapshot (durable before
    /// streams drain), the gateway's open streams, remote_write. Each step is logged with
    /// its outcome; a step that misses the deadline is named, never skipped silently.
    pub async fn shutdown(self, deadline: Option<Duration>) -> ShutdownReport {
        let total = deadline
            .unwrap_or_else(|| strata_core::sync::lock(&self.shared.settings).shutdown_deadline);
        shutdown::run(self, total).await
    }
}

/// Asks the backend `1` until it answers, then marks the node as fed (readiness): a brain
/// over a backend has nothing of its own to scrape.
async fn probe_backend(b: Arc<backend::Backend>, ctl: Arc<http::Control>) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    let mut warned = false;
    loop {
        tick.tick().await;
        match b.instant("1", sources::now_ms()).await {
            Ok(_) => {
                ctl.scraped.store(true, Ordering::Relaxed);
                return;
            }
            Err(e) if !warned => {
                tracing::warn!("{e} (retrying every 2 s; not ready until it answers)");
                warned = true;
            }
            Err(e) => tracing::info!("{e}"),
        }
    }
}

/// Snapshots the store every `every`, so a crash loses at most one interval.
/// What names this node in an alert: its `node` external label and its scrape targets'
/// `instance`s (an agent names its loopback targets `NODE:PORT`).
fn names_of_this_node(s: &Settings, targets: &[Target]) -> Vec<String> {
    s.external_labels
        .iter()
        .filter(|(k, _)| k == "node")
        .map(|(_, v)| v.clone())
        .chain(targets.iter().filter_map(|t| match t {
            Target::Http(spec) => Some(spec.instance()),
            Target::Host(_) => None,
        }))
        .collect()
}

async fn snapshot_every(store: Arc<Store>, every: Duration) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tick.tick().await;
        let s = store.clone();
        match tokio::task::spawn_blocking(move || s.snapshot()).await {
            Ok(Ok(())) => tracing::debug!("store snapshot written"),
            Ok(Err(e)) => tracing::warn!(
                "store snapshot failed: {e} (check --data-dir space and permissions)"
            ),
            Err(e) => tracing::warn!("store snapshot task failed: {e}"),
        }
    }
}
