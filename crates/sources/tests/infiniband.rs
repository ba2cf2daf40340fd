//! The InfiniBand/RoCE collector over a fake `/sys/class/infiniband` laid out as the kernel's
//! ABI document describes it (`tests/fixtures/sysfs-infiniband`), copied to a temp dir so
//! tests can reset counters, take links down and remove ports.

use std::path::{Path, PathBuf};

use sources::Point;
use sources::collector::HostCollector;
use sources::gpu::FieldSet;
use sources::host::infiniband::{InfinibandCollector, read_ports};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sysfs-infiniband")
}

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

fn fake_sysfs() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("infiniband");
    copy_tree(&fixture(), &root);
    (dir, root)
}

fn find<'a>(points: &'a [Point], name: &str, labels: &[(&str, &str)]) -> Option<&'a Point> {
    points.iter().find(|p| {
        p.name == name
            && labels
                .iter()
                .all(|(k, v)| p.labels.iter().any(|(lk, lv)| lk == k && lv == v))
    })
}

fn value(points: &[Point], name: &str, labels: &[(&str, &str)]) -> f64 {
    find(points, name, labels)
        .unwrap_or_else(|| panic!("{name} {labels:?} missing"))
        .value
}

#[test]
fn reads_ib_and_roce_ports_in_base_units() {
    let (_keep, root) = fake_sysfs();
    let mut c = InfinibandCollector::new(&root);
    let got = c.collect(FieldSet::Full, 7);
    assert!(got.errors.is_empty(), "{:?}", got.errors);
    let ib = [("device", "mlx5_0"), ("port", "1")];
    let roce = [("device", "mlx5_1"), ("port", "1")];
    // port_xmit_data counts 4-byte words.
    assert_eq!(
        value(&got.points, "fabric:ib_transmit_bytes_total", &ib),
        1.0e12
    );
    assert_eq!(
        value(&got.points, "fabric:ib_receive_bytes_total", &ib),
        5.0e11
    );
    assert_eq!(
        value(&got.points, "fabric:ib_transmit_packets_total", &ib),
        9.0e8
    );
    assert_eq!(value(&got.points, "fabric:ib_link_downed_total", &ib), 1.0);
    assert_eq!(value(&got.points, "fabric:ib_port_state", &ib), 4.0);
    assert_eq!(value(&got.points, "fabric:ib_port_phys_state", &ib), 5.0);
    assert_eq!(
        value(&got.points, "fabric:ib_port_rate_bytes_per_second", &ib),
        50.0e9
    );
    assert_eq!(
        value(&got.points, "fabric:ib_port_rate_bytes_per_second", &roce),
        12.5e9
    );
    assert!(
        find(
            &got.points,
            "fabric:ib_port_info",
            &[("device", "mlx5_0"), ("link_layer", "InfiniBand")]
        )
        .is_some()
    );
    assert!(
        find(
            &got.points,
            "fabric:ib_port_info",
            &[("device", "mlx5_1"), ("link_layer", "Ethernet")]
        )
        .is_some()
    );
    let errs = |d: &'static str, c: &'static str| {
        value(
            &got.points,
            "fabric:ib_port_errors_total",
            &[("device", d), ("counter", c)],
        )
    };
    assert_eq!(errs("mlx5_0", "port_xmit_discards"), 3.0);
    assert_eq!(errs("mlx5_1", "out_of_buffer"), 12.0);
    assert_eq!(errs("mlx5_1", "out_of_sequence"), 1.0);
    assert_eq!(
        value(
            &got.points,
            "fabric:ib_congestion_total",
            &[("device", "mlx5_1"), ("counter", "np_cnp_sent")]
        ),
        700.0
    );
    assert_eq!(
        value(
            &got.points,
            "fabric:ib_congestion_total",
            &[("device", "mlx5_1"), ("counter", "rp_cnp_handled")]
        ),
        650.0
    );
    // Counters Strata does not map (VL15_dropped, rx_write_requests, ...) are not exported.
    assert!(got.points.iter().all(|p| {
        !p.labels
            .iter()
            .any(|(_, v)| v == "VL15_dropped" || v == "rx_write_requests")
    }));
    // Every series has the port labels and the timestamp.
    assert!(got.points.iter().all(|p| p.timestamp_ms == 7
        && p.labels.iter().any(|(k, _)| k == "device")
        && p.labels.iter().any(|(k, _)| k == "port")));
    assert!(
        c.status().starts_with("InfiniBand/RoCE: 2 port(s)"),
        "{}",
        c.status()
    );
}

#[test]
fn a_counter_reset_is_passed_through_and_a_down_link_is_visible() {
    let (_keep, root) = fake_sysfs();
    let port = root.join("mlx5_0/ports/1");
    let mut c = InfinibandCollector::new(&root);
    let before = c.collect(FieldSet::Full, 1);
    // Driver reload: counters start again from zero, the link retrains.
    std::fs::write(port.join("counters/port_xmit_data"), "10\n").expect("write");
    std::fs::write(port.join("counters/link_downed"), "0\n").expect("write");
    std::fs::write(port.join("state"), "1: DOWN\n").expect("write");
    std::fs::write(port.join("phys_state"), "2: Polling\n").expect("write");
    let after = c.collect(FieldSet::Full, 2);
    let ib = [("device", "mlx5_0")];
    assert_eq!(
        value(&before.points, "fabric:ib_transmit_bytes_total", &ib),
        1.0e12
    );
    assert_eq!(
        value(&after.points, "fabric:ib_transmit_bytes_total", &ib),
        40.0
    );
    assert_eq!(value(&after.points, "fabric:ib_port_state", &ib), 1.0);
    assert_eq!(value(&after.points, "fabric:ib_port_phys_state", &ib), 2.0);
    assert!(after.errors.is_empty(), "{:?}", after.errors);
    assert!(
        c.status().contains("mlx5_0/1 InfiniBand not active"),
        "{}",
        c.status()
    );
}

#[test]
fn a_port_that_disappears_is_reported_once_and_drops_its_series() {
    let (_keep, root) = fake_sysfs();
    let mut c = InfinibandCollector::new(&root);
    assert!(
        c.collect(FieldSet::Full, 1)
            .points
            .iter()
            .any(|p| p.labels.iter().any(|(_, v)| v == "mlx5_1"))
    );
    std::fs::remove_dir_all(root.join("mlx5_1")).expect("unplug");
    let got = c.collect(FieldSet::Full, 2);
    assert_eq!(
        got.errors,
        ["InfiniBand port mlx5_1/1 disappeared; its series go stale"]
    );
    assert!(
        got.points
            .iter()
            .all(|p| p.labels.iter().all(|(_, v)| v != "mlx5_1"))
    );
    assert!(!got.points.is_empty());
    assert!(c.collect(FieldSet::Full, 3).errors.is_empty());
}

#[test]
fn malformed_files_are_reported_once_and_skipped() {
    let (_keep, root) = fake_sysfs();
    std::fs::write(
        root.join("mlx5_0/ports/1/counters/symbol_error"),
        "garbage\n",
    )
    .expect("write");
    let mut c = InfinibandCollector::new(&root);
    let first = c.collect(FieldSet::Full, 1);
    assert_eq!(
        first.errors,
        ["mlx5_0 port 1 counters/symbol_error: not a counter: \"garbage\""]
    );
    assert!(
        find(
            &first.points,
            "fabric:ib_port_errors_total",
            &[("counter", "symbol_error"), ("device", "mlx5_0")]
        )
        .is_none()
    );
    assert!(
        find(
            &first.points,
            "fabric:ib_transmit_bytes_total",
            &[("device", "mlx5_0")]
        )
        .is_some()
    );
    assert!(c.collect(FieldSet::Full, 2).errors.is_empty());
}

#[test]
fn no_rdma_hardware_is_no_ports_and_a_clear_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("infiniband");
    let (ports, errors) = read_ports(&missing);
    assert!(ports.is_empty() && errors.is_empty());
    assert!(!InfinibandCollector::has_ports(&missing));
    let mut c = InfinibandCollector::new(&missing);
    assert_eq!(c.collect(FieldSet::Full, 1), Default::default());
    assert!(
        c.status().contains("fabric not visible from this node"),
        "{}",
        c.status()
    );
    assert!(InfinibandCollector::has_ports(&fixture()));
}
