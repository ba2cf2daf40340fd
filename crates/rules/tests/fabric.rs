//! The fabric pack (`packs/fabric.yml`) over what the InfiniBand collector reads from a fake
//! `/sys/class/infiniband` (the sources crate's kernel-layout fixture, copied to a temp dir and
//! changed step by step), evaluated by Strata's rule engine in virtual time. Each alert has a
//! case that fires and a near miss that must not.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use sources::collector::HostCollector;
use sources::gpu::FieldSet;
use sources::host::infiniband::InfinibandCollector;
use testkit::db::Db;

const T0: i64 = 1_700_000_000_000;
const STEP_MS: i64 = 15_000;

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read fixture") {
        let e = e.expect("entry");
        let dst = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).expect("copy");
        }
    }
}

/// Runs the packs over `steps` collections 15 s apart; before each, `change(step, port dir
/// of mlx5_0 port 1)` edits the fake tree. Returns the alerts that fired.
fn fired(steps: i64, mut change: impl FnMut(i64, &Path)) -> BTreeSet<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("infiniband");
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../sources/tests/fixtures/sysfs-infiniband");
    copy_tree(&fixture, &root);
    let port = root.join("mlx5_0/ports/1");
    let mut collector = InfinibandCollector::new(&root);
    let db = Db::new();
    // The fabric pack alone: the other packs do not read fabric:ib_* and would only slow
    // the run down.
    let mut triage = testkit::db::triage_of(&["fabric.yml"]);
    for step in 0..steps {
        change(step, &port);
        let t = T0 + step * STEP_MS;
        let mut got = collector.collect(FieldSet::Full, t);
        assert!(got.errors.is_empty(), "{:?}", got.errors);
        for p in &mut got.points {
            p.labels.push(("instance".into(), "node-a".into()));
            p.labels.push(("job".into(), "infiniband".into()));
            p.labels.sort_unstable();
        }
        db.write("test", &got.points);
        triage.step(t, &db, &db);
    }
    triage
        .fired()
        .iter()
        .filter(|a| a.starts_with("Fabric"))
        .cloned()
        .collect()
}

fn write(port: &Path, file: &str, value: impl std::fmt::Display) {
    std::fs::write(port.join(file), format!("{value}\n")).expect("write sysfs file");
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_steady_fabric_fires_nothing() {
    assert_eq!(fired(60, |_, _| {}), set(&[]));
}

#[test]
fn a_link_flap_fires() {
    let got = fired(40, |step, port| {
        if step == 20 {
            write(port, "counters/link_downed", 2);
        }
    });
    assert_eq!(got, set(&["FabricLinkFlap"]));
}

#[test]
fn a_counter_reset_is_not_a_flap_near_miss() {
    // `perfquery -R` / a counter clear: every counter drops to zero, the link stays up.
    let got = fired(40, |step, port| {
        if step == 20 {
            for f in [
                "link_downed",
                "port_xmit_data",
                "port_rcv_data",
                "port_xmit_discards",
            ] {
                write(port, &format!("counters/{f}"), 0);
            }
        }
    });
    assert_eq!(got, set(&[]));
}

#[test]
fn an_active_port_that_goes_down_pages() {
    let got = fired(40, |step, port| {
        if step == 20 {
            write(port, "state", "1: DOWN");
            write(port, "phys_state", "3: Disabled");
        }
    });
    assert_eq!(got, set(&["FabricLinkFlap", "FabricPortDown"]));
}

#[test]
fn a_port_that_was_never_active_is_not_down_near_miss() {
    let got = fired(40, |step, port| {
        if step == 0 {
            write(port, "state", "1: DOWN");
            write(port, "phys_state", "3: Disabled");
        }
    });
    assert_eq!(got, set(&[]));
}

#[test]
fn errors_rising_above_the_threshold_fire() {
    // 3 symbol errors every 15 s: 0.2/s for 20 minutes.
    let got = fired(80, |step, port| {
        write(port, "counters/symbol_error", step * 3)
    });
    assert_eq!(got, set(&["FabricPortErrorsRising"]));
}

#[test]
fn errors_below_the_threshold_near_miss() {
    // 1 symbol error every 15 s: 0.067/s, under the 0.1/s line.
    let got = fired(80, |step, port| write(port, "counters/symbol_error", step));
    assert_eq!(got, set(&[]));
}
