//! A dcgm-exporter counters CSV (`-f counters.csv`) that collects what Strata's incident
//! profile needs. A stock exporter leaves out four of the incident signals (SM activity,
//! clock-event reasons, NVLink rx/tx bytes); this file is the stock default set plus those,
//! so `strata generate dcgm-counters` can hand the operator the fix in one command.

/// One CSV row: DCGM field name, Prometheus type, help.
type Field = (&'static str, &'static str, &'static str);

/// The fields dcgm-exporter's own `etc/default-counters.csv` enables (4.5.x / main), in its order.
const DEFAULT: &[Field] = &[
    (
        "DCGM_FI_DEV_SM_CLOCK",
        "gauge",
        "SM clock frequency (in MHz).",
    ),
    (
        "DCGM_FI_DEV_MEM_CLOCK",
        "gauge",
        "Memory clock frequency (in MHz).",
    ),
    (
        "DCGM_FI_DEV_MEMORY_TEMP",
        "gauge",
        "Memory temperature (in C).",
    ),
    ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C)."),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W)."),
    (
        "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
        "counter",
        "Total energy consumption since boot (in mJ).",
    ),
    (
        "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
        "counter",
        "Total number of PCIe retries.",
    ),
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %)."),
    (
        "DCGM_FI_DEV_MEM_COPY_UTIL",
        "gauge",
        "Memory utilization (in %).",
    ),
    (
        "DCGM_FI_DEV_ENC_UTIL",
        "gauge",
        "Encoder utilization (in %).",
    ),
    (
        "DCGM_FI_DEV_DEC_UTIL",
        "gauge",
        "Decoder utilization (in %).",
    ),
    (
        "DCGM_FI_DEV_XID_ERRORS",
        "gauge",
        "Value of the last XID error encountered.",
    ),
    (
        "DCGM_FI_DEV_FB_FREE",
        "gauge",
        "Framebuffer memory free (in MiB).",
    ),
    (
        "DCGM_FI_DEV_FB_USED",
        "gauge",
        "Framebuffer memory used (in MiB).",
    ),
    (
        "DCGM_FI_DEV_FB_RESERVED",
        "gauge",
        "Framebuffer memory reserved (in MiB).",
    ),
    (
        "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL",
        "counter",
        "Total number of NVLink bandwidth counters for all lanes.",
    ),
    (
        "DCGM_FI_DEV_VGPU_LICENSE_STATUS",
        "gauge",
        "vGPU License status",
    ),
    (
        "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
        "counter",
        "Number of remapped rows for uncorrectable errors",
    ),
    (
        "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS",
        "counter",
        "Number of remapped rows for correctable errors",
    ),
    (
        "DCGM_FI_DEV_ROW_REMAP_FAILURE",
        "gauge",
        "Whether remapping of rows has failed",
    ),
    ("DCGM_FI_DRIVER_VERSION", "label", "Driver Version"),
    (
        "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
        "gauge",
        "Ratio of time the graphics engine is active.",
    ),
    (
        "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
        "gauge",
        "Ratio of cycles the tensor (HMMA) pipe is active.",
    ),
    (
        "DCGM_FI_PROF_DRAM_ACTIVE",
        "gauge",
        "Ratio of cycles the device memory interface is active sending or receiving data.",
    ),
    (
        "DCGM_FI_PROF_PCIE_TX_BYTES",
        "gauge",
        "The rate of data transmitted over the PCIe bus - including both protocol headers and data payloads - in bytes per second.",
    ),
    (
        "DCGM_FI_PROF_PCIE_RX_BYTES",
        "gauge",
        "The rate of data received over the PCIe bus - including both protocol headers and data payloads - in bytes per second.",
    ),
];

/// What Strata adds: the incident fields a stock exporter lacks, the ECC counters, and the
/// fabric fields (fabric-manager status, NVSwitch SXids and temperature: dcgm-exporter reads
/// the switch fields from the node's NVSwitch entities; a node without them leaves them out).
const ADDED: &[Field] = &[
    (
        "DCGM_FI_PROF_SM_ACTIVE",
        "gauge",
        "The ratio of cycles an SM has at least 1 warp assigned.",
    ),
    (
        "DCGM_FI_PROF_SM_OCCUPANCY",
        "gauge",
        "The ratio of number of warps resident on an SM.",
    ),
    (
        "DCGM_FI_DEV_CLOCKS_EVENT_REASONS",
        "gauge",
        "Current clock event (throttle) reasons bit mask.",
    ),
    (
        "DCGM_FI_PROF_NVLINK_TX_BYTES",
        "gauge",
        "The rate of data transmitted over NVLink - not including protocol headers - in bytes per second.",
    ),
    (
        "DCGM_FI_PROF_NVLINK_RX_BYTES",
        "gauge",
        "The rate of data received over NVLink - not including protocol headers - in bytes per second.",
    ),
    (
        "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
        "counter",
        "Total number of double-bit volatile ECC errors.",
    ),
    (
        "DCGM_FI_DEV_FABRIC_MANAGER_STATUS",
        "gauge",
        "Fabric manager registration of the GPU (0 not supported; 1 not started; 2 in progress; 3 success; 4 failure).",
    ),
    (
        "DCGM_FI_DEV_NVSWITCH_FATAL_ERRORS",
        "gauge",
        "Last fatal SXid of an NVSwitch (switch entities).",
    ),
    (
        "DCGM_FI_DEV_NVSWITCH_NON_FATAL_ERRORS",
        "gauge",
        "Last non-fatal SXid of an NVSwitch (switch entities).",
    ),
    (
        "DCGM_FI_DEV_NVSWITCH_TEMPERATURE_CURRENT",
        "gauge",
        "NVSwitch temperature (in C).",
    ),
];

/// The counters CSV: dcgm-exporter's default field set plus the fields Strata's incident
/// profile reads, in the format dcgm-exporter's `-f` flag reads (`# comments`, then
/// `field, type, help` rows).
pub fn dcgm_counters_csv() -> String {
    let mut out = String::from(
        "# dcgm-exporter counters for Strata (written by `strata generate dcgm-counters`).\n\
         # Run: dcgm-exporter -f counters.csv\n\
         # Format: DCGM FIELD, Prometheus metric type, help message\n\
         # The profiling fields (DCGM_FI_PROF_*) need a datacenter GPU (Volta or newer)\n\
         # and cost some exporter CPU; collect them every 1 s or slower.\n\n\
         # dcgm-exporter's default set\n",
    );
    let row = |out: &mut String, (field, kind, help): &Field| {
        out.push_str(&format!("{field}, {kind}, {help}\n"));
    };
    DEFAULT.iter().for_each(|f| row(&mut out, f));
    out.push_str(
        "\n# Added for Strata's incident and fabric signals (absent from the stock CSVs)\n",
    );
    ADDED.iter().for_each(|f| row(&mut out, f));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::{canonical, table};

    /// Reads the CSV the way dcgm-exporter does (Go `encoding/csv` with `Comment = '#'`,
    /// every field trimmed, exactly three per record, a known Prometheus type).
    fn parse(csv: &str) -> Vec<[String; 3]> {
        csv.lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                assert!(!l.contains('"'), "a quote changes Go's CSV parse: {l}");
                let f: Vec<String> = l.split(',').map(|s| s.trim().to_string()).collect();
                assert_eq!(f.len(), 3, "dcgm-exporter needs 3 fields: {l}");
                assert!(
                    ["gauge", "counter", "histogram", "summary", "label"].contains(&f[1].as_str()),
                    "unknown type in {l}"
                );
                assert!(f[0].starts_with("DCGM_FI_"), "{l}");
                [f[0].clone(), f[1].clone(), f[2].clone()]
            })
            .collect()
    }

    #[test]
    fn csv_parses_as_dcgm_exporter_reads_it_and_covers_every_incident_signal() {
        let rows = parse(&dcgm_counters_csv());
        let fields: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
        assert_eq!(rows.len(), DEFAULT.len() + ADDED.len());
        let mut unique = fields.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), fields.len(), "a field twice");
        // Every incident signal has a dcgm row whose native field the CSV collects.
        let dcgm = table("dcgm").expect("dcgm table");
        for s in canonical().signals.iter().filter(|s| s.incident) {
            assert!(
                dcgm.maps
                    .iter()
                    .any(|m| m.canonical == s.name && fields.contains(&m.native.as_str())),
                "{} is not collected by the generated CSV",
                s.name
            );
        }
        for f in [
            "DCGM_FI_PROF_SM_ACTIVE",
            "DCGM_FI_DEV_CLOCKS_EVENT_REASONS",
            "DCGM_FI_PROF_NVLINK_TX_BYTES",
            "DCGM_FI_DEV_FABRIC_MANAGER_STATUS",
            "DCGM_FI_DEV_NVSWITCH_FATAL_ERRORS",
        ] {
            assert!(fields.contains(&f), "{f}");
        }
    }
}
