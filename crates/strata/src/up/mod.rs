//! `strata up`: the single-node pipeline from one config file and/or flags — scraper →
//! store → rule engine (built-in packs by default) → findings, Prometheus API, self-metrics
//! and health, with the embedded gateway, remote_write and alert notifications when
//! configured. Without config or targets it autodetects engines on the usual local ports.
//! Ctrl-C / SIGTERM drains the gateway's streams (bounded), flushes the sinks and snapshots
//! the store.

mod args;
mod autodetect;
mod eval;
mod http;
mod ingest;
mod reload;
mod rules;
mod scenario;
mod selfmetrics;
mod settings;
mod targets;

pub use args::UpArgs;
pub(crate) use ingest::{Ingest, StoreQuery};
pub(crate) use rules::{inhibitions, rule_groups};
pub(crate) use scenario::Scenarios;
pub(crate) use settings::{Settings, read_token};

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ::rules::inhibit::InhibitRule;
use ::rules::notify::{Notifier, NotifyConfig};
use ::rules::{EngineConfig, GroupSpec};
use sinks::remote_write::RemoteWriter;
use sources::scrape::{Profile, ScrapeReport, Scraper, Target};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tsdb::promql::{Engine, EngineConfig as QueryConfig};
use tsdb::{Metadata, Store, StoreConfig};

use crate::config::{self, Config};

/// How long open gateway streams get to finish at shutdown.
const DRAIN: Duration = Duration::from_secs(10); // as Embedded::stop
/// Interval of rule groups that set none.
const DEFAULT_RULE_INTERVAL: Duration = Duration::from_secs(15);

/// Everything one pipeline runs.
pub(crate) struct Plan {
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

/// Started beside the pipeline once the gateway listens (its address given), stopped first
/// at shutdown: `strata demo`'s traffic.
pub(crate) type Companion = Box<dyn FnOnce(Option<SocketAddr>) -> Vec<JoinHandle<()>> + Send>;

/// Runs `strata up` until Ctrl-C or SIGTERM.
pub fn run(
    flag: Option<&std::path::Path>,
    args: UpArgs,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let loaded = match config::locate(flag) {
        Some(path) => {
            let (config, text) = config::load(&path)?;
            Some(targets::Loaded { config, path, text })
        }
        None => None,
    };
    let default = Config::default();
    let config = loaded.as_ref().map_or(&default, |l| &l.config);
    let settings = Settings::resolve(config, &args)?;
    let groups = rules::rule_groups(config, &settings)?;
    let inhibit = rules::inhibitions(&settings)?;
    let gateway = crate::gateway_cmd::embedded_settings(flag)?;
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    sources::scrape::install_crypto_provider();
    Ok(runtime.block_on(async move {
        let autodetect = loaded.is_none() && args.engines.is_empty() && args.gpus.is_empty();
        let targets = if autodetect {
            eprintln!("strata up: no strata.toml and no --engine/--gpu: looking on this machine");
            let found = autodetect::autodetect(&args.testing).await?;
            for l in &found.lines {
                eprintln!("  {l}");
            }
            if found.targets.is_empty() {
                return Err(
                    "nothing found to scrape: start an engine on its usual port, give --engine URL / --gpu URL|nvml, or write a strata.toml (`strata config example`)"
                        .to_string(),
                );
            }
            found.targets
        } else {
            targets::targets(loaded.as_ref(), &args).await?
        };
        if targets.is_empty() && gateway.is_none() {
            return Err("nothing to scrape: give --engine URL and/or --gpu URL|nvml, or [[target]] / [[gateway.upstream]] in strata.toml".to_string());
        }
        let plan = Plan {
            settings,
            targets,
            groups,
            inhibit,
            gateway,
            scenarios: None,
        };
        let path = loaded.map(|l| l.path);
        serve_with(plan, None, Some(reload::Source { path, args })).await
    })?)
}

/// Runs the pipeline of `plan` until Ctrl-C or SIGTERM, then shuts it down in order.
pub(crate) async fn serve(plan: Plan, companion: Option<Companion>) -> Result<ExitCode, String> {
    serve_with(plan, companion, None).await
}

/// [`serve`], with `POST /-/reload` and SIGHUP re-reading `reload` when given.
async fn serve_with(
    plan: Plan,
    companion: Option<Companion>,
    reload: Option<reload::Source>,
) -> Result<ExitCode, String> {
    let s = plan.settings;
    let running_gateway = reload.as_ref().and(plan.gateway.clone());
    sources::scrape::install_crypto_provider();
    std::fs::create_dir_all(&s.data_dir).map_err(|e| {
        format!(
            "cannot create the data dir {}: {e} (set --data-dir or [store] data_dir)",
            s.data_dir.display()
        )
    })?;
    let (store, warning) = Store::open(StoreConfig {
        snapshot_path: Some(s.data_dir.join("store.snapshot")),
        retention: s.retention,
        ..StoreConfig::default()
    });
    if let Some(w) = warning {
        eprintln!("warning: {w}");
    }
    let store = Arc::new(store);
    let engine = Arc::new(Engine::new(store.clone(), QueryConfig::default()));
    let remote = match s.remote_write.clone() {
        Some(cfg) => {
            let (rw, recovery) = RemoteWriter::start(cfg).map_err(|e| e.to_string())?;
            if recovery.samples > 0 {
                eprintln!("remote_write: resuming {} queued samples", recovery.samples);
            }
            Some(rw)
        }
        None => None,
    };
    let ingest = Arc::new(Ingest {
        store: store.clone(),
        remote,
        external: s.external_labels.clone(),
    });
    let gateway = match plan.gateway {
        Some(cfg) => Some(crate::gateway_cmd::Embedded::start(cfg, ingest.clone()).await?),
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
    let query = Arc::new(StoreQuery(engine.clone()));
    evaluator.start(query, ingest.clone(), notifier.clone(), metrics.clone());
    metrics.config_loaded(true);

    let (tx, mut reports) = mpsc::channel::<ScrapeReport>(64);
    let scraper = Arc::new(
        Scraper::start(plan.targets, Profile::Steady, tx.clone()).map_err(|e| e.to_string())?,
    );
    let incident = crate::incident::Incident::new(
        scraper.clone(),
        s.incident_alerts.clone(),
        s.incident_duration,
    );
    let incident_task = incident.start(Some(evaluator.engine.clone()));
    let reloader = reload.map(|source| {
        Arc::new(reload::Reloader::new(
            source,
            &s,
            running_gateway.as_ref(),
            scraper.clone(),
            evaluator.clone(),
            metrics.clone(),
        ))
    });
    let sighup = reloader.as_ref().map(|r| r.on_sighup());
    let control = Arc::new(http::Control {
        evaluator: evaluator.clone(),
        incident: incident.clone(),
        scraped: Default::default(),
        metrics: metrics.clone(),
        ingest: ingest.clone(),
        notifier,
        reports: tx,
    });
    let (sink, ctl) = (ingest.clone(), control.clone());
    let ingest_task = tokio::spawn(async move {
        while let Some(report) = reports.recv().await {
            if let Some(e) = &report.error {
                tracing::info!("scrape of {} failed: {e}", report.instance);
            } else {
                ctl.scraped.store(true, Ordering::Relaxed);
            }
            ctl.metrics.scrape(
                &report.job,
                report.duration,
                report.error.is_some(),
                report.samples_scraped,
            );
            sink.write(&report.instance, &report.points);
            for m in &report.metadata {
                sink.store.set_metadata(
                    &m.name,
                    Metadata {
                        kind: m.metric_type.word(expo::Format::Prometheus).to_string(),
                        help: m.help.clone().unwrap_or_default(),
                        unit: m.unit.clone().unwrap_or_default(),
                    },
                );
            }
        }
    });
    let snapshots = tokio::spawn(snapshot_every(store.clone(), s.snapshot_interval));

    let listener = tokio::net::TcpListener::bind(s.listen).await.map_err(|e| {
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
    let app = crate::api::router(Arc::new(crate::api::ApiState {
        engine,
        store: store.clone(),
        rules: Some(evaluator.engine.clone()),
    }))
    .merge(http::router(control.clone()))
    .merge(crate::api::requests::router(
        gateway.as_ref().map(|g| g.recent()),
    ))
    .merge(crate::ui::router())
    .merge(http::admin(admin_routes, s.admin_token.clone()));
    eprintln!(
        "strata up: Prometheus API on http://{listen}/api/v1/, findings at /api/v1/findings, health at /-/ready, own metrics at /metrics"
    );
    eprintln!("strata up: UI on http://{listen}/");
    let companions = match companion {
        Some(f) => f(gateway.as_ref().map(|g| g.addr())),
        None => Vec::new(),
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| format!("API server failed: {e}"))?;

    eprintln!(
        "strata up: stopping (open gateway streams get up to {}s)",
        DRAIN.as_secs()
    );
    for t in companions {
        t.abort();
    }
    incident_task.abort();
    let _ = incident_task.await;
    if let Some(t) = sighup {
        t.abort();
        let _ = t.await;
    }
    drop(reloader);
    drop(incident);
    drop(control);
    if let Ok(sc) = Arc::try_unwrap(scraper) {
        sc.stop();
    }
    if let Some(g) = gateway {
        g.stop().await;
    }
    evaluator.stop().await;
    // The scraper is gone: the channel closes once the queued reports are written.
    if tokio::time::timeout(Duration::from_secs(5), ingest_task)
        .await
        .is_err()
    {
        eprintln!("strata up: scrape reports still queued after 5 s were dropped");
    }
    snapshots.abort();
    if let Some(rw) = Arc::try_unwrap(ingest).ok().and_then(|i| i.remote) {
        let stats = rw.shutdown(Duration::from_secs(5)).await;
        if stats.queued_samples > 0 {
            eprintln!(
                "remote_write: {} samples stay queued on disk for the next start",
                stats.queued_samples
            );
        }
    }
    store
        .snapshot()
        .map_err(|e| format!("cannot snapshot the store: {e}"))?;
    eprintln!(
        "strata up: store snapshot written to {}",
        s.data_dir.join("store.snapshot").display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Snapshots the store every `every`, so a crash loses at most one interval.
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

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
