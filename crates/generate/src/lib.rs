//! `strata generate`: the at-scale stack's configuration (Prometheus rule files and their
//! unit tests, Grafana dashboards, Alertmanager, an OpenTelemetry collector, vmagent,
//! Tetragon, Kubernetes and systemd) from the same rule packs, SLO profiles and targets
//! Strata evaluates embedded, so the two deployments never drift. One module per target.

mod alertmanager;
mod dashboards;
mod k8s;
mod otelcol;
mod rule_tests;
mod rules;
mod tetragon;
mod vmagent;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::ValueEnum;
use sources::scrape::TargetKind;

/// `strata generate --help`'s text after the flags.
pub const AFTER_HELP: &str = "\
Every file is generated from the data Strata itself runs: the rule packs (canonical
recording rules, alerts, diagnoses, SLO burn rates), the inhibitions and the targets of
strata.toml. Regenerate after changing strata.toml or upgrading Strata.

Examples:
  strata generate all --out deploy/                 everything, one folder per target
  strata generate rules --out prometheus/rules/     rule files for Prometheus or vmalert
  promtool test rules deploy/rule-tests/*.test.yml  the generated unit tests
  strata generate k8s --config strata.toml          manifests for the configured engines";

/// A generation target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum What {
    /// Prometheus rule files: canonical recording rules, alerts, diagnoses, SLOs.
    Rules,
    /// `promtool test rules` unit tests for every alert (firing and quiet inputs).
    RuleTests,
    /// Grafana dashboards (Overview, Engine, GPU, Tenants & cost, Gateway).
    Dashboards,
    /// Alertmanager: routes by severity, grouping, the packs' inhibitions.
    Alertmanager,
    /// OpenTelemetry collector pipeline (agent).
    Otelcol,
    /// vmagent scrape config and stream aggregation.
    Vmagent,
    /// Tetragon TracingPolicy (model file reads, non-RFC1918 egress).
    Tetragon,
    /// Kubernetes manifests (DaemonSet agent, gateway sidecar, Service, ServiceMonitor)
    /// and a systemd unit.
    K8s,
    /// A dcgm-exporter counters CSV: the stock set plus the incident fields a stock
    /// exporter leaves out (SM activity, throttle reasons, NVLink bytes, ECC).
    DcgmCounters,
    /// Every target above.
    All,
}

impl What {
    /// Every single target, in the order `all` writes them.
    const EACH: [What; 9] = [
        What::Rules,
        What::RuleTests,
        What::Dashboards,
        What::Alertmanager,
        What::Otelcol,
        What::Vmagent,
        What::Tetragon,
        What::K8s,
        What::DcgmCounters,
    ];

    /// The folder name under `--out` (`all`) and the CLI spelling.
    fn name(self) -> &'static str {
        match self {
            What::Rules => "rules",
            What::RuleTests => "rule-tests",
            What::Dashboards => "dashboards",
            What::Alertmanager => "alertmanager",
            What::Otelcol => "otelcol",
            What::Vmagent => "vmagent",
            What::Tetragon => "tetragon",
            What::K8s => "k8s",
            What::DcgmCounters => "dcgm-counters",
            What::All => "all",
        }
    }
}

/// A scrape target as the generators see it.
#[derive(Debug, Clone)]
pub struct Scrape {
    /// `job` label.
    pub job: String,
    /// `host:port`.
    pub address: String,
    /// URL path of the metrics endpoint.
    pub path: String,
    /// `http` or `https`.
    pub scheme: String,
    /// Scrape interval in seconds (the steady profile).
    pub interval_s: u64,
    /// Labels added to every sample.
    pub labels: Vec<(String, String)>,
}

/// What the generators read: the rule groups of the packs, the SLO profiles, the targets
/// and the gateway settings of `strata.toml` (the seeds' defaults without one).
pub struct Spec {
    /// SLO profiles to generate rules for.
    pub profiles: Vec<::rules::slo::SloProfile>,
    /// The cost model of `[cost]`, when configured.
    pub cost: Option<::rules::cost::CostModel>,
    /// Engine targets.
    pub engines: Vec<Scrape>,
    /// GPU exporter targets.
    pub gpus: Vec<Scrape>,
    /// The gateway (listen address, sampling policy).
    pub gateway: gateway::GatewayConfig,
    /// Prefix of every alert's `runbook_url` annotation (`<base><alertname>.md`).
    pub runbook_base: String,
    /// Where generated agents remote-write (`strata generate --remote-write URL`).
    pub remote_write: Option<String>,
    /// The fleet's query API, whose `ALERTS` switch each agent's incident mode
    /// (`strata generate --backend URL`).
    pub backend: Option<String>,
}

/// Where the runbooks are unless `--runbook-base` says otherwise: the repository's
/// `docs/runbooks/`, as a relative link (set an absolute URL, e.g. your fork's
/// `https://github.com/<org>/<repo>/blob/main/docs/runbooks/`, so links work from
/// Alertmanager and Grafana).
pub const DEFAULT_RUNBOOK_BASE: &str = "docs/runbooks/";

impl Spec {
    /// The spec of `strata.toml` at `flag` (or the located one), else the defaults: a vLLM
    /// on `localhost:8000`, a DCGM exporter on `localhost:9400`, the `chat` SLO profile
    /// (the one `strata up` evaluates by default). With a config: its targets, gateway,
    /// `[cost]`, the SLO profile `strata up` evaluates (`[rules] slo_profile`) and every
    /// `[[slo]]`.
    pub fn load(flag: Option<&Path>) -> Result<Spec, String> {
        let Some(path) = ::config::locate(flag) else {
            return Ok(Spec::defaults());
        };
        let (config, text) = ::config::load(&path).map_err(|e| e.to_string())?;
        let targets = ::config::target_specs(&config, &path, &text).map_err(|e| e.to_string())?;
        let gateway = config
            .gateway
            .resolve(&path, &text)
            .map_err(|e| e.to_string())?;
        let scrape = |kind: TargetKind| -> Vec<Scrape> {
            targets
                .iter()
                .filter(|t| t.kind == kind)
                .map(|t| Scrape {
                    job: t.job.clone(),
                    address: format!(
                        "{}:{}",
                        t.url.host_str().unwrap_or("localhost"),
                        t.url.port_or_known_default().unwrap_or(80)
                    ),
                    path: t.url.path().to_string(),
                    scheme: t.url.scheme().to_string(),
                    interval_s: t.profiles.steady.interval.as_secs().max(1),
                    labels: t.labels.clone(),
                })
                .collect()
        };
        let (engines, gpus) = if targets.is_empty() {
            let d = Spec::defaults();
            (d.engines, d.gpus)
        } else {
            (scrape(TargetKind::Engine), scrape(TargetKind::Gpu))
        };
        let embedded = config.rules.slo_profile.as_deref().unwrap_or("chat");
        let mut profiles = vec![config.slo_profile(embedded)?];
        for p in config
            .slo_profiles(&path, &text)
            .map_err(|e| e.to_string())?
        {
            if p.name != embedded {
                profiles.push(p);
            }
        }
        Ok(Spec {
            profiles,
            cost: config.cost.as_ref().map(|c| c.model()),
            engines,
            gpus,
            gateway,
            runbook_base: DEFAULT_RUNBOOK_BASE.to_string(),
            remote_write: None,
            backend: None,
        })
    }

    /// The seeds' single node: a vLLM, a DCGM exporter, the `chat` profile, no cost.
    fn defaults() -> Spec {
        Spec {
            profiles: ::rules::slo::SloProfile::builtin()
                .into_iter()
                .filter(|p| p.name == "chat")
                .collect(),
            cost: None,
            engines: vec![Scrape::local("vllm", "localhost:8000", 10)],
            gpus: vec![Scrape::local("dcgm", "localhost:9400", 5)],
            gateway: gateway::GatewayConfig::new(([0, 0, 0, 0], 8080).into(), Vec::new()),
            runbook_base: DEFAULT_RUNBOOK_BASE.to_string(),
            remote_write: None,
            backend: None,
        }
    }
}

impl Scrape {
    fn local(job: &str, address: &str, interval_s: u64) -> Scrape {
        Scrape {
            job: job.into(),
            address: address.into(),
            path: "/metrics".into(),
            scheme: "http".into(),
            interval_s,
            labels: Vec::new(),
        }
    }
}

/// A generated file: its path under the target's folder, and its text.
pub type File = (String, String);

/// The files of one target.
fn files(what: What, spec: &Spec) -> Result<Vec<File>, String> {
    match what {
        What::Rules => rules::files(spec),
        What::RuleTests => rule_tests::files(spec),
        What::Dashboards => dashboards::files(),
        What::Alertmanager => alertmanager::files(),
        What::Otelcol => otelcol::files(spec),
        What::Vmagent => vmagent::files(spec),
        What::Tetragon => tetragon::files(),
        What::K8s => k8s::files(spec),
        What::DcgmCounters => Ok(vec![(
            "counters.csv".into(),
            sources::gpu::dcgm_counters_csv(),
        )]),
        What::All => Err("`all` is not a single target".into()),
    }
}

/// A JSON value as YAML text (keys sorted), with `header` lines as a leading comment.
pub(crate) fn yaml(header: &[&str], value: &serde_json::Value) -> Result<String, String> {
    let body = serde_saphyr::to_string(value).map_err(|e| format!("cannot write YAML: {e}"))?;
    let mut out: String = header.iter().map(|l| format!("# {l}\n")).collect();
    out.push_str(&body);
    Ok(out)
}

/// Writes `what` under `out` from the config at `flag` (located as `strata up` does), every
/// alert's `runbook_url` under `runbook_base`, the agents shipping to `remote_write` when
/// given; prints each file written.
pub fn run(
    flag: Option<&Path>,
    what: What,
    out: &Path,
    runbook_base: &str,
    remote_write: Option<&str>,
    backend: Option<&str>,
) -> Result<ExitCode, String> {
    let mut spec = Spec::load(flag)?;
    spec.runbook_base = runbook_base.to_string();
    spec.remote_write = remote_write.map(str::to_string);
    spec.backend = backend.map(str::to_string);
    let targets: Vec<(What, PathBuf)> = match what {
        What::All => What::EACH
            .iter()
            .map(|w| (*w, out.join(w.name())))
            .collect(),
        one => vec![(one, out.to_path_buf())],
    };
    for (what, dir) in targets {
        let written = files(what, &spec).map_err(|e| format!("{}: {e}", what.name()))?;
        for (name, text) in written {
            let path = dir.join(&name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
            }
            std::fs::write(&path, text)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            println!("{:<13} {}", what.name(), path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
