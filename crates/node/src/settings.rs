//! What a node runs with, as plain data: the binary fills it from `strata.toml` and flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use rules::alert::Labels;
use sinks::notify::Receiver;
use sinks::remote_write::RemoteWriteConfig;

/// Exemplars kept unless `[store] exemplars_limit` says otherwise.
pub use tsdb::exemplars::DEFAULT_EXEMPLARS_LIMIT;

/// Where the API listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9464";

/// How long a whole shutdown may take unless told otherwise (below Kubernetes' 30 s grace).
pub const DEFAULT_SHUTDOWN_DEADLINE: Duration = Duration::from_secs(25);

/// Everything a node runs with, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
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
    /// `strata agent`: the backend whose `ALERTS` (written by the brain) switch this node's
    /// incident mode when they name it; `None`: only its own alerts and POSTs do.
    pub incident_from: Option<crate::backend::BackendConfig>,
    /// How long a whole shutdown may take; what misses it is named in the log.
    pub shutdown_deadline: Duration,
    /// What one query (API or rule) may spend.
    pub query: QueryLimits,
    /// Exemplars kept in memory, all series together (Prometheus's
    /// `--storage.exemplars.exemplars-limit`); 0 turns exemplar storage off.
    pub exemplars_limit: usize,
    /// `strata agent`: scrape and ship only; the HTTP listener serves health and `/metrics`
    /// (no query API, no UI).
    pub agent: bool,
    /// A Prometheus-compatible backend used as the store (`strata up --backend`): the query
    /// API is forwarded there and the rules read from it.
    pub backend: Option<crate::backend::BackendConfig>,
}

/// Prometheus-like limits on every PromQL query, from the API or the rules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueryLimits {
    /// Longest a query may run (the API's `timeout` parameter may ask for less).
    pub timeout: Duration,
    /// Most samples one query may hold in memory at once (subquery steps included).
    pub max_samples: usize,
    /// Most API queries running at once; later ones wait (up to their timeout) in line.
    pub max_concurrency: usize,
}

impl Default for QueryLimits {
    /// Prometheus' defaults: 2 minutes, 50 million samples, 20 at once.
    fn default() -> QueryLimits {
        QueryLimits {
            timeout: Duration::from_secs(120),
            max_samples: 50_000_000,
            max_concurrency: 20,
        }
    }
}

impl Settings {
    /// A node on `listen` keeping its data in `data_dir`, with the defaults `strata up` has
    /// without a config file: 6 h retention, snapshots every 2 min, the built-in packs with
    /// the `chat` SLO profile, no sinks, incident mode on the packs' page alerts for 10 min,
    /// a 25 s shutdown deadline, Prometheus' query limits and 100,000 exemplars.
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Settings {
        Settings {
            listen,
            admin_token: None,
            data_dir,
            retention: Duration::from_secs(6 * 3600),
            snapshot_interval: Duration::from_secs(120),
            packs: true,
            slo_profile: "chat".to_string(),
            rule_files: Vec::new(),
            rule_interval: None,
            remote_write: None,
            receivers: Vec::new(),
            external_labels: Vec::new(),
            incident_alerts: Vec::new(),
            incident_duration: Duration::from_secs(600),
            incident_from: None,
            shutdown_deadline: DEFAULT_SHUTDOWN_DEADLINE,
            query: QueryLimits::default(),
            exemplars_limit: DEFAULT_EXEMPLARS_LIMIT,
            agent: false,
            backend: None,
        }
    }

    /// The settings a running node cannot change, each with its user-facing name: a reload
    /// that changes one of them reports it under `needs_restart`.
    pub(crate) fn needs_restart(
        &self,
        other: &Settings,
        gateway: (
            Option<&gateway::GatewayConfig>,
            Option<&gateway::GatewayConfig>,
        ),
    ) -> Vec<&'static str> {
        let mut changed = Vec::new();
        let mut check = |name, differs: bool| {
            if differs {
                changed.push(name);
            }
        };
        check(
            "listen address ([api] listen / --listen)",
            self.listen != other.listen,
        );
        check(
            "data dir ([store] data_dir / --data-dir)",
            self.data_dir != other.data_dir,
        );
        check("retention ([store])", self.retention != other.retention);
        check(
            "snapshot interval ([store])",
            self.snapshot_interval != other.snapshot_interval,
        );
        check(
            "admin token ([api] admin_token_file)",
            self.admin_token != other.admin_token,
        );
        check(
            "remote_write ([sinks])",
            self.remote_write != other.remote_write,
        );
        check(
            "alert receivers ([sinks])",
            self.receivers != other.receivers,
        );
        check(
            "external labels",
            self.external_labels != other.external_labels,
        );
        check(
            "incident mode ([incident])",
            self.incident_alerts != other.incident_alerts
                || self.incident_duration != other.incident_duration,
        );
        check(
            "gateway ([gateway], its listen address included)",
            gateway.0 != gateway.1,
        );
        check(
            "shutdown deadline",
            self.shutdown_deadline != other.shutdown_deadline,
        );
        check("query limits ([api] query_*)", self.query != other.query);
        check(
            "exemplar limit",
            self.exemplars_limit != other.exemplars_limit,
        );
        check(
            "agent mode (strata agent / strata up)",
            self.agent != other.agent,
        );
        check(
            "backend ([backend] / --backend)",
            self.backend != other.backend,
        );
        changed
    }
}
