//! `strata scrape` sources read from this node by Strata's own collectors:
//! `nccl:PATH` (a log file, kubelet's pod log directory, or `-` for standard input),
//! `process:PORT` / `process:pid=N` (an engine's process tree and cgroup), `psi`,
//! `infiniband` (RDMA port counters) and `kubelet` (pod ↔ GPU).

use sources::host::infiniband::{INFINIBAND_JOB, InfinibandCollector, SYSFS_INFINIBAND};
use sources::host::kubelet::{KUBELET_JOB, KubeletCollector, POD_RESOURCES_SOCKET};
use sources::host::{Engine, HostPaths, ProcessCollector, PsiCollector};
use sources::logs::follow::Start;
use sources::logs::{DEFAULT_KEPT_EVENTS, LogInput, NcclCollector};
use sources::scrape::{HostTarget, KindProfiles};

/// A host collector named on the command line.
pub enum HostSource {
    /// NCCL failures from logs.
    Nccl(LogInput, String),
    /// An engine's process tree and cgroup.
    Process(Engine, String),
    /// Node pressure stall information.
    Psi,
    /// InfiniBand/RoCE port counters from sysfs.
    Infiniband,
    /// Pod ↔ GPU from the kubelet's pod-resources socket.
    Kubelet,
}

impl HostSource {
    /// Reads `spec`; `None` when it names no host collector (a file, then).
    pub fn parse(spec: &str) -> Result<Option<HostSource>, String> {
        match spec {
            "psi" => return Ok(Some(HostSource::Psi)),
            INFINIBAND_JOB => return Ok(Some(HostSource::Infiniband)),
            KUBELET_JOB => return Ok(Some(HostSource::Kubelet)),
            _ => {}
        }
        if let Some(path) = spec.strip_prefix("nccl:") {
            if path.is_empty() {
                return Err(
                    "nccl: needs a log file, a pod log directory (/var/log/pods) or `-`".into(),
                );
            }
            return Ok(Some(HostSource::Nccl(
                LogInput::from_spec(path),
                spec.to_string(),
            )));
        }
        if let Some(what) = spec.strip_prefix("process:") {
            let engine = match what.strip_prefix("pid=") {
                Some(pid) => Engine::Pid(pid.parse().map_err(|e| {
                    format!("{spec:?}: pid: {e} (give process:PORT or process:pid=N)")
                })?),
                None => Engine::Port(what.parse().map_err(|e| {
                    format!("{spec:?}: port: {e} (give process:PORT or process:pid=N)")
                })?),
            };
            return Ok(Some(HostSource::Process(engine, spec.to_string())));
        }
        Ok(None)
    }

    /// The source's name in the output.
    pub fn name(&self) -> String {
        match self {
            HostSource::Nccl(_, s) | HostSource::Process(_, s) => s.clone(),
            HostSource::Psi => "psi".to_string(),
            HostSource::Infiniband => INFINIBAND_JOB.to_string(),
            HostSource::Kubelet => KUBELET_JOB.to_string(),
        }
    }

    /// Whether the output lists the collector's series one by one (the kubelet's pod ↔ GPU
    /// rows are facts, not signals of the canonical vocabulary).
    pub fn lists_series(job: &str) -> bool {
        job == KUBELET_JOB
    }

    /// The collector as a scrape target; `node` is its `instance`. NCCL logs are read from
    /// their beginning (a one-shot read shows what the file holds; `--watch` then follows).
    pub fn open(self, node: &str, profiles: KindProfiles) -> HostTarget {
        let paths = HostPaths::default();
        let collector: Box<dyn sources::collector::HostCollector> = match self {
            HostSource::Nccl(input, _) => Box::new(NcclCollector::new(
                vec![input],
                Start::Beginning,
                DEFAULT_KEPT_EVENTS,
            )),
            HostSource::Process(engine, _) => {
                let instance = match engine {
                    Engine::Port(p) => format!("127.0.0.1:{p}"),
                    Engine::Pid(p) => format!("pid:{p}"),
                };
                Box::new(ProcessCollector::new(paths, engine, instance))
            }
            HostSource::Psi => Box::new(PsiCollector::new(&paths.proc)),
            HostSource::Infiniband => Box::new(InfinibandCollector::new(SYSFS_INFINIBAND)),
            HostSource::Kubelet => Box::new(KubeletCollector::new(POD_RESOURCES_SOCKET)),
        };
        HostTarget::new(collector, node.to_string(), profiles)
    }
}
