//! The command line: only subcommands that work are listed.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Layered observability for self-hosted LLM inference (vLLM, TGI, SGLang, llama.cpp) on
/// NVIDIA GPUs: from the silicon to the tokens a user sees.
#[derive(Debug, Parser)]
#[command(name = "strata", version = node::VERSION_LINE, about, long_about = None)]
#[command(
    after_help = "Start with `strata scrape http://127.0.0.1:8000/metrics` against your own engine."
)]
pub struct Cli {
    /// Config file (default: $STRATA_CONFIG, else ./strata.toml when present).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read engines, GPU exporters, files or local GPUs once and show the canonical view.
    ///
    /// For each source: the detected dialect (vLLM V0/V1, TGI, SGLang, llama.cpp, DCGM
    /// exporter, NVML), every canonical `llm:*` / `gpu:*` signal with its value and the native
    /// metric it came from, and for what the engine does not expose, why and what to use
    /// instead.
    #[command(after_help = SCRAPE_EXAMPLES)]
    Scrape(ScrapeArgs),
    /// Check a config file, or print the documented example.
    Config(ConfigArgs),
    /// One-shot triage of live engines and GPUs: findings in plain words, with numbers.
    Diagnose(crate::diagnose_cmd::DiagnoseArgs),
    /// How many series a labelling scheme makes, what to drop, and what a running Strata holds.
    Cardinality(crate::cardinality_cmd::CardinalityArgs),
    /// Simulate an engine (vLLM, TGI, SGLang, llama.cpp) and its GPUs: OpenAI-compatible
    /// streaming, each engine's /metrics and a DCGM exporter, with scenarios that break it.
    Sim(crate::sim_cmd::SimArgs),
    /// The single-node pipeline: scrape engines and GPUs (or autodetect them), evaluate the
    /// rule packs, keep findings, serve the Prometheus API and UI.
    Up(Box<crate::up::UpArgs>),
    /// One per node of a fleet: scrape its engines and GPUs and ship them through
    /// remote_write (disk-queued, labelled with the node); no rules, UI or query API.
    Agent(crate::agent_cmd::AgentArgs),
    /// The whole pipeline on simulated engines: two vLLM replicas, one TGI, their GPUs, the
    /// gateway with three tenants of traffic, rules, findings and the UI, in one process.
    Demo(crate::demo_cmd::DemoArgs),
    /// Proxy OpenAI/TGI requests to engines and time every token: TTFT, ITL, E2E per model
    /// and tenant, traces with tail sampling, JSON request logs.
    Gateway(crate::gateway_cmd::GatewayArgs),
    /// Load an LLM server and report what clients feel: TTFT, ITL, TPOT, E2E, goodput.
    Bench(crate::bench_cmd::BenchArgs),
    /// What a running Strata's window cost: per tenant, per model, per GPU, effective cost
    /// per token, useful vs billed tokens, idle share (needs `[cost]`).
    Cost(crate::cost_cmd::CostArgs),
    /// Write the at-scale stack's configuration from Strata's own rules and targets: rule
    /// files and their promtool tests, Grafana dashboards, Alertmanager, OTel collector,
    /// vmagent, Tetragon, Kubernetes and systemd.
    Generate(crate::generate_cmd::GenerateArgs),
    /// A terminal UI of a running Strata: engines, GPUs, open findings and firing alerts,
    /// refreshed live, sortable (`--once` prints one plain-text snapshot).
    Top(crate::top_cmd::TopArgs),
}

const SCRAPE_EXAMPLES: &str = "\
Examples:
  strata scrape http://127.0.0.1:8000/metrics        your vLLM, TGI, SGLang or llama.cpp server
  strata scrape http://127.0.0.1:9400/metrics        a DCGM exporter
  strata scrape nvml                                 local GPUs through NVML (MIG, NVSwitch fabric)
  strata scrape infiniband kubelet                   RDMA port counters; pod <-> GPU from the kubelet
  strata scrape nccl:/var/log/pods --watch           NCCL failures in pod logs (or a file, or nccl:-)
  strata scrape process:8000 psi                     the engine's process and cgroup, node PSI
  strata scrape saved.prom --json                    a saved scrape, as JSON
  strata scrape --watch                              every target in strata.toml, refreshed
  curl -s host:8000/metrics | strata scrape -        standard input

Exit status: 0 when every source was read, 1 when one failed (unreachable, empty,
garbage), 2 for usage or config errors.";

/// `strata scrape`
#[derive(Debug, Args)]
pub struct ScrapeArgs {
    /// URLs (http/https), files, `nvml` for local GPUs, `-` for standard input, or a host
    /// collector: `infiniband` (RDMA ports), `kubelet` (pod ↔ GPU), `nccl:PATH` (log file,
    /// pod log directory, `-`), `process:PORT` or `process:pid=N` (an engine's process and
    /// cgroup), `psi` (node pressure). Without any: every target of the config file, plus
    /// InfiniBand and the kubelet where this node has them.
    #[arg(value_name = "SOURCE")]
    pub sources: Vec<String>,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Keep scraping and refresh the view; URL targets follow their profile's interval,
    /// files and NVML are re-read every INTERVAL.
    #[arg(long, value_name = "INTERVAL", num_args = 0..=1, default_missing_value = "5s", value_parser = parse_duration)]
    pub watch: Option<std::time::Duration>,
    /// Scrape profile: steady (engines 10 s, GPUs 5 s, all fields) or incident (GPUs 250 ms,
    /// reduced fields). Default: the config's [scrape] profile, else steady.
    #[arg(long, value_enum)]
    pub profile: Option<ProfileArg>,
    /// Timeout for each URL given on the command line.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
    /// Bearer token file for URLs given on the command line.
    #[arg(long, value_name = "FILE")]
    pub bearer_token_file: Option<PathBuf>,
}

/// `--profile`
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProfileArg {
    /// Engines 10 s, GPUs 5 s, full field set.
    Steady,
    /// GPUs 250 ms with the reduced field set.
    Incident,
}

/// `strata config`
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// What to do with the config.
    #[command(subcommand)]
    pub action: ConfigAction,
}

/// `strata config check|example`
#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Validate the config file and summarise its targets.
    Check,
    /// Print the documented example config (`strata config example > strata.toml`).
    Example,
}

/// A metrics URL flag: no path (or `/`) means `/metrics`, a bare `host:port` gets `http://`,
/// as Prometheus' defaults do.
pub fn parse_metrics_url(s: &str) -> Result<reqwest::Url, String> {
    sources::scrape::metrics_url(s).map_err(|e| e.to_string())
}

/// Parses `250ms`, `5s`, `1m`... (clap value parser shared by subcommands).
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("must be greater than zero".into()),
        Err(e) => Err(format!("{e} (write e.g. 250ms, 5s, 1m)")),
    }
}
