//! Strata's gateway: an OpenAI-compatible (and TGI) streaming proxy in front of one or more
//! inference engines that measures what the user feels — TTFT, ITL, E2E — for whom
//! (tenant, model), and ties every request to its trace, its log line and the GPU it ran on.
//!
//! The request path reads as a list (each item a module named for its behaviour):
//!
//! 1. [`ids`]: `x-request-id` kept or generated; W3C `traceparent` continued or started.
//! 2. [`tenant`]: API key → tenant (401 for unknown keys), else a header, else the default.
//! 3. [`limits`]: request body within its size and time limits.
//! 4. [`forward::request`]: model and parameters read; `stream_options.include_usage`
//!    added when the client did not ask (configurable).
//! 5. [`route`]: model → upstreams, least in flight.
//! 6. [`forward`]: a plain forwarder over HTTP/1.1 keep-alive pools — bytes go to the
//!    client as they arrive, one frame per upstream chunk, never re-serialised.
//! 7. [`sse`]: the tee parser reads the forwarded bytes for tokens, usage, finish reason
//!    and text (and removes exactly the usage chunk the gateway asked for).
//! 8. [`timing`] → [`metrics`]: TTFT/ITL observed live, E2E/TPOT and counters at the end.
//! 9. [`trace::sampler`] decides at the end; kept traces get exemplars and spans
//!    ([`trace`], exported by [`trace::export`] behind a bounded queue).
//! 10. [`log`]: one JSON line per request; opt-in capture through the PII scrubber.
//! 11. [`recent`]: the last requests and the slowest, for the UI (no prompts or completions).
//!
//! Errors the gateway itself answers use the OpenAI error JSON ([`errors`]).

pub mod config;
pub mod errors;
pub mod forward;
mod graceful;
pub mod ids;
pub mod limits;
pub mod log;
pub mod metrics;
pub mod recent;
pub mod record;
pub mod route;
mod server;
pub mod sse;
pub mod tenant;
pub mod timing;
pub mod trace;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{
    CaptureConfig, GatewayConfig, Limits, LogConfig, LogOutput, OtlpProtocol, Prices,
    QualityConfig, SamplingPolicy, TenantConfig, TokenPrice, TracingConfig, UpstreamConfig,
};
pub use metrics::Metrics;

/// State shared by every request.
pub(crate) struct Shared {
    pub cfg: GatewayConfig,
    pub routes: route::Routes,
    pub tenants: tenant::Tenants,
    pub ids: ids::IdGen,
    pub metrics: Arc<Metrics>,
    pub sampler: trace::sampler::TailSampler,
    pub exporter: trace::export::Exporter,
    pub log: log::LogSink,
    pub capture: Option<log::capture::Capture>,
    /// Keep-alive connections to the upstreams.
    pub pool: Arc<forward::upstream::Pool>,
    pub refusals: Vec<String>,
    pub recent: Arc<recent::Recent>,
    /// Set when shutdown's grace ran out: open streams end with an error event.
    pub cut: watch::Receiver<bool>,
}

impl Shared {
    /// Resolves when shutdown cuts the streams still open (never, if the gateway is
    /// dropped without a shutdown).
    pub fn cut_signal(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.cut.clone();
        async move {
            if rx.wait_for(|c| *c).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// A running gateway.
pub struct Running {
    /// Where clients connect.
    pub addr: SocketAddr,
    /// Where `/metrics` and `/health` are served.
    pub admin_addr: Option<SocketAddr>,
    /// The metrics (for embedding: `strata up` reads them into its store).
    pub metrics: Arc<Metrics>,
    /// Recent and slowest requests (for embedding: `strata up` serves them to the UI).
    pub recent: Arc<recent::Recent>,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    cut: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// How long cut streams get to send their error event before shutdown returns.
const CUT_FLUSH: Duration = Duration::from_secs(2);

impl Running {
    /// Stops accepting, lets open requests finish for up to `grace`, then ends the streams
    /// still open with an SSE error event (logged with error class `shutdown`) and flushes
    /// the span queue (up to the export timeout).
    pub async fn shutdown(mut self, grace: Duration) {
        let _ = self.stop.send(true);
        let deadline = tokio::time::Instant::now() + grace;
        let mut open = Vec::new();
        for mut t in std::mem::take(&mut self.tasks) {
            if tokio::time::timeout_at(deadline, &mut t).await.is_err() {
                open.push(t);
            }
        }
        if !open.is_empty() {
            let _ = self.cut.send(true);
            for t in open {
                let _ = tokio::time::timeout(CUT_FLUSH, t).await;
            }
        }
        let timeout = self.shared.cfg.tracing.export_timeout.min(grace);
        self.shared.exporter.shutdown(timeout).await;
    }
}

/// Binds the listen (and admin) address and starts serving on the current tokio runtime.
pub async fn start(cfg: GatewayConfig) -> Result<Running, String> {
    let listener = strata_core::net::listen(cfg.listen, cfg.limits.listen_backlog)
        .map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
    let admin = match cfg.admin {
        Some(a) => Some(
            TcpListener::bind(a)
                .await
                .map_err(|e| format!("cannot listen on admin address {a}: {e}"))?,
        ),
        None => None,
    };
    start_on(cfg, listener, admin).await
}

/// File descriptors kept beside client connections (upstream connections, logs, admin).
const FD_HEADROOM: u64 = 1024;

/// Warns when the open-file limit is below `max_connections` plus headroom: the process
/// would run out of descriptors (and stop accepting, admin included) before the cap works.
fn warn_if_fds_below(max_connections: usize) {
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| open_files_limit(&l));
    let need = (max_connections as u64).saturating_add(FD_HEADROOM);
    if let Some(soft) = soft.filter(|s| *s < need) {
        tracing::warn!(
            "the open-file limit ({soft}) is below [gateway.limits] max_connections \
             ({max_connections}) + {FD_HEADROOM}: raise it (`ulimit -n {need}`, systemd \
             LimitNOFILE={need}) or lower max_connections"
        );
    }
}

/// The soft `Max open files` of a `/proc/self/limits` text (none: unlimited or unreadable).
fn open_files_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Like [`start`], on listeners the caller bound (tests bind `127.0.0.1:0`).
pub async fn start_on(
    cfg: GatewayConfig,
    listener: TcpListener,
    admin: Option<TcpListener>,
) -> Result<Running, String> {
    warn_if_fds_below(cfg.limits.max_connections);
    let routes = route::Routes::new(&cfg.upstreams)?;
    let tenants = tenant::Tenants::new(&cfg.tenant)?;
    let metrics = Arc::new(Metrics::with_limits(cfg.max_series, cfg.max_tenants));
    let pipeline = metrics.pipeline.clone();
    let exporter = trace::export::Exporter::start(&cfg.tracing, pipeline.clone())?;
    let log = log::LogSink::start(&cfg.log.output, pipeline.clone())?;
    let capture = match &cfg.capture {
        Some(c) => Some(log::capture::Capture::start(c, pipeline.clone())?),
        None => None,
    };
    let pool = forward::upstream::Pool::new(
        cfg.limits.upstream_pool_idle_timeout,
        cfg.limits.connect_timeout,
    );
    forward::upstream::Pool::spawn_reaper(&pool);
    let refusals = cfg
        .quality
        .refusal_phrases
        .iter()
        .map(|p| p.to_lowercase())
        .collect();
    let recent = Arc::new(recent::Recent::default());
    let (cut, cut_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        cut: cut_rx,
        sampler: trace::sampler::TailSampler::new(&cfg.tracing.sampling),
        cfg,
        routes,
        tenants,
        ids: ids::IdGen::default(),
        metrics: metrics.clone(),
        exporter,
        log,
        capture,
        pool,
        refusals,
        recent: recent.clone(),
    });
    let addr = listener
        .local_addr()
        .map_err(|e| format!("listen address: {e}"))?;
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = vec![tokio::spawn(server::serve_proxy(
        listener,
        shared.clone(),
        stop_rx.clone(),
    ))];
    let admin_addr = match admin {
        Some(l) => {
            let a = l.local_addr().map_err(|e| format!("admin address: {e}"))?;
            tasks.push(tokio::spawn(server::serve_admin(
                l,
                shared.clone(),
                stop_rx.clone(),
            )));
            Some(a)
        }
        None => None,
    };
    Ok(Running {
        addr,
        admin_addr,
        metrics,
        recent,
        shared,
        stop,
        cut,
        tasks,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_soft_open_files_limit() {
        let text = "Limit                     Soft Limit           Hard Limit           Units\nMax processes             unlimited            unlimited            processes\nMax open files            1024                 524288               files\n";
        assert_eq!(super::open_files_limit(text), Some(1024));
        let text = "Max open files            unlimited            unlimited            files\n";
        assert_eq!(super::open_files_limit(text), None);
    }
}
