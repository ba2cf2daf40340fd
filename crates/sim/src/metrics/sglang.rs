//! SGLang's `/metrics` (python/sglang/srt/metrics/collector.py): label `model_name`.

use super::{Families, LeStyle, Live, Stats};
use crate::config::SimConfig;

pub(super) fn render(cfg: &SimConfig, live: &Live, s: &Stats) -> String {
    let l = [("model_name", cfg.model_name())];
    let max_tokens = live.num_blocks as f64 * 16.0;
    let hit = if s.prefix_queries == 0 {
        0.0
    } else {
        s.prefix_hits as f64 / s.prefix_queries as f64
    };
    let mut f = Families::new(LeStyle::Decimal);
    f.gauge(
        "sglang:num_running_reqs",
        Some("The number of running requests."),
        &l,
        live.running as f64,
    );
    f.gauge(
        "sglang:num_queue_reqs",
        Some("The number of requests in the waiting queue."),
        &l,
        live.waiting as f64,
    );
    f.gauge(
        "sglang:num_used_tokens",
        Some("The number of used tokens."),
        &l,
        live.used_tokens as f64,
    );
    f.gauge(
        "sglang:max_total_num_tokens",
        Some("Maximum total number of tokens in the KV cache pool."),
        &l,
        max_tokens,
    );
    f.gauge(
        "sglang:token_usage",
        Some("The token usage."),
        &l,
        live.kv_usage,
    );
    f.gauge(
        "sglang:gen_throughput",
        Some("The generation throughput (token/s)."),
        &l,
        s.gen_throughput,
    );
    f.gauge(
        "sglang:cache_hit_rate",
        Some("The prefix cache hit rate."),
        &l,
        hit,
    );
    f.counter(
        "sglang:prompt_tokens_total",
        Some("Number of prefill tokens processed."),
        &l,
        s.prompt_tokens as f64,
    );
    f.counter(
        "sglang:generation_tokens_total",
        Some("Number of generation tokens processed."),
        &l,
        s.generation_tokens as f64,
    );
    f.counter(
        "sglang:cached_tokens_total",
        Some("Number of cached prompt tokens."),
        &l,
        s.prefix_hits as f64,
    );
    f.counter(
        "sglang:num_requests_total",
        Some("Number of requests processed."),
        &l,
        s.finished_total() as f64,
    );
    f.counter(
        "sglang:num_aborted_requests_total",
        Some("Number of requests aborted."),
        &l,
        s.finished[2] as f64,
    );
    f.histogram(
        "sglang:time_to_first_token_seconds",
        Some("Histogram of time to first token in seconds."),
        &l,
        &s.ttft,
    );
    f.histogram(
        "sglang:inter_token_latency_seconds",
        Some("Histogram of inter-token latency in seconds."),
        &l,
        &s.itl,
    );
    f.histogram(
        "sglang:e2e_request_latency_seconds",
        Some("Histogram of End-to-end request latency in seconds"),
        &l,
        &s.e2e,
    );
    f.histogram(
        "sglang:queue_time_seconds",
        Some("Histogram of queueing time in seconds."),
        &l,
        &s.queue,
    );
    f.finish()
}
