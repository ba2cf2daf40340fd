//! Autodetection for `strata up` with neither a config file nor targets: engines on this
//! machine's usual ports (dialect from their `/metrics`), a DCGM exporter, NVML, InfiniBand
//! ports, the kubelet's pod-resources socket, and the host collectors (node PSI, the found
//! engines' processes, kubelet's pod logs for NCCL).

use std::time::Duration;

use sources::scrape::{KindProfiles, Target, TargetKind, TargetSpec};

use super::args::TestArgs;
use super::targets::{
    engine_gpu_target, engine_process_targets, name_for_fleet, nccl_target, node_collectors, nvml,
    nvml_target, psi_target, set_node,
};
use sources::logs::{DEFAULT_KEPT_EVENTS, LogInput};

/// Where kubelet writes container logs.
const POD_LOGS: &str = "/var/log/pods";

/// Engine ports probed by default: vLLM, TGI / llama.cpp, SGLang.
const ENGINE_PORTS: [u16; 3] = [8000, 8080, 30000];
/// DCGM exporter port probed by default.
const GPU_PORTS: [u16; 1] = [9400];

/// What autodetection found: targets, and one line per probe.
pub(crate) struct Found {
    /// Targets to scrape.
    pub targets: Vec<Target>,
    /// What was found and what was not, for the operator.
    pub lines: Vec<String>,
}

/// What `/metrics` on `port` speaks: the dialect's short and display names, or why not.
async fn probe(client: &reqwest::Client, port: u16) -> Result<(String, String), String> {
    let url = format!("http://127.0.0.1:{port}/metrics");
    let resp = client.get(&url).send().await.map_err(|e| {
        if e.is_connect() {
            "nothing listens".to_string()
        } else {
            format!("no answer ({e})")
        }
    })?;
    if !resp.status().is_success() {
        return Err(format!("/metrics answered {}", resp.status()));
    }
    let body = resp
        .text()
        .await
        .map_err(|e| format!("cannot read /metrics: {e}"))?;
    let exp = expo::parse(&body, expo::Format::Prometheus);
    let names: Vec<&str> = exp
        .families
        .iter()
        .flat_map(|f| f.samples.iter().map(|s| s.name))
        .collect();
    let d = sources::dialect::detect(names.iter().copied())
        .ok_or("answers, but with no known engine or GPU metrics")?;
    Ok((
        d.table.name.clone(),
        format!("{} ({})", d.table.title, d.version),
    ))
}

fn target(job: &str, port: u16, kind: TargetKind) -> Result<Target, String> {
    let url = format!("http://127.0.0.1:{port}/metrics")
        .parse()
        .map_err(|e| format!("port {port}: {e}"))?;
    let mut spec = TargetSpec::new(job, url, kind);
    spec.profiles = match kind {
        TargetKind::Engine => KindProfiles::engine_default(),
        TargetKind::Gpu => KindProfiles::gpu_default(),
    };
    Ok(Target::Http(spec))
}

/// Probes the engine and GPU ports (`testing` may replace them) and NVML.
/// `node` names this machine; `fleet`: an agent's targets are named `NODE:PORT`.
pub(crate) async fn autodetect(
    testing: &TestArgs,
    node: &str,
    fleet: bool,
) -> Result<Found, String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| format!("cannot build the probe HTTP client: {e}"))?;
    let engine_ports: &[u16] = if testing.probe_engine_ports.is_empty() {
        &ENGINE_PORTS
    } else {
        &testing.probe_engine_ports
    };
    let gpu_ports: &[u16] = if testing.probe_gpu_ports.is_empty() {
        &GPU_PORTS
    } else {
        &testing.probe_gpu_ports
    };
    let mut found = Found {
        targets: Vec::new(),
        lines: Vec::new(),
    };
    for (ports, kind, what) in [
        (engine_ports, TargetKind::Engine, "engine"),
        (gpu_ports, TargetKind::Gpu, "DCGM exporter"),
    ] {
        for &port in ports {
            match probe(&client, port).await {
                Ok((job, title)) if (job == "dcgm") == (kind == TargetKind::Gpu) => {
                    found.lines.push(format!("found   {title} on :{port}"));
                    found.targets.push(target(&job, port, kind)?);
                }
                Ok((_, title)) => found.lines.push(format!(
                    "skipped :{port}: {title} where a {what} was expected"
                )),
                Err(e) => found.lines.push(format!("no {what} on :{port}: {e}")),
            }
        }
    }
    if fleet {
        name_for_fleet(&mut found.targets, node);
    }
    if testing.no_probe_nvml {
        found.lines.push("NVML not probed".to_string());
    } else {
        let node = node.to_string();
        match nvml(node.clone()).await {
            Ok(c) => {
                found.lines.push(format!("found   NVML: {}", c.status()));
                let profiles = KindProfiles::gpu_default();
                if let Some(t) = engine_gpu_target(&found.targets, &node, profiles) {
                    found.lines.push(
                        "mapping engines to GPUs through NVML's compute processes".to_string(),
                    );
                    found.targets.push(t);
                }
                found.targets.push(nvml_target(c, node, profiles));
            }
            Err(e) => found.lines.push(format!("no NVML: {e}")),
        }
    }
    if found.targets.is_empty() {
        // Node collectors alone are no pipeline: with no engine and no GPU, say so.
        return Ok(found);
    }
    set_node(&mut found.targets, node);
    if testing.no_probe_host {
        found.lines.push("host collectors not probed".to_string());
    } else {
        let (targets, lines) = node_collectors(node);
        found.targets.extend(targets);
        found.lines.extend(lines);
        host(&mut found, node);
    }
    Ok(found)
}

/// Adds node PSI, the processes of the engines found, and NCCL failures from pod logs.
fn host(found: &mut Found, node: &str) {
    let profiles = KindProfiles::engine_default();
    let mut add = vec![psi_target(node, profiles)];
    let engines: Vec<&TargetSpec> = found
        .targets
        .iter()
        .filter_map(|t| match t {
            Target::Http(spec) => Some(spec),
            _ => None,
        })
        .collect();
    add.extend(engine_process_targets(&engines, node, profiles));
    if std::path::Path::new(POD_LOGS).is_dir() {
        add.push(nccl_target(
            vec![LogInput::PodLogs(POD_LOGS.into())],
            DEFAULT_KEPT_EVENTS,
            node,
            profiles,
        ));
    } else {
        found.lines.push(format!(
            "no NCCL logs: {POD_LOGS} not found (not in Kubernetes; set [logs] nccl)"
        ));
    }
    for t in &add {
        if let Target::Host(h) = t {
            found
                .lines
                .push(format!("found   {}: {}", h.job(), h.status()));
        }
    }
    found.targets.extend(add);
}
