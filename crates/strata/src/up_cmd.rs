//! `strata up`: scraper → store → rule engine → Prometheus query API, with optional
//! remote_write and alert notifications, from flags alone (no config file needed).
//! Ctrl-C / SIGTERM stops scraping, flushes the remote_write queue and snapshots the store.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use rules::alert::Labels;
use rules::notify::{Notifier, NotifyConfig, Receiver};
use rules::{Appender, EngineConfig, Query, RuleEngine};
use sinks::remote_write::{Fsync, RemoteWriteConfig, RemoteWriter};
use sources::Point;
use sources::gpu::nvml::NvmlCollector;
use sources::scrape::{
    KindProfiles, NvmlTarget, Profile, ScrapeReport, Scraper, Target, TargetKind, TargetSpec,
};
use tokio::sync::mpsc;
use tsdb::promql::{Engine, EngineConfig as QueryConfig, Value};
use tsdb::{Metadata, SampleRef, Store, StoreConfig};

/// `strata up`
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Engine metrics URLs (vLLM, TGI, SGLang, llama.cpp).
    #[arg(long = "engine", value_name = "URL")]
    pub engines: Vec<reqwest::Url>,
    /// GPU exporter URLs (DCGM), or `nvml` for this machine's GPUs.
    #[arg(long = "gpu", value_name = "URL|nvml")]
    pub gpus: Vec<String>,
    /// Address of the Prometheus query API.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9464")]
    pub listen: std::net::SocketAddr,
    /// Prometheus rule files (recording and alerting rules).
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// remote_write receiver (e.g. http://prometheus:9090/api/v1/write).
    #[arg(long, value_name = "URL")]
    pub remote_write: Option<reqwest::Url>,
    /// Bound of the on-disk remote_write queue in MiB; the oldest batches are dropped (and
    /// counted) beyond it while the receiver is unreachable.
    #[arg(long, value_name = "MIB", default_value_t = 256)]
    pub remote_write_queue_size: u64,
    /// fsync policy of the remote_write queue: `always` (a power cut loses nothing
    /// acknowledged) or `never` (survives process crashes, not power loss; less disk I/O).
    #[arg(long, value_name = "always|never", default_value = "always", value_parser = parse_fsync)]
    pub remote_write_fsync: Fsync,
    /// Label added to every remote-written sample (unless it has the label already) and to
    /// every alert sent, like Prometheus's `external_labels`; repeatable.
    #[arg(long = "external-label", value_name = "NAME=VALUE", value_parser = parse_label)]
    pub external_labels: Vec<(String, String)>,
    /// Alertmanager base URL (alerts go to /api/v2/alerts).
    #[arg(long, value_name = "URL")]
    pub alertmanager: Vec<reqwest::Url>,
    /// JSON webhook for alerts (Alertmanager webhook payload shape).
    #[arg(long, value_name = "URL")]
    pub webhook: Vec<reqwest::Url>,
    /// Directory for the store snapshot and the remote_write queue.
    #[arg(long, value_name = "DIR", default_value = "strata-data")]
    pub data_dir: PathBuf,
    /// How often the store is snapshotted to --data-dir (a crash loses at most this much).
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = crate::cli::parse_duration)]
    pub snapshot_interval: Duration,
    #[command(flatten)]
    pub incident: crate::incident::IncidentArgs,
}

fn parse_fsync(s: &str) -> Result<Fsync, String> {
    match s {
        "always" => Ok(Fsync::Always),
        "never" => Ok(Fsync::Never),
        _ => Err(format!("{s:?}: use `always` or `never`")),
    }
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: write NAME=VALUE, e.g. cluster=prod"))?;
    if !crate::api::valid_label_name(name) || name.starts_with("__") {
        return Err(format!("{name:?} is not a valid label name"));
    }
    Ok((name.to_string(), value.to_string()))
}

/// The tsdb engine as the rule engine's query source.
pub(crate) struct StoreQuery(pub(crate) Arc<Engine>);

impl Query for StoreQuery {
    fn instant(&self, expr: &str, t_ms: i64) -> Result<Vec<(Labels, f64)>, String> {
        match self.0.instant(expr, t_ms).map_err(|e| e.to_string())? {
            Value::Vector(v) => Ok(v
                .into_iter()
                .map(|s| (s.labels.as_slice().to_vec(), s.v))
                .collect()),
            Value::Scalar { v, .. } => Ok(vec![(Vec::new(), v)]),
            other => Err(format!(
                "rule expressions must return a vector or scalar, got {other:?}"
            )),
        }
    }
}

/// Where every sample goes: the store, and remote_write when configured.
pub(crate) struct Ingest {
    pub(crate) store: Arc<Store>,
    pub(crate) remote: Option<RemoteWriter>,
    /// Added to remote-written samples that lack them.
    pub(crate) external: Labels,
}

impl Ingest {
    /// Appends `points` from `source` to the store (and remote_write).
    pub(crate) fn write(&self, source: &str, points: &[Point]) {
        let report = self.store.append(
            source,
            points.iter().map(|p| SampleRef {
                name: &p.name,
                labels: &p.labels,
                t_ms: p.timestamp_ms,
                value: p.value,
            }),
        );
        for r in report.refused.iter().take(3) {
            tracing::warn!("store refused {} from {}: {}", r.metric, r.source, r.reason);
        }
        if let Some(rw) = &self.remote {
            if self.external.is_empty() {
                rw.push(points);
            } else {
                let labelled: Vec<Point> = points
                    .iter()
                    .map(|p| {
                        let mut labels = p.labels.clone();
                        for (k, v) in &self.external {
                            if p.label(k).is_none() {
                                labels.push((k.clone(), v.clone()));
                            }
                        }
                        Point::new(p.name.clone(), labels, p.value, p.timestamp_ms)
                    })
                    .collect();
                rw.push(&labelled);
            }
        }
    }
}

impl Appender for Ingest {
    fn append(&self, points: Vec<Point>) {
        self.write("rules", &points);
    }
}

/// Runs `strata up` until Ctrl-C or SIGTERM.
pub fn run(
    flag: Option<&std::path::Path>,
    args: UpArgs,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let gateway = crate::gateway_cmd::embedded_settings(flag)?;
    if args.engines.is_empty() && args.gpus.is_empty() && gateway.is_none() {
        return Err("nothing to scrape: give --engine URL and/or --gpu URL|nvml (or [[gateway.upstream]] in strata.toml)".into());
    }
    let mut groups = Vec::new();
    for file in &args.rules {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read rule file {}: {e}", file.display()))?;
        let loaded = rules::load(&file.display().to_string(), &text).map_err(|errs| {
            let lines: Vec<String> = errs.iter().map(ToString::to_string).collect();
            format!(
                "rule file {} is invalid:\n  {}",
                file.display(),
                lines.join("\n  ")
            )
        })?;
        groups.extend(loaded);
    }
    std::fs::create_dir_all(&args.data_dir)
        .map_err(|e| format!("cannot create --data-dir {}: {e}", args.data_dir.display()))?;
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    Ok(runtime.block_on(serve(args, groups, gateway))?)
}

async fn serve(
    args: UpArgs,
    groups: Vec<rules::GroupSpec>,
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
        Scraper::start(targets(&args).await?, Profile::Steady, tx).map_err(|e| e.to_string())?,
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
    .merge(incident.router());
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

async fn targets(args: &UpArgs) -> Result<Vec<Target>, String> {
    let mut out: Vec<Target> = args
        .engines
        .iter()
        .map(|u| Target::Http(TargetSpec::new("engine", u.clone(), TargetKind::Engine)))
        .collect();
    for g in &args.gpus {
        if g == "nvml" {
            let node = crate::host::hostname();
            let n = node.clone();
            let collector = tokio::task::spawn_blocking(move || NvmlCollector::open(&n))
                .await
                .map_err(|e| format!("NVML task failed: {e}"))?
                .map_err(|e| format!("--gpu nvml: {e}"))?;
            out.push(Target::Nvml(NvmlTarget::new(
                collector,
                node,
                KindProfiles::gpu_default(),
            )));
        } else {
            let url = g
                .parse()
                .map_err(|e| format!("--gpu {g:?}: {e} (give a URL or `nvml`)"))?;
            out.push(Target::Http(TargetSpec::new("gpu", url, TargetKind::Gpu)));
        }
    }
    Ok(out)
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
