//! What an XID code means. The driver reports a GPU fault as a bare number (`NVRM: Xid
//! (PCI:0000:18:00): 79, ...`, NVML's critical-XID event, DCGM's `DCGM_FI_DEV_XID_ERRORS`);
//! this table turns it into a meaning, how urgent it is and what to do, for the UI, the
//! alert that pages on lost GPUs and the findings.
//!
//! Written from NVIDIA's published XID catalog ("Xid Errors" in the GPU deployment guide and
//! its Ampere-and-newer spreadsheet, resolution buckets RESTART_APP / RESET_GPU /
//! RESTART_BM / CONTACT_SUPPORT), in Strata's words. Codes not listed get [`describe`]'s
//! generic text, never an error.

/// How urgently an XID needs a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum XidSeverity {
    /// The GPU or its memory is lost: drain the node now (the alert pages).
    Page,
    /// The hardware needs attention soon (a reset, a diagnostic run, a ticket).
    Ticket,
    /// Usually the application's own fault, or a follow-up of another XID.
    Info,
}

/// One catalogued XID code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Xid {
    /// The code the driver prints.
    pub code: u32,
    /// Short name, as in the catalog.
    pub name: &'static str,
    /// What happened, for an operator.
    pub meaning: &'static str,
    /// How urgent it is.
    pub severity: XidSeverity,
    /// What to do about it.
    pub action: &'static str,
}

const fn x(
    code: u32,
    name: &'static str,
    severity: XidSeverity,
    meaning: &'static str,
    action: &'static str,
) -> Xid {
    Xid {
        code,
        name,
        meaning,
        severity,
        action,
    }
}

use XidSeverity::{Info, Page, Ticket};

const RESTART_APP: &str = "Restart the engine; if the same XID comes back with other workloads, drain the node and run `dcgmi diag -r 3`.";
const RESET_GPU: &str = "Drain the node, reset the GPU (`nvidia-smi -r`, or reboot) and run `dcgmi diag -r 3`; replace it if the XID returns.";
const NVLINK: &str = "Drain the node; check the links (`nvidia-smi nvlink -s`, `nvidia-smi nvlink -e`), reset the GPUs and the NVSwitch fabric (reboot); replace the baseboard if links stay down.";

/// The catalogued codes, sorted by code.
pub const XIDS: &[Xid] = &[
    x(
        8,
        "GPU stopped processing",
        Ticket,
        "A channel stopped making progress (idle timeout); often a hung kernel or a driver fault.",
        RESTART_APP,
    ),
    x(
        13,
        "Graphics Engine Exception",
        Info,
        "A kernel faulted (out-of-range access, illegal instruction); usually the application's bug.",
        RESTART_APP,
    ),
    x(
        31,
        "GPU memory page fault",
        Info,
        "A kernel touched an unmapped GPU address (illegal memory access); usually the application's bug.",
        RESTART_APP,
    ),
    x(
        32,
        "Invalid or corrupted push buffer stream",
        Ticket,
        "The driver received a corrupted command stream: a driver fault or a bad PCIe link.",
        RESET_GPU,
    ),
    x(
        38,
        "Driver firmware error",
        Ticket,
        "The GPU firmware reported an error.",
        RESET_GPU,
    ),
    x(
        43,
        "GPU stopped processing (reset channel)",
        Info,
        "The driver stopped the application's channel after a fault in that application; the GPU itself is healthy.",
        RESTART_APP,
    ),
    x(
        45,
        "Preemptive cleanup",
        Info,
        "The driver cleaned up channels after an earlier error or a killed process; look at the XID before it.",
        "Look for the XID logged just before; nothing to do on its own.",
    ),
    x(
        48,
        "Double Bit ECC Error",
        Page,
        "An uncorrectable (double-bit) ECC error in GPU memory: the data on this GPU cannot be trusted.",
        RESET_GPU,
    ),
    x(
        61,
        "Internal micro-controller breakpoint/warning",
        Ticket,
        "The GPU's internal micro-controller hit a breakpoint or warning.",
        RESET_GPU,
    ),
    x(
        62,
        "Internal micro-controller halt",
        Page,
        "The GPU's internal micro-controller halted: the GPU no longer runs work.",
        RESET_GPU,
    ),
    x(
        63,
        "ECC page retirement or row remapping recorded",
        Ticket,
        "A memory row was marked for remapping (or a page for retirement) after ECC errors; it takes effect at the next GPU reset.",
        "Reset the GPU when convenient (drain first) so the remap applies; watch gpu:remapped_rows_uncorrectable_total.",
    ),
    x(
        64,
        "ECC page retirement or row remapper recording failure",
        Page,
        "An ECC error could not be contained by row remapping: the memory is out of spare rows or the remap failed.",
        "Drain the node and replace the GPU (row remapping failed).",
    ),
    x(
        68,
        "NVDEC0 Exception",
        Info,
        "The video decoder faulted; unrelated to inference unless the engine decodes video.",
        RESTART_APP,
    ),
    x(
        69,
        "Graphics Engine class error",
        Ticket,
        "The graphics engine received an invalid command.",
        RESTART_APP,
    ),
    x(
        74,
        "NVLink Error",
        Page,
        "An NVLink link reported a fatal error: tensor-parallel traffic between GPUs fails or falls back.",
        NVLINK,
    ),
    x(
        79,
        "GPU has fallen off the bus",
        Page,
        "The GPU no longer answers on PCIe: it is lost until the node is rebooted.",
        "Drain the node and reboot; check power, cooling and the PCIe slot or riser; replace the GPU if it repeats.",
    ),
    x(
        92,
        "High single-bit ECC error rate",
        Ticket,
        "Corrected (single-bit) ECC errors arrive at a high rate: the memory is degrading.",
        "Schedule a GPU reset and `dcgmi diag -r 3`; replace the GPU if the rate stays high.",
    ),
    x(
        94,
        "Contained ECC error",
        Ticket,
        "An uncorrectable ECC error was contained: only the application using that memory was stopped.",
        "Restart the engine; reset the GPU when convenient so the row remap applies.",
    ),
    x(
        95,
        "Uncontained ECC error",
        Page,
        "An uncorrectable ECC error could not be contained: every application on this GPU is affected.",
        RESET_GPU,
    ),
    x(
        109,
        "Context Switch Timeout Error",
        Ticket,
        "A context switch timed out: a hung kernel or a driver fault.",
        RESTART_APP,
    ),
    x(
        119,
        "GSP RPC Timeout",
        Page,
        "The GPU System Processor stopped answering the driver: the GPU is unusable until reset.",
        RESET_GPU,
    ),
    x(
        120,
        "GSP Error",
        Page,
        "The GPU System Processor reported an error: the GPU is unusable until reset.",
        RESET_GPU,
    ),
    x(
        121,
        "C2C Link Error",
        Ticket,
        "The chip-to-chip link (Grace Hopper/Blackwell CPU-GPU) reported an error.",
        RESET_GPU,
    ),
    x(
        140,
        "Unrecovered ECC Error",
        Page,
        "An ECC error the GPU could not recover from: its memory is lost.",
        RESET_GPU,
    ),
    x(
        154,
        "GPU recovery action changed",
        Ticket,
        "The driver says what recovery the GPU now needs (reset or reboot); read the text with it.",
        "Do the recovery the driver names (`nvidia-smi -q | grep -i recovery`): a GPU reset or a node reboot.",
    ),
];

/// The catalogued entry for `code`.
pub fn lookup(code: u32) -> Option<&'static Xid> {
    XIDS.binary_search_by_key(&code, |x| x.code)
        .ok()
        .map(|i| &XIDS[i])
}

/// One line for an operator: `XID 79 (GPU has fallen off the bus, page): ... Action: ...`,
/// or a generic line for codes the table does not hold.
pub fn describe(code: u32) -> String {
    match lookup(code) {
        Some(x) => format!(
            "XID {} ({}, {}): {} Action: {}",
            x.code,
            x.name,
            match x.severity {
                Page => "page",
                Ticket => "ticket",
                Info => "info",
            },
            x.meaning,
            x.action
        ),
        None => format!(
            "XID {code}: not in Strata's table; look it up in NVIDIA's XID catalog (docs.nvidia.com/deploy/xid-errors)."
        ),
    }
}

/// The codes that page: the GPU or its memory is lost.
pub fn paging_codes() -> impl Iterator<Item = u32> {
    XIDS.iter().filter(|x| x.severity == Page).map(|x| x.code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique_so_lookup_finds_every_code() {
        assert!(XIDS.windows(2).all(|w| w[0].code < w[1].code));
        for x in XIDS {
            assert_eq!(lookup(x.code).map(|f| f.code), Some(x.code));
        }
        assert!(lookup(1).is_none());
    }

    #[test]
    fn lost_gpu_codes_page_and_application_faults_do_not() {
        let paging: Vec<u32> = paging_codes().collect();
        for code in [48, 64, 74, 79, 95, 119, 140] {
            assert!(paging.contains(&code), "{code} should page");
        }
        for code in [13, 31, 43, 45, 63, 94] {
            assert!(!paging.contains(&code), "{code} should not page");
        }
    }

    #[test]
    fn describe_names_meaning_and_action_or_points_at_the_catalog() {
        let d = describe(79);
        assert!(
            d.starts_with("XID 79 (GPU has fallen off the bus, page)"),
            "{d}"
        );
        assert!(d.contains("Action: Drain the node"), "{d}");
        assert!(describe(999).contains("NVIDIA's XID catalog"));
    }
}
