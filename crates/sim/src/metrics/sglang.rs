//! SGLang's `/metrics` (python/sglang/srt/metrics/collector.py, later
//! observability/metrics_collector.py): label `model_name` by default, or exactly the families
//! and labels of one release (`--engine-version`): the scheduler's series carry
//! `engine_type`, `tp_rank`, `pp_rank` (0.4.10 on) and `moe_ep_rank`, `dp_rank` (0.5.10 on);
//! the tokenizer's token counters, TTFT and e2e carry `is_streaming`, cached tokens
//! `cache_source` (0.5.10 on); retractions are a running-total gauge in 0.4.10, a per-batch
//! gauge from 0.5.4 and a counter from 0.5.10, which also adds a per-request TPOT histogram. One scheduler rank: a single-GPU server.

use expo::MetricType;

use super::{Families, LeStyle, Live, Stats};
use crate::config::{EngineVersion, SimConfig};

pub(super) fn render(cfg: &SimConfig, live: &Live, s: &Stats) -> String {
    let model = cfg.model_name();
    let v = cfg.version;
    let ranks = v.is_some();
    let v0510 = v == Some(EngineVersion::Sglang0523);
    // Scheduler series (one per rank) and tokenizer series.
    let mut sched = vec![("model_name", model)];
    if ranks {
        sched.extend([
            ("engine_type", "unified"),
            ("pp_rank", "0"),
            ("tp_rank", "0"),
        ]);
    }
    if v0510 {
        sched.extend([("dp_rank", "0"), ("moe_ep_rank", "0")]);
    }
    let mut tok = vec![("model_name", model)];
    if v0510 {
        tok.push(("engine_type", "unified"));
    }
    // The simulator serves every request as a stream: is_streaming="true" holds them all.
    let mut streaming = tok.clone();
    if v0510 {
        streaming.push(("is_streaming", "true"));
    }
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
        &sched,
        live.running as f64,
    );
    f.gauge(
        "sglang:num_queue_reqs",
        Some("The number of requests in the waiting queue."),
        &sched,
        live.waiting as f64,
    );
    f.gauge(
        "sglang:num_used_tokens",
        Some("The number of used tokens."),
        &sched,
        live.used_tokens as f64,
    );
    // Not registered by 0.4.10-0.5.9.
    if v.is_none() || v0510 {
        f.gauge(
            "sglang:max_total_num_tokens",
            Some("Maximum total number of tokens in the KV cache pool."),
            &sched,
            max_tokens,
        );
    }
    f.gauge(
        "sglang:token_usage",
        Some("The token usage."),
        &sched,
        live.kv_usage,
    );
    f.gauge(
        "sglang:gen_throughput",
        Some("The generation throughput (token/s)."),
        &sched,
        s.gen_throughput,
    );
    f.gauge(
        "sglang:cache_hit_rate",
        Some("The prefix cache hit rate."),
        &sched,
        hit,
    );
    retractions(&mut f, v, &sched, s);
    f.counter(
        "sglang:prompt_tokens_total",
        Some("Number of prefill tokens processed."),
        &streaming,
        s.prompt_tokens as f64,
    );
    f.counter(
        "sglang:generation_tokens_total",
        Some("Number of generation tokens processed."),
        &streaming,
        s.generation_tokens as f64,
    );
    if v0510 {
        let with = |src| {
            let mut l = tok.clone();
            l.push(("cache_source", src));
            l
        };
        let rows = vec![
            (with("device"), s.prefix_hits as f64),
            (with("host"), 0.0),
            (with("storage"), 0.0),
        ];
        f.multi(
            "sglang:cached_tokens_total",
            Some("Number of cached prompt tokens."),
            MetricType::Counter,
            &rows,
        );
    } else {
        f.counter(
            "sglang:cached_tokens_total",
            Some("Number of cached prompt tokens."),
            &tok,
            s.prefix_hits as f64,
        );
    }
    f.counter(
        "sglang:num_requests_total",
        Some("Number of requests processed."),
        &streaming,
        s.finished_total() as f64,
    );
    f.counter(
        "sglang:num_aborted_requests_total",
        Some("Number of requests aborted."),
        &tok,
        s.finished[2] as f64,
    );
    f.histogram(
        "sglang:time_to_first_token_seconds",
        Some("Histogram of time to first token in seconds."),
        &streaming,
        &s.ttft,
    );
    f.histogram(
        "sglang:inter_token_latency_seconds",
        Some("Histogram of inter-token latency in seconds."),
        &tok,
        &s.itl,
    );
    if v0510 {
        f.histogram(
            "sglang:request_time_per_output_token_seconds",
            Some("Per-request TPOT in seconds: (finished_time - first_token_time) / (completion_tokens - 1)."),
            &streaming,
            &s.tpot,
        );
    }
    f.histogram(
        "sglang:e2e_request_latency_seconds",
        Some("Histogram of End-to-end request latency in seconds"),
        &streaming,
        &s.e2e,
    );
    // Not registered before 0.5.
    if v != Some(EngineVersion::Sglang0410) {
        f.histogram(
            "sglang:queue_time_seconds",
            Some("Histogram of queueing time in seconds."),
            &sched,
            &s.queue,
        );
    }
    f.finish()
}

/// Retracted requests as each release counts them (none in the default mix).
fn retractions(f: &mut Families, v: Option<EngineVersion>, sched: &[(&str, &str)], s: &Stats) {
    let Some(v) = v else { return };
    if v == EngineVersion::Sglang0410 {
        f.gauge(
            "sglang:total_retracted_reqs",
            Some("The total number of retracted requests due to kvcache full."),
            sched,
            s.preemptions as f64,
        );
        return;
    }
    // The per-batch gauge is written by each scheduler process with its `pid`.
    let mut with_pid = sched.to_vec();
    with_pid.push(("pid", "4242"));
    f.gauge(
        "sglang:num_retracted_reqs",
        Some("The number of retracted requests in the last batch."),
        &with_pid,
        0.0,
    );
    if v == EngineVersion::Sglang0523 {
        f.counter(
            "sglang:num_retracted_requests_total",
            Some("Total number of retracted requests due to insufficient resources."),
            sched,
            s.preemptions as f64,
        );
    }
}
