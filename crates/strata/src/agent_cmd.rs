//! `strata agent`: one per node. It scrapes the node's engines and GPUs (the same targets,
//! autodetection and config as `strata up`), runs the embedded gateway when configured, and
//! ships everything through remote_write with its disk queue, every sample labelled with the
//! node's name. No rule packs, no UI, no query API: the brain (`strata up --backend`) reads
//! the fleet from the store the agents ship to. It is `strata up`'s [`node::Plan`] with
//! `agent` set, not a second pipeline.

use std::process::ExitCode;

use clap::Args;

use crate::up::{TestArgs, UpArgs};

/// `strata agent`
#[derive(Debug, Clone, Args)]
#[command(after_help = "\
Examples:
  strata agent --remote-write http://victoria-metrics:8428/api/v1/write
  strata agent --remote-write http://prometheus:9090/api/v1/write --engine :8000 --gpu nvml
  strata agent --config /etc/strata/strata.toml --node gpu-node-17
  strata agent --remote-write http://vm:8428/api/v1/write --incident-from http://vm:8428")]
pub struct AgentArgs {
    /// Where to ship (required here or as [sinks.remote_write] url).
    #[arg(long, value_name = "URL")]
    pub remote_write: Option<reqwest::Url>,
    /// The `node` label on every shipped sample [default: the config's `node`, else the
    /// hostname].
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
    /// Engine metrics URLs, added to [[target]] (none and no config: autodetect).
    #[arg(long = "engine", value_name = "URL", value_parser = crate::cli::parse_metrics_url)]
    pub engines: Vec<reqwest::Url>,
    /// GPU exporter URLs (DCGM), or `nvml` for this machine's GPUs.
    #[arg(long = "gpu", value_name = "URL|nvml")]
    pub gpus: Vec<String>,
    /// Address of the health (`/-/ready`) and `/metrics` endpoint [default: [agent] listen,
    /// else 127.0.0.1:9465].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// Rule files to evaluate here (their results are shipped too); none by default: the
    /// brain evaluates the packs once for the whole fleet.
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<std::path::PathBuf>,
    /// Directory of the remote_write queue and the short local buffer [default: [store]
    /// data_dir, else strata-data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<std::path::PathBuf>,
    /// Bound of the on-disk remote_write queue in MiB [default: 256].
    #[arg(long, value_name = "MIB")]
    pub remote_write_queue_size: Option<u64>,
    /// Label added to every shipped sample; repeatable.
    #[arg(long = "external-label", value_name = "NAME=VALUE", value_parser = crate::up::parse_label)]
    pub external_labels: Vec<(String, String)>,
    /// The fleet's query API (the backend the brain writes `ALERTS` to, e.g.
    /// http://victoria-metrics:8428): every 15 s the agent asks which alerts fire, and one
    /// that names this node (`node`, or the `instance` of one of its targets) switches its
    /// GPU scraping to the incident profile (250 ms). Alertmanager cannot address one pod
    /// of a DaemonSet, so the agent asks. Without it: only POST /api/v1/incident does.
    #[arg(long, value_name = "URL")]
    pub incident_from: Option<reqwest::Url>,
    #[command(flatten)]
    pub incident: crate::up::IncidentArgs,
    #[command(flatten)]
    pub testing: TestArgs,
}

/// How long the agent keeps samples locally: enough for `--rules` windows, little memory.
const LOCAL_RETENTION: std::time::Duration = std::time::Duration::from_secs(10 * 60);

impl AgentArgs {
    /// `strata up`'s flags for the agent's plan; `config_node` is the config file's `node`.
    fn up_args(self, config_node: Option<String>) -> UpArgs {
        let node = self
            .node
            .or(config_node)
            .unwrap_or_else(crate::host::hostname);
        let mut external_labels = self.external_labels;
        if !external_labels.iter().any(|(k, _)| k == "node") {
            external_labels.push(("node".to_string(), node));
        }
        UpArgs {
            engines: self.engines,
            gpus: self.gpus,
            listen: self.listen,
            rules: self.rules,
            no_packs: true,
            remote_write: self.remote_write,
            remote_write_queue_size: self.remote_write_queue_size,
            external_labels,
            data_dir: self.data_dir,
            retention: Some(LOCAL_RETENTION),
            testing: self.testing,
            agent: true,
            incident_from: self.incident_from,
            incident: self.incident,
            ..UpArgs::default()
        }
    }
}

/// Runs `strata agent` until Ctrl-C or SIGTERM.
pub fn run(
    flag: Option<&std::path::Path>,
    args: AgentArgs,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let config_node = match ::config::locate(flag) {
        Some(p) => ::config::load(&p).map_err(|e| e.to_string())?.0.node,
        None => None,
    };
    crate::up::run(flag, args.up_args(config_node))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        agent: AgentArgs,
    }

    fn up(flags: &[&str]) -> UpArgs {
        Cli::parse_from(std::iter::once("agent").chain(flags.iter().copied()))
            .agent
            .up_args(None)
    }

    #[test]
    fn the_agent_ships_without_packs_labelled_with_its_node() {
        let a = up(&[
            "--remote-write",
            "http://vm:8428/api/v1/write",
            "--node",
            "n1",
        ]);
        assert!(a.agent && a.no_packs);
        assert_eq!(a.external_labels, [("node".to_string(), "n1".to_string())]);
        let a = up(&["--external-label", "node=n2", "--node", "n1"]);
        assert_eq!(a.external_labels, [("node".to_string(), "n2".to_string())]);
        let s = crate::up::resolve_settings(&::config::Config::default(), &a)
            .expect_err("no remote_write");
        assert!(s.contains("--remote-write"), "{s}");
        let a = up(&["--remote-write", "http://vm:8428/api/v1/write"]);
        let s = crate::up::resolve_settings(&::config::Config::default(), &a).expect("resolves");
        assert!(s.agent && !s.packs && s.backend.is_none());
        assert_eq!(s.listen.to_string(), "127.0.0.1:9465");
        assert!(s.external_labels.iter().any(|(k, _)| k == "node"));
    }
}
