//! Direct NVML collector: reads every NVIDIA GPU of this machine through `libnvidia-ml.so.1`
//! (loaded at run time by `nvml-wrapper`) and emits the canonical `gpu:*` signals, labelled
//! like the DCGM exporter path (`gpu`, `gpu_uuid`, `device`, `modelName`, `Hostname`,
//! `pci_bus_id`).
//!
//! The NVML calls ([`NvmlCollector::collect`]) are kept apart from the pure mapping
//! ([`to_points`]): a collection first fills one [`RawReading`] per GPU, in NVML's own units,
//! then converts it to base units and canonical names.
//!
//! What comes from where:
//!
//! | canonical | NVML | conversion |
//! |---|---|---|
//! | `gpu:util_ratio` | `nvmlDeviceGetUtilizationRates().gpu` (%) | / 100 |
//! | `gpu:mem_copy_util_ratio` | `nvmlDeviceGetUtilizationRates().memory` (%) | / 100 |
//! | `gpu:gr_engine_active_ratio` | GPM `GRAPHICS_UTIL` (%) | / 100 |
//! | `gpu:sm_active_ratio` | GPM `SM_UTIL` (%) | / 100 |
//! | `gpu:sm_occupancy_ratio` | GPM `SM_OCCUPANCY` (%) | / 100 |
//! | `gpu:tensor_active_ratio` | GPM `ANY_TENSOR_UTIL` (%) | / 100 |
//! | `gpu:dram_active_ratio` | GPM `DRAM_BW_UTIL` (%) | / 100 |
//! | `gpu:fb_used_bytes`, `gpu:fb_free_bytes` | `nvmlDeviceGetMemoryInfo_v2` (bytes) | none |
//! | `gpu:power_watts` | `nvmlDeviceGetPowerUsage` (mW) | / 1000 |
//! | `gpu:energy_joules_total` | `nvmlDeviceGetTotalEnergyConsumption` (mJ) | / 1000 |
//! | `gpu:temp_celsius` | `nvmlDeviceGetTemperature(GPU)` (°C) | none |
//! | `gpu:memory_temp_celsius` | field value `NVML_FI_DEV_MEMORY_TEMP` (°C) | none |
//! | `gpu:sm_clock_hz`, `gpu:mem_clock_hz` | `nvmlDeviceGetClockInfo(SM / MEM)` (MHz) | × 10⁶ |
//! | `gpu:throttle_reasons` | `nvmlDeviceGetCurrentClocksThrottleReasons` (bit mask) | bits as f64 |
//! | `gpu:pcie_rx/tx_bytes_per_second` | GPM `PCIE_RX/TX_PER_SEC` (MiB/s), else `nvmlDeviceGetPcieThroughput` (KB/s) | → KiB/s, × 1024 |
//! | `gpu:pcie_replays_total` | `nvmlDeviceGetPcieReplayCounter` | none |
//! | `gpu:nvlink_rx/tx_bytes_per_second` | GPM `NVLINK_TOTAL_RX/TX_PER_SEC` (MiB/s) | × 1024² |
//! | `gpu:xid_last` | XID critical-error events, polled without blocking | last code, 0 = none; each event also a warning with its meaning ([`super::xid`]) |
//! | `gpu:ecc_uncorrected_errors_total` | `nvmlDeviceGetTotalEccErrors(UNCORRECTED, VOLATILE)` | none |
//!
//! Limits, on purpose:
//! - GPM (the DCGM "profiling" signals) exists on Hopper and newer only; older GPUs get no
//!   `sm_active`/`sm_occupancy`/`tensor_active`/`dram_active`/`gr_engine_active` series and
//!   no NVLink throughput (the NVML NVLink throughput field values are per link and need a
//!   `scopeId` that `nvml-wrapper` cannot pass). [`NvmlCollector::status`] says so.
//! - A MIG-enabled GPU gets its parent-device series (memory, power, temperature, clocks...)
//!   and one `strata_gpu_mig_info` series per MIG device with its frame buffer
//!   (`strata_gpu_mig_fb_used_bytes`, `strata_gpu_mig_fb_total_bytes`), labelled `gpu`,
//!   `gpu_uuid`, `mig_uuid`, `gpu_instance_id`, `compute_instance_id`, `mig_profile`
//!   ([`mig_points`]). The instance ids come from `nvmlDeviceGetGpuInstanceId` /
//!   `ComputeInstanceId` on the MIG handle (raw calls in `gpu::nvml_ffi`: nvml-wrapper 0.13
//!   does not wrap them), else from a legacy MIG UUID (`MIG-GPU-<uuid>/<gi>/<ci>`), else
//!   `unknown`. No per-slice activity and no GPM here: per-slice activity comes from DCGM
//!   (`DCGM_FI_PROF_GR_ENGINE_ACTIVE` with `GPU_I_ID`, kept per slice).
//! - Fabric ([`fabric_points`]): `strata_gpu_nvswitch_links` is the number of the GPU's NVLinks
//!   that reach an NVSwitch (field `NVML_FI_DEV_NVSWITCH_CONNECTED_LINK_COUNT`);
//!   `gpu:fabric_state` is the fabric manager's registration of the GPU
//!   (`nvmlDeviceGetGpuFabricInfoV`, raw call), with `gpu:fabric_bandwidth_degraded` from its
//!   health mask and `strata_gpu_fabric_info{clique_id, cluster_uuid}` once registered.
//!   Without NVSwitch links the status line says the fabric is not visible from this node.
//! - Without XID event support `gpu:xid_last` is omitted (and status says so).

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;
use std::time::Duration;

use nvml_wrapper::bitmasks::event::EventTypes;
use nvml_wrapper::enum_wrappers::device::{
    Clock, EccCounter, MemoryError, PcieUtilCounter, TemperatureSensor,
};
use nvml_wrapper::enums::device::SampleValue;
use nvml_wrapper::enums::event::XidError;
use nvml_wrapper::enums::gpm::GpmMetricId;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::gpm::gpm_metrics_get;
use nvml_wrapper::structs::device::FieldId;
use nvml_wrapper::sys_exports::field_id::{
    NVML_FI_DEV_MEMORY_TEMP, NVML_FI_DEV_NVSWITCH_CONNECTED_LINK_COUNT,
};
use nvml_wrapper::{Device, EventSet, GpmSample, Nvml};

use super::nvml_ffi;
use crate::collector::{Collection, HostCollector};
use crate::gpu::FieldSet;
use crate::point::{LabelSet, Point};

/// The `job` label of NVML series.
pub const NVML_JOB: &str = "nvml";

/// The library names tried, in order: the versioned name every driver install has, then the
/// unversioned development symlink.
const LIBRARY_NAMES: [&str; 2] = ["libnvidia-ml.so.1", "libnvidia-ml.so"];

/// How long the very first collection waits between the two GPM samples it needs.
const GPM_WARMUP: Duration = Duration::from_millis(100);

/// NVML_NVLINK_MAX_LINKS (not re-exported by nvml-wrapper).
const NVLINK_MAX_LINKS: u32 = 18;

/// At most this many queued XID events are drained per collection.
const MAX_EVENTS_PER_COLLECT: usize = 256;

/// NVML is initialised once per process and never shut down, so the devices, event set and
/// GPM samples the collector keeps can borrow it for `'static`.
static NVML: OnceLock<Nvml> = OnceLock::new();

/// Why NVML could not be used; Strata goes on without direct GPU metrics.
#[derive(Debug, thiserror::Error)]
#[error(
    "NVML not available: {reason} (install the NVIDIA driver or run where /usr/lib/.../libnvidia-ml.so.1 exists; Strata goes on without direct GPU metrics)"
)]
pub struct NvmlUnavailable {
    /// What failed: the library load, the driver, or no GPU found.
    pub reason: String,
}

/// One GPU's readings in NVML's own units; `None` where the field was not read or failed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawReading {
    /// Percent of the last sample period a kernel was running.
    pub gpu_util_pct: Option<u32>,
    /// Percent of the last sample period the memory controller was busy.
    pub mem_util_pct: Option<u32>,
    /// Frame buffer in use, bytes.
    pub fb_used_bytes: Option<u64>,
    /// Frame buffer free, bytes.
    pub fb_free_bytes: Option<u64>,
    /// Board power draw, milliwatts.
    pub power_mw: Option<u32>,
    /// Energy since the driver loaded, millijoules.
    pub energy_mj: Option<u64>,
    /// GPU die temperature, °C.
    pub temp_c: Option<u32>,
    /// HBM temperature, °C.
    pub memory_temp_c: Option<f64>,
    /// Current SM clock, MHz.
    pub sm_clock_mhz: Option<u32>,
    /// Current memory clock, MHz.
    pub mem_clock_mhz: Option<u32>,
    /// Current clock-throttle (clocks event) reason bits.
    pub throttle_reasons: Option<u64>,
    /// Host-to-GPU PCIe traffic, KiB/s (NVML's "KB/s"; GPM's MiB/s is scaled ×1024 on read).
    pub pcie_rx_kib_per_s: Option<f64>,
    /// GPU-to-host PCIe traffic, KiB/s.
    pub pcie_tx_kib_per_s: Option<f64>,
    /// PCIe replay counter.
    pub pcie_replays: Option<u32>,
    /// Uncorrected ECC errors since the driver loaded (volatile counter).
    pub ecc_uncorrected: Option<u64>,
    /// Last XID critical-error code seen since the collector opened, 0 = none.
    pub xid_last: Option<u64>,
    /// GPM graphics-engine activity, percent.
    pub gpm_graphics_pct: Option<f64>,
    /// GPM SM activity (≥ 1 warp resident), percent.
    pub gpm_sm_active_pct: Option<f64>,
    /// GPM SM occupancy (resident warps over maximum), percent.
    pub gpm_sm_occupancy_pct: Option<f64>,
    /// GPM any-tensor-pipe activity, percent.
    pub gpm_tensor_pct: Option<f64>,
    /// GPM DRAM bandwidth utilisation, percent.
    pub gpm_dram_pct: Option<f64>,
    /// GPM NVLink receive bandwidth over all links, MiB/s.
    pub nvlink_rx_mib_per_s: Option<f64>,
    /// GPM NVLink transmit bandwidth over all links, MiB/s.
    pub nvlink_tx_mib_per_s: Option<f64>,
}

/// The labels every series of one GPU carries, as the DCGM exporter path writes them.
pub fn gpu_labels(
    index: u32,
    uuid: &str,
    minor_number: u32,
    model_name: &str,
    hostname: &str,
    pci_bus_id: &str,
) -> LabelSet {
    let mut labels = vec![
        ("gpu".to_string(), index.to_string()),
        ("gpu_uuid".to_string(), uuid.to_string()),
        ("device".to_string(), format!("nvidia{minor_number}")),
        ("modelName".to_string(), model_name.to_string()),
        ("Hostname".to_string(), hostname.to_string()),
        ("pci_bus_id".to_string(), pci_bus_id.to_string()),
    ];
    labels.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    labels
}

/// Converts one GPU's raw readings to canonical `gpu:*` points in base units, stamped `ts`.
/// Missing readings are omitted; so are signals `fields` does not include.
pub fn to_points(raw: &RawReading, labels: &LabelSet, fields: FieldSet, ts: i64) -> Vec<Point> {
    const KIB: f64 = 1024.0;
    const MIB: f64 = 1024.0 * 1024.0;
    let pct = |p: f64| p / 100.0;
    let candidates: [(&str, Option<f64>); 23] = [
        (
            "gpu:util_ratio",
            raw.gpu_util_pct.map(|p| pct(f64::from(p))),
        ),
        (
            "gpu:mem_copy_util_ratio",
            raw.mem_util_pct.map(|p| pct(f64::from(p))),
        ),
        ("gpu:sm_active_ratio", raw.gpm_sm_active_pct.map(pct)),
        ("gpu:sm_occupancy_ratio", raw.gpm_sm_occupancy_pct.map(pct)),
        ("gpu:tensor_active_ratio", raw.gpm_tensor_pct.map(pct)),
        ("gpu:dram_active_ratio", raw.gpm_dram_pct.map(pct)),
        ("gpu:gr_engine_active_ratio", raw.gpm_graphics_pct.map(pct)),
        ("gpu:fb_used_bytes", raw.fb_used_bytes.map(|b| b as f64)),
        ("gpu:fb_free_bytes", raw.fb_free_bytes.map(|b| b as f64)),
        (
            "gpu:power_watts",
            raw.power_mw.map(|mw| f64::from(mw) / 1000.0),
        ),
        (
            "gpu:energy_joules_total",
            raw.energy_mj.map(|mj| mj as f64 / 1000.0),
        ),
        ("gpu:temp_celsius", raw.temp_c.map(f64::from)),
        ("gpu:memory_temp_celsius", raw.memory_temp_c),
        (
            "gpu:sm_clock_hz",
            raw.sm_clock_mhz.map(|m| f64::from(m) * 1e6),
        ),
        (
            "gpu:mem_clock_hz",
            raw.mem_clock_mhz.map(|m| f64::from(m) * 1e6),
        ),
        (
            "gpu:throttle_reasons",
            raw.throttle_reasons.map(|b| b as f64),
        ),
        (
            "gpu:pcie_rx_bytes_per_second",
            raw.pcie_rx_kib_per_s.map(|k| k * KIB),
        ),
        (
            "gpu:pcie_tx_bytes_per_second",
            raw.pcie_tx_kib_per_s.map(|k| k * KIB),
        ),
        ("gpu:pcie_replays_total", raw.pcie_replays.map(f64::from)),
        (
            "gpu:nvlink_rx_bytes_per_second",
            raw.nvlink_rx_mib_per_s.map(|m| m * MIB),
        ),
        (
            "gpu:nvlink_tx_bytes_per_second",
            raw.nvlink_tx_mib_per_s.map(|m| m * MIB),
        ),
        ("gpu:xid_last", raw.xid_last.map(|x| x as f64)),
        (
            "gpu:ecc_uncorrected_errors_total",
            raw.ecc_uncorrected.map(|e| e as f64),
        ),
    ];
    candidates
        .into_iter()
        .filter_map(|(name, value)| {
            let value = value.filter(|v| v.is_finite())?;
            fields
                .includes(name)
                .then(|| Point::new(name, labels.clone(), value, ts))
        })
        .collect()
}

/// One MIG device (a GPU instance / compute instance slice) of a GPU, in NVML's terms.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MigReading {
    /// The MIG device's UUID (`MIG-…`).
    pub mig_uuid: String,
    /// GPU instance id (DCGM's `GPU_I_ID`), where known.
    pub gpu_instance_id: Option<u32>,
    /// Compute instance id, where known.
    pub compute_instance_id: Option<u32>,
    /// Profile, e.g. `1g.10gb` (DCGM's `GPU_I_PROFILE`).
    pub profile: String,
    /// Frame buffer of the slice in use, bytes.
    pub fb_used_bytes: Option<u64>,
    /// Frame buffer of the slice, bytes.
    pub fb_total_bytes: Option<u64>,
}

/// The profile part of a MIG device name: `NVIDIA H100 80GB HBM3 MIG 1g.10gb` → `1g.10gb`.
pub fn mig_profile(name: &str) -> String {
    name.rsplit_once(" MIG ")
        .map_or("unknown", |(_, p)| p.trim())
        .to_string()
}

/// GPU and compute instance ids from a legacy MIG UUID (`MIG-GPU-<uuid>/<gi>/<ci>`, drivers
/// before R470); `None` for the current `MIG-<uuid>` form.
pub fn legacy_mig_ids(mig_uuid: &str) -> Option<(u32, u32)> {
    let rest = mig_uuid.strip_prefix("MIG-GPU-")?;
    let mut parts = rest.rsplitn(3, '/');
    let ci = parts.next()?.parse().ok()?;
    let gi = parts.next()?.parse().ok()?;
    Some((gi, ci))
}

/// `strata_gpu_mig_info` (1) and the frame buffer of every MIG device of one GPU; `parent`
/// are the GPU's labels (they carry `gpu` and `gpu_uuid`).
pub fn mig_points(parent: &LabelSet, migs: &[MigReading], ts: i64) -> Vec<Point> {
    let id = |v: Option<u32>| v.map_or_else(|| "unknown".to_string(), |v| v.to_string());
    let mut out = Vec::new();
    for m in migs {
        let mut labels = parent.clone();
        labels.extend([
            ("mig_uuid".to_string(), m.mig_uuid.clone()),
            ("gpu_instance_id".to_string(), id(m.gpu_instance_id)),
            ("compute_instance_id".to_string(), id(m.compute_instance_id)),
            ("mig_profile".to_string(), m.profile.clone()),
        ]);
        labels.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out.push(Point::new("strata_gpu_mig_info", labels.clone(), 1.0, ts));
        if let Some(b) = m.fb_used_bytes {
            out.push(Point::new(
                "strata_gpu_mig_fb_used_bytes",
                labels.clone(),
                b as f64,
                ts,
            ));
        }
        if let Some(b) = m.fb_total_bytes {
            out.push(Point::new(
                "strata_gpu_mig_fb_total_bytes",
                labels,
                b as f64,
                ts,
            ));
        }
    }
    out
}

pub use super::nvml_ffi::FabricInfo;

/// `gpu:fabric_state` for a completed registration that failed (NVML reports it as state
/// "completed" with an error status; DCGM's fabric-manager status uses the same code).
const FABRIC_FAILED: f64 = 4.0;

/// The fabric as one GPU sees it: `strata_gpu_nvswitch_links` (its NVLinks that reach an
/// NVSwitch), and where NVML reports the fabric manager's registration, `gpu:fabric_state`
/// (0 not supported, 1 not started, 2 in progress, 3 completed, 4 failed),
/// `gpu:fabric_bandwidth_degraded` (where the health mask says) and, once registered,
/// `strata_gpu_fabric_info{clique_id, cluster_uuid}`.
pub fn fabric_points(
    parent: &LabelSet,
    nvswitch_links: Option<u32>,
    fabric: Option<&FabricInfo>,
    ts: i64,
) -> Vec<Point> {
    let mut out: Vec<Point> = nvswitch_links
        .map(|n| {
            Point::new(
                "strata_gpu_nvswitch_links",
                parent.clone(),
                f64::from(n),
                ts,
            )
        })
        .into_iter()
        .collect();
    let Some(f) = fabric else { return out };
    out.push(Point::new(
        "gpu:fabric_state",
        parent.clone(),
        fabric_state(f),
        ts,
    ));
    // NVML_GPU_FABRIC_HEALTH_MASK_*_DEGRADED_BW: bits 0-1, 1 = degraded, 2 = not degraded,
    // 0 = not reported.
    match f.health_mask.map(|m| m & 0b11) {
        Some(1) => out.push(Point::new(
            "gpu:fabric_bandwidth_degraded",
            parent.clone(),
            1.0,
            ts,
        )),
        Some(2) => out.push(Point::new(
            "gpu:fabric_bandwidth_degraded",
            parent.clone(),
            0.0,
            ts,
        )),
        _ => {}
    }
    if f.state == 3 && !f.failed {
        let mut labels = parent.clone();
        labels.extend([
            ("clique_id".to_string(), f.clique_id.to_string()),
            ("cluster_uuid".to_string(), f.cluster_uuid.clone()),
        ]);
        labels.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out.push(Point::new("strata_gpu_fabric_info", labels, 1.0, ts));
    }
    out
}

/// The canonical fabric state code of one NVML reading.
fn fabric_state(f: &FabricInfo) -> f64 {
    if f.state == 3 && f.failed {
        FABRIC_FAILED
    } else {
        f64::from(f.state)
    }
}

/// The fabric part of the status line, from each GPU's NVSwitch link count and fabric
/// registration (`None` where NVML does not report one).
pub fn fabric_status(gpus: &[(Option<u32>, Option<&FabricInfo>)]) -> String {
    let total: u32 = gpus.iter().filter_map(|g| g.0).sum();
    let states: Vec<f64> = gpus
        .iter()
        .filter_map(|g| g.1)
        .filter(|f| f.state != 0)
        .map(fabric_state)
        .collect();
    let manager = if states.is_empty() {
        "fabric manager: not reported".to_string()
    } else {
        let n = states.len();
        let done = states.iter().filter(|s| **s == 3.0).count();
        let failed = states.iter().filter(|s| **s == FABRIC_FAILED).count();
        match (done, failed) {
            (d, _) if d == n => format!("fabric manager: registered {n}/{n} GPU(s)"),
            (d, f) => format!(
                "fabric manager: registered {d}/{n} GPU(s), {f} failed, {} not yet",
                n - d - f
            ),
        }
    };
    if total == 0 {
        format!("fabric not visible from this node (no NVSwitch-connected NVLink; {manager})")
    } else {
        let with = gpus.iter().filter(|g| g.0.is_some_and(|n| n > 0)).count();
        format!("NVSwitch fabric: {total} links from {with} GPU(s); {manager}")
    }
}

/// One NVML query, for remembering which ones fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Probe {
    Utilization,
    Memory,
    Power,
    Energy,
    Temperature,
    MemoryTemperature,
    SmClock,
    MemClock,
    Throttle,
    PcieRx,
    PcieTx,
    PcieReplay,
    Ecc,
    GpmSample,
    GpmMetrics,
    Gpm(GpmMetricId),
    MigCount,
    MigDevice,
    MigIds,
    Fabric,
}

impl Probe {
    fn describe(self) -> String {
        match self {
            Probe::Utilization => "utilization".into(),
            Probe::Memory => "memory info".into(),
            Probe::Power => "power usage".into(),
            Probe::Energy => "total energy".into(),
            Probe::Temperature => "temperature".into(),
            Probe::MemoryTemperature => "memory temperature".into(),
            Probe::SmClock => "SM clock".into(),
            Probe::MemClock => "memory clock".into(),
            Probe::Throttle => "throttle reasons".into(),
            Probe::PcieRx => "PCIe rx throughput".into(),
            Probe::PcieTx => "PCIe tx throughput".into(),
            Probe::PcieReplay => "PCIe replay counter".into(),
            Probe::Ecc => "ECC uncorrected errors".into(),
            Probe::GpmSample => "GPM sample".into(),
            Probe::GpmMetrics => "GPM metrics".into(),
            Probe::Gpm(id) => format!("GPM metric {id:?}"),
            Probe::MigCount => "MIG device count".into(),
            Probe::MigDevice => "MIG device".into(),
            Probe::MigIds => "MIG GPU/compute instance id".into(),
            Probe::Fabric => "GPU fabric info".into(),
        }
    }
}

/// Whether an error means the field will never work on this GPU and driver.
fn is_permanent(e: &NvmlError) -> bool {
    matches!(
        e,
        NvmlError::NotSupported | NvmlError::FunctionNotFound | NvmlError::FailedToLoadSymbol(_)
    )
}

/// Per-GPU memory of failing queries: unsupported ones are skipped, repeats are not re-reported.
#[derive(Debug, Default)]
struct ProbeState {
    index: u32,
    unsupported: HashSet<Probe>,
    last_error: HashMap<Probe, String>,
}

impl ProbeState {
    fn supported(&self, probe: Probe) -> bool {
        !self.unsupported.contains(&probe)
    }

    /// Runs `query` unless `probe` is known unsupported; a failure goes to `errors` once.
    fn read<T>(
        &mut self,
        probe: Probe,
        errors: &mut Vec<String>,
        query: impl FnOnce() -> Result<T, NvmlError>,
    ) -> Option<T> {
        if !self.supported(probe) {
            return None;
        }
        self.record(probe, errors, query())
    }

    fn record<T>(
        &mut self,
        probe: Probe,
        errors: &mut Vec<String>,
        result: Result<T, NvmlError>,
    ) -> Option<T> {
        match result {
            Ok(v) => {
                self.last_error.remove(&probe);
                Some(v)
            }
            Err(e) => {
                let msg = format!("gpu {} {}: {e:?}", self.index, probe.describe());
                if is_permanent(&e) {
                    self.unsupported.insert(probe);
                    errors.push(msg);
                } else if self.last_error.get(&probe) != Some(&msg) {
                    errors.push(msg.clone());
                    self.last_error.insert(probe, msg);
                }
                None
            }
        }
    }
}

/// The GPM metrics requested from every GPM-capable GPU (NVLink ones are added where a link is up).
const GPM_METRICS: [GpmMetricId; 7] = [
    GpmMetricId::GraphicsUtil,
    GpmMetricId::SmUtil,
    GpmMetricId::SmOccupancy,
    GpmMetricId::AnyTensorUtil,
    GpmMetricId::DramBwUtil,
    GpmMetricId::PcieRxPerSec,
    GpmMetricId::PcieTxPerSec,
];

/// The canonical signals GPM provides; GPM is sampled when any of them is wanted.
const GPM_SIGNALS: [&str; 9] = [
    "gpu:gr_engine_active_ratio",
    "gpu:sm_active_ratio",
    "gpu:sm_occupancy_ratio",
    "gpu:tensor_active_ratio",
    "gpu:dram_active_ratio",
    "gpu:pcie_rx_bytes_per_second",
    "gpu:pcie_tx_bytes_per_second",
    "gpu:nvlink_rx_bytes_per_second",
    "gpu:nvlink_tx_bytes_per_second",
];

/// One GPU and what the collector keeps about it between collections.
struct Gpu {
    device: Device<'static>,
    name: String,
    labels: LabelSet,
    mig: bool,
    /// NVLinks that reach an NVSwitch (static topology, read when opened).
    nvswitch_links: Option<u32>,
    /// The fabric manager's registration of this GPU, as last read (`None`: not reported).
    fabric: Option<FabricInfo>,
    gpm: bool,
    nvlink_active: bool,
    ecc_enabled: bool,
    /// `Some(last code)` where XID events are registered for this GPU.
    xid_last: Option<u64>,
    gpm_prev: Option<GpmSample<'static>>,
    probes: ProbeState,
}

impl Gpu {
    fn gpm_metric_ids(&self) -> Vec<GpmMetricId> {
        let mut ids = GPM_METRICS.to_vec();
        if self.nvlink_active {
            ids.extend([
                GpmMetricId::NvlinkTotalRxPerSec,
                GpmMetricId::NvlinkTotalTxPerSec,
            ]);
        }
        ids
    }

    /// Enumerates the MIG devices of a MIG-enabled GPU. Empty slots answer NotFound and are
    /// skipped; on a GPU without MIG mode nothing is called (see `open_gpu`).
    fn read_migs(&mut self, nvml: &Nvml, errors: &mut Vec<String>) -> Vec<MigReading> {
        let d = &self.device;
        let p = &mut self.probes;
        let Some(max) = p.read(Probe::MigCount, errors, || d.mig_device_count()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for i in 0..max {
            let mig = match d.mig_device_by_index(i) {
                Ok(m) => m,
                Err(NvmlError::NotFound | NvmlError::InvalidArg) => continue,
                Err(e) => {
                    if p.supported(Probe::MigDevice) {
                        p.record::<()>(Probe::MigDevice, errors, Err(e));
                    }
                    continue;
                }
            };
            let Ok(mig_uuid) = mig.uuid() else { continue };
            let ids = p
                .read(Probe::MigIds, errors, || {
                    Ok((
                        nvml_ffi::gpu_instance_id(nvml, &mig)?,
                        nvml_ffi::compute_instance_id(nvml, &mig)?,
                    ))
                })
                .or_else(|| legacy_mig_ids(&mig_uuid));
            let (gpu_instance_id, compute_instance_id) =
                ids.map_or((None, None), |(g, c)| (Some(g), Some(c)));
            let memory = mig.memory_info().ok();
            out.push(MigReading {
                profile: mig_profile(&mig.name().unwrap_or_default()),
                mig_uuid,
                gpu_instance_id,
                compute_instance_id,
                fb_used_bytes: memory.as_ref().map(|m| m.used),
                fb_total_bytes: memory.as_ref().map(|m| m.total),
            });
        }
        out
    }

    /// Reads every wanted field once, in NVML units.
    fn read(
        &mut self,
        nvml: &'static Nvml,
        fields: FieldSet,
        errors: &mut Vec<String>,
    ) -> RawReading {
        let want = |names: &[&str]| names.iter().any(|n| fields.includes(n));
        let gpm_ids = self.gpm_metric_ids();
        let d = &self.device;
        let p = &mut self.probes;
        let mut raw = RawReading {
            xid_last: self.xid_last,
            ..RawReading::default()
        };

        if want(&["gpu:util_ratio", "gpu:mem_copy_util_ratio"])
            && let Some(u) = p.read(Probe::Utilization, errors, || d.utilization_rates())
        {
            raw.gpu_util_pct = Some(u.gpu);
            raw.mem_util_pct = Some(u.memory);
        }
        if want(&["gpu:fb_used_bytes", "gpu:fb_free_bytes"])
            && let Some(m) = p.read(Probe::Memory, errors, || d.memory_info())
        {
            raw.fb_used_bytes = Some(m.used);
            raw.fb_free_bytes = Some(m.free);
        }
        if want(&["gpu:power_watts"]) {
            raw.power_mw = p.read(Probe::Power, errors, || d.power_usage());
        }
        if want(&["gpu:energy_joules_total"]) {
            raw.energy_mj = p.read(Probe::Energy, errors, || d.total_energy_consumption());
        }
        if want(&["gpu:temp_celsius"]) {
            raw.temp_c = p.read(Probe::Temperature, errors, || {
                d.temperature(TemperatureSensor::Gpu)
            });
        }
        if want(&["gpu:memory_temp_celsius"]) {
            raw.memory_temp_c = p.read(Probe::MemoryTemperature, errors, || {
                field_value(d, NVML_FI_DEV_MEMORY_TEMP)
            });
        }
        if want(&["gpu:sm_clock_hz"]) {
            raw.sm_clock_mhz = p.read(Probe::SmClock, errors, || d.clock_info(Clock::SM));
        }
        if want(&["gpu:mem_clock_hz"]) {
            raw.mem_clock_mhz = p.read(Probe::MemClock, errors, || d.clock_info(Clock::Memory));
        }
        if want(&["gpu:throttle_reasons"]) {
            raw.throttle_reasons = p
                .read(Probe::Throttle, errors, || d.current_throttle_reasons())
                .map(|r| r.bits());
        }
        if want(&["gpu:pcie_replays_total"]) {
            raw.pcie_replays = p.read(Probe::PcieReplay, errors, || d.pcie_replay_counter());
        }
        if self.ecc_enabled && want(&["gpu:ecc_uncorrected_errors_total"]) {
            raw.ecc_uncorrected = p.read(Probe::Ecc, errors, || {
                d.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Volatile)
            });
        }

        if self.gpm && want(&GPM_SIGNALS) {
            let ids = gpm_ids;
            if let Some(cur) = p.read(Probe::GpmSample, errors, || d.gpm_sample()) {
                if let Some(prev) = self.gpm_prev.take()
                    && let Some(results) = p.read(Probe::GpmMetrics, errors, || {
                        gpm_metrics_get(nvml, &prev, &cur, &ids)
                    })
                {
                    for (id, result) in ids.iter().zip(results) {
                        if !p.supported(Probe::Gpm(*id)) {
                            continue;
                        }
                        if let Some(m) = p.record(Probe::Gpm(*id), errors, result) {
                            set_gpm(&mut raw, *id, m.value);
                        }
                    }
                }
                self.gpm_prev = Some(cur);
            }
        }

        // The legacy PCIe counters block ~20 ms each: used only where GPM gave nothing.
        if want(&["gpu:pcie_rx_bytes_per_second"]) && raw.pcie_rx_kib_per_s.is_none() {
            raw.pcie_rx_kib_per_s = p
                .read(Probe::PcieRx, errors, || {
                    d.pcie_throughput(PcieUtilCounter::Receive)
                })
                .map(f64::from);
        }
        if want(&["gpu:pcie_tx_bytes_per_second"]) && raw.pcie_tx_kib_per_s.is_none() {
            raw.pcie_tx_kib_per_s = p
                .read(Probe::PcieTx, errors, || {
                    d.pcie_throughput(PcieUtilCounter::Send)
                })
                .map(f64::from);
        }
        raw
    }
}

/// Stores one GPM metric value (NVML units) into its raw slot.
fn set_gpm(raw: &mut RawReading, id: GpmMetricId, value: f64) {
    const MIB_IN_KIB: f64 = 1024.0;
    match id {
        GpmMetricId::GraphicsUtil => raw.gpm_graphics_pct = Some(value),
        GpmMetricId::SmUtil => raw.gpm_sm_active_pct = Some(value),
        GpmMetricId::SmOccupancy => raw.gpm_sm_occupancy_pct = Some(value),
        GpmMetricId::AnyTensorUtil => raw.gpm_tensor_pct = Some(value),
        GpmMetricId::DramBwUtil => raw.gpm_dram_pct = Some(value),
        GpmMetricId::PcieRxPerSec => raw.pcie_rx_kib_per_s = Some(value * MIB_IN_KIB),
        GpmMetricId::PcieTxPerSec => raw.pcie_tx_kib_per_s = Some(value * MIB_IN_KIB),
        GpmMetricId::NvlinkTotalRxPerSec => raw.nvlink_rx_mib_per_s = Some(value),
        GpmMetricId::NvlinkTotalTxPerSec => raw.nvlink_tx_mib_per_s = Some(value),
        _ => {}
    }
}

/// Reads one NVML field value (scope 0) as f64.
fn field_value(device: &Device<'static>, id: u32) -> Result<f64, NvmlError> {
    let sample = device
        .field_values_for(&[FieldId(id)])?
        .into_iter()
        .next()
        .ok_or(NvmlError::Unknown)??;
    Ok(match sample.value? {
        SampleValue::F64(v) => v,
        SampleValue::U32(v) => f64::from(v),
        SampleValue::U64(v) => v as f64,
        SampleValue::I64(v) => v as f64,
    })
}

/// Initialises NVML from the first library name that loads.
fn init_nvml(names: &[&str]) -> Result<Nvml, NvmlUnavailable> {
    let mut reasons = Vec::new();
    for name in names {
        match Nvml::builder().lib_path(std::ffi::OsStr::new(name)).init() {
            Ok(nvml) => return Ok(nvml),
            Err(e) => reasons.push(format!("{name}: {e}")),
        }
    }
    Err(NvmlUnavailable {
        reason: reasons.join("; "),
    })
}

/// The process-wide NVML handle, initialised on first success.
fn shared_nvml() -> Result<&'static Nvml, NvmlUnavailable> {
    if let Some(nvml) = NVML.get() {
        return Ok(nvml);
    }
    let nvml = init_nvml(&LIBRARY_NAMES)?;
    // A racing thread may have set it first; ours is then dropped (NVML is reference counted).
    Ok(NVML.get_or_init(|| nvml))
}

/// Registers XID critical-error events for every GPU that supports them. Returns the set (if
/// any GPU is registered) and marks the registered GPUs; failures go to `notes`.
fn register_xid_events(
    nvml: &'static Nvml,
    gpus: &mut [Gpu],
    notes: &mut Vec<String>,
) -> Option<EventSet<'static>> {
    let mut candidates: Vec<usize> = Vec::new();
    for (i, gpu) in gpus.iter().enumerate() {
        match gpu.device.supported_event_types() {
            Ok(t) if t.contains(EventTypes::CRITICAL_XID_ERROR) => candidates.push(i),
            Ok(_) => notes.push(format!("gpu {}: no XID events", gpu.probes.index)),
            Err(e) => notes.push(format!("gpu {} XID events: {e:?}", gpu.probes.index)),
        }
    }
    // A failed registration frees the whole set: start over without the GPU that failed.
    'attempt: while !candidates.is_empty() {
        let mut set = match nvml.create_event_set() {
            Ok(set) => set,
            Err(e) => {
                notes.push(format!("XID event set: {e:?}"));
                return None;
            }
        };
        for (pos, &i) in candidates.iter().enumerate() {
            match gpus[i]
                .device
                .register_events(EventTypes::CRITICAL_XID_ERROR, set)
            {
                Ok(s) => set = s,
                Err(e) => {
                    notes.push(format!(
                        "gpu {} XID events: {:?}",
                        gpus[i].probes.index, e.error
                    ));
                    candidates.remove(pos);
                    continue 'attempt;
                }
            }
        }
        for &i in &candidates {
            gpus[i].xid_last = Some(0);
        }
        return Some(set);
    }
    None
}

/// Reads NVIDIA GPUs directly through NVML. `Send`: run [`collect`](Self::collect) on a
/// blocking thread (it makes synchronous driver calls, and the first one sleeps ~100 ms).
pub struct NvmlCollector {
    nvml: &'static Nvml,
    gpus: Vec<Gpu>,
    events: Option<EventSet<'static>>,
    event_error: Option<String>,
    /// Things noticed while opening (devices skipped, XID registration failures).
    notes: Vec<String>,
}

impl std::fmt::Debug for NvmlCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.status())
    }
}

impl HostCollector for NvmlCollector {
    fn job(&self) -> &'static str {
        NVML_JOB
    }

    fn status(&self) -> String {
        NvmlCollector::status(self)
    }

    fn collect(&mut self, fields: FieldSet, timestamp_ms: i64) -> Collection {
        NvmlCollector::collect(self, fields, timestamp_ms)
    }
}

impl NvmlCollector {
    /// Loads `libnvidia-ml.so.1` at run time (nvml-wrapper's `Nvml::init`) and enumerates the
    /// GPUs; no library, no driver or no GPU → `Err`. `hostname` becomes the `Hostname` label.
    pub fn open(hostname: &str) -> Result<NvmlCollector, NvmlUnavailable> {
        let nvml = shared_nvml()?;
        let count = nvml.device_count().map_err(|e| NvmlUnavailable {
            reason: format!("device count: {e}"),
        })?;
        if count == 0 {
            return Err(NvmlUnavailable {
                reason: "the driver sees no GPU".into(),
            });
        }
        let mut notes = Vec::new();
        let mut gpus = Vec::new();
        for index in 0..count {
            match open_gpu(nvml, index, hostname) {
                Ok(gpu) => gpus.push(gpu),
                Err(e) => notes.push(format!("gpu {index} skipped: {e:?}")),
            }
        }
        if gpus.is_empty() {
            return Err(NvmlUnavailable {
                reason: format!("no GPU could be opened ({})", notes.join("; ")),
            });
        }
        let events = register_xid_events(nvml, &mut gpus, &mut notes);
        Ok(NvmlCollector {
            nvml,
            gpus,
            events,
            event_error: None,
            notes,
        })
    }

    /// One line for status displays: `NVML <ver>, driver <ver>, N GPU(s): <names>` and which
    /// optional groups work (GPM, NVLink, XID events, ECC, MIG).
    pub fn status(&self) -> String {
        let version = self.nvml.sys_nvml_version().unwrap_or_else(|_| "?".into());
        let driver = self
            .nvml
            .sys_driver_version()
            .unwrap_or_else(|_| "?".into());
        let names: Vec<&str> = self.gpus.iter().map(|g| g.name.as_str()).collect();
        let n = self.gpus.len();
        let group = |ok: usize, why_not: &str| match ok {
            0 => format!("no ({why_not})"),
            k if k == n => "yes".to_string(),
            k => format!("{k}/{n} GPUs"),
        };
        let gpm = group(
            self.gpus.iter().filter(|g| g.gpm).count(),
            "needs Hopper or newer, not in MIG mode",
        );
        let nvlink = group(
            self.gpus
                .iter()
                .filter(|g| g.gpm && g.nvlink_active)
                .count(),
            "no active link, or no GPM",
        );
        let xid = group(
            self.gpus.iter().filter(|g| g.xid_last.is_some()).count(),
            "event sets not supported; gpu:xid_last omitted",
        );
        let ecc = group(
            self.gpus.iter().filter(|g| g.ecc_enabled).count(),
            "ECC off",
        );
        let mig: Vec<String> = self
            .gpus
            .iter()
            .filter(|g| g.mig)
            .map(|g| g.probes.index.to_string())
            .collect();
        let mut line = format!(
            "NVML {version}, driver {driver}, {n} GPU(s): {}; GPM {gpm}; NVLink {nvlink}; XID events {xid}; ECC {ecc}",
            names.join(", ")
        );
        if !mig.is_empty() {
            line.push_str(&format!(
                "; MIG on GPU {} (parent series and one strata_gpu_mig_info per slice)",
                mig.join(",")
            ));
        }
        if mig.is_empty() {
            line.push_str("; MIG off");
        }
        let fabric: Vec<(Option<u32>, Option<&FabricInfo>)> = self
            .gpus
            .iter()
            .map(|g| (g.nvswitch_links, g.fabric.as_ref()))
            .collect();
        line.push_str(&format!("; {}", fabric_status(&fabric)));
        if !self.notes.is_empty() {
            line.push_str(&format!(" [{}]", self.notes.join("; ")));
        }
        line
    }

    /// Reads every GPU once and returns canonical `gpu:*` points stamped `timestamp_ms`.
    ///
    /// Blocks: NVML calls are synchronous, the legacy PCIe throughput counters (non-GPM GPUs)
    /// take ~20 ms each, and on the first collection (or after a GPM failure) GPM needs two
    /// samples, so the call sleeps ~100 ms once. Callers run it on a blocking thread.
    pub fn collect(&mut self, fields: FieldSet, timestamp_ms: i64) -> Collection {
        let mut errors = Vec::new();
        self.poll_xid(&mut errors);

        // GPM needs two samples: prime every GPM GPU that has none, then wait once for all.
        let mut primed = false;
        if GPM_SIGNALS.iter().any(|s| fields.includes(s)) {
            for gpu in self
                .gpus
                .iter_mut()
                .filter(|g| g.gpm && g.gpm_prev.is_none())
            {
                let device = &gpu.device;
                gpu.gpm_prev = gpu
                    .probes
                    .read(Probe::GpmSample, &mut errors, || device.gpm_sample());
                primed |= gpu.gpm_prev.is_some();
            }
        }
        if primed {
            std::thread::sleep(GPM_WARMUP);
        }

        let mut points = Vec::new();
        for gpu in &mut self.gpus {
            let raw = gpu.read(self.nvml, fields, &mut errors);
            points.extend(to_points(&raw, &gpu.labels, fields, timestamp_ms));
            if fields == FieldSet::Full {
                if gpu.mig {
                    let migs = gpu.read_migs(self.nvml, &mut errors);
                    points.extend(mig_points(&gpu.labels, &migs, timestamp_ms));
                }
                let device = &gpu.device;
                let nvml = self.nvml;
                gpu.fabric = gpu.probes.read(Probe::Fabric, &mut errors, || {
                    nvml_ffi::fabric_info(nvml, device)
                });
                points.extend(fabric_points(
                    &gpu.labels,
                    gpu.nvswitch_links,
                    gpu.fabric.as_ref(),
                    timestamp_ms,
                ));
            }
        }
        Collection { points, errors }
    }

    /// Drains queued XID events without blocking, keeping the last code per GPU.
    fn poll_xid(&mut self, errors: &mut Vec<String>) {
        let Some(set) = &self.events else { return };
        for _ in 0..MAX_EVENTS_PER_COLLECT {
            match set.wait(0) {
                Ok(event) => {
                    let Some(XidError::Value(code)) = event.event_data else {
                        continue;
                    };
                    let Ok(index) = event.device.index() else {
                        continue;
                    };
                    if let Some(gpu) = self.gpus.iter_mut().find(|g| g.probes.index == index) {
                        gpu.xid_last = Some(code);
                        // Each event once, with what the code means and what to do.
                        let code = u32::try_from(code).unwrap_or(u32::MAX);
                        errors.push(format!("gpu {index}: {}", super::xid::describe(code)));
                    }
                }
                Err(NvmlError::Timeout) => {
                    self.event_error = None;
                    return;
                }
                Err(e) => {
                    let msg = format!("XID event wait: {e:?}");
                    if self.event_error.as_ref() != Some(&msg) {
                        errors.push(msg.clone());
                        self.event_error = Some(msg);
                    }
                    return;
                }
            }
        }
    }
}

/// The driver's per-GPU compute process lists, for the engine↔GPU mapping
/// ([`crate::host::EngineGpuCollector`]).
#[derive(Debug, Default)]
pub struct NvmlProcesses;

impl crate::host::GpuProcessSource for NvmlProcesses {
    fn gpu_processes(&mut self) -> Result<Vec<crate::host::GpuProcesses>, String> {
        let nvml = shared_nvml().map_err(|e| e.reason)?;
        let count = nvml
            .device_count()
            .map_err(|e| format!("NVML device count: {e}"))?;
        let mut out = Vec::new();
        for index in 0..count {
            let Ok(device) = nvml.device_by_index(index) else {
                continue;
            };
            let pids = device
                .running_compute_processes()
                .map_err(|e| format!("NVML running compute processes of GPU {index}: {e}"))?
                .into_iter()
                .map(|p| p.pid)
                .collect();
            out.push(crate::host::GpuProcesses {
                index,
                uuid: device.uuid().unwrap_or_default(),
                model: device.name().unwrap_or_default(),
                pids,
            });
        }
        Ok(out)
    }
}

/// Opens one GPU: identity, labels, and which optional groups it supports.
fn open_gpu(nvml: &'static Nvml, index: u32, hostname: &str) -> Result<Gpu, NvmlError> {
    let device = nvml.device_by_index(index)?;
    let uuid = device.uuid()?;
    let name = device.name().unwrap_or_else(|_| "unknown".into());
    let pci_bus_id = device.pci_info().map(|p| p.bus_id).unwrap_or_default();
    let minor = device.minor_number().unwrap_or(index);
    // NVML_DEVICE_MIG_ENABLE = 1
    let mig = device.mig_mode().is_ok_and(|m| m.current == 1);
    let gpm = !mig && device.gpm_support().unwrap_or(false);
    let nvlink_active = (0..NVLINK_MAX_LINKS)
        .any(|link| device.link_wrapper_for(link).is_active().unwrap_or(false));
    let ecc_enabled = device.is_ecc_enabled().is_ok_and(|s| s.currently_enabled);
    let nvswitch_links = field_value(&device, NVML_FI_DEV_NVSWITCH_CONNECTED_LINK_COUNT)
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| v as u32);
    let fabric = nvml_ffi::fabric_info(nvml, &device).ok();
    Ok(Gpu {
        labels: gpu_labels(index, &uuid, minor, &name, hostname, &pci_bus_id),
        device,
        name,
        mig,
        nvswitch_links,
        fabric,
        gpm,
        nvlink_active,
        ecc_enabled,
        xid_last: None,
        gpm_prev: None,
        probes: ProbeState {
            index,
            ..ProbeState::default()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> LabelSet {
        gpu_labels(
            3,
            "GPU-7de7a1b2-0000-1111-2222-333344445555",
            3,
            "NVIDIA H100 80GB HBM3",
            "node-a",
            "00000000:19:00.0",
        )
    }

    fn full_reading() -> RawReading {
        RawReading {
            gpu_util_pct: Some(87),
            mem_util_pct: Some(40),
            fb_used_bytes: Some(10 * 1024 * 1024 * 1024),
            fb_free_bytes: Some(70 * 1024 * 1024 * 1024),
            power_mw: Some(612_345),
            energy_mj: Some(123_456_789),
            temp_c: Some(61),
            memory_temp_c: Some(70.0),
            sm_clock_mhz: Some(1755),
            mem_clock_mhz: Some(2619),
            throttle_reasons: Some(0x4),
            pcie_rx_kib_per_s: Some(2000.0),
            pcie_tx_kib_per_s: Some(100.0),
            pcie_replays: Some(2),
            ecc_uncorrected: Some(1),
            xid_last: Some(0),
            gpm_graphics_pct: Some(99.0),
            gpm_sm_active_pct: Some(95.5),
            gpm_sm_occupancy_pct: Some(12.5),
            gpm_tensor_pct: Some(90.0),
            gpm_dram_pct: Some(30.0),
            nvlink_rx_mib_per_s: Some(2.0),
            nvlink_tx_mib_per_s: Some(0.5),
        }
    }

    fn value(points: &[Point], name: &str) -> Option<f64> {
        points.iter().find(|p| p.name == name).map(|p| p.value)
    }

    #[test]
    fn converts_every_field_to_base_units() {
        let pts = to_points(&full_reading(), &labels(), FieldSet::Full, 42);
        let expect = [
            ("gpu:util_ratio", 0.87),
            ("gpu:mem_copy_util_ratio", 0.40),
            ("gpu:sm_active_ratio", 0.955),
            ("gpu:sm_occupancy_ratio", 0.125),
            ("gpu:tensor_active_ratio", 0.90),
            ("gpu:dram_active_ratio", 0.30),
            ("gpu:gr_engine_active_ratio", 0.99),
            ("gpu:fb_used_bytes", 10.0 * 1024.0 * 1024.0 * 1024.0),
            ("gpu:fb_free_bytes", 70.0 * 1024.0 * 1024.0 * 1024.0),
            ("gpu:power_watts", 612.345),
            ("gpu:energy_joules_total", 123_456.789),
            ("gpu:temp_celsius", 61.0),
            ("gpu:memory_temp_celsius", 70.0),
            ("gpu:sm_clock_hz", 1.755e9),
            ("gpu:mem_clock_hz", 2.619e9),
            ("gpu:throttle_reasons", 4.0),
            ("gpu:pcie_rx_bytes_per_second", 2000.0 * 1024.0),
            ("gpu:pcie_tx_bytes_per_second", 100.0 * 1024.0),
            ("gpu:pcie_replays_total", 2.0),
            ("gpu:nvlink_rx_bytes_per_second", 2.0 * 1024.0 * 1024.0),
            ("gpu:nvlink_tx_bytes_per_second", 0.5 * 1024.0 * 1024.0),
            ("gpu:xid_last", 0.0),
            ("gpu:ecc_uncorrected_errors_total", 1.0),
        ];
        assert_eq!(pts.len(), expect.len());
        for (name, want) in expect {
            let got = value(&pts, name).unwrap_or_else(|| panic!("{name} missing"));
            assert!(
                (got - want).abs() <= want.abs() * 1e-12,
                "{name}: {got} != {want}"
            );
        }
        assert!(pts.iter().all(|p| p.timestamp_ms == 42));
    }

    #[test]
    fn emits_only_canonical_gpu_names() {
        let vocab = crate::dialect::canonical();
        for p in to_points(&full_reading(), &labels(), FieldSet::Full, 0) {
            assert!(
                vocab.signal(&p.name).is_some(),
                "{} is not canonical",
                p.name
            );
        }
    }

    #[test]
    fn missing_fields_are_omitted() {
        let raw = RawReading {
            temp_c: Some(40),
            power_mw: Some(70_000),
            ..RawReading::default()
        };
        let pts = to_points(&raw, &labels(), FieldSet::Full, 1);
        let names: Vec<&str> = pts.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["gpu:power_watts", "gpu:temp_celsius"]);
        assert!(to_points(&RawReading::default(), &labels(), FieldSet::Full, 1).is_empty());
    }

    #[test]
    fn non_finite_values_are_dropped() {
        let raw = RawReading {
            gpm_tensor_pct: Some(f64::NAN),
            memory_temp_c: Some(f64::INFINITY),
            ..RawReading::default()
        };
        assert!(to_points(&raw, &labels(), FieldSet::Full, 1).is_empty());
    }

    #[test]
    fn reduced_field_set_emits_only_incident_signals() {
        let pts = to_points(&full_reading(), &labels(), FieldSet::Reduced, 7);
        let mut names: Vec<&str> = pts.iter().map(|p| p.name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "gpu:dram_active_ratio",
                "gpu:fb_used_bytes",
                "gpu:nvlink_rx_bytes_per_second",
                "gpu:nvlink_tx_bytes_per_second",
                "gpu:power_watts",
                "gpu:sm_active_ratio",
                "gpu:sm_clock_hz",
                "gpu:temp_celsius",
                "gpu:tensor_active_ratio",
                "gpu:throttle_reasons",
                "gpu:util_ratio",
            ]
        );
        let vocab = crate::dialect::canonical();
        assert!(
            pts.iter()
                .all(|p| vocab.signal(&p.name).is_some_and(|s| s.incident))
        );
    }

    #[test]
    fn labels_are_exact_and_sorted() {
        let pts = to_points(&full_reading(), &labels(), FieldSet::Full, 0);
        let want: LabelSet = [
            ("Hostname", "node-a"),
            ("device", "nvidia3"),
            ("gpu", "3"),
            ("gpu_uuid", "GPU-7de7a1b2-0000-1111-2222-333344445555"),
            ("modelName", "NVIDIA H100 80GB HBM3"),
            ("pci_bus_id", "00000000:19:00.0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert!(pts.iter().all(|p| p.labels == want));
    }

    #[test]
    fn unsupported_field_is_reported_once_then_skipped() {
        let mut state = ProbeState {
            index: 0,
            ..ProbeState::default()
        };
        let mut errors = Vec::new();
        let mut calls = 0;
        for _ in 0..3 {
            let r: Option<f64> = state.read(Probe::MemoryTemperature, &mut errors, || {
                calls += 1;
                Err(NvmlError::NotSupported)
            });
            assert_eq!(r, None);
        }
        assert_eq!(calls, 1);
        assert_eq!(errors, ["gpu 0 memory temperature: NotSupported"]);
    }

    #[test]
    fn transient_error_is_reported_again_only_after_recovery() {
        let mut state = ProbeState::default();
        let mut errors = Vec::new();
        let _ = state.read::<u32>(Probe::Power, &mut errors, || Err(NvmlError::Unknown));
        let _ = state.read::<u32>(Probe::Power, &mut errors, || Err(NvmlError::Unknown));
        assert_eq!(errors.len(), 1);
        assert_eq!(state.read(Probe::Power, &mut errors, || Ok(5u32)), Some(5));
        let _ = state.read::<u32>(Probe::Power, &mut errors, || Err(NvmlError::Unknown));
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn gpm_values_land_in_their_slots() {
        let mut raw = RawReading::default();
        set_gpm(&mut raw, GpmMetricId::AnyTensorUtil, 91.0);
        set_gpm(&mut raw, GpmMetricId::PcieRxPerSec, 3.0);
        set_gpm(&mut raw, GpmMetricId::NvlinkTotalTxPerSec, 4.0);
        set_gpm(&mut raw, GpmMetricId::Fp64Util, 50.0);
        assert_eq!(raw.gpm_tensor_pct, Some(91.0));
        assert_eq!(raw.pcie_rx_kib_per_s, Some(3.0 * 1024.0));
        assert_eq!(raw.nvlink_tx_mib_per_s, Some(4.0));
        let pts = to_points(&raw, &labels(), FieldSet::Full, 0);
        assert_eq!(
            value(&pts, "gpu:pcie_rx_bytes_per_second"),
            Some(3.0 * 1024.0 * 1024.0)
        );
        assert_eq!(pts.len(), 3);
    }

    #[test]
    fn mig_profile_and_legacy_ids_come_from_nvml_strings() {
        assert_eq!(mig_profile("NVIDIA H100 80GB HBM3 MIG 1g.10gb"), "1g.10gb");
        assert_eq!(mig_profile("NVIDIA A100-SXM4-40GB MIG 3g.20gb"), "3g.20gb");
        assert_eq!(mig_profile("NVIDIA H200"), "unknown");
        assert_eq!(
            legacy_mig_ids("MIG-GPU-7de7a1b2-0000-1111-2222-333344445555/2/0"),
            Some((2, 0))
        );
        assert_eq!(
            legacy_mig_ids("MIG-4f5e1c9a-1111-5b8e-9c2d-0123456789ab"),
            None
        );
        assert_eq!(legacy_mig_ids("MIG-GPU-x/a/0"), None);
    }

    #[test]
    fn mig_devices_get_their_own_series_with_pinned_labels() {
        let migs = [
            MigReading {
                mig_uuid: "MIG-aaaa".into(),
                gpu_instance_id: Some(1),
                compute_instance_id: Some(0),
                profile: "3g.40gb".into(),
                fb_used_bytes: Some(1024),
                fb_total_bytes: Some(4096),
            },
            MigReading {
                mig_uuid: "MIG-bbbb".into(),
                profile: "1g.10gb".into(),
                ..MigReading::default()
            },
        ];
        let pts = mig_points(&labels(), &migs, 9);
        let names: Vec<&str> = pts.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "strata_gpu_mig_info",
                "strata_gpu_mig_fb_used_bytes",
                "strata_gpu_mig_fb_total_bytes",
                "strata_gpu_mig_info"
            ]
        );
        let get = |p: &Point, k: &str| {
            p.labels
                .iter()
                .find(|(lk, _)| lk == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        for (p, (mig, gi, ci, profile)) in [&pts[0], &pts[3]].into_iter().zip([
            ("MIG-aaaa", "1", "0", "3g.40gb"),
            ("MIG-bbbb", "unknown", "unknown", "1g.10gb"),
        ]) {
            assert_eq!(get(p, "gpu"), "3");
            assert_eq!(
                get(p, "gpu_uuid"),
                "GPU-7de7a1b2-0000-1111-2222-333344445555"
            );
            assert_eq!(get(p, "mig_uuid"), mig);
            assert_eq!(get(p, "gpu_instance_id"), gi);
            assert_eq!(get(p, "compute_instance_id"), ci);
            assert_eq!(get(p, "mig_profile"), profile);
            assert!(p.labels.windows(2).all(|w| w[0].0 < w[1].0));
        }
        assert_eq!(pts[2].value, 4096.0);
        assert!(mig_points(&labels(), &[], 9).is_empty());
    }

    #[test]
    fn fabric_visibility_follows_nvswitch_links() {
        assert_eq!(fabric_points(&labels(), None, None, 1), []);
        let pts = fabric_points(&labels(), Some(18), None, 1);
        assert_eq!(
            pts.iter()
                .map(|p| (p.name.as_str(), p.value))
                .collect::<Vec<_>>(),
            [("strata_gpu_nvswitch_links", 18.0)]
        );
        assert!(fabric_status(&[(None, None)]).starts_with("fabric not visible from this node"));
        assert!(
            fabric_status(&[(Some(0), None), (None, None)])
                .starts_with("fabric not visible from this node")
        );
        assert_eq!(
            fabric_status(&[(Some(18), None), (Some(18), None), (None, None)]),
            "NVSwitch fabric: 36 links from 2 GPU(s); fabric manager: not reported"
        );
    }

    fn fabric(state: u8, failed: bool, health_mask: Option<u32>) -> FabricInfo {
        FabricInfo {
            state,
            failed,
            clique_id: 7,
            cluster_uuid: "00112233-4455-6677-8899-aabbccddeeff".into(),
            health_mask,
        }
    }

    #[test]
    fn fabric_state_failed_registration_and_degraded_bandwidth() {
        let values = |f: &FabricInfo| {
            fabric_points(&labels(), Some(18), Some(f), 1)
                .into_iter()
                .map(|p| (p.name, p.value))
                .collect::<Vec<_>>()
        };
        let names = |v: &[(String, f64)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        // Registered, bandwidth not degraded: state 3, degraded 0, the info series.
        let ok = values(&fabric(3, false, Some(2)));
        assert_eq!(
            names(&ok),
            [
                "strata_gpu_nvswitch_links",
                "gpu:fabric_state",
                "gpu:fabric_bandwidth_degraded",
                "strata_gpu_fabric_info"
            ]
        );
        assert_eq!((ok[1].1, ok[2].1), (3.0, 0.0));
        // "Completed" with an error status is a failed registration: 4, and no info series.
        let failed = values(&fabric(3, true, Some(1)));
        assert_eq!(failed[1].1, 4.0);
        assert_eq!(
            failed[2],
            ("gpu:fabric_bandwidth_degraded".to_string(), 1.0)
        );
        assert!(!names(&failed).contains(&"strata_gpu_fabric_info".to_string()));
        // Not started, health not reported (v1 call or mask 0): state only.
        assert_eq!(
            values(&fabric(1, false, None)),
            [
                ("strata_gpu_nvswitch_links".to_string(), 18.0),
                ("gpu:fabric_state".to_string(), 1.0)
            ]
        );
        assert_eq!(values(&fabric(2, false, Some(0))).len(), 2);
        let info = fabric_points(&labels(), None, Some(&fabric(3, false, None)), 1)
            .into_iter()
            .find(|p| p.name == "strata_gpu_fabric_info")
            .expect("info");
        assert!(
            info.labels
                .contains(&("clique_id".to_string(), "7".to_string()))
        );
        assert!(info.labels.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn fabric_status_counts_registrations() {
        let (ok, failed, starting, none) = (
            fabric(3, false, None),
            fabric(3, true, None),
            fabric(2, false, None),
            fabric(0, false, None),
        );
        assert_eq!(
            fabric_status(&[(Some(18), Some(&ok)), (Some(18), Some(&ok))]),
            "NVSwitch fabric: 36 links from 2 GPU(s); fabric manager: registered 2/2 GPU(s)"
        );
        assert_eq!(
            fabric_status(&[
                (Some(18), Some(&ok)),
                (Some(18), Some(&failed)),
                (Some(18), Some(&starting))
            ]),
            "NVSwitch fabric: 54 links from 3 GPU(s); fabric manager: registered 1/3 GPU(s), 1 failed, 1 not yet"
        );
        // A PCIe GPU answers "not supported": that is no fabric, not a fabric problem.
        assert_eq!(
            fabric_status(&[(Some(0), Some(&none))]),
            "fabric not visible from this node (no NVSwitch-connected NVLink; fabric manager: not reported)"
        );
    }

    #[test]
    fn open_without_driver_is_a_clean_error() {
        match NvmlCollector::open("h") {
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.starts_with("NVML not available:"), "{msg}");
                assert!(!e.reason.is_empty());
            }
            // On a machine with an NVIDIA driver this must work instead.
            Ok(c) => assert!(c.status().starts_with("NVML "), "{}", c.status()),
        }
    }

    #[test]
    fn missing_library_is_a_clean_error() {
        let e = init_nvml(&["/nonexistent/libnvidia-ml.so.1"]).expect_err("must not load");
        assert!(
            e.to_string()
                .starts_with("NVML not available: /nonexistent/libnvidia-ml.so.1")
        );
    }

    #[test]
    fn collector_can_move_to_a_blocking_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<NvmlCollector>();
    }
}
