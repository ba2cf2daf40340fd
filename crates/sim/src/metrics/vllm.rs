//! vLLM's `/metrics` (prometheus_client): V1 names by default, V0 on request.
//! Names, help texts, labels and buckets as vllm/v1/metrics/loggers.py (and the V0
//! engine's metrics.py) define them; labels `engine` (V1 only) and `model_name`.

use expo::MetricType;

use super::{Families, LeStyle, Live, Stats};
use crate::config::{SimConfig, VllmMetrics};

pub(super) fn render(cfg: &SimConfig, live: &Live, s: &Stats) -> String {
    let v1 = cfg.vllm_metrics == VllmMetrics::V1;
    let model = cfg.model_name();
    let l: Vec<(&str, &str)> = if v1 {
        vec![("engine", "0"), ("model_name", model)]
    } else {
        vec![("model_name", model)]
    };
    let mut f = Families::new(LeStyle::Decimal);
    if v1 {
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
        f.gauge(
            "vllm:kv_cache_usage_perc",
            Some("KV-cache usage. 1 means 100 percent usage."),
            &l,
            live.kv_usage,
        );
    } else {
        f.gauge(
            "vllm:num_requests_running",
            Some("Number of requests currently running on GPU."),
            &l,
            live.running as f64,
        );
        f.gauge(
            "vllm:num_requests_waiting",
            Some("Number of requests waiting to be processed."),
            &l,
            live.waiting as f64,
        );
        f.gauge(
            "vllm:num_requests_swapped",
            Some("Number of requests swapped to CPU."),
            &l,
            0.0,
        );
        f.gauge(
            "vllm:gpu_cache_usage_perc",
            Some("GPU KV-cache usage. 1 means 100 percent usage."),
            &l,
            live.kv_usage,
        );
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
    f.counter(
        "vllm:generation_tokens_total",
        Some("Number of generation tokens processed."),
        &l,
        s.generation_tokens as f64,
    );
    let reasons: &[(&str, usize)] = if v1 {
        &[("stop", 0), ("length", 1), ("abort", 2)]
    } else {
        &[("stop", 0), ("length", 1)]
    };
    let rows: Vec<(Vec<(&str, &str)>, f64)> = reasons
        .iter()
        .map(|(r, i)| {
            let labels = if v1 {
                vec![
                    ("engine", "0"),
                    ("finished_reason", *r),
                    ("model_name", model),
                ]
            } else {
                vec![("finished_reason", *r), ("model_name", model)]
            };
            (labels, s.finished[*i] as f64)
        })
        .collect();
    f.multi(
        "vllm:request_success_total",
        Some("Count of successfully processed requests."),
        MetricType::Counter,
        &rows,
    );
    if v1 {
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
    if v1 && s.spec.drafts > 0 {
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
    if v1 {
        f.histogram(
            "vllm:inter_token_latency_seconds",
            Some("Histogram of inter-token latency in seconds."),
            &l,
            &s.itl,
        );
        f.histogram(
            "vllm:request_time_per_output_token_seconds",
            Some("Histogram of time_per_output_token_seconds per request."),
            &l,
            &s.tpot,
        );
        f.histogram(
            "vllm:e2e_request_latency_seconds",
            Some("Histogram of e2e request latency in seconds."),
            &l,
            &s.e2e,
        );
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
    } else {
        f.histogram(
            "vllm:time_per_output_token_seconds",
            Some("Histogram of time per output token in seconds."),
            &l,
            &s.itl,
        );
        f.histogram(
            "vllm:e2e_request_latency_seconds",
            Some("Histogram of end to end request latency in seconds."),
            &l,
            &s.e2e,
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
    if v1 {
        let blocks = live.num_blocks.to_string();
        let info = [
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
            ("engine", "0"),
            ("gpu_memory_utilization", "0.9"),
            ("num_gpu_blocks", blocks.as_str()),
        ];
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
