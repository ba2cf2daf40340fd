//! `promtool test rules` unit tests for every alert of the generated rule files, built
//! from data rather than written per alert: one healthy node (a vLLM and a TGI engine, a
//! DCGM-exported GPU, Strata's gateway, in their native metric names so the canonical
//! recording rules run too) and a table of conditions, each a few signals turning bad at
//! minute [`ONSET`]. Every world is evaluated by Strata's own rule engine over the same
//! input, and what Strata fires at the end (labels and rendered annotations) is written
//! as the expectation for every alert name, firing or not. `promtool test rules` passing
//! is then Prometheus agreeing with Strata, alert by alert; an alert no condition fires
//! is an error (the table needs a condition for it).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rules::RuleEngine;
use serde_json::{Value, json};
use sources::Point;
use tsdb::promql::{Engine, EngineConfig as QueryConfig};
use tsdb::{Store, StoreConfig};

use super::{File, Spec, yaml};
use node::{Ingest, StoreQuery};

/// Minutes of input: one sample a minute, t = 0 … MINUTES (the alerts are checked at the
/// last one). Conditions from [`ONSET`] fill the last hour: a window that starts on a
/// sample reads it in Prometheus 2 (closed ranges) and not in Prometheus 3 and Strata
/// (left-open), which changes a rate only when the window spans a change of slope.
const MINUTES: u32 = 130;
/// Minute the conditions start; before it every node is healthy, so `offset 1h`
/// comparisons see a healthy past.
const ONSET: u32 = 60;

/// How one series moves: a gauge's level, or a counter's increase per minute.
#[derive(Clone, Copy, PartialEq)]
enum Signal {
    Gauge(f64),
    Counter(f64),
}

/// Labels of a series.
type Labels = Vec<(String, String)>;

/// A series: metric name and labels.
type Key = (String, Labels);

/// Series and how they move.
type Series = Vec<(Key, Signal)>;

/// One node of the test: its own vLLM and TGI engines, GPU, gateway and model, so the
/// condition of one node never shows on another (the packs aggregate per instance, model
/// or GPU).
struct Node(usize);

fn labels(pairs: &[(&str, String)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

impl Node {
    fn vllm(&self, extra: &[(&str, &str)]) -> Labels {
        let mut l = labels(&[
            ("instance", format!("vllm-{}:8000", self.0)),
            ("job", "vllm".into()),
            ("model_name", format!("m{}", self.0)),
            ("engine", "0".into()),
        ]);
        l.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        l
    }
    fn llama(&self) -> Labels {
        labels(&[
            ("instance", format!("llama-{}:8080", self.0)),
            ("job", "llamacpp".into()),
        ])
    }
    fn tgi(&self) -> Labels {
        labels(&[
            ("instance", format!("tgi-{}:8080", self.0)),
            ("job", "tgi".into()),
        ])
    }
    fn dcgm(&self) -> Labels {
        labels(&[
            ("instance", format!("node-{}:9400", self.0)),
            ("job", "dcgm".into()),
            ("gpu", "0".into()),
            ("UUID", format!("GPU-{:08x}", self.0)),
            ("Hostname", format!("node-{}", self.0)),
        ])
    }
    /// A DCGM switch entity (`render_metrics.go`'s switch format: `nvswitch` and the host).
    fn nvswitch(&self) -> Labels {
        labels(&[
            ("instance", format!("node-{}:9400", self.0)),
            ("job", "dcgm".into()),
            ("nvswitch", "0".into()),
            ("Hostname", format!("node-{}", self.0)),
        ])
    }
    /// The GPU as Strata's NVML collector labels it (canonical names, `instance` = node).
    fn nvml(&self) -> Labels {
        labels(&[
            ("instance", format!("node-{}", self.0)),
            ("job", "nvml".into()),
            ("gpu", "0".into()),
            ("gpu_uuid", format!("GPU-{:08x}", self.0)),
            ("Hostname", format!("node-{}", self.0)),
        ])
    }
    fn gateway(&self, extra: &[(&str, &str)]) -> Labels {
        let mut l = labels(&[
            ("instance", format!("node-{}:8080", self.0)),
            ("job", "gateway".into()),
            ("model", format!("m{}", self.0)),
            ("tenant", "acme".into()),
            ("upstream", format!("vllm-{}", self.0)),
        ]);
        l.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        l
    }
    fn ib(&self, extra: &[(&str, &str)]) -> Labels {
        let mut l = labels(&[
            ("instance", format!("node-{}", self.0)),
            ("job", "infiniband".into()),
            ("device", "mlx5_0".into()),
            ("port", "1".into()),
        ]);
        l.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        l
    }
    /// A host collector's series (NCCL logs, the engine process): `instance` is the node.
    fn host(&self, job: &str, extra: &[(&str, String)]) -> Labels {
        let mut l = labels(&[
            ("instance", format!("node-{}", self.0)),
            ("job", job.into()),
        ]);
        l.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        l
    }
    fn up(&self, job: &str) -> Labels {
        let instance = match job {
            "vllm" => format!("vllm-{}:8000", self.0),
            "tgi" => format!("tgi-{}:8080", self.0),
            _ => format!("node-{}:9400", self.0),
        };
        labels(&[("instance", instance), ("job", job.into())])
    }
    /// Whether an alert's labels name this node.
    fn owns(&self, alert: &BTreeMap<String, String>) -> bool {
        let ids = [
            format!("vllm-{}:8000", self.0),
            format!("tgi-{}:8080", self.0),
            format!("llama-{}:8080", self.0),
            format!("m{}", self.0),
            format!("node-{}", self.0),
        ];
        alert.values().any(|v| ids.contains(v))
    }
}

/// Bucket bounds of the histograms (vLLM's for the engine, the SLO thresholds of every
/// built-in profile for the gateway).
const TTFT_LE: [&str; 7] = ["0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0"];
const ITL_LE: [&str; 7] = ["0.01", "0.025", "0.05", "0.075", "0.1", "0.5", "1.0"];
const E2E_LE: [&str; 5] = ["1.0", "5.0", "10.0", "30.0", "60.0"];
const GW_TTFT_LE: [&str; 7] = ["0.25", "0.5", "1", "2.5", "3", "5", "10"];
const GW_ITL_LE: [&str; 6] = ["0.01", "0.03", "0.05", "0.08", "0.1", "0.5"];

/// A histogram whose `per_min` observations a minute all fall in bucket `bucket` (of
/// `les`, then +Inf) with value `value`.
fn histogram(
    name: &str,
    l: Labels,
    les: &[&str],
    bucket: usize,
    per_min: f64,
    value: f64,
) -> Series {
    let mut out: Series = les
        .iter()
        .chain(&["+Inf"])
        .enumerate()
        .map(|(i, le)| {
            let mut b = l.clone();
            b.push(("le".into(), le.to_string()));
            let n = if i >= bucket { per_min } else { 0.0 };
            ((format!("{name}_bucket"), b), Signal::Counter(n))
        })
        .collect();
    out.push((
        (format!("{name}_count"), l.clone()),
        Signal::Counter(per_min),
    ));
    out.push(((format!("{name}_sum"), l), Signal::Counter(per_min * value)));
    out
}

fn gauge(name: &str, l: Labels, v: f64) -> Series {
    vec![((name.to_string(), l), Signal::Gauge(v))]
}

fn counter(name: &str, l: Labels, per_min: f64) -> Series {
    vec![((name.to_string(), l), Signal::Counter(per_min))]
}

/// A healthy node: moderate load, fast tokens, cool GPU, nothing failing.
fn healthy(n: &Node) -> Series {
    [
        gauge("vllm:num_requests_running", n.vllm(&[]), 8.0),
        gauge("vllm:num_requests_waiting", n.vllm(&[]), 0.0),
        gauge("vllm:num_requests_swapped", n.vllm(&[]), 0.0),
        gauge("vllm:kv_cache_usage_perc", n.vllm(&[]), 0.4),
        counter("vllm:num_preemptions_total", n.vllm(&[]), 0.0),
        counter("vllm:prompt_tokens_total", n.vllm(&[]), 48000.0),
        counter("vllm:generation_tokens_total", n.vllm(&[]), 24000.0),
        counter(
            "vllm:request_success_total",
            n.vllm(&[("finished_reason", "stop")]),
            120.0,
        ),
        counter(
            "vllm:request_success_total",
            n.vllm(&[("finished_reason", "length")]),
            3.0,
        ),
        counter(
            "vllm:request_success_total",
            n.vllm(&[("finished_reason", "abort")]),
            0.0,
        ),
        counter("vllm:prefix_cache_queries_total", n.vllm(&[]), 60000.0),
        counter("vllm:prefix_cache_hits_total", n.vllm(&[]), 36000.0),
        counter(
            "vllm:spec_decode_num_draft_tokens_total",
            n.vllm(&[]),
            6000.0,
        ),
        counter(
            "vllm:spec_decode_num_accepted_tokens_total",
            n.vllm(&[]),
            4800.0,
        ),
        histogram(
            "vllm:time_to_first_token_seconds",
            n.vllm(&[]),
            &TTFT_LE,
            1,
            123.0,
            0.2,
        ),
        histogram(
            "vllm:inter_token_latency_seconds",
            n.vllm(&[]),
            &ITL_LE,
            1,
            24000.0,
            0.02,
        ),
        histogram(
            "vllm:e2e_request_latency_seconds",
            n.vllm(&[]),
            &E2E_LE,
            1,
            123.0,
            4.0,
        ),
        gauge("llamacpp:requests_processing", n.llama(), 2.0),
        gauge("llamacpp:requests_deferred", n.llama(), 0.0),
        gauge("tgi_queue_size", n.tgi(), 0.0),
        gauge("tgi_batch_current_size", n.tgi(), 12.0),
        gauge("up", n.up("vllm"), 1.0),
        gauge("up", n.up("tgi"), 1.0),
        gauge("up", n.up("dcgm"), 1.0),
        gauge("DCGM_FI_DEV_GPU_UTIL", n.dcgm(), 80.0),
        gauge("DCGM_FI_PROF_SM_ACTIVE", n.dcgm(), 0.7),
        gauge("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", n.dcgm(), 0.5),
        gauge("DCGM_FI_DEV_FB_USED", n.dcgm(), 60000.0),
        gauge("DCGM_FI_DEV_FB_FREE", n.dcgm(), 20000.0),
        gauge("DCGM_FI_DEV_POWER_USAGE", n.dcgm(), 500.0),
        gauge("DCGM_FI_DEV_GPU_TEMP", n.dcgm(), 65.0),
        gauge("DCGM_FI_DEV_SM_CLOCK", n.dcgm(), 1980.0),
        gauge("DCGM_FI_DEV_XID_ERRORS", n.dcgm(), 0.0),
        gauge("DCGM_FI_DEV_FABRIC_MANAGER_STATUS", n.dcgm(), 3.0),
        gauge("DCGM_FI_DEV_NVSWITCH_FATAL_ERRORS", n.nvswitch(), 0.0),
        gauge("strata_gpu_nvswitch_links", n.nvml(), 18.0),
        gauge("gpu:fabric_bandwidth_degraded", n.nvml(), 0.0),
        gauge("DCGM_FI_PROF_NVLINK_TX_BYTES", n.dcgm(), 1e10),
        gauge("DCGM_FI_PROF_PCIE_TX_BYTES", n.dcgm(), 1e9),
        histogram(
            "strata_gateway_ttft_seconds",
            n.gateway(&[]),
            &GW_TTFT_LE,
            0,
            123.0,
            0.2,
        ),
        histogram(
            "strata_gateway_itl_seconds",
            n.gateway(&[]),
            &GW_ITL_LE,
            0,
            24000.0,
            0.01,
        ),
        counter(
            "strata_gateway_requests_total",
            n.gateway(&[("status", "200"), ("finish_reason", "stop")]),
            120.0,
        ),
        counter(
            "strata_gateway_requests_total",
            n.gateway(&[("status", "200"), ("finish_reason", "length")]),
            3.0,
        ),
        counter(
            "strata_gateway_requests_total",
            n.gateway(&[("status", "500"), ("finish_reason", "none")]),
            0.0,
        ),
        counter("strata_gateway_refusals_total", n.gateway(&[]), 0.6),
        gauge("fabric:ib_port_state", n.ib(&[]), 4.0),
        gauge("fabric:ib_port_phys_state", n.ib(&[]), 5.0),
        counter("fabric:ib_link_downed_total", n.ib(&[]), 0.0),
        counter(
            "fabric:ib_port_errors_total",
            n.ib(&[("counter", "symbol_error")]),
            0.0,
        ),
        counter(
            "nccl:events_total",
            n.host(
                "nccl",
                &[("kind", "timeout".into()), ("source", "-".into())],
            ),
            0.0,
        ),
        counter(
            "proc:cgroup_cpu_periods_total",
            n.host(
                "process",
                &[("engine_instance", format!("vllm-{}:8000", n.0))],
            ),
            600.0,
        ),
        counter(
            "proc:cgroup_cpu_throttled_periods_total",
            n.host(
                "process",
                &[("engine_instance", format!("vllm-{}:8000", n.0))],
            ),
            0.0,
        ),
    ]
    .concat()
}

/// A condition: name, what turns bad, and the signals of a node that do.
type Condition = (&'static str, &'static str, fn(&Node) -> Vec<Series>);

/// Minutes a condition holds: from [`ONSET`] to the end, except the ones whose rules
/// compare with the last minutes only (`[from, until)`, healthy again after).
fn window(name: &str) -> (u32, u32) {
    match name {
        // Quality shifts: 3 m against the hour before; young when checked.
        "refusal_spike" | "prefix_cache_collapse" => (MINUTES - 8, MINUTES + 1),
        // Against the longest 5-minute value of the hour 6 minutes back, whose last
        // window must not reach into the shift yet: younger still.
        "output_length_drift" => (MINUTES - 5, MINUTES + 1),
        // Throttling: the clock against its peak of the last hour.
        "thermal_throttle" => (MINUTES - 20, MINUTES + 1),
        // Bursts: see [`bursts`].
        "traffic_burst" => (MINUTES - 9, MINUTES - 8),
        _ => (ONSET, MINUTES + 1),
    }
}

const CONDITIONS: [Condition; 32] = [
    ("kv_cache_high", "KV cache at 85 %", |n| {
        vec![gauge("vllm:kv_cache_usage_perc", n.vllm(&[]), 0.85)]
    }),
    (
        "cache_thrash",
        "KV cache full, preempting, requests queueing",
        |n| {
            vec![
                gauge("vllm:kv_cache_usage_perc", n.vllm(&[]), 0.97),
                counter("vllm:num_preemptions_total", n.vllm(&[]), 60.0),
                gauge("vllm:num_requests_waiting", n.vllm(&[]), 30.0),
            ]
        },
    ),
    (
        "compute_bound",
        "requests queue while the cache has room and the GPU is busy",
        |n| vec![gauge("vllm:num_requests_waiting", n.vllm(&[]), 25.0)],
    ),
    ("swapping", "sequences swapped to CPU", |n| {
        vec![gauge("vllm:num_requests_swapped", n.vllm(&[]), 3.0)]
    }),
    ("slow_requests", "end-to-end latency 45 s", |n| {
        vec![histogram(
            "vllm:e2e_request_latency_seconds",
            n.vllm(&[]),
            &E2E_LE,
            4,
            123.0,
            45.0,
        )]
    }),
    (
        "slow_first_token",
        "TTFT 7 s at the engine and the gateway",
        |n| {
            vec![
                histogram(
                    "vllm:time_to_first_token_seconds",
                    n.vllm(&[]),
                    &TTFT_LE,
                    6,
                    123.0,
                    7.0,
                ),
                histogram(
                    "strata_gateway_ttft_seconds",
                    n.gateway(&[]),
                    &GW_TTFT_LE,
                    6,
                    123.0,
                    7.0,
                ),
            ]
        },
    ),
    ("slow_tokens", "inter-token latency 300 ms", |n| {
        vec![
            histogram(
                "vllm:inter_token_latency_seconds",
                n.vllm(&[]),
                &ITL_LE,
                5,
                24000.0,
                0.3,
            ),
            histogram(
                "strata_gateway_itl_seconds",
                n.gateway(&[]),
                &GW_ITL_LE,
                5,
                24000.0,
                0.3,
            ),
        ]
    }),
    ("server_errors", "half the requests fail with 500", |n| {
        vec![counter(
            "strata_gateway_requests_total",
            n.gateway(&[("status", "500"), ("finish_reason", "none")]),
            120.0,
        )]
    }),
    ("truncations", "80 % of responses stop on max_tokens", |n| {
        vec![
            counter(
                "strata_gateway_requests_total",
                n.gateway(&[("status", "200"), ("finish_reason", "length")]),
                480.0,
            ),
            counter(
                "vllm:request_success_total",
                n.vllm(&[("finished_reason", "length")]),
                480.0,
            ),
        ]
    }),
    ("gpu_memory_full", "frame buffer 99 % used", |n| {
        vec![
            gauge("DCGM_FI_DEV_FB_USED", n.dcgm(), 79200.0),
            gauge("DCGM_FI_DEV_FB_FREE", n.dcgm(), 800.0),
        ]
    }),
    (
        "throughput_drop",
        "generation falls to a sixth at the same request rate",
        |n| vec![counter("vllm:generation_tokens_total", n.vllm(&[]), 4000.0)],
    ),
    ("output_length_drift", "responses three times longer", |n| {
        vec![counter(
            "vllm:generation_tokens_total",
            n.vllm(&[]),
            72000.0,
        )]
    }),
    (
        "tensor_idle",
        "tensor cores and SMs idle with work in flight (a stalled collective)",
        |n| {
            vec![
                gauge("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", n.dcgm(), 0.05),
                gauge("DCGM_FI_PROF_SM_ACTIVE", n.dcgm(), 0.05),
            ]
        },
    ),
    (
        "thermal_throttle",
        "GPU at 90 °C, SM clock down to 1500 MHz",
        |n| {
            vec![
                gauge("DCGM_FI_DEV_GPU_TEMP", n.dcgm(), 90.0),
                gauge("DCGM_FI_DEV_SM_CLOCK", n.dcgm(), 1500.0),
            ]
        },
    ),
    (
        "collective_stall",
        "NCCL timeouts in the engine log while the tensor cores idle",
        |n| {
            vec![
                counter(
                    "nccl:events_total",
                    n.host(
                        "nccl",
                        &[("kind", "timeout".into()), ("source", "-".into())],
                    ),
                    2.0,
                ),
                gauge("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", n.dcgm(), 0.05),
            ]
        },
    ),
    (
        "cpu_bound",
        "the engine's cgroup throttled in half its CPU periods while the GPU idles",
        |n| {
            let engine = [("engine_instance", format!("vllm-{}:8000", n.0))];
            vec![
                counter(
                    "proc:cgroup_cpu_periods_total",
                    n.host("process", &engine),
                    600.0,
                ),
                counter(
                    "proc:cgroup_cpu_throttled_periods_total",
                    n.host("process", &engine),
                    300.0,
                ),
                gauge("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", n.dcgm(), 0.05),
            ]
        },
    ),
    ("xid_nvlink", "XID 74 (NVLink error)", |n| {
        vec![gauge("DCGM_FI_DEV_XID_ERRORS", n.dcgm(), 74.0)]
    }),
    (
        "nvlink_saturated",
        "NVLink saturated while the SMs idle",
        |n| {
            vec![
                gauge("DCGM_FI_PROF_NVLINK_TX_BYTES", n.dcgm(), 3e11),
                gauge("DCGM_FI_PROF_SM_ACTIVE", n.dcgm(), 0.1),
            ]
        },
    ),
    (
        "proxy_buffering",
        "users wait 2 s for a first token the engine made in 0.2 s",
        |n| {
            vec![histogram(
                "strata_gateway_ttft_seconds",
                n.gateway(&[]),
                &GW_TTFT_LE,
                3,
                123.0,
                2.0,
            )]
        },
    ),
    (
        "prefix_cache_collapse",
        "prefix cache hits fall from 60 % to 5 %",
        |n| vec![counter("vllm:prefix_cache_hits_total", n.vllm(&[]), 3000.0)],
    ),
    (
        "spec_decode_waste",
        "speculative decoding accepts 20 % of drafts",
        |n| {
            vec![counter(
                "vllm:spec_decode_num_accepted_tokens_total",
                n.vllm(&[]),
                1200.0,
            )]
        },
    ),
    (
        "refusal_spike",
        "refusals rise from 0.5 % to 20 % of requests",
        |n| {
            vec![counter(
                "strata_gateway_refusals_total",
                n.gateway(&[]),
                24.6,
            )]
        },
    ),
    (
        "tgi_token_budget",
        "the TGI queue grows while its batch cannot",
        |n| vec![gauge("tgi_queue_size", n.tgi(), 30.0)],
    ),
    (
        "llama_slots_exhausted",
        "every llama.cpp slot stays busy while requests wait for one",
        |n| {
            vec![
                gauge("llamacpp:requests_processing", n.llama(), 4.0),
                gauge("llamacpp:requests_deferred", n.llama(), 3.0),
            ]
        },
    ),
    (
        "engine_down",
        "the vLLM target stops answering scrapes",
        |n| vec![gauge("up", n.up("vllm"), 0.0)],
    ),
    (
        "traffic_burst",
        "a burst queued 25 requests, then drained",
        |n| vec![gauge("vllm:num_requests_waiting", n.vllm(&[]), 25.0)],
    ),
    (
        "ib_link_flap",
        "the RDMA link goes down once a minute",
        |n| vec![counter("fabric:ib_link_downed_total", n.ib(&[]), 1.0)],
    ),
    (
        "ib_port_down",
        "the RDMA port drops to DOWN / Disabled",
        |n| {
            vec![
                gauge("fabric:ib_port_state", n.ib(&[]), 1.0),
                gauge("fabric:ib_port_phys_state", n.ib(&[]), 3.0),
            ]
        },
    ),
    ("ib_port_errors", "30 symbol errors a minute", |n| {
        vec![counter(
            "fabric:ib_port_errors_total",
            n.ib(&[("counter", "symbol_error")]),
            30.0,
        )]
    }),
    (
        "fabric_manager_failed",
        "the fabric manager fails to register the GPU (DCGM status 4)",
        |n| vec![gauge("DCGM_FI_DEV_FABRIC_MANAGER_STATUS", n.dcgm(), 4.0)],
    ),
    (
        "fabric_bandwidth_degraded",
        "the fabric reports the GPU's NVLink bandwidth degraded",
        |n| vec![gauge("gpu:fabric_bandwidth_degraded", n.nvml(), 1.0)],
    ),
    ("nvswitch_fatal", "NVSwitch 0 reports fatal SXid 24", |n| {
        vec![gauge(
            "DCGM_FI_DEV_NVSWITCH_FATAL_ERRORS",
            n.nvswitch(),
            24.0,
        )]
    }),
];

/// A series over time: `(first minute, signal)` pieces, in order, the first at 0.
type Pieces = Vec<(u32, Signal)>;

/// A world: every series and how it moves.
type World = Vec<(Key, Pieces)>;

/// The healthy node alone, and every condition at once, each on its own node (node 0
/// stays healthy beside them).
fn worlds() -> Result<(World, World), String> {
    let steady = |s: Series| -> World { s.into_iter().map(|(k, v)| (k, vec![(0, v)])).collect() };
    let quiet = steady(healthy(&Node(0)));
    let mut all = quiet.clone();
    for (i, (name, _, bad)) in CONDITIONS.iter().enumerate() {
        let node = Node(i + 1);
        let bad: BTreeMap<Key, Signal> = bad(&node).concat().into_iter().collect();
        let base = healthy(&node);
        if let Some(k) = bad.keys().find(|k| !base.iter().any(|(b, _)| b == *k)) {
            return Err(format!(
                "condition {name}: {} is not a series of a healthy node",
                k.0
            ));
        }
        let (from, until) = window(name);
        all.extend(base.into_iter().map(|(k, s)| {
            let pieces = match bad.get(&k) {
                Some(b) if *name == "traffic_burst" => bursts(s, *b),
                Some(b) if until <= MINUTES => vec![(0, s), (from, *b), (until, s)],
                Some(b) => vec![(0, s), (from, *b)],
                None => vec![(0, s)],
            };
            (k, pieces)
        }));
    }
    Ok((quiet, all))
}

/// Bursts: the queue spikes for a minute every 3 minutes from [`window`]'s start (never
/// up 3 minutes straight, which would be a backlog) and drains between spikes.
fn bursts(quiet: Signal, spike: Signal) -> Vec<(u32, Signal)> {
    let (from, _) = window("traffic_burst");
    let mut pieces = vec![(0, quiet)];
    for start in (from..MINUTES - 1).step_by(3) {
        pieces.push((start, spike));
        pieces.push((start + 1, quiet));
    }
    pieces
}

/// promtool's expanding notation for `pieces` up to [`MINUTES`] (counters keep counting
/// from where they were).
fn notation(pieces: &[(u32, Signal)]) -> String {
    let mut terms = Vec::new();
    let mut count = 0.0;
    for (i, (from, signal)) in pieces.iter().enumerate() {
        let to = pieces.get(i + 1).map_or(MINUTES, |p| p.0 - 1);
        let n = to - from;
        terms.push(match signal {
            Signal::Gauge(v) => format!("{v}x{n}"),
            Signal::Counter(s) => {
                let start = if i == 0 { 0.0 } else { count + s };
                count = start + s * f64::from(n);
                format!("{start}+{s}x{n}")
            }
        });
    }
    terms.join(" ")
}

/// The values of promtool's notation: `a`, `axN`, `a+bxN`, `a-bxN` terms.
fn expand(text: &str) -> Result<Vec<f64>, String> {
    let mut out = Vec::new();
    for term in text.split_whitespace() {
        let bad = || format!("cannot expand {term:?}");
        let (start, rest) = match term.split_once('x') {
            Some((s, n)) => (s, Some(n.parse::<usize>().map_err(|_| bad())?)),
            None => (term, None),
        };
        // `a+b`: the sign after the first character separates start and step.
        let split = start
            .char_indices()
            .skip(1)
            .find(|(i, c)| (*c == '+' || *c == '-') && !start[..*i].ends_with('e'));
        let (a, step) = match split {
            Some((i, _)) => (&start[..i], start[i..].trim_start_matches('+')),
            None => (start, "0"),
        };
        let a: f64 = a.parse().map_err(|_| bad())?;
        let step: f64 = step.parse().map_err(|_| bad())?;
        for i in 0..=rest.unwrap_or(0) {
            out.push(a + step * i as f64);
        }
    }
    Ok(out)
}

fn series_text((name, labels): &Key) -> String {
    let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{name}{{{}}}", l.join(","))
}

/// Strata's firing alerts of `world` at the last minute, by alert name:
/// `(labels less alertname, annotations)`.
type Fired = BTreeMap<String, Vec<(BTreeMap<String, String>, BTreeMap<String, String>)>>;

fn evaluate(world: &World, groups: &[rules::GroupSpec]) -> Result<Fired, String> {
    let store = Arc::new(Store::open(StoreConfig::default()).0);
    let ingest = Ingest::new(store.clone(), None, Vec::new());
    for (key, pieces) in world {
        let values = expand(&notation(pieces))?;
        let points: Vec<Point> = values
            .iter()
            .enumerate()
            .map(|(i, v)| Point::new(key.0.clone(), key.1.clone(), *v, i as i64 * 60_000))
            .collect();
        ingest.write(node::Batch::points("input", points));
    }
    let query = StoreQuery::new(Arc::new(Engine::new(store, QueryConfig::default())));
    let engine = RuleEngine::new(groups.to_vec(), rules::EngineConfig::default());
    // promtool evaluates every group, in `group_eval_order`, at every evaluation_interval.
    for minute in 0..=i64::from(MINUTES) {
        for g in 0..engine.len() {
            engine.eval_group(g, minute * 60_000, &query, &ingest);
        }
    }
    let map = |pairs: &[(String, String)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .filter(|(k, _)| k != "alertname")
            .cloned()
            .collect()
    };
    let mut fired = Fired::new();
    for a in engine.alerts() {
        if a.state == rules::alert::State::Firing {
            let name = a
                .labels
                .iter()
                .find(|(k, _)| k == "alertname")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            fired
                .entry(name)
                .or_default()
                .push((map(&a.labels), map(&a.annotations)));
        }
    }
    for v in fired.values_mut() {
        v.sort();
    }
    Ok(fired)
}

/// The promtool test of one world: its input, and every alert name checked at the end.
fn test(world: &World, fired: &Fired, alert_names: &BTreeSet<String>) -> Value {
    let input: Vec<Value> = world
        .iter()
        .map(|(k, p)| json!({"series": series_text(k), "values": notation(p)}))
        .collect();
    let checks: Vec<Value> = alert_names
        .iter()
        .map(|name| {
            let exp: Vec<Value> = fired
                .get(name)
                .into_iter()
                .flatten()
                .map(|(l, a)| json!({"exp_labels": l, "exp_annotations": a}))
                .collect();
            json!({"eval_time": format!("{MINUTES}m"), "alertname": name, "exp_alerts": exp})
        })
        .collect();
    json!({"interval": "1m", "input_series": input, "alert_rule_test": checks})
}

/// `rule-tests/rules.test.yml`: the healthy node (no alert may fire) and every condition
/// at once (each alert fires exactly where Strata fires it), every alert name checked.
pub(super) fn files(spec: &Spec) -> Result<Vec<File>, String> {
    let rule_files = super::rules::files(spec)?;
    let mut groups = Vec::new();
    for (name, text) in &rule_files {
        groups.extend(rules::load(name, text).map_err(|e| format!("{name}: {}", e[0]))?);
    }
    let alert_names: BTreeSet<String> = groups
        .iter()
        .flat_map(|g| &g.rules)
        .filter(|r| matches!(r, rules::RuleSpec::Alerting(_)))
        .map(|r| r.name().to_string())
        .collect();
    let (quiet, all) = worlds()?;
    let quiet_fired = evaluate(&quiet, &groups)?;
    if !quiet_fired.is_empty() {
        return Err(format!(
            "the healthy node fires {:?}: the alert or the healthy node in generate/rule_tests.rs is wrong",
            quiet_fired.keys().collect::<Vec<_>>()
        ));
    }
    let fired = evaluate(&all, &groups)?;
    let never: Vec<&String> = alert_names
        .iter()
        .filter(|n| !fired.contains_key(*n))
        .collect();
    if !never.is_empty() {
        return Err(format!(
            "no condition fires {never:?}: add one to CONDITIONS in generate/rule_tests.rs"
        ));
    }
    let mut header = vec![
        "GENERATED by `strata generate rule-tests`: promtool test rules rules.test.yml".to_string(),
        "(the rule files are read from ../rules, as `strata generate all` writes them)."
            .to_string(),
        "Test 1: one healthy node; no alert may fire.".to_string(),
        format!(
            "Test 2: node 0 healthy, and on each node N one condition (most from minute {ONSET}); every alert"
        ),
        format!("is checked at minute {MINUTES} against what Strata's own evaluator fired:"),
    ];
    for (i, (name, what, _)) in CONDITIONS.iter().enumerate() {
        let node = Node(i + 1);
        let own: BTreeSet<&String> = fired
            .iter()
            .filter(|(_, v)| v.iter().any(|(l, _)| node.owns(l)))
            .map(|(n, _)| n)
            .collect();
        if own.is_empty() {
            return Err(format!(
                "condition {name} fires nothing on its node: fix it in generate/rule_tests.rs"
            ));
        }
        let own: Vec<&str> = own.into_iter().map(String::as_str).collect();
        header.push(format!(
            "  node {}: {name} ({what}) -> {}",
            i + 1,
            own.join(", ")
        ));
    }
    let doc = json!({
        "rule_files": rule_files.iter().map(|(n, _)| format!("../rules/{n}")).collect::<Vec<_>>(),
        "evaluation_interval": "1m",
        "group_eval_order": groups.iter().map(|g| g.name.clone()).collect::<Vec<_>>(),
        "tests": [test(&quiet, &quiet_fired, &alert_names), test(&all, &fired, &alert_names)],
    });
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    Ok(vec![("rules.test.yml".into(), yaml(&header, &doc)?)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notation_expands_like_promtool() {
        let n = notation(&[(0, Signal::Counter(2.0)), (ONSET, Signal::Counter(5.0))]);
        let v = expand(&n).expect("expands");
        assert_eq!(v.len(), MINUTES as usize + 1, "{n}");
        assert_eq!(v[ONSET as usize - 1], 2.0 * f64::from(ONSET - 1));
        assert_eq!(v[ONSET as usize], 2.0 * f64::from(ONSET - 1) + 5.0);
        assert_eq!(v[MINUTES as usize] - v[MINUTES as usize - 1], 5.0);
        let pieces = [
            (0, Signal::Gauge(1e10)),
            (ONSET, Signal::Gauge(3.5)),
            (ONSET + 2, Signal::Gauge(1e10)),
        ];
        let g = expand(&notation(&pieces)).expect("gauge");
        assert_eq!(
            (g[0], g[ONSET as usize], g[ONSET as usize + 2], g.len()),
            (1e10, 3.5, 1e10, MINUTES as usize + 1)
        );
        assert_eq!(expand("1-1x2 7").expect("minus"), vec![1.0, 0.0, -1.0, 7.0]);
        assert!(expand("1+x").is_err());
    }
}
