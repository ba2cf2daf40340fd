//! llama.cpp server's `/metrics` (with `--metrics`): prefix `llamacpp:`, no labels. The
//! throughput gauges average over the window since the previous scrape, and each scrape
//! starts a new window, as the real server does.

use super::{Families, LeStyle, Live, Stats};
use crate::config::{EngineVersion, SimConfig};

pub(super) fn render(cfg: &SimConfig, live: &Live, s: &mut Stats) -> String {
    // Before PR #26920 cached prompt tokens were neither counted nor exposed.
    let cached = cfg.version != Some(EngineVersion::LlamacppBefore26920);
    let none: [(&str, &str); 0] = [];
    let w = std::mem::take(&mut s.window);
    let per = |n: u64, secs: f64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    let mut f = Families::new(LeStyle::Decimal);
    f.counter(
        "llamacpp:prompt_tokens_total",
        Some("Number of prompt tokens processed, excluding cached tokens"),
        &none,
        (s.prompt_tokens - s.prefix_hits) as f64,
    );
    if cached {
        f.counter(
            "llamacpp:prompt_tokens_cached_total",
            Some("Number of prompt tokens reused from the cache"),
            &none,
            s.prefix_hits as f64,
        );
    }
    f.counter(
        "llamacpp:prompt_seconds_total",
        Some("Total time spent processing prompts"),
        &none,
        s.prompt_seconds,
    );
    f.counter(
        "llamacpp:tokens_predicted_total",
        Some("Number of generation tokens processed"),
        &none,
        s.generation_tokens as f64,
    );
    f.counter(
        "llamacpp:tokens_predicted_seconds_total",
        Some("Total time spent generating tokens"),
        &none,
        s.predicted_seconds,
    );
    f.counter("llamacpp:n_decode_total", Some("Total number of llama_decode() calls, excluding speculative decoding and multimodal decoding"), &none, s.n_decode as f64);
    f.counter(
        "llamacpp:n_tokens_max",
        Some("Largest observed sequence length (prompt + generation)"),
        &none,
        s.n_tokens_max as f64,
    );
    f.counter(
        "llamacpp:spec_decode_num_draft_tokens_total",
        Some("Speculative: Total draft tokens generated"),
        &none,
        0.0,
    );
    f.counter(
        "llamacpp:spec_decode_num_accepted_tokens_total",
        Some("Speculative: Total draft tokens accepted by the target model"),
        &none,
        0.0,
    );
    f.counter(
        "llamacpp:spec_decode_num_drafts_total",
        Some("Speculative: Total speculative decoding verification steps"),
        &none,
        0.0,
    );
    f.gauge(
        "llamacpp:prompt_tokens_seconds",
        Some("Average prompt throughput in tokens/s"),
        &none,
        per(w.prompt_tokens, w.prompt_s),
    );
    f.gauge(
        "llamacpp:predicted_tokens_seconds",
        Some("Average generation throughput in tokens/s"),
        &none,
        per(w.predicted_tokens, w.predicted_s),
    );
    f.gauge(
        "llamacpp:requests_processing",
        Some("Number of requests processing"),
        &none,
        live.running as f64,
    );
    f.gauge(
        "llamacpp:requests_deferred",
        Some("Number of requests deferred"),
        &none,
        live.waiting as f64,
    );
    let busy = if w.decodes > 0 {
        w.busy_slots as f64 / w.decodes as f64
    } else {
        0.0
    };
    f.gauge(
        "llamacpp:n_busy_slots_per_decode",
        Some("Average number of busy slots per llama_decode() call"),
        &none,
        busy,
    );
    f.finish()
}
