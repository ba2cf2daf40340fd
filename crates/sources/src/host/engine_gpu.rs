//! Which GPUs each engine on this node uses, discovered rather than configured: the pids the
//! driver reports on each GPU (NVML's running compute processes) joined to the process tree
//! that owns the engine's listening socket. Exposed as
//! `strata_engine_gpu_info{instance, name, node, gpu, gpu_uuid, gpu_model} 1`, one series per
//! engine × GPU, so the drill-down, findings and cost can name exactly an engine's GPUs.

use std::path::PathBuf;

use super::procfs::ProcSnapshot;
use crate::collector::{Collection, HostCollector};
use crate::gpu::FieldSet;
use crate::point::Point;
use crate::scrape::{TargetKind, TargetSpec, display_name};

/// The info series' name.
pub const ENGINE_GPU_INFO: &str = "strata_engine_gpu_info";
/// The collector's `job` label.
pub const ENGINE_GPU_JOB: &str = "engine_gpu";
/// How far up from the socket's owner a shared ancestor may be (vLLM's API server and its
/// engine-core process are siblings under one launcher).
const MAX_ANCESTOR_LEVELS: usize = 2;
/// Re-reading `/proc` and the driver's process lists is not needed on every poll: engines
/// start and stop on a scale of minutes.
const RESCAN_MS: i64 = 30_000;

/// One engine this node scrapes: its `instance`, display name and the local port it listens on.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineEndpoint {
    /// The engine target's `instance` label (`host:port`).
    pub instance: String,
    /// Its display name (config `name`, else `ENGINE@host:port`).
    pub name: String,
    /// The TCP port it listens on.
    pub port: u16,
}

/// Whether `url` is served on this machine: loopback, `localhost`, an unspecified address or
/// the node's own name. Only such targets have pids, a cgroup and GPUs here, and only their
/// `instance` (`127.0.0.1:8000`) repeats on every node of a fleet.
pub fn is_local(url: &reqwest::Url, node: &str) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_matches(['[', ']']);
    host == "localhost"
        || host.eq_ignore_ascii_case(node)
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
}

impl EngineEndpoint {
    /// The endpoint of an engine target served on this node (loopback, `localhost` or the
    /// node's own name); `None` for GPU targets and other hosts, whose pids are not here.
    pub fn of(spec: &TargetSpec, node: &str) -> Option<EngineEndpoint> {
        if spec.kind != TargetKind::Engine {
            return None;
        }
        if !is_local(&spec.url, node) {
            return None;
        }
        let instance = spec.instance();
        // Autodetected targets are named for their dialect; a URL given without one is named
        // by its address (not a made-up `engine@…`): readers take the display name from
        // `strata_engine_info`, joined on `instance`, once the first scrape detected it.
        let name = match (spec.name.as_deref(), crate::dialect::table(&spec.job)) {
            (Some(n), _) if !n.is_empty() => n.to_string(),
            (_, Some(_)) => display_name(None, &spec.job, &instance),
            _ => instance.clone(),
        };
        Some(EngineEndpoint {
            name,
            port: spec.url.port_or_known_default()?,
            instance,
        })
    }
}

/// One GPU and the pids running compute work on it, as the driver reports them.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuProcesses {
    /// Index (`gpu` label).
    pub index: u32,
    /// `gpu_uuid` label.
    pub uuid: String,
    /// Product name (`gpu_model` label).
    pub model: String,
    /// Pids with a compute context on it.
    pub pids: Vec<u32>,
}

/// One engine × GPU link.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct EngineGpuLink {
    /// The engine's `instance`.
    pub instance: String,
    /// The engine's display name.
    pub name: String,
    /// The node the GPU is on.
    pub node: String,
    /// GPU index.
    pub gpu: u32,
    /// GPU UUID.
    pub gpu_uuid: String,
    /// GPU product name.
    pub gpu_model: String,
}

impl EngineGpuLink {
    /// The link as its info point (no `job`: the scraper adds it; `instance` is the engine's).
    pub fn point(&self, timestamp_ms: i64) -> Point {
        let labels = vec![
            ("instance".to_string(), self.instance.clone()),
            ("name".to_string(), self.name.clone()),
            ("node".to_string(), self.node.clone()),
            ("gpu".to_string(), self.gpu.to_string()),
            ("gpu_uuid".to_string(), self.gpu_uuid.clone()),
            ("gpu_model".to_string(), self.gpu_model.clone()),
        ];
        Point::new(ENGINE_GPU_INFO, labels, 1.0, timestamp_ms)
    }
}

/// How close GPU pid `gpu_pid` is to the engine whose socket `owners` hold: 0 when it is an
/// owner or descends from one, `k` when it shares the owner's `k`-th ancestor and no other
/// engine's owner lives under that ancestor; `None` when unrelated.
fn closeness(snap: &ProcSnapshot, owners: &[u32], others: &[u32], gpu_pid: u32) -> Option<usize> {
    if owners.iter().any(|&o| snap.descends_from(gpu_pid, o)) {
        return Some(0);
    }
    (1..=MAX_ANCESTOR_LEVELS).find(|&k| {
        owners.iter().any(|&o| {
            snap.ancestor(o, k).is_some_and(|a| {
                snap.descends_from(gpu_pid, a) && !others.iter().any(|&x| snap.descends_from(x, a))
            })
        })
    })
}

/// Joins engines to GPUs: each GPU pid goes to the engine(s) it is closest to in the
/// process tree (`closeness`); an engine uses a GPU when one of the GPU's pids went to it.
pub fn link(
    engines: &[EngineEndpoint],
    snap: &ProcSnapshot,
    gpus: &[GpuProcesses],
    node: &str,
) -> Vec<EngineGpuLink> {
    let owners: Vec<Vec<u32>> = engines.iter().map(|e| snap.listeners(e.port)).collect();
    let mut out = Vec::new();
    for gpu in gpus {
        let mut users = vec![false; engines.len()];
        for &pid in &gpu.pids {
            let scores: Vec<Option<usize>> = (0..engines.len())
                .map(|i| {
                    let others: Vec<u32> = owners
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .flat_map(|(_, o)| o.iter().copied())
                        .collect();
                    closeness(snap, &owners[i], &others, pid)
                })
                .collect();
            if let Some(best) = scores.iter().flatten().min() {
                for (i, s) in scores.iter().enumerate() {
                    users[i] |= *s == Some(*best);
                }
            }
        }
        for (e, _) in engines.iter().zip(&users).filter(|(_, used)| **used) {
            out.push(EngineGpuLink {
                instance: e.instance.clone(),
                name: e.name.clone(),
                node: node.to_string(),
                gpu: gpu.index,
                gpu_uuid: gpu.uuid.clone(),
                gpu_model: gpu.model.clone(),
            });
        }
    }
    out.sort();
    out
}

/// Where the driver's per-GPU process lists come from (NVML on a node; a fake in tests).
pub trait GpuProcessSource: Send + 'static {
    /// Every GPU with the pids running compute work on it.
    fn gpu_processes(&mut self) -> Result<Vec<GpuProcesses>, String>;
}

/// How the collector learns the links.
enum Discovery {
    /// Fixed links, kept in `links` (the demo: the simulator's topology).
    Fixed,
    /// `/proc` under `root` joined to the driver's process lists.
    Live {
        engines: Vec<EngineEndpoint>,
        root: PathBuf,
        gpus: Box<dyn GpuProcessSource>,
        node: String,
    },
}

/// The engine↔GPU links as a [`HostCollector`] (job `engine_gpu`).
pub struct EngineGpuCollector {
    discovery: Discovery,
    links: Vec<EngineGpuLink>,
    scanned_ms: Option<i64>,
    last_error: Option<String>,
    status: String,
}

impl EngineGpuCollector {
    /// Discovers the links of `engines` on this node by reading `/proc` and `gpus`.
    pub fn live(
        engines: Vec<EngineEndpoint>,
        gpus: Box<dyn GpuProcessSource>,
        node: String,
    ) -> EngineGpuCollector {
        Self::live_at(engines, PathBuf::from("/proc"), gpus, node)
    }

    /// As [`live`](Self::live) with `/proc` at `root` (tests give a fake tree).
    pub fn live_at(
        engines: Vec<EngineEndpoint>,
        root: PathBuf,
        gpus: Box<dyn GpuProcessSource>,
        node: String,
    ) -> EngineGpuCollector {
        EngineGpuCollector {
            status: format!(
                "{} engine(s) to map to GPUs, not scanned yet",
                engines.len()
            ),
            discovery: Discovery::Live {
                engines,
                root,
                gpus,
                node,
            },
            links: Vec::new(),
            scanned_ms: None,
            last_error: None,
        }
    }

    /// Reports `links` as they are (the demo's simulated topology).
    pub fn fixed(links: Vec<EngineGpuLink>) -> EngineGpuCollector {
        EngineGpuCollector {
            status: format!("{} engine-GPU link(s) from the simulator", links.len()),
            discovery: Discovery::Fixed,
            links,
            scanned_ms: None,
            last_error: None,
        }
    }

    /// The links found by the last scan.
    pub fn links(&self) -> &[EngineGpuLink] {
        &self.links
    }

    fn scan(&mut self) -> Result<(), String> {
        let Discovery::Live {
            engines,
            root,
            gpus,
            node,
        } = &mut self.discovery
        else {
            return Ok(());
        };
        let ports: Vec<u16> = engines.iter().map(|e| e.port).collect();
        let snap = ProcSnapshot::read(root, &ports)
            .map_err(|e| format!("cannot read {}: {e}", root.display()))?;
        let gpu_list = gpus.gpu_processes()?;
        self.links = link(engines, &snap, &gpu_list, node);
        let unmapped: Vec<&str> = engines
            .iter()
            .filter(|e| !self.links.iter().any(|l| l.instance == e.instance))
            .map(|e| e.name.as_str())
            .collect();
        let mut status = format!(
            "{} engine-GPU link(s) from /proc and the driver's process lists",
            self.links.len()
        );
        if !unmapped.is_empty() {
            status.push_str(&format!(
                "; no GPU found for {} (not on this node, no GPU work yet, or another pid namespace)",
                unmapped.join(", ")
            ));
        }
        if snap.unreadable > 0 {
            status.push_str(&format!(
                "; {} process(es) unreadable (run as the engines' user or root)",
                snap.unreadable
            ));
        }
        self.status = status;
        Ok(())
    }
}

impl HostCollector for EngineGpuCollector {
    fn job(&self) -> &'static str {
        ENGINE_GPU_JOB
    }

    fn status(&self) -> String {
        self.status.clone()
    }

    fn collect(&mut self, _fields: FieldSet, timestamp_ms: i64) -> Collection {
        let mut errors = Vec::new();
        let due = self
            .scanned_ms
            .is_none_or(|t| timestamp_ms - t >= RESCAN_MS || timestamp_ms < t);
        if due {
            self.scanned_ms = Some(timestamp_ms);
            match self.scan() {
                Ok(()) => self.last_error = None,
                Err(e) => {
                    if self.last_error.as_ref() != Some(&e) {
                        errors.push(format!("engine-GPU mapping: {e}"));
                    }
                    self.status = format!("engine-GPU mapping failed: {e}");
                    self.last_error = Some(e);
                }
            }
        }
        Collection {
            points: self.links.iter().map(|l| l.point(timestamp_ms)).collect(),
            errors,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;

    use super::*;

    fn engine(port: u16, name: &str) -> EngineEndpoint {
        EngineEndpoint {
            instance: format!("127.0.0.1:{port}"),
            name: name.to_string(),
            port,
        }
    }

    fn gpu(index: u32, pids: &[u32]) -> GpuProcesses {
        GpuProcesses {
            index,
            uuid: format!("GPU-{index}"),
            model: "NVIDIA H100".to_string(),
            pids: pids.to_vec(),
        }
    }

    /// Two engines under one shell (pid 10): vLLM-like (API server 100 listens on 8000, its
    /// engine core 101 is a sibling under launcher 99, workers 102/103 children of 101) and
    /// a single-process engine 200 listening on 8080.
    fn snapshot() -> ProcSnapshot {
        ProcSnapshot {
            listening: HashMap::from([(8000, vec![1]), (8080, vec![2])]),
            socket_owners: HashMap::from([(1, vec![100]), (2, vec![200])]),
            parents: HashMap::from([
                (10, 1),
                (99, 10),
                (100, 99),
                (101, 99),
                (102, 101),
                (103, 101),
                (200, 10),
                (300, 1),
            ]),
            unreadable: 0,
        }
    }

    #[test]
    fn siblings_descendants_and_owners_map_to_their_engine() {
        let engines = [engine(8000, "vllm-a"), engine(8080, "tgi")];
        let gpus = [
            gpu(0, &[102]),
            gpu(1, &[103]),
            gpu(2, &[200]),
            gpu(3, &[300]),
        ];
        let links = link(&engines, &snapshot(), &gpus, "node-1");
        let got: Vec<(&str, u32)> = links.iter().map(|l| (l.name.as_str(), l.gpu)).collect();
        // GPU 3 belongs to an unrelated process; the shell (10) is shared by both engines,
        // so it never links the GPU of one to the other.
        assert_eq!(got, vec![("vllm-a", 0), ("vllm-a", 1), ("tgi", 2)]);
        assert_eq!(links[2].instance, "127.0.0.1:8080");
        assert_eq!(links[0].node, "node-1");
    }

    #[test]
    fn only_local_engine_targets_have_endpoints() {
        let spec = |url: &str, kind| TargetSpec::new("vllm", url.parse().unwrap(), kind);
        let e = EngineEndpoint::of(
            &spec("http://127.0.0.1:8000/metrics", TargetKind::Engine),
            "n",
        )
        .unwrap();
        assert_eq!((e.port, e.name.as_str()), (8000, "vllm@127.0.0.1:8000"));
        let mut named = spec("http://n:9000/metrics", TargetKind::Engine);
        named.name = Some("vllm-a".into());
        assert_eq!(EngineEndpoint::of(&named, "n").unwrap().name, "vllm-a");
        assert!(
            EngineEndpoint::of(&spec("http://[::1]:80/metrics", TargetKind::Engine), "n").is_some()
        );
        assert!(
            EngineEndpoint::of(
                &spec("http://10.0.0.9:8000/metrics", TargetKind::Engine),
                "n"
            )
            .is_none()
        );
        assert!(
            EngineEndpoint::of(&spec("http://127.0.0.1:9400/metrics", TargetKind::Gpu), "n")
                .is_none()
        );
    }

    #[test]
    fn link_points_carry_the_contract_labels() {
        let l = EngineGpuLink {
            instance: "127.0.0.1:8000".into(),
            name: "vllm-a".into(),
            node: "n".into(),
            gpu: 3,
            gpu_uuid: "GPU-x".into(),
            gpu_model: "NVIDIA H200".into(),
        };
        let p = l.point(7);
        assert_eq!(p.name, ENGINE_GPU_INFO);
        let names: Vec<&str> = p.labels.iter().map(|(n, _)| n.as_str()).collect();
        for want in ["instance", "name", "node", "gpu", "gpu_uuid", "gpu_model"] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        assert_eq!(p.value, 1.0);
    }

    struct Fake(Vec<GpuProcesses>);
    impl GpuProcessSource for Fake {
        fn gpu_processes(&mut self) -> Result<Vec<GpuProcesses>, String> {
            Ok(self.0.clone())
        }
    }

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// A fake `/proc`: pid 500 listens on :8000 (inode 777) and spawned worker 501, which
    /// holds GPU 1; pid 600 is unrelated.
    #[test]
    fn collector_reads_a_fake_proc_tree() {
        let root = std::env::temp_dir().join(format!("strata-fake-proc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        write(
            &root.join("net/tcp6"),
            "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000000000000000000000000000:1F40 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 777 1 0000000000000000 100 0 0 10 0\n",
        );
        write(&root.join("500/stat"), "500 (vllm serve) S 1 500 500 0");
        write(&root.join("501/stat"), "501 (python3) S 500 500 500 0");
        write(&root.join("600/stat"), "600 (bash) S 1 600 600 0");
        for pid in ["500", "501", "600"] {
            std::fs::create_dir_all(root.join(pid).join("fd")).unwrap();
        }
        std::os::unix::fs::symlink("socket:[777]", root.join("500/fd/7")).unwrap();
        std::os::unix::fs::symlink("/dev/null", root.join("600/fd/0")).unwrap();

        let mut c = EngineGpuCollector::live_at(
            vec![engine(8000, "vllm@127.0.0.1:8000")],
            root.clone(),
            Box::new(Fake(vec![gpu(0, &[600]), gpu(1, &[501])])),
            "node-1".into(),
        );
        let got = c.collect(FieldSet::Full, 1_000);
        std::fs::remove_dir_all(&root).unwrap();
        assert!(got.errors.is_empty(), "{:?}", got.errors);
        assert_eq!(got.points.len(), 1);
        let gpu_label = got.points[0].labels.iter().find(|(n, _)| n == "gpu");
        assert_eq!(gpu_label.map(|(_, v)| v.as_str()), Some("1"));
        assert!(
            c.status().starts_with("1 engine-GPU link"),
            "{}",
            c.status()
        );
    }

    #[test]
    fn missing_proc_is_reported_once_and_collection_goes_on() {
        let mut c = EngineGpuCollector::live_at(
            vec![engine(8000, "e")],
            PathBuf::from("/nonexistent/strata-proc"),
            Box::new(Fake(Vec::new())),
            "n".into(),
        );
        assert_eq!(c.collect(FieldSet::Full, 0).errors.len(), 1);
        // Not due yet: no rescan, no repeated error.
        assert!(c.collect(FieldSet::Full, 1_000).errors.is_empty());
        // Due again, same failure: still not repeated.
        assert!(c.collect(FieldSet::Full, RESCAN_MS + 1).errors.is_empty());
        assert!(c.status().contains("failed"), "{}", c.status());
    }

    #[test]
    fn fixed_links_are_reported_every_poll() {
        let l = EngineGpuLink {
            instance: "a:1".into(),
            name: "vllm-a".into(),
            node: "n".into(),
            gpu: 0,
            gpu_uuid: "u".into(),
            gpu_model: "m".into(),
        };
        let mut c = EngineGpuCollector::fixed(vec![l]);
        assert_eq!(c.collect(FieldSet::Full, 0).points.len(), 1);
        assert_eq!(c.collect(FieldSet::Full, 1).points.len(), 1);
    }
}
