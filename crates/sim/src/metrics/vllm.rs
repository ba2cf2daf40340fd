//! vLLM's `/metrics` (prometheus_client): V1 names by default, V0 on request, or exactly
//! the families and labels of one release (`--engine-version`).
//! Names, help texts, labels and buckets as vllm/v1/metrics/loggers.py (and the V0
//! engine's metrics.py) define them; labels `engine` (V1 only) and `model_name`.

use expo::MetricType;

use super::{Families, LeStyle, Live, Stats};
use crate::config::{EngineVersion, SimConfig, VllmMetrics};

/// Which families and labels one vLLM release (or the default V1/V0 mix) registers.
struct Shape {
    /// `engine` label (V1 engine).
    engine_label: bool,
    /// `gpu_cache_usage_perc` (V0, and V1 up to 0.10).
    old_kv: bool,
    /// `kv_cache_usage_perc` (0.10 on).
    new_kv: bool,
    /// V0's swap and CPU cache gauges and block hit rate (shown by the default V0 mix only:
    /// 0.8.5 hides them).
    v0_gauges: bool,
    /// `gpu_prefix_cache_{queries,hits}_total` (V1 up to 0.10, counted in blocks in 0.8).
    old_prefix: bool,
    /// `prefix_cache_{queries,hits}_total` (0.10 on).
    new_prefix: bool,
    /// `time_per_output_token_seconds` (gone from 0.12).
    old_tpot: bool,
    /// `inter_token_latency_seconds` (0.10 on).
    itl: bool,
    /// `request_time_per_output_token_seconds` (0.12 on).
    request_tpot: bool,
    /// Queue, inference, prefill and decode phase histograms.
    phases: bool,
    /// `finished_reason` values.
    reasons: &'static [(&'static str, usize)],
    /// `admission_rejections_total`, `num_requests_waiting_by_reason`,
    /// `prompt_tokens_cached_total` (0.33).
    v033: bool,
    /// `cache_config_info`.
    cache_info: bool,
}

const STOP_LENGTH: &[(&str, usize)] = &[("stop", 0), ("length", 1)];
const WITH_ABORT: &[(&str, usize)] = &[("stop", 0), ("length", 1), ("abort", 2)];
/// `error` (0.14) and `repetition` (0.33) never happen in the simulator: index 3 is zero.
const WITH_ERROR: &[(&str, usize)] = &[("stop", 0), ("length", 1), ("abort", 2), ("error", 3)];
const WITH_REPETITION: &[(&str, usize)] = &[
    ("stop", 0),
    ("length", 1),
    ("abort", 2),
    ("error", 3),
    ("repetition", 3),
];

impl Shape {
    fn of(cfg: &SimConfig) -> Shape {
        use EngineVersion as V;
        let release = |v: EngineVersion| Shape {
            engine_label: v != V::Vllm085V0,
            old_kv: v <= V::Vllm0102,
            new_kv: v >= V::Vllm0102,
            v0_gauges: false,
            old_prefix: v == V::Vllm085 || v == V::Vllm0102,
            new_prefix: v >= V::Vllm0102,
            old_tpot: v <= V::Vllm0102,
            itl: v >= V::Vllm0102,
            request_tpot: v >= V::Vllm014,
            phases: true,
            reasons: match v {
                V::Vllm033 => WITH_REPETITION,
                V::Vllm014 => WITH_ERROR,
                _ => WITH_ABORT,
            },
            v033: v == V::Vllm033,
            // Not in the fixtures built from the releases' registration code.
            cache_info: false,
        };
        match (cfg.version, cfg.vllm_metrics) {
            (Some(v), _) => release(v),
            (None, VllmMetrics::V1) => Shape {
                engine_label: true,
                old_kv: false,
                new_kv: true,
                v0_gauges: false,
                old_prefix: false,
                new_prefix: true,
                old_tpot: false,
                itl: true,
                request_tpot: true,
                phases: true,
                reasons: WITH_ABORT,
                v033: false,
                cache_info: true,
            },
            (None, VllmMetrics::V0) => Shape {
                engine_label: false,
                old_kv: true,
                new_kv: false,
                v0_gauges: true,
                old_prefix: false,
                new_prefix: false,
                old_tpot: true,
                itl: false,
                request_tpot: false,
                phases: false,
                reasons: STOP_LENGTH,
                v033: false,
                cache_info: false,
            },
        }
    }
}

pub(super) fn render(cfg: &SimConfig, live: &Live, s: &Stats) -> String {
    let shape = Shape::of(cfg);
    let model = cfg.model_name();
    let l: Vec<(&str, &str)> = if shape.engine_label {
        vec![("engine", "0"), ("model_name", model)]
    } else {
        vec![("model_name", model)]
    };
    let with = |k: &'static str, v: &'static str| {
        // Label names in alphabetical order, as prometheus_client writes them.
        let mut x = l.clone();
        x.push((k, v));
        x.sort_by_key(|(k, _)| *k);
        x
    };
    let mut f = Families::new(LeStyle::Decimal);
    f.gauge(
        "vllm:num_requests_running",
        Some("Number of requests in model execution batches."),
        &l,
        live.running as f64,
    );
    f.gauge(
        "vllm:num_requests_waiting",
        Some("Number of requests waiting to be processed."),
        &l,
        live.waiting as f64,
    );
    if shape.v033 {
        // The simulator defers nothing for capacity reasons of its own: every waiting
        // request waits for capacity.
        let rows = vec![
            (with("reason", "capacity"), live.waiting as f64),
            (with("reason", "deferred"), 0.0),
        ];
        f.multi(
            "vllm:num_requests_waiting_by_reason",
            Some("Number of requests waiting, by reason."),
            MetricType::Gauge,
            &rows,
        );
    }
    if shape.v0_gauges {
        f.gauge(
            "vllm:num_requests_swapped",
            Some("Number of requests swapped to CPU."),
            &l,
            0.0,
        );
    }
    if shape.new_kv {
        f.gauge(
            "vllm:kv_cache_usage_perc",
            Some("KV-cache usage. 1 means 100 percent usage."),
            &l,
            live.kv_usage,
        );
    }
    if shape.old_kv {
        f.gauge(
            "vllm:gpu_cache_usage_perc",
            Some("GPU KV-cache usage. 1 means 100 percent usage."),
            &l,
            live.kv_usage,
        );
    }
    if shape.v0_gauges {
        f.gauge(
            "vllm:cpu_cache_usage_perc",
            Some("CPU KV-cache usage. 1 means 100 percent usage."),
            &l,
            0.0,
        );
        let rate = if s.prefix_queries == 0 {
            0.0
        } else {
            s.prefix_hits as f64 / s.prefix_queries as f64
        };
        f.gauge(
            "vllm:gpu_prefix_cache_hit_rate",
            Some("GPU prefix cache block hit rate."),
            &l,
            rate,
        );
    }
    f.counter(
        "vllm:num_preemptions_total",
        Some("Cumulative number of preemption from the engine."),
        &l,
        s.preemptions as f64,
    );
    f.counter(
        "vllm:prompt_tokens_total",
        Some("Number of prefill tokens processed."),
        &l,
        s.prompt_tokens as f64,
    );
    if shape.v033 {
        f.counter(
            "vllm:prompt_tokens_cached_total",
            Some("Number of cached prompt tokens (local prefix cache hits)."),
            &l,
            s.prefix_hits as f64,
        );
    }
    f.counter(
        "vllm:generation_tokens_total",
        Some("Number of generation tokens processed."),
        &l,
        s.generation_tokens as f64,
    );
    let rows: Vec<(Vec<(&str, &str)>, f64)> = shape
        .reasons
        .iter()
        .map(|(r, i)| {
            let n = s.finished.get(*i).copied().unwrap_or(0);
            (with("finished_reason", r), n as f64)
        })
        .collect();
    f.multi(
        "vllm:request_success_total",
        Some("Count of successfully processed requests."),
        MetricType::Counter,
        &rows,
    );
    if shape.v033 {
        // Registered without the `engine` label: the API server rejects before any engine.
        let rows = vec![
            (
                vec![("model_name", model), ("reason", "max_num_queued_reqs")],
                s.overloaded as f64,
            ),
            (
                vec![("model_name", model), ("reason", "max_num_queued_tokens")],
                0.0,
            ),
        ];
        f.multi(
            "vllm:admission_rejections_total",
            Some("Requests rejected at admission, by reason."),
            MetricType::Counter,
            &rows,
        );
    }
    if shape.old_prefix {
        f.counter(
            "vllm:gpu_prefix_cache_queries_total",
            Some("GPU prefix cache queries, in terms of number of queried tokens."),
            &l,
            s.prefix_queries as f64,
        );
        f.counter(
            "vllm:gpu_prefix_cache_hits_total",
            Some("GPU prefix cache hits, in terms of number of cached tokens."),
            &l,
            s.prefix_hits as f64,
        );
    }
    if shape.new_prefix {
        f.counter(
            "vllm:prefix_cache_queries_total",
            Some("Prefix cache queries, in terms of number of queried tokens."),
            &l,
            s.prefix_queries as f64,
        );
        f.counter(
            "vllm:prefix_cache_hits_total",
            Some("Prefix cache hits, in terms of number of cached tokens."),
            &l,
            s.prefix_hits as f64,
        );
    }
    if shape.engine_label && s.spec.drafts > 0 {
        spec_decode(&mut f, &l, s);
    }
    f.histogram(
        "vllm:iteration_tokens_total",
        Some("Histogram of number of tokens per engine_step."),
        &l,
        &s.iteration_tokens,
    );
    f.histogram(
        "vllm:time_to_first_token_seconds",
        Some("Histogram of time to first token in seconds."),
        &l,
        &s.ttft,
    );
    if shape.old_tpot {
        f.histogram(
            "vllm:time_per_output_token_seconds",
            Some("Histogram of time per output token in seconds."),
            &l,
            &s.itl,
        );
    }
    if shape.itl {
        f.histogram(
            "vllm:inter_token_latency_seconds",
            Some("Histogram of inter-token latency in seconds."),
            &l,
            &s.itl,
        );
    }
    if shape.request_tpot {
        f.histogram(
            "vllm:request_time_per_output_token_seconds",
            Some("Histogram of time_per_output_token_seconds per request."),
            &l,
            &s.tpot,
        );
    }
    f.histogram(
        "vllm:e2e_request_latency_seconds",
        Some("Histogram of e2e request latency in seconds."),
        &l,
        &s.e2e,
    );
    if shape.phases {
        f.histogram(
            "vllm:request_queue_time_seconds",
            Some("Histogram of time spent in WAITING phase for request."),
            &l,
            &s.queue,
        );
        f.histogram(
            "vllm:request_inference_time_seconds",
            Some("Histogram of time spent in RUNNING phase for request."),
            &l,
            &s.inference,
        );
        f.histogram(
            "vllm:request_prefill_time_seconds",
            Some("Histogram of time spent in PREFILL phase for request."),
            &l,
            &s.prefill,
        );
        f.histogram(
            "vllm:request_decode_time_seconds",
            Some("Histogram of time spent in DECODE phase for request."),
            &l,
            &s.decode,
        );
    }
    f.histogram(
        "vllm:request_prompt_tokens",
        Some("Number of prefill tokens processed."),
        &l,
        &s.prompt_len,
    );
    f.histogram(
        "vllm:request_generation_tokens",
        Some("Number of generation tokens processed."),
        &l,
        &s.gen_len,
    );
    f.histogram(
        "vllm:request_params_n",
        Some("Histogram of the n request parameter."),
        &l,
        &s.n_param,
    );
    f.histogram(
        "vllm:request_params_max_tokens",
        Some("Histogram of the max_tokens request parameter."),
        &l,
        &s.max_tokens,
    );
    if shape.cache_info {
        let blocks = live.num_blocks.to_string();
        let mut info = vec![
            ("block_size", "16"),
            ("cache_dtype", "auto"),
            (
                "enable_prefix_caching",
                if cfg.prefix_cache_hit_rate > 0.0 {
                    "True"
                } else {
                    "False"
                },
            ),
            ("gpu_memory_utilization", "0.9"),
            ("num_gpu_blocks", blocks.as_str()),
        ];
        if shape.engine_label {
            info.insert(3, ("engine", "0"));
        }
        f.gauge(
            "vllm:cache_config_info",
            Some("Information of the LLMEngine CacheConfig"),
            &info,
            1.0,
        );
    }
    f.finish()
}

/// vLLM V1's speculative-decoding counters (present once speculation has run).
fn spec_decode(f: &mut Families, l: &[(&str, &str)], s: &Stats) {
    f.counter(
        "vllm:spec_decode_num_drafts_total",
        Some("Number of spec decoding drafts."),
        l,
        s.spec.drafts as f64,
    );
    f.counter(
        "vllm:spec_decode_num_draft_tokens_total",
        Some("Number of draft tokens."),
        l,
        s.spec.draft_tokens as f64,
    );
    f.counter(
        "vllm:spec_decode_num_accepted_tokens_total",
        Some("Number of accepted tokens."),
        l,
        s.spec.accepted_tokens as f64,
    );
    let positions: Vec<String> = (0..s.spec.per_pos.len()).map(|i| i.to_string()).collect();
    let rows: Vec<(Vec<(&str, &str)>, f64)> = positions
        .iter()
        .zip(&s.spec.per_pos)
        .map(|(p, n)| {
            let mut labels = l.to_vec();
            labels.push(("position", p.as_str()));
            (labels, *n as f64)
        })
        .collect();
    f.multi(
        "vllm:spec_decode_num_accepted_tokens_per_pos_total",
        Some("Accepted tokens per draft position."),
        MetricType::Counter,
        &rows,
    );
}
