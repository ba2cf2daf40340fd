//! The runtime pack (`packs/runtime.yml`) in virtual time with Strata's rule engine: a collective stall (NCCL failures while a GPU of the same node does
//! no tensor math under load), a CPU-bound engine (its cgroup throttled while the GPUs idle)
//! and the XIDs that page, each with its near misses.

use std::collections::BTreeSet;
use std::time::Duration;

use rules::triage::Triage;
use sources::Point;
use testkit::db::Db;

const T0: i64 = 1_700_000_000_000;
const STEP_MS: i64 = 15_000;
const STEPS: i64 = 28;

type Labels = Vec<(String, String)>;

fn l(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn gpu(node: &str) -> Labels {
    l(&[("Hostname", node), ("gpu", "0"), ("gpu_uuid", "GPU-1")])
}

/// How the node's GPU, engine and host series move; `step` counts 15 s steps.
struct World {
    tensor: f64,
    xid: f64,
    /// `(kind, node)` of NCCL events: one each step from step 8 on.
    nccl: Option<(&'static str, &'static str)>,
    /// Share of the cgroup's CPU periods throttled, and CPU used over the limit.
    cpu: Option<(f64, f64)>,
    /// A fleet (series labelled `node` by the agents): the requests running on this node's
    /// engine, while another node's engine runs 12.
    fleet: Option<f64>,
}

impl World {
    fn points(&self, step: i64) -> Vec<Point> {
        let t = T0 + step * STEP_MS;
        let secs = (step * STEP_MS / 1000) as f64;
        let mut out = vec![
            Point::new("gpu:tensor_active_ratio", gpu("h200"), self.tensor, t),
            Point::new("gpu:sm_active_ratio", gpu("h200"), 0.3, t),
            Point::new("gpu:xid_last", gpu("h200"), self.xid, t),
        ];
        let engine = |node: Option<&str>, running: f64| {
            let mut labels = l(&[
                ("instance", "127.0.0.1:8000"),
                ("engine", "vllm"),
                ("model", "m"),
            ]);
            if let Some(n) = node {
                labels.push(("node".to_string(), n.to_string()));
                labels[0].1 = format!("{n}:8000");
            }
            Point::new("llm:requests_running", labels, running, t)
        };
        match self.fleet {
            None => out.push(engine(None, 12.0)),
            Some(here) => {
                out.push(engine(Some("h200"), here));
                out.push(engine(Some("other-node"), 12.0));
                out.push(Point::new(
                    "gpu:tensor_active_ratio",
                    gpu("other-node"),
                    0.7,
                    t,
                ));
            }
        }
        for kind in ["timeout", "socket", "invalid_usage"] {
            for node in ["h200", "other-node"] {
                let n = match self.nccl {
                    Some((k, at)) if k == kind && at == node => (step - 7).max(0) as f64,
                    _ => 0.0,
                };
                out.push(Point::new(
                    "nccl:events_total",
                    l(&[
                        ("instance", node),
                        ("job", "nccl"),
                        ("kind", kind),
                        ("source", "-"),
                    ]),
                    n,
                    t,
                ));
            }
        }
        if let Some((throttled, used)) = self.cpu {
            let proc = || {
                l(&[
                    ("instance", "h200"),
                    ("job", "process"),
                    ("engine_instance", "127.0.0.1:8000"),
                ])
            };
            // 10 periods of 100 ms a second; an 8-core limit.
            out.extend([
                Point::new("proc:cgroup_cpu_periods_total", proc(), secs * 10.0, t),
                Point::new(
                    "proc:cgroup_cpu_throttled_periods_total",
                    proc(),
                    secs * 10.0 * throttled,
                    t,
                ),
                Point::new("proc:cgroup_cpu_limit_cores", proc(), 8.0, t),
                Point::new("proc:cpu_seconds_total", proc(), secs * 8.0 * used, t),
            ]);
        }
        out
    }
}

/// Runs the packs for 10 minutes; the diagnoses and alerts that fired or went pending, and
/// the labels of the firing alerts.
fn run(world: World) -> (BTreeSet<String>, Vec<Labels>) {
    let db = Db::new();
    // The runtime pack alone: its inputs are canonical already (no recording rule needed),
    // and the other packs would only slow the test.
    let groups = rules::load("runtime.yml", runtime_pack()).expect("runtime pack loads");
    let mut triage = Triage::new(
        groups,
        Duration::from_secs(15),
        Duration::from_secs(600),
        Vec::new(),
    );
    let mut seen = BTreeSet::new();
    let mut labels = Vec::new();
    for step in 0..STEPS {
        let t = T0 + step * STEP_MS;
        db.write("test", &world.points(step));
        triage.step(t, &db, &db);
        seen.extend(triage.findings.open().map(|f| f.name.clone()));
        seen.extend(triage.fired().iter().cloned());
        labels = triage
            .all_alerts()
            .iter()
            .map(|a| a.labels.clone())
            .collect();
    }
    (seen, labels)
}

fn runtime_pack() -> &'static str {
    rules::packs::FILES
        .iter()
        .find(|(n, _)| *n == "runtime.yml")
        .map(|(_, t)| *t)
        .expect("runtime.yml is a built-in pack")
}

fn world() -> World {
    World {
        tensor: 0.6,
        xid: 0.0,
        nccl: None,
        cpu: None,
        fleet: None,
    }
}

#[test]
fn nccl_timeouts_with_idle_tensor_cores_are_a_collective_stall() {
    for kind in ["timeout", "socket"] {
        let (d, _) = run(World {
            tensor: 0.02,
            nccl: Some((kind, "h200")),
            ..world()
        });
        assert!(d.contains("collective_stall"), "{kind}: {d:?}");
    }
}

#[test]
fn collective_stall_near_misses() {
    // NCCL timeouts, but the tensor cores work: no stall.
    let (d, _) = run(World {
        tensor: 0.6,
        nccl: Some(("timeout", "h200")),
        ..world()
    });
    assert!(!d.contains("collective_stall"), "{d:?}");
    // Idle tensor cores without NCCL failures: not a collective stall.
    let (d, _) = run(World {
        tensor: 0.02,
        ..world()
    });
    assert!(!d.contains("collective_stall"), "{d:?}");
    // A start-up configuration error is not a stall.
    let (d, _) = run(World {
        tensor: 0.02,
        nccl: Some(("invalid_usage", "h200")),
        ..world()
    });
    assert!(!d.contains("collective_stall"), "{d:?}");
    // Timeouts on another node do not make this node's idle GPU a stall.
    let (d, _) = run(World {
        tensor: 0.02,
        nccl: Some(("timeout", "other-node")),
        ..world()
    });
    assert!(!d.contains("collective_stall"), "{d:?}");
}

#[test]
fn in_a_fleet_only_the_nodes_own_engines_make_its_load() {
    let stall = |here: f64, cpu: Option<(f64, f64)>| {
        run(World {
            tensor: 0.02,
            nccl: Some(("timeout", "h200")),
            cpu,
            fleet: Some(here),
            ..world()
        })
        .0
    };
    // The node's own engine runs requests: a stall, and CPU-bound when throttled.
    let d = stall(12.0, Some((0.4, 0.5)));
    assert!(
        d.contains("collective_stall") && d.contains("cpu_bound_engine"),
        "{d:?}"
    );
    // Its engine is idle; another node is busy: neither (an idle node's GPU is idle).
    let d = stall(0.0, Some((0.4, 0.5)));
    assert!(
        !d.contains("collective_stall") && !d.contains("cpu_bound_engine"),
        "{d:?}"
    );
}

#[test]
fn a_throttled_engine_with_idle_gpus_is_cpu_bound() {
    // Throttled in 40 % of the periods.
    let (d, _) = run(World {
        tensor: 0.05,
        cpu: Some((0.4, 0.5)),
        ..world()
    });
    assert!(d.contains("cpu_bound_engine"), "{d:?}");
    // Not throttled, but the tree uses 95 % of its limit.
    let (d, _) = run(World {
        tensor: 0.05,
        cpu: Some((0.0, 0.95)),
        ..world()
    });
    assert!(d.contains("cpu_bound_engine"), "{d:?}");
}

#[test]
fn cpu_bound_near_misses() {
    // Throttled, but the GPU is busy: the CPU is not what holds the tokens back.
    let (d, _) = run(World {
        tensor: 0.6,
        cpu: Some((0.4, 0.5)),
        ..world()
    });
    assert!(!d.contains("cpu_bound_engine"), "{d:?}");
    // Idle GPU, engine throttled in 10 % of the periods at 60 % of its limit.
    let (d, _) = run(World {
        tensor: 0.05,
        cpu: Some((0.1, 0.6)),
        ..world()
    });
    assert!(!d.contains("cpu_bound_engine"), "{d:?}");
}

#[test]
fn lost_gpu_xids_page_with_their_meaning_and_application_faults_do_not() {
    let (fired, labels) = run(World {
        xid: 79.0,
        ..world()
    });
    assert!(fired.contains("GPULostXid"), "{fired:?}");
    let lost = labels
        .iter()
        .find(|l| l.contains(&("alertname".into(), "GPULostXid".into())))
        .expect("GPULostXid firing");
    assert!(
        lost.contains(&("xid_meaning".into(), "GPU has fallen off the bus".into())),
        "{lost:?}"
    );
    let (fired, _) = run(World {
        xid: 13.0,
        ..world()
    });
    assert!(!fired.contains("GPULostXid"), "{fired:?}");
}

#[test]
fn the_paging_xids_of_the_pack_are_the_tables() {
    let text = runtime_pack();
    let in_pack: BTreeSet<u32> = text
        .split("(gpu:xid_last) == ")
        .skip(1)
        .filter_map(|s| s.split(',').next()?.trim().parse().ok())
        .collect();
    let table: BTreeSet<u32> = sources::gpu::xid::paging_codes().collect();
    assert_eq!(in_pack, table);
    for code in table {
        let name = sources::gpu::xid::lookup(code).expect("catalogued").name;
        assert!(
            text.contains(&format!("== {code}, \"xid_meaning\", \"{name}\"")),
            "XID {code} should carry the meaning {name:?}"
        );
    }
}
