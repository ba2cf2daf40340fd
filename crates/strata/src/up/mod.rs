//! `strata up`: scraper → store → rule engine → Prometheus query API, with optional
//! remote_write and alert notifications, from flags alone (no config file needed).
//! Ctrl-C / SIGTERM stops scraping, flushes the remote_write queue and snapshots the store.

mod args;
mod ingest;
mod rules;
mod targets;

pub use args::UpArgs;
pub(crate) use ingest::{Ingest, StoreQuery};

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use ::rules::notify::{Notifier, NotifyConfig, Receiver};
use ::rules::{EngineConfig, RuleEngine};
use sinks::remote_write::{RemoteWriteConfig, RemoteWriter};
use sources::scrape::{Profile, ScrapeReport, Scraper};
use tokio::sync::mpsc;
use tsdb::promql::{Engine, EngineConfig as QueryConfig};
use tsdb::{Metadata, Store, StoreConfig};

/// Runs `strata up` until Ctrl-C or SIGTERM.
pub fn run(
    flag: Option<&std::path::Path>,
    args: UpArgs,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let gateway = crate::gateway_cmd::embedded_settings(flag)?;
    if args.engines.is_empty() && args.gpus.is_empty() && gateway.is_none() {
        return Err("nothing to scrape: give --engine URL and/or --gpu URL|nvml (or [[gateway.upstream]] in strata.toml)".into());
    }
    let groups = rules::rule_groups(&args)?;
    std::fs::create_dir_all(&args.data_dir)
        .map_err(|e| format!("cannot create --data-dir {}: {e}", args.data_dir.display()))?;
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    Ok(runtime.block_on(serve(args, groups, gateway))?)
}

async fn serve(
    args: UpArgs,
    groups: Vec<::rules::GroupSpec>,
    gateway: Option<gateway::GatewayConfig>,
) -> Result<ExitCode, String> {
    sources::scrape::install_crypto_provider();
    let cfg = StoreConfig {
        snapshot_path: Some(args.data_dir.join("store.snapshot")),
        ..StoreConfig::default()
    };
    let (store, warning) = Store::open(cfg);
    if let Some(w) = warning {
        eprintln!("warning: {w}");
    }
    let store = Arc::new(store);
    let engine = Arc::new(Engine::new(store.clone(), QueryConfig::default()));
    let remote = match &args.remote_write {
        Some(url) => {
            let mut cfg = RemoteWriteConfig::new(url.clone(), args.data_dir.join("remote_write"));
            cfg.max_queue_bytes = args.remote_write_queue_size.saturating_mul(1 << 20);
            cfg.fsync = args.remote_write_fsync;
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
        external: args.external_labels.clone(),
    });
    let gateway = match gateway {
        Some(cfg) => Some(crate::gateway_cmd::Embedded::start(cfg, ingest.clone()).await?),
        None => None,
    };

    let external_url = format!("http://{}", args.listen);
    let rule_engine = (!groups.is_empty()).then(|| {
        let mut cfg = EngineConfig::default();
        cfg.external.url = external_url.clone();
        cfg.external.labels = args.external_labels.clone();
        Arc::new(RuleEngine::new(groups, cfg))
    });
    let mut receivers: Vec<Receiver> = args
        .alertmanager
        .iter()
        .cloned()
        .map(Receiver::Alertmanager)
        .collect();
    receivers.extend(args.webhook.iter().cloned().map(Receiver::Webhook));
    let notifier = if receivers.is_empty() {
        None
    } else {
        let mut cfg = NotifyConfig::new(receivers);
        cfg.external.url = external_url;
        cfg.external.labels = args.external_labels.clone();
        Some(Notifier::start(cfg)?)
    };
    let rule_tasks = match &rule_engine {
        Some(re) => re.start(
            Arc::new(StoreQuery(engine.clone())),
            ingest.clone(),
            notifier,
        ),
        None => Vec::new(),
    };

    let (tx, mut reports) = mpsc::channel::<ScrapeReport>(64);
    let scraper = Arc::new(
        Scraper::start(targets::targets(&args).await?, Profile::Steady, tx)
            .map_err(|e| e.to_string())?,
    );
    let incident = crate::incident::Incident::new(scraper.clone(), &args.incident);
    let incident_task = incident.start(rule_engine.clone());
    let sink = ingest.clone();
    let ingest_task = tokio::spawn(async move {
        while let Some(report) = reports.recv().await {
            if let Some(e) = &report.error {
                tracing::info!("scrape of {} failed: {e}", report.instance);
            }
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

    let snapshots = tokio::spawn(snapshot_every(store.clone(), args.snapshot_interval));

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| {
            format!(
                "cannot listen on {}: {e} (pick a free --listen address)",
                args.listen
            )
        })?;
    eprintln!(
        "strata up: Prometheus API on http://{}/api/v1/",
        args.listen
    );
    let app = crate::api::router(Arc::new(crate::api::ApiState {
        engine,
        store: store.clone(),
        rules: rule_engine,
    }))
    .merge(incident.router())
    .merge(crate::api::requests::router(gateway.as_ref().map(|g| g.recent())))
    .merge(crate::ui::router());
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| format!("API server failed: {e}"))?;

    incident_task.abort();
    let _ = incident_task.await;
    drop(incident);
    if let Ok(s) = Arc::try_unwrap(scraper) {
        s.stop();
    }
    if let Some(g) = gateway {
        g.stop().await;
    }
    for t in rule_tasks {
        t.abort();
    }
    ingest_task.abort();
    let _ = ingest_task.await;
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

async fn shutdown_signal() {
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
