//! `strata up`'s settings: `strata.toml` overlaid with the flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rules::alert::Labels;
use rules::notify::Receiver;
use sinks::remote_write::{Fsync, RemoteWriteConfig};

use super::UpArgs;
use super::args::{check_label_name, parse_fsync};
use crate::config::Config;

/// Where the API listens unless told otherwise.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:9464";

/// Everything `strata up` runs with, resolved.
#[derive(Debug)]
pub(crate) struct Settings {
    /// Address of the API, UI and `/metrics`.
    pub listen: SocketAddr,
    /// Bearer token admin POSTs must carry.
    pub admin_token: Option<String>,
    /// Snapshot and remote_write queue folder.
    pub data_dir: PathBuf,
    /// How long samples are kept.
    pub retention: Duration,
    /// How often the store is snapshotted.
    pub snapshot_interval: Duration,
    /// Whether the built-in packs are loaded.
    pub packs: bool,
    /// SLO profile of the built-in packs.
    pub slo_profile: String,
    /// Extra rule files.
    pub rule_files: Vec<PathBuf>,
    /// Tests: one interval for every group, `for:` waived.
    pub rule_interval: Option<Duration>,
    /// remote_write, when configured.
    pub remote_write: Option<RemoteWriteConfig>,
    /// Alert receivers.
    pub receivers: Vec<Receiver>,
    /// External labels.
    pub external_labels: Labels,
    /// Alerts that switch incident mode on (empty: the pack's page alerts).
    pub incident_alerts: Vec<String>,
    /// How long incident mode lasts.
    pub incident_duration: Duration,
}

fn url(s: &str, key: &str) -> Result<reqwest::Url, String> {
    s.parse()
        .map_err(|e| format!("{key} {s:?}: {e} (write a full URL such as http://host:9093)"))
}

/// Reads a token file (trailing newline ignored); an empty token is an error.
pub(crate) fn read_token(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read the admin token file {}: {e} (check the path and permissions)",
            path.display()
        )
    })?;
    let token = text.trim().to_string();
    if token.is_empty() {
        return Err(format!(
            "admin token file {} is empty: write the token into it",
            path.display()
        ));
    }
    Ok(token)
}

impl Settings {
    /// `config` (the defaults when there is no file) overlaid with `args`.
    pub(crate) fn resolve(config: &Config, args: &UpArgs) -> Result<Settings, String> {
        let listen = match (args.listen, config.api.listen) {
            (Some(a), _) | (None, Some(a)) => a,
            (None, None) => DEFAULT_LISTEN
                .parse()
                .map_err(|e| format!("default listen address: {e}"))?,
        };
        let admin_token = args
            .admin_token_file
            .as_ref()
            .or(config.api.admin_token_file.as_ref())
            .map(|p| read_token(p))
            .transpose()?;
        let data_dir = args
            .data_dir
            .clone()
            .or_else(|| config.store.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from("strata-data"));
        let span = |d: &Option<toml::Spanned<Duration>>| d.as_ref().map(|d| *d.get_ref());
        let retention = args
            .retention
            .or(span(&config.store.retention))
            .unwrap_or(Duration::from_secs(6 * 3600));
        let snapshot_interval = args
            .snapshot_interval
            .or(span(&config.store.snapshot_interval))
            .unwrap_or(Duration::from_secs(120));
        let slo_profile = args
            .slo_profile
            .clone()
            .or_else(|| config.rules.slo_profile.clone())
            .unwrap_or_else(|| "chat".to_string());
        let mut rule_files = config.rules.files.clone();
        rule_files.extend(args.rules.iter().cloned());

        let sinks = &config.sinks;
        let section = sinks.remote_write.as_ref();
        let target = match (&args.remote_write, section) {
            (Some(u), _) => Some(u.clone()),
            (None, Some(s)) => Some(url(&s.url, "[sinks.remote_write] url")?),
            (None, None) => None,
        };
        let remote_write = match target {
            Some(target) => {
                let mut cfg = RemoteWriteConfig::new(target, data_dir.join("remote_write"));
                let mib = args
                    .remote_write_queue_size
                    .or(section.and_then(|s| s.queue_size_mib))
                    .unwrap_or(256);
                cfg.max_queue_bytes = mib.saturating_mul(1 << 20);
                cfg.fsync = match (
                    args.remote_write_fsync,
                    section.and_then(|s| s.fsync.as_deref()),
                ) {
                    (Some(f), _) => f,
                    (None, Some(f)) => {
                        parse_fsync(f).map_err(|e| format!("[sinks.remote_write] fsync {e}"))?
                    }
                    (None, None) => Fsync::Always,
                };
                Some(cfg)
            }
            None => None,
        };
        let mut receivers = Vec::new();
        for u in &sinks.alertmanager {
            receivers.push(Receiver::Alertmanager(url(u, "[sinks] alertmanager")?));
        }
        for u in &sinks.webhook {
            receivers.push(Receiver::Webhook(url(u, "[sinks] webhook")?));
        }
        receivers.extend(
            args.alertmanager
                .iter()
                .cloned()
                .map(Receiver::Alertmanager),
        );
        receivers.extend(args.webhook.iter().cloned().map(Receiver::Webhook));
        let mut external_labels: Labels = Vec::new();
        for (k, v) in &sinks.external_labels {
            check_label_name(k).map_err(|e| format!("[sinks] external_labels: {e}"))?;
            external_labels.push((k.clone(), v.clone()));
        }
        for (k, v) in &args.external_labels {
            external_labels.retain(|(x, _)| x != k);
            external_labels.push((k.clone(), v.clone()));
        }
        let mut incident_alerts = config.incident.alerts.clone();
        incident_alerts.extend(args.incident.alerts.iter().cloned());
        let incident_duration = args
            .incident
            .duration
            .or(span(&config.incident.duration))
            .unwrap_or(Duration::from_secs(600));
        Ok(Settings {
            listen,
            admin_token,
            data_dir,
            retention,
            snapshot_interval,
            packs: !args.no_packs && config.rules.packs.unwrap_or(true),
            slo_profile,
            rule_files,
            rule_interval: args.testing.rule_interval,
            remote_write,
            receivers,
            external_labels,
            incident_alerts,
            incident_duration,
        })
    }
}
