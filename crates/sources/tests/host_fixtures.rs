//! The engine process, cgroup and PSI collectors over fake `/proc` and `/sys/fs/cgroup`
//! trees laid out as the kernel documents them (`fixtures/host/`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sources::collector::HostCollector;
use sources::gpu::FieldSet;
use sources::host::{Engine, HostPaths, ProcessCollector, PsiCollector, pid_listening_on};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/host")
}

fn paths() -> HostPaths {
    HostPaths {
        proc: root().join("proc"),
        cgroup: root().join("sys/fs/cgroup"),
    }
}

fn values(c: &mut dyn HostCollector) -> (BTreeMap<String, f64>, Vec<String>) {
    let got = c.collect(FieldSet::Full, 1_000);
    let mut out = BTreeMap::new();
    for p in got.points {
        let extra: Vec<String> = p
            .labels
            .iter()
            .filter(|(k, _)| k != "engine_instance")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let key = if extra.is_empty() {
            p.name.clone()
        } else {
            format!("{}{{{}}}", p.name, extra.join(","))
        };
        out.insert(key, p.value);
    }
    (out, got.errors)
}

#[test]
fn the_engine_pid_is_found_from_its_listening_port() {
    assert_eq!(pid_listening_on(&paths().proc, 8000), Some(4242));
    // The worker's own listener, and a port only in an established connection.
    assert_eq!(pid_listening_on(&paths().proc, 36700), Some(4300));
    assert_eq!(pid_listening_on(&paths().proc, 9999), None);
}

#[test]
fn process_tree_and_cgroup_of_the_engine() {
    let mut c = ProcessCollector::new(paths(), Engine::Port(8000), "127.0.0.1:8000".into());
    let (v, errors) = values(&mut c);
    assert!(errors.is_empty(), "{errors:?}");
    // 4242 and its worker 4300; init and sshd are not in the tree.
    assert_eq!(v["proc:processes"], 2.0);
    assert_eq!(
        v["proc:cpu_seconds_total"],
        (152_300.0 + 20_700.0 + 912_000.0 + 45_000.0) / 100.0
    );
    assert_eq!(v["proc:threads"], 57.0 + 88.0);
    assert_eq!(
        v["proc:resident_memory_bytes"],
        (8_123_456.0 + 4_000_000.0) * 1024.0
    );
    assert_eq!(v["proc:open_fds"], 12.0);
    assert_eq!(v["proc:cgroup_cpu_periods_total"], 12_000.0);
    assert_eq!(v["proc:cgroup_cpu_throttled_periods_total"], 3_000.0);
    assert_eq!(v["proc:cgroup_cpu_throttled_seconds_total"], 450.0);
    assert_eq!(v["proc:cgroup_cpu_limit_cores"], 8.0);
    assert_eq!(v["proc:cgroup_memory_bytes"], 34_359_738_368.0);
    assert_eq!(v["proc:cgroup_memory_limit_bytes"], 68_719_476_736.0);
    assert_eq!(v["proc:cgroup_oom_kills_total"], 1.0);
    assert_eq!(v["proc:cgroup_memory_pressure_seconds_total"], 1.234567);
    assert!(
        c.status().contains("pid 4242, 2 process(es)"),
        "{}",
        c.status()
    );
}

#[test]
fn an_unlimited_cgroup_has_no_limit_series_and_a_missing_engine_is_a_status() {
    let mut c = ProcessCollector::new(paths(), Engine::Pid(5000), "sshd".into());
    let (v, errors) = values(&mut c);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(v["proc:processes"], 1.0);
    assert!(!v.contains_key("proc:cgroup_cpu_limit_cores"), "{v:?}");

    let mut c = ProcessCollector::new(paths(), Engine::Port(9999), "127.0.0.1:9999".into());
    let (v, errors) = values(&mut c);
    assert!(v.is_empty() && errors.is_empty(), "{v:?} {errors:?}");
    assert!(
        c.status()
            .contains("no readable process listens on port 9999"),
        "{}",
        c.status()
    );
}

#[test]
fn node_pressure_stall_seconds() {
    let mut c = PsiCollector::new(&paths().proc);
    let (v, errors) = values(&mut c);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        v["node:pressure_stall_seconds_total{resource=cpu,scope=some}"],
        987.654321
    );
    assert_eq!(
        v["node:pressure_stall_seconds_total{resource=io,scope=full}"],
        44.444444
    );
    assert_eq!(v.len(), 6);

    let mut c = PsiCollector::new(Path::new("/nonexistent"));
    let (v, errors) = values(&mut c);
    assert!(v.is_empty());
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(values(&mut c).1.is_empty(), "each failure is reported once");
    assert!(c.status().contains("CONFIG_PSI"), "{}", c.status());
}
