//! The shape of `strata.toml`, as serde structs that refuse unknown keys.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use sources::gpu::FieldSet;
use sources::scrape::{KindProfiles, Profile, ProfileSettings, TargetKind};
use toml::Spanned;

use super::error::ConfigError;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Node name for GPU series read through NVML (`Hostname` label); default: the hostname.
    pub node: Option<String>,
    /// Scrape settings shared by all targets.
    #[serde(default)]
    pub scrape: ScrapeConfig,
    /// The direct NVML GPU collector.
    #[serde(default)]
    pub nvml: NvmlConfig,
    /// The engine's process and cgroup, and the node's pressure stall information.
    #[serde(default)]
    pub host: HostConfig,
    /// Engine logs read for NCCL failures.
    #[serde(default)]
    pub logs: LogsConfig,
    /// Engines and GPU exporters to scrape.
    #[serde(default, rename = "target")]
    pub targets: Vec<TargetConfig>,
    /// The streaming gateway.
    #[serde(default)]
    pub gateway: super::gateway::GatewaySection,
    /// `strata up`'s API and admin endpoints.
    #[serde(default)]
    pub api: super::up::ApiSection,
    /// The embedded store.
    #[serde(default)]
    pub store: super::up::StoreSection,
    /// Rule packs and files.
    #[serde(default)]
    pub rules: super::up::RulesSection,
    /// remote_write and alert receivers.
    #[serde(default)]
    pub sinks: super::up::SinksSection,
    /// Incident mode.
    #[serde(default)]
    pub incident: super::up::IncidentSection,
    /// A Prometheus-compatible backend as the store (`strata up`).
    #[serde(default)]
    pub backend: super::up::BackendSection,
    /// `strata agent`.
    #[serde(default)]
    pub agent: super::up::AgentSection,
    /// GPU and token prices (`[cost]`): cost rules and each request's cost.
    pub cost: Option<super::cost::CostSection>,
    /// Custom SLO profiles (`[[slo]]`).
    #[serde(default, rename = "slo")]
    pub slos: Vec<super::slo::SloSection>,
}

/// `[scrape]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    /// Profile at start (`steady` or `incident`).
    pub profile: Option<Profile>,
    /// Default body limit per scrape, bytes after decompression.
    pub max_body_bytes: Option<usize>,
    /// `[scrape.engine.steady]`, `[scrape.engine.incident]`
    #[serde(default)]
    pub engine: KindProfileConfig,
    /// `[scrape.gpu.steady]`, `[scrape.gpu.incident]`
    #[serde(default)]
    pub gpu: KindProfileConfig,
}

/// Both profiles of one target kind; unset keys keep the built-in defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindProfileConfig {
    /// *steady* overrides.
    #[serde(default)]
    pub steady: ProfileConfig,
    /// *incident* overrides.
    #[serde(default)]
    pub incident: ProfileConfig,
}

/// One profile's overrides.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    /// Time between scrapes.
    #[serde(default, deserialize_with = "duration")]
    pub interval: Option<Spanned<Duration>>,
    /// Per-scrape timeout, at most the interval.
    #[serde(default, deserialize_with = "duration")]
    pub timeout: Option<Spanned<Duration>>,
    /// `full` or `reduced` (GPU fields only).
    pub fields: Option<FieldSet>,
}

/// Whether to read GPUs through NVML.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NvmlMode {
    /// Use NVML when the library loads; say so and go on when it does not.
    #[default]
    Auto,
    /// Require NVML: fail at start without it.
    On,
    /// Never load NVML.
    Off,
}

/// `[nvml]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NvmlConfig {
    /// `auto`, `on` or `off`.
    #[serde(default)]
    pub enabled: NvmlMode,
}

/// `[host]`: collectors that read this node's `/proc` and `/sys/fs/cgroup` (opt-in in a
/// config file; `strata up` without one turns them on when it autodetects).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// Node pressure stall information (`/proc/pressure`).
    #[serde(default)]
    pub psi: bool,
    /// CPU, memory, threads, open files and cgroup of the process listening on each engine
    /// target's port, when the target is on this machine.
    #[serde(default)]
    pub engine_processes: bool,
}

/// `[logs]`: engine logs read for NCCL failures.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsConfig {
    /// Files (followed across rotation), kubelet pod log directories (`/var/log/pods`), or
    /// `-` for standard input.
    #[serde(default)]
    pub nccl: Vec<PathBuf>,
    /// NCCL failure lines kept in memory as evidence.
    pub keep_events: Option<usize>,
}

/// One `[[target]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Unique name; becomes the `job` label.
    pub name: Spanned<String>,
    /// Metrics URL (`http://` or `https://`).
    pub url: Spanned<String>,
    /// `engine` (default) or `gpu`.
    pub kind: Option<TargetKind>,
    /// File holding a bearer token (read at start; trailing newline ignored).
    pub bearer_token_file: Option<Spanned<PathBuf>>,
    /// PEM file with extra CA certificates to trust.
    pub ca_file: Option<Spanned<PathBuf>>,
    /// Accept any certificate (never in production).
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// Body limit override for this target.
    pub max_body_bytes: Option<usize>,
    /// Labels added to every sample (`tenant`, `node`...).
    #[serde(default)]
    pub labels: BTreeMap<String, Spanned<String>>,
}

pub(super) fn duration<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Spanned<Duration>>, D::Error> {
    let text = Spanned::<String>::deserialize(d)?;
    let span = text.span();
    let parsed = humantime::parse_duration(text.get_ref()).map_err(|e| {
        serde::de::Error::custom(format!("invalid duration {:?}: {e}", text.get_ref()))
    })?;
    if parsed.is_zero() {
        return Err(serde::de::Error::custom(
            "a duration must be greater than zero",
        ));
    }
    Ok(Some(Spanned::new(span, parsed)))
}

impl ProfileConfig {
    fn resolve(
        &self,
        default: ProfileSettings,
        path: &Path,
        text: &str,
    ) -> Result<ProfileSettings, ConfigError> {
        let interval = self
            .interval
            .as_ref()
            .map_or(default.interval, |s| *s.get_ref());
        let timeout = match &self.timeout {
            Some(t) => *t.get_ref(),
            None => default.timeout.min(interval),
        };
        if timeout > interval {
            let span = self.timeout.as_ref().map(Spanned::span);
            return Err(ConfigError::at(
                path,
                text,
                span,
                format!("timeout {timeout:?} is longer than the interval {interval:?}"),
                "make the timeout at most the interval, or the next scrape would start before this one gives up".into(),
            ));
        }
        Ok(ProfileSettings {
            interval,
            timeout,
            fields: self.fields.unwrap_or(default.fields),
        })
    }
}

impl KindProfileConfig {
    fn resolve(
        &self,
        default: KindProfiles,
        path: &Path,
        text: &str,
    ) -> Result<KindProfiles, ConfigError> {
        Ok(KindProfiles {
            steady: self.steady.resolve(default.steady, path, text)?,
            incident: self.incident.resolve(default.incident, path, text)?,
        })
    }
}

impl Config {
    /// Both profiles of a target kind, built-in defaults overlaid with the file's keys.
    pub fn profiles(
        &self,
        kind: TargetKind,
        path: &Path,
        text: &str,
    ) -> Result<KindProfiles, ConfigError> {
        match kind {
            TargetKind::Engine => {
                self.scrape
                    .engine
                    .resolve(KindProfiles::engine_default(), path, text)
            }
            TargetKind::Gpu => self
                .scrape
                .gpu
                .resolve(KindProfiles::gpu_default(), path, text),
        }
    }

    /// Checks everything serde cannot: profile timeouts, target names, URLs, files, labels,
    /// the `[gateway]` section.
    pub fn validate(&self, path: &Path, text: &str) -> Result<(), ConfigError> {
        super::targets::target_specs(self, path, text)?;
        self.gateway.resolve(path, text).map(|_| ())?;
        if let Some(c) = &self.cost {
            c.check(path, text)?;
        }
        self.slo_profiles(path, text)?;
        Ok(())
    }
}
