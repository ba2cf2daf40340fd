//! `strata up`'s command-line flags. Flags override `strata.toml`; list flags add to it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use sinks::remote_write::Fsync;

/// `strata up`
#[derive(Debug, Clone, Default, Args)]
#[command(after_help = "\
Without a config file and without --engine/--gpu, strata up looks for engines on this
machine's usual ports (vLLM :8000, TGI/llama.cpp :8080, SGLang :30000), a DCGM exporter on
:9400 and NVML, and says what it found.

Examples:
  strata up                                   autodetect, API and UI on 127.0.0.1:9464
  strata up --config strata.toml              targets, gateway, rules and sinks from the file
  strata up --engine http://127.0.0.1:8000/metrics --gpu nvml --slo-profile rag")]
pub struct UpArgs {
    /// Engine metrics URLs (vLLM, TGI, SGLang, llama.cpp), added to [[target]].
    #[arg(long = "engine", value_name = "URL", value_parser = crate::cli::parse_metrics_url)]
    pub engines: Vec<reqwest::Url>,
    /// GPU exporter URLs (DCGM), or `nvml` for this machine's GPUs.
    #[arg(long = "gpu", value_name = "URL|nvml")]
    pub gpus: Vec<String>,
    /// Address of the API, UI and /metrics [default: [api] listen, else 127.0.0.1:9464].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// File holding the bearer token admin POSTs (incident, scenario) must carry
    /// [default: [api] admin_token_file; none: admin POSTs are open].
    #[arg(long, value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Prometheus rule files (recording and alerting rules), added to [rules] files.
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// SLO profile of the built-in packs: chat, rag or code [default: [rules] slo_profile,
    /// else chat].
    #[arg(long, value_name = "NAME")]
    pub slo_profile: Option<String>,
    /// Do not load the built-in rule packs (only --rules and [rules] files).
    #[arg(long)]
    pub no_packs: bool,
    /// remote_write receiver (e.g. http://prometheus:9090/api/v1/write).
    #[arg(long, value_name = "URL")]
    pub remote_write: Option<reqwest::Url>,
    /// Bound of the on-disk remote_write queue in MiB; the oldest batches are dropped (and
    /// counted) beyond it while the receiver is unreachable [default: 256].
    #[arg(long, value_name = "MIB")]
    pub remote_write_queue_size: Option<u64>,
    /// fsync policy of the remote_write queue: `always` (a power cut loses nothing
    /// acknowledged) or `never` (survives process crashes, not power loss; less disk I/O)
    /// [default: always].
    #[arg(long, value_name = "always|never", value_parser = parse_fsync)]
    pub remote_write_fsync: Option<Fsync>,
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
    /// Directory for the store snapshot and the remote_write queue [default: [store]
    /// data_dir, else strata-data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// How long samples are kept [default: 6h].
    #[arg(long, value_name = "DURATION", value_parser = crate::cli::parse_duration)]
    pub retention: Option<Duration>,
    /// How often the store is snapshotted to --data-dir (a crash loses at most this much)
    /// [default: 2m].
    #[arg(long, value_name = "DURATION", value_parser = crate::cli::parse_duration)]
    pub snapshot_interval: Option<Duration>,
    /// How long a shutdown may take in all; steps that miss it are named in the log
    /// [default: [api] shutdown_timeout, else 25s].
    #[arg(long, value_name = "DURATION", value_parser = crate::cli::parse_duration)]
    pub shutdown_timeout: Option<Duration>,
    /// Longest a PromQL query (API or rule) may run [default: [api] query_timeout, else 2m].
    #[arg(long, value_name = "DURATION", value_parser = crate::cli::parse_duration)]
    pub query_timeout: Option<Duration>,
    /// Most samples one query may hold in memory at once, subquery steps included
    /// [default: [api] query_max_samples, else 50000000].
    #[arg(long, value_name = "N")]
    pub query_max_samples: Option<usize>,
    /// Most API queries running at once; later ones wait up to their timeout [default:
    /// [api] query_max_concurrency, else 20].
    #[arg(long, value_name = "N")]
    pub query_max_concurrency: Option<usize>,
    /// A Prometheus-compatible query API (Prometheus, VictoriaMetrics, Mimir, Thanos) used
    /// as the store: the API, UI, findings and rules read the fleet's data there; rule
    /// results are written back through remote_write (default URL/api/v1/write)
    /// [default: [backend] url; none: the embedded store].
    #[arg(long, value_name = "URL")]
    pub backend: Option<reqwest::Url>,
    #[command(flatten)]
    pub incident: IncidentArgs,
    #[command(flatten)]
    pub testing: TestArgs,
    /// Set by `strata agent`: scrape and ship only.
    #[arg(skip)]
    pub agent: bool,
    /// Set by `strata agent --incident-from`: the query API whose `ALERTS` about this node
    /// switch its incident mode.
    #[arg(skip)]
    pub incident_from: Option<reqwest::Url>,
}

impl UpArgs {
    /// This machine's name: an `--external-label node=…` (the agent's `--node`), else the
    /// config's `node`, else the hostname.
    pub(crate) fn node(&self, cfg: &::config::Config) -> String {
        self.external_labels
            .iter()
            .find(|(k, _)| k == "node")
            .map(|(_, v)| v.clone())
            .or_else(|| cfg.node.clone())
            .unwrap_or_else(crate::host::hostname)
    }
}

/// Knobs for tests: hidden from `--help`.
#[derive(Debug, Clone, Default, Args)]
pub struct TestArgs {
    /// Evaluate every rule group at this interval and waive `for:` (tests).
    #[arg(long, hide = true, value_name = "DURATION", value_parser = crate::cli::parse_duration)]
    pub rule_interval: Option<Duration>,
    /// Engine ports autodetection probes (tests; default 8000, 8080, 30000).
    #[arg(long, hide = true, value_delimiter = ',')]
    pub probe_engine_ports: Vec<u16>,
    /// DCGM exporter ports autodetection probes (tests; default 9400).
    #[arg(long, hide = true, value_delimiter = ',')]
    pub probe_gpu_ports: Vec<u16>,
    /// Do not try NVML during autodetection (tests).
    #[arg(long, hide = true)]
    pub no_probe_nvml: bool,
    /// Do not start the host collectors (PSI, engine processes, NCCL logs) during
    /// autodetection (tests).
    #[arg(long, hide = true)]
    pub no_probe_host: bool,
}

/// Parses `always` / `never`.
pub(crate) fn parse_fsync(s: &str) -> Result<Fsync, String> {
    match s {
        "always" => Ok(Fsync::Always),
        "never" => Ok(Fsync::Never),
        _ => Err(format!("{s:?}: use `always` or `never`")),
    }
}

/// Parses `NAME=VALUE` with a valid label name.
pub(crate) fn parse_label(s: &str) -> Result<(String, String), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: write NAME=VALUE, e.g. cluster=prod"))?;
    check_label_name(name)?;
    Ok((name.to_string(), value.to_string()))
}

/// Refuses names that are not label names, reserved (`__` prefix), or per-request ids
/// (in any spelling: they would put one series per request on every sample).
pub(crate) fn check_label_name(name: &str) -> Result<(), String> {
    if !strata_core::labels::valid_name(name) || name.starts_with("__") {
        return Err(format!("{name:?} is not a valid label name"));
    }
    if let Some(canonical) = strata_core::labels::forbidden(name) {
        return Err(format!(
            "{name:?} is {canonical}, a per-request id: keep it in traces and logs, never on metrics"
        ));
    }
    Ok(())
}

/// `strata up` incident-mode flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct IncidentArgs {
    /// Alert that switches GPU scraping to the incident profile (250 ms) while it fires;
    /// repeatable, added to [incident] alerts. Default: every page-severity alert of the
    /// built-in GPU/engine pack (alerts.yml).
    #[arg(long = "incident-alert", value_name = "ALERTNAME")]
    pub alerts: Vec<String>,
    /// How long incident mode lasts after its last trigger before scraping goes back to
    /// steady (POST /api/v1/incident may give its own `duration`) [default: [incident]
    /// duration, else 10m].
    #[arg(long = "incident-duration", value_name = "DURATION",
          value_parser = crate::cli::parse_duration)]
    pub duration: Option<Duration>,
}
