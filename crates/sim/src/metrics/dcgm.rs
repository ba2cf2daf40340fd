//! The DCGM exporter's `/metrics`: default counters plus the profiling (DCP) fields, one
//! series per GPU with the exporter's identity labels, and the pod labels the exporter
//! adds under Kubernetes for GPUs assigned to a pod (how engines and GPUs are joined). A
//! [`DcgmVersion`] reproduces a stock exporter instead: its default counters only, and the
//! identity and pod labels of that release.

use super::{Families, LeStyle};
use crate::config::DcgmVersion;
use crate::gpu::Gpu;

/// Where the GPUs run.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement<'a> {
    /// `Hostname` label.
    pub hostname: &'a str,
    /// `pod` label of the engine using the GPUs.
    pub pod: &'a str,
    /// `container` label.
    pub container: &'a str,
    /// `namespace` label.
    pub namespace: &'a str,
    /// The exporter release to reproduce; `None`: Strata's counters under Kubernetes.
    pub version: Option<DcgmVersion>,
}

/// Fields the stock exporter's default counters files leave out (commented out, or in
/// neither `default-counters.csv` nor `dcp-metrics-included.csv`).
const NOT_IN_STOCK: &[&str] = &[
    "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS",
    "DCGM_FI_PROF_SM_ACTIVE",
    "DCGM_FI_PROF_SM_OCCUPANCY",
    "DCGM_FI_PROF_NVLINK_TX_BYTES",
    "DCGM_FI_PROF_NVLINK_RX_BYTES",
];

/// The identity and pod labels of one GPU's series, as `at`'s exporter writes them.
fn identity(g: &Gpu, at: &Placement<'_>) -> Vec<(String, String)> {
    let host = if at.version == Some(DcgmVersion::Main) {
        "hostname"
    } else {
        "Hostname"
    };
    let mut l = vec![
        ("gpu", g.id.index.to_string()),
        ("UUID", g.id.uuid.clone()),
        ("pci_bus_id", g.id.pci_bus_id.clone()),
        ("device", g.id.device.clone()),
        ("modelName", g.id.model_name.clone()),
        (host, at.hostname.to_string()),
        ("DCGM_FI_DRIVER_VERSION", DRIVER.to_string()),
    ];
    let pod = |names: [&'static str; 3]| {
        [
            (names[0], at.container.to_string()),
            (names[1], at.namespace.to_string()),
            (names[2], at.pod.to_string()),
        ]
    };
    // A stable stand-in for the pod's UID.
    let uid = format!("{:08x}-0000-4000-8000-000000000000", at.pod.len());
    match at.version {
        None => l.extend(pod(["container", "namespace", "pod"])),
        Some(DcgmVersion::Stock453) => {}
        Some(DcgmVersion::Stock453OldK8s) => {
            l.extend(pod(["container_name", "pod_namespace", "pod_name"]));
            l.push(("pod_uid", uid));
        }
        Some(DcgmVersion::Main) => {
            l.extend(pod(["container", "namespace", "pod"]));
            l.push(("pod_uid", uid));
        }
    }
    l.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

const DRIVER: &str = "570.133.20";

/// Renders every GPU in the exporter's format.
pub fn render(gpus: &[Gpu], at: &Placement<'_>) -> String {
    let labels: Vec<Vec<(String, String)>> = gpus.iter().map(|g| identity(g, at)).collect();
    let mut f = Families::new(LeStyle::Integer);
    let stock = at.version.is_some();
    let mut fam = |name: &str, help: &str, t: expo::MetricType, value: &dyn Fn(&Gpu) -> f64| {
        if stock && NOT_IN_STOCK.contains(&name) {
            return;
        }
        let rows: Vec<(Vec<(&str, &str)>, f64)> = gpus
            .iter()
            .zip(&labels)
            .map(|(g, l)| {
                (
                    l.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
                    value(g),
                )
            })
            .collect();
        f.multi(name, Some(help), t, &rows);
    };
    use expo::MetricType::{Counter, Gauge};
    let r2 = |v: f64| (v * 1000.0).round() / 1000.0;
    fam(
        "DCGM_FI_DEV_SM_CLOCK",
        "SM clock frequency (in MHz).",
        Gauge,
        &|g| g.sm_clock_mhz.round(),
    );
    fam(
        "DCGM_FI_DEV_MEM_CLOCK",
        "Memory clock frequency (in MHz).",
        Gauge,
        &|g| g.mem_clock_mhz,
    );
    fam(
        "DCGM_FI_DEV_MEMORY_TEMP",
        "Memory temperature (in C).",
        Gauge,
        &|g| g.memory_temp_c().round(),
    );
    fam(
        "DCGM_FI_DEV_GPU_TEMP",
        "GPU temperature (in C).",
        Gauge,
        &|g| g.temp_c.round(),
    );
    fam(
        "DCGM_FI_DEV_POWER_USAGE",
        "Power draw (in W).",
        Gauge,
        &|g| r2(g.power_w),
    );
    fam(
        "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
        "Total energy consumption since boot (in mJ).",
        Counter,
        &|g| g.energy_mj.floor(),
    );
    fam(
        "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
        "Total number of PCIe retries.",
        Counter,
        &|g| g.pcie_replays as f64,
    );
    fam(
        "DCGM_FI_DEV_GPU_UTIL",
        "GPU utilization (in %).",
        Gauge,
        &|g| (g.avg.gr * 100.0).round(),
    );
    fam(
        "DCGM_FI_DEV_MEM_COPY_UTIL",
        "Memory utilization (in %).",
        Gauge,
        &|g| (g.avg.dram * 100.0).round(),
    );
    fam(
        "DCGM_FI_DEV_XID_ERRORS",
        "Value of the last XID error encountered.",
        Gauge,
        &|g| g.xid_last as f64,
    );
    fam(
        "DCGM_FI_DEV_FB_FREE",
        "Framebuffer memory free (in MiB).",
        Gauge,
        &|g| (g.fb_total_mib - g.fb_reserved_mib - g.fb_used_mib()).round(),
    );
    fam(
        "DCGM_FI_DEV_FB_USED",
        "Framebuffer memory used (in MiB).",
        Gauge,
        &|g| g.fb_used_mib().round(),
    );
    fam(
        "DCGM_FI_DEV_FB_RESERVED",
        "Framebuffer memory reserved (in MiB).",
        Gauge,
        &|g| g.fb_reserved_mib,
    );
    fam(
        "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL",
        "Total number of NVLink bandwidth counters for all lanes.",
        Counter,
        &|g| g.nvlink_total_bytes.floor(),
    );
    if stock {
        // On by default in the stock counters files; the simulated GPUs never remap rows.
        fam(
            "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS",
            "Number of remapped rows for correctable errors",
            Counter,
            &|_| 0.0,
        );
        fam(
            "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
            "Number of remapped rows for uncorrectable errors",
            Counter,
            &|_| 0.0,
        );
        fam(
            "DCGM_FI_DEV_ROW_REMAP_FAILURE",
            "Whether remapping of rows has failed",
            Gauge,
            &|_| 0.0,
        );
    }
    fam(
        "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS",
        "Current clock throttle reasons (bitmask of DCGM_CLOCKS_THROTTLE_REASON_*)",
        Gauge,
        &|g| g.throttle_reasons as f64,
    );
    fam(
        "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
        "Ratio of time the graphics engine is active.",
        Gauge,
        &|g| r2(g.avg.gr),
    );
    fam(
        "DCGM_FI_PROF_SM_ACTIVE",
        "The ratio of cycles an SM has at least 1 warp assigned.",
        Gauge,
        &|g| r2(g.avg.sm),
    );
    fam(
        "DCGM_FI_PROF_SM_OCCUPANCY",
        "The ratio of number of warps resident on an SM.",
        Gauge,
        &|g| r2(g.avg.occupancy),
    );
    fam(
        "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
        "Ratio of cycles the tensor (HMMA) pipe is active.",
        Gauge,
        &|g| r2(g.avg.tensor),
    );
    fam(
        "DCGM_FI_PROF_DRAM_ACTIVE",
        "Ratio of cycles the device memory interface is active sending or receiving data.",
        Gauge,
        &|g| r2(g.avg.dram),
    );
    fam(
        "DCGM_FI_PROF_PCIE_TX_BYTES",
        "The rate of data transmitted over the PCIe bus - including both protocol headers and data payloads - in bytes per second.",
        Gauge,
        &|g| g.avg.pcie_tx_bps.round(),
    );
    fam(
        "DCGM_FI_PROF_PCIE_RX_BYTES",
        "The rate of data received over the PCIe bus - including both protocol headers and data payloads - in bytes per second.",
        Gauge,
        &|g| g.avg.pcie_rx_bps.round(),
    );
    fam(
        "DCGM_FI_PROF_NVLINK_TX_BYTES",
        "The rate of data transmitted over NVLink, not including protocol headers, in bytes per second.",
        Gauge,
        &|g| g.avg.nvlink_bps.round(),
    );
    fam(
        "DCGM_FI_PROF_NVLINK_RX_BYTES",
        "The rate of data received over NVLink, not including protocol headers, in bytes per second.",
        Gauge,
        &|g| g.avg.nvlink_bps.round(),
    );
    f.finish()
}
