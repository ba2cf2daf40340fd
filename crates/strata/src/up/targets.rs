//! The scrape targets of `strata up`: `[[target]]` and `[nvml]` from the config file, then
//! `--engine` and `--gpu` from the flags; then the node collectors this node has
//! (InfiniBand/RoCE ports, the kubelet's pod-resources socket) and the host collectors
//! `[host]` and `[logs]` ask for (node PSI, each local engine's process and cgroup, NCCL
//! failures from logs).

use std::path::Path;

use sources::collector::HostCollector;
use sources::gpu::nvml::{NvmlCollector, NvmlProcesses};
use sources::host::infiniband::{InfinibandCollector, SYSFS_INFINIBAND};
use sources::host::kubelet::{KubeletCollector, POD_RESOURCES_SOCKET};
use sources::host::{
    Engine, EngineEndpoint, EngineGpuCollector, HostPaths, ProcessCollector, PsiCollector, is_local,
};
use sources::logs::follow::Start;
use sources::logs::{DEFAULT_KEPT_EVENTS, LogInput, NcclCollector};
use sources::scrape::{HostTarget, KindProfiles, Target, TargetKind, TargetSpec};

use super::UpArgs;
use ::config::{Config, NvmlMode};

/// The config file as loaded: its path and text locate later errors.
pub(crate) struct Loaded {
    /// The parsed file.
    pub config: Config,
    /// Where it was read from.
    pub path: std::path::PathBuf,
    /// Its text.
    pub text: String,
}

/// Opens the local GPUs through NVML (off the async workers).
pub(crate) async fn nvml(node: String) -> Result<NvmlCollector, String> {
    tokio::task::spawn_blocking(move || NvmlCollector::open(&node))
        .await
        .map_err(|e| format!("NVML task failed: {e}"))?
        .map_err(|e| e.reason)
}

/// The NVML target over `collector` with `profiles`.
pub(crate) fn nvml_target(
    collector: NvmlCollector,
    node: String,
    profiles: KindProfiles,
) -> Target {
    Target::Host(HostTarget::new(Box::new(collector), node, profiles))
}

/// The engine↔GPU links of the local engines among `targets` (NVML's compute processes
/// joined to `/proc`), or `None` when no engine target is served on this node.
pub(crate) fn engine_gpu_target(
    targets: &[Target],
    node: &str,
    profiles: KindProfiles,
) -> Option<Target> {
    let engines: Vec<EngineEndpoint> = targets
        .iter()
        .filter_map(|t| match t {
            Target::Http(spec) => EngineEndpoint::of(spec, node),
            Target::Host(_) => None,
        })
        .collect();
    if engines.is_empty() {
        return None;
    }
    let collector = EngineGpuCollector::live(engines, Box::new(NvmlProcesses), node.to_string());
    Some(Target::Host(HostTarget::new(
        Box::new(collector),
        node.to_string(),
        profiles,
    )))
}

/// Sets the node of every HTTP target that has none (`node` of `strata_engine_info`).
pub(crate) fn set_node(targets: &mut [Target], node: &str) {
    for t in targets {
        if let Target::Http(spec) = t
            && spec.node.is_none()
        {
            spec.node = Some(node.to_string());
        }
    }
}

/// The driver-less node collectors this node has: InfiniBand/RoCE ports (sysfs) and the
/// kubelet's pod-resources socket. Absent layers are skipped with a line saying so.
pub(crate) fn node_collectors(node: &str) -> (Vec<Target>, Vec<String>) {
    let mut targets = Vec::new();
    let mut lines = Vec::new();
    let ib = Path::new(SYSFS_INFINIBAND);
    let collector = InfinibandCollector::new(ib);
    if InfinibandCollector::has_ports(ib) {
        lines.push(format!("found   {}", collector.status()));
        targets.push(host_target(Box::new(collector), node));
    } else {
        lines.push(format!("no {}", collector.status()));
    }
    let socket = Path::new(POD_RESOURCES_SOCKET);
    let collector = KubeletCollector::new(socket);
    if KubeletCollector::in_kubernetes(socket) {
        lines.push(format!(
            "found   kubelet pod-resources at {POD_RESOURCES_SOCKET}"
        ));
        targets.push(host_target(Box::new(collector), node));
    } else {
        lines.push(format!("no {}", collector.status()));
    }
    (targets, lines)
}

fn host_target(collector: Box<dyn HostCollector>, node: &str) -> Target {
    Target::Host(HostTarget::new(
        collector,
        node.to_string(),
        KindProfiles::engine_default(),
    ))
}

/// An agent's targets on this machine are named `NODE:PORT`: `127.0.0.1:8000` is on every
/// node of a fleet, and the brain's rules aggregate by `instance`, so two nodes' engines
/// would merge into one finding.
pub(crate) fn name_for_fleet(targets: &mut [Target], node: &str) {
    for t in targets {
        if let Target::Http(spec) = t
            && spec.instance.is_none()
            && is_local(&spec.url, node)
            && let Some(port) = spec.url.port_or_known_default()
        {
            spec.instance = Some(format!("{node}:{port}"));
        }
    }
}

/// The process-tree-and-cgroup collector of every engine target on this machine.
pub(crate) fn engine_process_targets(
    engines: &[&TargetSpec],
    node: &str,
    profiles: KindProfiles,
) -> Vec<Target> {
    engines
        .iter()
        .filter(|s| s.kind == TargetKind::Engine && is_local(&s.url, node))
        .filter_map(|s| {
            let port = s.url.port_or_known_default()?;
            let c = ProcessCollector::new(HostPaths::default(), Engine::Port(port), s.instance());
            Some(Target::Host(HostTarget::new(
                Box::new(c),
                node.to_string(),
                profiles,
            )))
        })
        .collect()
}

/// The node PSI collector.
pub(crate) fn psi_target(node: &str, profiles: KindProfiles) -> Target {
    let c = PsiCollector::new(&HostPaths::default().proc);
    Target::Host(HostTarget::new(Box::new(c), node.to_string(), profiles))
}

/// The NCCL log collector over `inputs` (files, pod log roots, `-`), following from their
/// current end.
pub(crate) fn nccl_target(
    inputs: Vec<LogInput>,
    keep: usize,
    node: &str,
    profiles: KindProfiles,
) -> Target {
    let c = NcclCollector::new(inputs, Start::End, keep);
    Target::Host(HostTarget::new(Box::new(c), node.to_string(), profiles))
}

/// The host collectors `[host]` and `[logs]` ask for, given the scrape targets so far.
fn host_targets(cfg: &Config, node: &str, out: &[Target], profiles: KindProfiles) -> Vec<Target> {
    let mut host = Vec::new();
    if cfg.host.psi {
        host.push(psi_target(node, profiles));
    }
    if cfg.host.engine_processes {
        let engines: Vec<&TargetSpec> = out
            .iter()
            .filter_map(|t| match t {
                Target::Http(spec) => Some(spec),
                _ => None,
            })
            .collect();
        host.extend(engine_process_targets(&engines, node, profiles));
    }
    if !cfg.logs.nccl.is_empty() {
        let inputs = cfg
            .logs
            .nccl
            .iter()
            .map(|p| LogInput::from_spec(&p.to_string_lossy()))
            .collect();
        let keep = cfg.logs.keep_events.unwrap_or(DEFAULT_KEPT_EVENTS);
        host.push(nccl_target(inputs, keep, node, profiles));
    }
    for t in &host {
        if let Target::Host(h) = t {
            eprintln!("strata up: {}: {}", h.job(), h.status());
        }
    }
    host
}

/// The scraper's targets from the config file (if any) and the flags.
pub(crate) async fn targets(loaded: Option<&Loaded>, args: &UpArgs) -> Result<Vec<Target>, String> {
    let mut out = Vec::new();
    let default = Config::default();
    let (cfg, path, text) = match loaded {
        Some(l) => (&l.config, l.path.as_path(), l.text.as_str()),
        None => (&default, Path::new("strata.toml"), ""),
    };
    let node = args.node(cfg);
    let gpu_profiles = cfg
        .profiles(TargetKind::Gpu, path, text)
        .map_err(|e| e.to_string())?;
    let engine_profiles = cfg
        .profiles(TargetKind::Engine, path, text)
        .map_err(|e| e.to_string())?;
    if loaded.is_some() {
        out.extend(
            config::target_specs(cfg, path, text)
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(Target::Http),
        );
    }
    for u in &args.engines {
        let mut spec = TargetSpec::new("engine", u.clone(), TargetKind::Engine);
        spec.profiles = engine_profiles;
        out.push(Target::Http(spec));
    }
    let mut want_nvml = false;
    for g in &args.gpus {
        if g == "nvml" {
            want_nvml = true;
        } else {
            let url = sources::scrape::metrics_url(g)
                .map_err(|e| format!("--gpu {g:?}: {e} (give a URL or `nvml`)"))?;
            let mut spec = TargetSpec::new("gpu", url, TargetKind::Gpu);
            spec.profiles = gpu_profiles;
            out.push(Target::Http(spec));
        }
    }
    if args.agent {
        name_for_fleet(&mut out, &node);
    }
    let mode = if loaded.is_some() {
        cfg.nvml.enabled
    } else {
        NvmlMode::Off
    };
    if want_nvml || mode != NvmlMode::Off {
        match nvml(node.clone()).await {
            Ok(c) => {
                eprintln!("strata up: NVML: {}", c.status());
                out.extend(engine_gpu_target(&out, &node, gpu_profiles));
                out.push(nvml_target(c, node.clone(), gpu_profiles));
            }
            Err(e) if want_nvml || mode == NvmlMode::On => {
                return Err(format!(
                    "NVML not available: {e} (drop --gpu nvml, or set [nvml] enabled = \"auto\")"
                ));
            }
            Err(e) => eprintln!("strata up: NVML not available: {e} (GPUs only from exporters)"),
        }
    }
    set_node(&mut out, &node);
    let (node_targets, lines) = node_collectors(&node);
    for line in lines {
        eprintln!("strata up: {line}");
    }
    out.extend(node_targets);
    if loaded.is_some() {
        let host = host_targets(cfg, &node, &out, engine_profiles);
        out.extend(host);
    }
    Ok(out)
}
