//! What to scrape: one engine or exporter endpoint, as plain data (the binary reads files).

use std::time::Duration;

use super::profile::KindProfiles;

/// Whether a target is an engine or a GPU source; picks its interval profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// An inference engine's `/metrics`.
    Engine,
    /// A GPU exporter (DCGM) or the local NVML collector.
    Gpu,
}

/// One scrape target.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetSpec {
    /// The `job` label (config name of the target).
    pub job: String,
    /// Full URL of the metrics endpoint.
    pub url: reqwest::Url,
    /// Engine or GPU.
    pub kind: TargetKind,
    /// Interval, timeout and field set per profile.
    pub profiles: KindProfiles,
    /// `Authorization: Bearer …` token.
    pub bearer_token: Option<String>,
    /// Extra CA certificates (PEM) trusted for this target.
    pub ca_pem: Option<Vec<u8>>,
    /// Accept any certificate (test setups only).
    pub insecure_skip_verify: bool,
    /// Bodies larger than this (after decompression) fail the scrape.
    pub max_body_bytes: usize,
    /// Labels added to every sample of the target (`tenant`, `node`...).
    pub labels: Vec<(String, String)>,
    /// The engine's display name (config `name`); `None`: `ENGINE@host:port`.
    pub name: Option<String>,
    /// The node the engine runs on (`node` of `strata_engine_info`); `None`: unknown.
    pub node: Option<String>,
    /// The `instance` label when the URL's `host:port` does not name the target beyond this
    /// machine (an agent's `127.0.0.1:8000` is on every node): `None`, the URL's.
    pub instance: Option<String>,
}

impl TargetSpec {
    /// A target with defaults for `kind`: no auth, 16 MiB body limit.
    pub fn new(job: impl Into<String>, url: reqwest::Url, kind: TargetKind) -> TargetSpec {
        TargetSpec {
            job: job.into(),
            url,
            kind,
            profiles: match kind {
                TargetKind::Engine => KindProfiles::engine_default(),
                TargetKind::Gpu => KindProfiles::gpu_default(),
            },
            bearer_token: None,
            ca_pem: None,
            insecure_skip_verify: false,
            max_body_bytes: 16 << 20,
            labels: Vec::new(),
            name: None,
            node: None,
            instance: None,
        }
    }

    /// The `instance` label: the one set for the fleet, else `host:port` of the URL, as
    /// Prometheus writes it.
    pub fn instance(&self) -> String {
        if let Some(i) = &self.instance {
            return i.clone();
        }
        let host = self.url.host_str().unwrap_or("unknown");
        match self.url.port_or_known_default() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        }
    }
}

/// Default per-scrape timeout if a config gives none: Prometheus' 10 s capped by the interval.
pub fn default_timeout(interval: Duration) -> Duration {
    interval.min(Duration::from_secs(10))
}
