//! Engine ↔ GPU in Kubernetes (`packs/runtime.yml`, group `identity`), evaluated by Strata's
//! rule engine in virtual time behind the canonical recording rules. The engine series are
//! vLLM's as a Prometheus Operator PodMonitor scrapes them (the target's `namespace`, `pod`,
//! `container` added); the GPU side is either the DCGM exporter's Kubernetes mapping (its
//! `render_metrics.go` labels plus `pod`/`namespace`/`container`, or the
//! `--use-old-namespace` spellings) or the kubelet's pod-resources list as `strata agent`
//! exports it (`strata_pod_gpu_info`) beside NVML's GPU series.

use sources::Point;
use testkit::db::Db;

const T0: i64 = 1_700_000_000_000;
const GPU0: &str = "GPU-7de7a1b2-0000-1111-2222-333344445555";
const GPU1: &str = "GPU-8e2b44c1-0000-1111-2222-333344445556";

fn point(name: &str, labels: &[(&str, &str)], value: f64, t: i64) -> Point {
    let mut l: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    l.sort_unstable();
    Point::new(name, l, value, t)
}

/// vLLM's running-requests gauge as a PodMonitor target of pod `pod` at `instance`.
fn vllm(instance: &str, pod: Option<&str>, t: i64) -> Point {
    let mut labels = vec![
        ("engine", "0"),
        ("instance", instance),
        ("job", "inference/vllm"),
        ("model_name", "meta-llama/Llama-3.1-8B-Instruct"),
    ];
    if let Some(pod) = pod {
        labels.extend([
            ("namespace", "inference"),
            ("pod", pod),
            ("container", "vllm"),
        ]);
    }
    point("vllm:num_requests_running", &labels, 3.0, t)
}

/// DCGM's frame-buffer gauge of GPU `gpu` on node-a, held by `pod` (DCGM's Kubernetes
/// mapping; `old` uses the `--use-old-namespace` label names).
fn dcgm_fb(gpu: &str, uuid: &str, pod: Option<&str>, old: bool, t: i64) -> Point {
    let mut labels = vec![
        ("UUID", uuid),
        ("device", "nvidia0"),
        ("gpu", gpu),
        ("Hostname", "node-a"),
        ("instance", "node-a:9400"),
        ("job", "dcgm"),
        ("modelName", "NVIDIA H200"),
    ];
    if let Some(pod) = pod {
        if old {
            labels.extend([("pod_namespace", "inference"), ("pod_name", pod)]);
        } else {
            labels.extend([
                ("namespace", "inference"),
                ("pod", pod),
                ("container", "vllm"),
            ]);
        }
    }
    point("DCGM_FI_DEV_FB_USED", &labels, 70_000.0, t)
}

/// NVML's frame-buffer gauge of GPU `gpu` on node-a (no pod labels: NVML knows no pods).
fn nvml_fb(gpu: &str, uuid: &str, t: i64) -> Point {
    point(
        "gpu:fb_used_bytes",
        &[
            ("Hostname", "node-a"),
            ("gpu", gpu),
            ("gpu_uuid", uuid),
            ("instance", "node-a"),
            ("job", "nvml"),
            ("modelName", "NVIDIA H200"),
        ],
        7.0e10,
        t,
    )
}

/// The kubelet's pod ↔ GPU pair as the agent exports it.
fn pod_gpu(pod: &str, uuid: &str, t: i64) -> Point {
    point(
        "strata_pod_gpu_info",
        &[
            ("container", "vllm"),
            ("gpu_uuid", uuid),
            ("instance", "node-a"),
            ("job", "kubelet"),
            ("namespace", "inference"),
            ("pod", pod),
        ],
        1.0,
        t,
    )
}

/// Runs the canonical and runtime packs over four evaluations of `points(t)` and returns
/// `strata_engine_gpu_info` as (instance, name, node, gpu, gpu_model) rows, sorted.
fn mapping(points: impl Fn(i64) -> Vec<Point>) -> Vec<[String; 5]> {
    let mut triage = testkit::db::triage_of(&["canonical.yml", "runtime.yml"]);
    let db = Db::new();
    let mut t = T0;
    for step in 0..4 {
        t = T0 + step * 30_000;
        db.write("test", &points(t));
        triage.step(t, &db, &db);
    }
    let got = rules::Query::instant(&db, "strata_engine_gpu_info", t).expect("query");
    let mut rows: Vec<[String; 5]> = got
        .into_iter()
        .map(|(labels, _)| {
            let get = |k: &str| testkit::db::label(&labels, k);
            [
                get("instance"),
                get("name"),
                get("node"),
                get("gpu"),
                get("gpu_model"),
            ]
        })
        .collect();
    rows.sort();
    rows
}

fn row(instance: &str, name: &str, gpu: &str) -> [String; 5] {
    [
        instance.into(),
        name.into(),
        "node-a".into(),
        gpu.into(),
        "NVIDIA H200".into(),
    ]
}

#[test]
fn dcgm_pod_labels_map_each_engine_pod_to_its_gpus() {
    let got = mapping(|t| {
        vec![
            vllm("10.0.0.5:8000", Some("vllm-0"), t),
            vllm("10.0.0.6:8000", Some("vllm-1"), t),
            dcgm_fb("0", GPU0, Some("vllm-0"), false, t),
            dcgm_fb("1", GPU1, Some("vllm-1"), false, t),
        ]
    });
    assert_eq!(
        got,
        [
            row("10.0.0.5:8000", "inference/vllm-0", "0"),
            row("10.0.0.6:8000", "inference/vllm-1", "1")
        ]
    );
}

#[test]
fn old_namespace_dcgm_labels_map_the_same() {
    let got = mapping(|t| {
        vec![
            vllm("10.0.0.5:8000", Some("vllm-0"), t),
            dcgm_fb("0", GPU0, Some("vllm-0"), true, t),
            dcgm_fb("1", GPU1, Some("vllm-0"), true, t),
        ]
    });
    assert_eq!(
        got,
        [
            row("10.0.0.5:8000", "inference/vllm-0", "0"),
            row("10.0.0.5:8000", "inference/vllm-0", "1")
        ]
    );
}

#[test]
fn kubelet_pod_resources_map_engines_to_nvml_gpus() {
    let got = mapping(|t| {
        vec![
            vllm("10.0.0.5:8000", Some("vllm-0"), t),
            nvml_fb("0", GPU0, t),
            nvml_fb("1", GPU1, t),
            pod_gpu("vllm-0", GPU1, t),
        ]
    });
    assert_eq!(got, [row("10.0.0.5:8000", "inference/vllm-0", "1")]);
}

#[test]
fn a_time_sliced_gpu_maps_to_both_pods_and_both_sources_agree() {
    // Two pods share GPU 0 (time-slicing); DCGM and the kubelet both say so: one series per
    // engine, not two, and no evaluation error from the duplicate sources.
    let got = mapping(|t| {
        vec![
            vllm("10.0.0.5:8000", Some("vllm-0"), t),
            vllm("10.0.0.6:8000", Some("vllm-1"), t),
            dcgm_fb("0", GPU0, Some("vllm-0"), false, t),
            dcgm_fb("0", GPU0, Some("vllm-1"), false, t),
            nvml_fb("0", GPU0, t),
            pod_gpu("vllm-0", GPU0, t),
            pod_gpu("vllm-1", GPU0, t),
        ]
    });
    assert_eq!(
        got,
        [
            row("10.0.0.5:8000", "inference/vllm-0", "0"),
            row("10.0.0.6:8000", "inference/vllm-1", "0")
        ]
    );
}

#[test]
fn engines_without_pod_labels_map_to_nothing_near_miss() {
    // A static target (no pod labels) beside pod-labelled GPUs: no guess.
    let got = mapping(|t| {
        vec![
            vllm("10.0.0.5:8000", None, t),
            dcgm_fb("0", GPU0, Some("vllm-0"), false, t),
            pod_gpu("vllm-0", GPU0, t),
            nvml_fb("0", GPU0, t),
        ]
    });
    assert_eq!(got, Vec::<[String; 5]>::new());
}

#[test]
fn a_gpu_held_by_another_pod_is_not_the_engines_near_miss() {
    let got = mapping(|t| {
        vec![
            vllm("10.0.0.5:8000", Some("vllm-0"), t),
            dcgm_fb("0", GPU0, Some("trainer-7"), false, t),
            dcgm_fb("1", GPU1, None, false, t),
        ]
    });
    assert_eq!(got, Vec::<[String; 5]>::new());
}

#[test]
fn the_collectors_mapping_wins_over_the_pod_join() {
    let got = mapping(|t| {
        vec![
            vllm("10.0.0.5:8000", Some("vllm-0"), t),
            dcgm_fb("0", GPU0, Some("vllm-0"), false, t),
            point(
                "strata_engine_gpu_info",
                &[
                    ("gpu", "0"),
                    ("gpu_model", "NVIDIA H200"),
                    ("gpu_uuid", GPU0),
                    ("instance", "10.0.0.5:8000"),
                    ("job", "engine_gpu"),
                    ("name", "vllm@10.0.0.5:8000"),
                    ("node", "node-a"),
                ],
                1.0,
                t,
            ),
        ]
    });
    assert_eq!(got, [row("10.0.0.5:8000", "vllm@10.0.0.5:8000", "0")]);
}
