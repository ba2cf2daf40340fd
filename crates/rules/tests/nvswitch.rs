//! The NVSwitch part of the fabric pack (`packs/fabric.yml`, group `fabric-nvswitch-alerts`),
//! evaluated by Strata's rule engine in virtual time with the canonical recording rules in
//! front: GPU fabric state as the NVML collector writes it (`fabric_points`), and the DCGM
//! exporter's own series in its wire format (`render_metrics.go`: GPU fields labelled
//! `gpu`/`UUID`/`modelName`/`hostname`, switch entities `nvswitch`/`hostname`). Each alert
//! has a case that fires and a near miss that must not.

use std::collections::BTreeSet;

use sources::Point;
use sources::gpu::nvml::{FabricInfo, fabric_points};
use testkit::db::Db;

const T0: i64 = 1_700_000_000_000;
const STEP_MS: i64 = 15_000;
const UUID: &str = "GPU-7de7a1b2-0000-1111-2222-333344445555";

fn owned(labels: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut l: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    l.sort_unstable();
    l
}

/// What the NVML collector writes for GPU 0 of node-a (its `instance`/`job` added as the
/// scrape path adds them).
fn nvml_gpu() -> Vec<(String, String)> {
    owned(&[
        ("Hostname", "node-a"),
        ("device", "nvidia0"),
        ("gpu", "0"),
        ("gpu_uuid", UUID),
        ("instance", "node-a"),
        ("job", "nvml"),
        ("modelName", "NVIDIA H200"),
        ("pci_bus_id", "00000000:19:00.0"),
    ])
}

fn fabric(state: u8, failed: bool, health_mask: Option<u32>) -> FabricInfo {
    FabricInfo {
        state,
        failed,
        clique_id: 32766,
        cluster_uuid: "5b1a7c3e-0000-4000-8000-00000000aa01".into(),
        health_mask,
    }
}

/// A DCGM exporter series of GPU 0 (GPU entity labels as the exporter renders them).
fn dcgm_gpu(name: &str, value: f64, t: i64) -> Point {
    Point::new(
        name,
        owned(&[
            ("UUID", UUID),
            ("device", "nvidia0"),
            ("gpu", "0"),
            ("hostname", "node-a"),
            ("instance", "node-a:9400"),
            ("job", "dcgm"),
            ("modelName", "NVIDIA H200"),
            ("pci_bus_id", "00000000:19:00.0"),
        ]),
        value,
        t,
    )
}

/// A DCGM exporter series of NVSwitch `n` (switch entity: `nvswitch` and `hostname` only).
fn dcgm_switch(name: &str, n: &str, value: f64, t: i64) -> Point {
    Point::new(
        name,
        owned(&[
            ("hostname", "node-a"),
            ("instance", "node-a:9400"),
            ("job", "dcgm"),
            ("nvswitch", n),
        ]),
        value,
        t,
    )
}

/// Runs the canonical and fabric packs over `steps` evaluations 15 s apart, writing what
/// `points(step, t)` returns before each. Returns the fabric alerts that fired.
fn fired(steps: i64, mut points: impl FnMut(i64, i64) -> Vec<Point>) -> BTreeSet<String> {
    let mut triage = testkit::db::triage_of(&["canonical.yml", "fabric.yml"]);
    let db = Db::new();
    for step in 0..steps {
        let t = T0 + step * STEP_MS;
        db.write("test", &points(step, t));
        triage.step(t, &db, &db);
    }
    triage
        .fired()
        .iter()
        .filter(|a| a.contains("Fabric") || a.starts_with("NVSwitch"))
        .cloned()
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// NVML points of GPU 0: `links` NVSwitch links and the given fabric reading.
fn nvml(links: u32, f: &FabricInfo, t: i64) -> Vec<Point> {
    fabric_points(&nvml_gpu(), Some(links), Some(f), t)
}

#[test]
fn a_registered_fabric_fires_nothing() {
    let got = fired(40, |_, t| nvml(18, &fabric(3, false, Some(2)), t));
    assert_eq!(got, set(&[]));
}

#[test]
fn a_failed_registration_pages() {
    let got = fired(40, |_, t| nvml(18, &fabric(3, true, None), t));
    assert_eq!(got, set(&["GPUFabricNotRegistered"]));
}

#[test]
fn a_fabric_manager_that_never_started_pages_on_an_nvswitch_gpu() {
    let got = fired(40, |_, t| nvml(18, &fabric(1, false, None), t));
    assert_eq!(got, set(&["GPUFabricNotRegistered"]));
}

#[test]
fn not_started_without_nvswitch_links_is_no_fault_near_miss() {
    // A platform that reports "not started" where no fabric manager is needed.
    let got = fired(40, |_, t| nvml(0, &fabric(1, false, None), t));
    assert_eq!(got, set(&[]));
}

#[test]
fn training_that_completes_within_minutes_near_miss() {
    // Boot: in progress for 3 minutes, then registered.
    let got = fired(40, |step, t| {
        let state = if step < 12 { 2 } else { 3 };
        nvml(18, &fabric(state, false, None), t)
    });
    assert_eq!(got, set(&[]));
}

#[test]
fn degraded_bandwidth_for_five_minutes_files_a_ticket() {
    let got = fired(40, |step, t| {
        let mask = if step >= 10 { 1 } else { 2 };
        nvml(18, &fabric(3, false, Some(mask)), t)
    });
    assert_eq!(got, set(&["GPUFabricBandwidthDegraded"]));
}

#[test]
fn degraded_bandwidth_that_recovers_within_minutes_near_miss() {
    let got = fired(40, |step, t| {
        let mask = if (10..25).contains(&step) { 1 } else { 2 };
        nvml(18, &fabric(3, false, Some(mask)), t)
    });
    assert_eq!(got, set(&[]));
}

#[test]
fn dcgm_fabric_manager_failure_pages_through_the_canonical_rules() {
    // dcgmFabricManagerStatus_t: 3 success, 4 failure.
    let got = fired(40, |step, t| {
        let status = if step >= 10 { 4.0 } else { 3.0 };
        vec![
            dcgm_gpu("DCGM_FI_DEV_GPU_UTIL", 40.0, t),
            dcgm_gpu("DCGM_FI_DEV_FABRIC_MANAGER_STATUS", status, t),
        ]
    });
    assert_eq!(got, set(&["GPUFabricNotRegistered"]));
}

#[test]
fn dcgm_not_started_alone_is_not_enough_near_miss() {
    // Without NVML's NVSwitch link count Strata cannot tell a fabric that should be running
    // from a platform that needs none: a miss, never a false page.
    let got = fired(40, |_, t| {
        vec![dcgm_gpu("DCGM_FI_DEV_FABRIC_MANAGER_STATUS", 1.0, t)]
    });
    assert_eq!(got, set(&[]));
}

#[test]
fn a_fatal_nvswitch_sxid_pages_and_non_fatal_ones_do_not() {
    let got = fired(20, |step, t| {
        let fatal = if step >= 10 { 24.0 } else { 0.0 };
        vec![
            dcgm_switch("DCGM_FI_DEV_NVSWITCH_FATAL_ERRORS", "0", 0.0, t),
            dcgm_switch("DCGM_FI_DEV_NVSWITCH_FATAL_ERRORS", "1", fatal, t),
            dcgm_switch("DCGM_FI_DEV_NVSWITCH_NON_FATAL_ERRORS", "0", 12028.0, t),
            dcgm_switch("DCGM_FI_DEV_NVSWITCH_TEMPERATURE_CURRENT", "0", 52.0, t),
        ]
    });
    assert_eq!(got, set(&["NVSwitchFatalError"]));
}

#[test]
fn non_fatal_sxids_alone_near_miss() {
    let got = fired(20, |_, t| {
        vec![
            dcgm_switch("DCGM_FI_DEV_NVSWITCH_FATAL_ERRORS", "0", 0.0, t),
            dcgm_switch("DCGM_FI_DEV_NVSWITCH_NON_FATAL_ERRORS", "0", 12028.0, t),
        ]
    });
    assert_eq!(got, set(&[]));
}
