//! The sections of `strata.toml` that `strata up` reads beyond targets and the gateway:
//! `[api]`, `[store]`, `[rules]`, `[sinks]`, `[incident]`, `[backend]` and `[agent]`. Flags override them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::schema::duration;

/// `[api]`: the HTTP API, UI and admin endpoints.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// Address of the API, UI, `/metrics` and health endpoints.
    pub listen: Option<SocketAddr>,
    /// File holding the bearer token that admin POSTs must carry.
    pub admin_token_file: Option<PathBuf>,
    /// How long a whole shutdown may take.
    #[serde(default, deserialize_with = "duration")]
    pub shutdown_timeout: Option<Spanned<Duration>>,
    /// Longest a query may run.
    #[serde(default, deserialize_with = "duration")]
    pub query_timeout: Option<Spanned<Duration>>,
    /// Most samples one query may hold in memory.
    pub query_max_samples: Option<usize>,
    /// Most API queries running at once.
    pub query_max_concurrency: Option<usize>,
}

/// `[store]`: the embedded time-series store.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// Folder of the store snapshot and the remote_write queue.
    pub data_dir: Option<PathBuf>,
    /// How long samples are kept.
    #[serde(default, deserialize_with = "duration")]
    pub retention: Option<Spanned<Duration>>,
    /// How often the store is snapshotted.
    #[serde(default, deserialize_with = "duration")]
    pub snapshot_interval: Option<Spanned<Duration>>,
    /// Exemplars kept in memory for `/api/v1/query_exemplars` (default 100000; 0: off).
    pub exemplars_limit: Option<usize>,
}

/// `[rules]`: what the rule engine evaluates.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesSection {
    /// Load the built-in packs (canonical, alerts, diagnoses, SLOs); default true.
    pub packs: Option<bool>,
    /// SLO profile of the built-in packs: `chat`, `rag` or `code`.
    pub slo_profile: Option<String>,
    /// Extra Prometheus rule files.
    #[serde(default)]
    pub files: Vec<PathBuf>,
}

/// `[sinks]`: where samples and alerts go besides the store.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinksSection {
    /// Labels added to remote-written samples and sent alerts.
    #[serde(default)]
    pub external_labels: BTreeMap<String, String>,
    /// Alertmanager base URLs.
    #[serde(default)]
    pub alertmanager: Vec<String>,
    /// JSON webhook URLs (Alertmanager webhook payload).
    #[serde(default)]
    pub webhook: Vec<String>,
    /// `[sinks.remote_write]`
    pub remote_write: Option<RemoteWriteSection>,
}

/// `[sinks.remote_write]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteWriteSection {
    /// Receiver URL.
    pub url: String,
    /// Bound of the on-disk queue, MiB.
    pub queue_size_mib: Option<u64>,
    /// `always` or `never`.
    pub fsync: Option<String>,
}

/// `[incident]`: incident mode.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentSection {
    /// Alerts that switch GPU scraping to the incident profile while they fire.
    #[serde(default)]
    pub alerts: Vec<String>,
    /// How long incident mode lasts after its last trigger.
    #[serde(default, deserialize_with = "duration")]
    pub duration: Option<Spanned<Duration>>,
}

/// `[backend]`: a Prometheus-compatible query API (Prometheus, VictoriaMetrics, Mimir,
/// Thanos) used as `strata up`'s store instead of the embedded one.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendSection {
    /// Base URL of the query API (`/api/v1/query` is appended).
    pub url: Option<String>,
    /// File holding a bearer token sent with every request.
    pub bearer_token_file: Option<PathBuf>,
    /// Basic-auth user name (with `basic_password_file`).
    pub basic_user: Option<String>,
    /// File holding the basic-auth password.
    pub basic_password_file: Option<PathBuf>,
    /// Extra headers sent with every request (`X-Scope-OrgID` for a Mimir tenant).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Longest one backend request may take.
    #[serde(default, deserialize_with = "duration")]
    pub timeout: Option<Spanned<Duration>>,
    /// How far behind now rules are evaluated (default: what the backend hides, detected).
    #[serde(default, deserialize_with = "duration")]
    pub eval_delay: Option<Spanned<Duration>>,
}

/// `[agent]`: `strata agent`'s own settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSection {
    /// Address of its health and `/metrics` endpoint.
    pub listen: Option<SocketAddr>,
}
