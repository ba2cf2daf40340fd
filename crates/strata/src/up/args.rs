//! `strata up`'s command-line flags.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use sinks::remote_write::Fsync;

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

pub(crate) fn parse_fsync(s: &str) -> Result<Fsync, String> {
    match s {
        "always" => Ok(Fsync::Always),
        "never" => Ok(Fsync::Never),
        _ => Err(format!("{s:?}: use `always` or `never`")),
    }
}

pub(crate) fn parse_label(s: &str) -> Result<(String, String), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: write NAME=VALUE, e.g. cluster=prod"))?;
    if !crate::api::valid_label_name(name) || name.starts_with("__") {
        return Err(format!("{name:?} is not a valid label name"));
    }
    Ok((name.to_string(), value.to_string()))
}
