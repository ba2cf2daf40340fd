//! The NCCL log collector over real NCCL 2.28 / PyTorch 2.11 output (`fixtures/nccl/`):
//! which lines become events, the counters by kind, the evidence ring, and following a pod
//! log directory across rotation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sources::collector::HostCollector;
use sources::gpu::FieldSet;
use sources::logs::follow::Start;
use sources::logs::nccl::{Kind, Parser};
use sources::logs::{LogInput, NcclCollector};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/nccl")
        .join(name)
}

/// The kinds of the events in one capture, in order.
fn kinds(name: &str) -> Vec<(Kind, Option<u32>)> {
    let text = std::fs::read_to_string(fixture(name)).expect("fixture");
    let mut p = Parser::default();
    text.lines()
        .filter_map(|l| p.line(l))
        .map(|e| (e.kind, e.rank))
        .collect()
}

#[test]
fn healthy_info_output_has_no_failure() {
    assert_eq!(kinds("info-ok.log"), []);
    assert_eq!(kinds("warn-bad-ib-hca.log"), []);
}

#[test]
fn bad_interface_is_a_socket_failure_then_invalid_usage() {
    assert_eq!(
        kinds("warn-bad-ifname.log"),
        [(Kind::Socket, None), (Kind::InvalidUsage, None)]
    );
}

#[test]
fn duplicate_gpu_is_invalid_usage() {
    for f in [
        "warn-duplicate-gpu-rank0.log",
        "warn-duplicate-gpu-rank1.log",
    ] {
        assert_eq!(
            kinds(f),
            [(Kind::InvalidUsage, None), (Kind::InvalidUsage, None)],
            "{f}"
        );
    }
}

#[test]
fn watchdog_timeout_counts_once_with_its_rank() {
    // One timeout statement; its restatements, stack frames (`checkTimeout`) and the abort
    // are not counted again.
    assert_eq!(
        kinds("warn-watchdog-timeout.log"),
        [(Kind::Timeout, Some(0))]
    );
}

/// `nccl:events_total` by kind for the series whose labels include `with`.
fn events(c: &mut NcclCollector, ts: i64, with: (&str, &str)) -> (BTreeMap<String, f64>, f64) {
    let got = c.collect(FieldSet::Full, ts);
    assert!(got.errors.is_empty(), "{:?}", got.errors);
    let has = |p: &sources::Point| p.labels.iter().any(|(k, v)| k == with.0 && v == with.1);
    let by_kind = got
        .points
        .iter()
        .filter(|p| p.name == "nccl:events_total" && has(p))
        .map(|p| {
            let kind = p
                .labels
                .iter()
                .find(|(k, _)| k == "kind")
                .map(|(_, v)| v.clone())
                .expect("kind label");
            (kind, p.value)
        })
        .collect();
    let lines = got
        .points
        .iter()
        .find(|p| p.name == "nccl:log_lines_total" && has(p))
        .map_or(0.0, |p| p.value);
    (by_kind, lines)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).expect("copy");
        }
    }
}

#[test]
fn pod_log_directory_is_followed_across_rotation_with_pod_labels() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("pods");
    copy_dir(&fixture("pods"), &root);
    let mut c = NcclCollector::new(
        vec![LogInput::from_spec(root.to_str().expect("utf-8"))],
        Start::Beginning,
        10,
    );
    let log = c.events();
    let (by_kind, lines) = events(&mut c, 1_000, ("pod", "vllm-tp2-0"));
    assert_eq!(
        by_kind.len(),
        Kind::ALL.len(),
        "every kind starts at 0: {by_kind:?}"
    );
    assert_eq!(by_kind["timeout"], 1.0, "{by_kind:?}");
    assert_eq!(by_kind.values().sum::<f64>(), 1.0, "{by_kind:?}");
    let captured = std::fs::read_to_string(fixture("warn-watchdog-timeout.log")).expect("fixture");
    assert_eq!(
        lines,
        captured.lines().count() as f64,
        "partial chunks joined into lines"
    );

    // The evidence: the watchdog line with where it came from.
    let kept = log.recent();
    assert_eq!(kept.len(), 1);
    assert!(
        kept[0]
            .line
            .contains("Watchdog caught collective operation timeout")
    );
    assert!(kept[0].labels.contains(&("namespace".into(), "llm".into())));
    assert_eq!(kept[0].event.rank, Some(0));
    assert_eq!(kept[0].timestamp_ms, 1_000);

    // kubelet rotates 0.log by renaming it and starts a new one; a restarted container
    // writes 1.log. Both are read, the series continue.
    let container = root
        .join("llm_vllm-tp2-0_7d1c2e0a-5b1f-4c9e-9a51-0e6f2b7c9d11")
        .join("vllm");
    std::fs::rename(
        container.join("0.log"),
        container.join("0.log.20261202-054500"),
    )
    .expect("rename");
    std::fs::write(
        container.join("0.log"),
        "2026-12-02T05:45:10.000000001Z stderr F [2026-12-02 05:45:10] vm:500:512 [1] transport/net_socket.cc:472 NCCL WARN NET/Socket : peer 10.0.0.7<43210> shut down while receiving\n",
    )
    .expect("write");
    std::fs::write(
        container.join("1.log"),
        "2026-12-02T05:46:00.000000001Z stderr F RuntimeError: NCCL error: unhandled cuda error (run with NCCL_DEBUG=INFO for details)\n",
    )
    .expect("write");
    let (by_kind, _) = events(&mut c, 2_000, ("pod", "vllm-tp2-0"));
    assert_eq!(
        (by_kind["timeout"], by_kind["socket"], by_kind["cuda_error"]),
        (1.0, 1.0, 1.0),
        "{by_kind:?}"
    );
    assert_eq!(log.recent().len(), 3);

    // The pod is deleted: its series go away (the scraper marks them stale).
    std::fs::remove_dir_all(root.join("llm_vllm-tp2-0_7d1c2e0a-5b1f-4c9e-9a51-0e6f2b7c9d11"))
        .expect("rm");
    let (by_kind, _) = events(&mut c, 3_000, ("pod", "vllm-tp2-0"));
    assert!(by_kind.is_empty(), "{by_kind:?}");
}

#[test]
fn standard_input_and_files_are_read_too() {
    let text = std::fs::read_to_string(fixture("warn-bad-ifname.log")).expect("fixture");
    let mut c = NcclCollector::new(
        vec![LogInput::File(fixture("warn-duplicate-gpu-rank0.log"))],
        Start::Beginning,
        10,
    )
    .with_reader(std::io::Cursor::new(text.into_bytes()));
    // The reader thread needs a moment; poll a bounded number of times.
    let mut stdin = BTreeMap::new();
    for _ in 0..200 {
        stdin = events(&mut c, 1, ("source", "-")).0;
        if stdin.values().sum::<f64>() >= 2.0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(
        (stdin["socket"], stdin["invalid_usage"]),
        (1.0, 1.0),
        "{stdin:?}"
    );
    let source = fixture("warn-duplicate-gpu-rank0.log")
        .display()
        .to_string();
    let (file, _) = events(&mut c, 2, ("source", source.as_str()));
    assert_eq!(file["invalid_usage"], 2.0, "{file:?}");
    assert!(c.status().contains("standard input"), "{}", c.status());
}

#[test]
fn a_missing_pod_root_is_a_status_not_an_error() {
    let mut c = NcclCollector::new(
        vec![LogInput::PodLogs(PathBuf::from(
            "/nonexistent/var/log/pods",
        ))],
        Start::End,
        10,
    );
    let got = c.collect(FieldSet::Full, 1);
    assert!(got.errors.is_empty() && got.points.is_empty(), "{got:?}");
    assert!(c.status().contains("not in Kubernetes"), "{}", c.status());
}
