//! TGI's `/metrics`: the Rust `metrics` crate's Prometheus exporter as the router
//! configures it (router/src/server.rs): no help texts, no labels except `method` on batch
//! series and `err` on failures; durations in 35 buckets ×1.5 from 0.15 ms, lengths in
//! 100 linear buckets, batch sizes 1..=1024.

use expo::MetricType;

use super::{Families, LeStyle, Live, Stats};
use crate::config::SimConfig;

pub(super) fn render(cfg: &SimConfig, live: &Live, s: &Stats) -> String {
    let release = cfg.version.is_some();
    let mut f = Families::new(LeStyle::Integer);
    let none: [(&str, &str); 0] = [];
    f.gauge("tgi_queue_size", None, &none, live.waiting as f64);
    f.gauge("tgi_batch_current_size", None, &none, live.running as f64);
    f.gauge(
        "tgi_batch_current_max_tokens",
        None,
        &none,
        live.reserved_tokens as f64,
    );
    if release {
        // The KV token budget the batch may fill (v3 backends, `--max-batch-total-tokens`).
        f.gauge(
            "tgi_batch_max_total_tokens",
            None,
            &none,
            live.num_blocks as f64 * 16.0,
        );
    }
    f.counter("tgi_request_count", None, &none, s.received as f64);
    f.counter(
        "tgi_request_success",
        None,
        &none,
        (s.finished[0] + s.finished[1]) as f64,
    );
    let mut failures = vec![
        (vec![("err", "overloaded")], s.overloaded as f64),
        (vec![("err", "validation")], s.invalid as f64),
    ];
    if release {
        // Errors raised while generating; the simulated backend never fails.
        failures.push((vec![("err", "generation")], 0.0));
    }
    f.multi("tgi_request_failure", None, MetricType::Counter, &failures);
    f.histogram("tgi_request_duration", None, &none, &s.e2e);
    f.histogram(
        "tgi_request_validation_duration",
        None,
        &none,
        &s.validation,
    );
    f.histogram("tgi_request_queue_duration", None, &none, &s.queue);
    f.histogram("tgi_request_inference_duration", None, &none, &s.inference);
    f.histogram(
        "tgi_request_mean_time_per_token_duration",
        None,
        &none,
        &s.tpot,
    );
    f.histogram("tgi_request_input_length", None, &none, &s.prompt_len);
    f.histogram("tgi_request_generated_tokens", None, &none, &s.gen_len);
    f.histogram("tgi_request_max_new_tokens", None, &none, &s.max_tokens);
    f.histogram("tgi_batch_next_size", None, &none, &s.batch_next_size);
    let counts = vec![
        (vec![("method", "prefill")], s.prefill_steps as f64),
        (vec![("method", "decode")], s.decode_steps as f64),
    ];
    f.multi(
        "tgi_batch_inference_count",
        None,
        MetricType::Counter,
        &counts,
    );
    f.multi(
        "tgi_batch_inference_success",
        None,
        MetricType::Counter,
        &counts,
    );
    let mut samples = Vec::new();
    f.histogram_samples(
        "tgi_batch_inference_duration",
        &[("method", "prefill")],
        &s.batch_prefill,
        &mut samples,
    );
    f.histogram_samples(
        "tgi_batch_inference_duration",
        &[("method", "decode")],
        &s.batch_decode,
        &mut samples,
    );
    f.push_samples(
        "tgi_batch_inference_duration",
        MetricType::Histogram,
        samples,
    );
    f.finish()
}
