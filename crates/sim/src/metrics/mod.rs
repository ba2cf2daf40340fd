//! What the engine measured, and its exposition in each dialect.
//!
//! [`Stats`] records every request's real simulated times into histograms with the
//! buckets of the configured dialect, and the counters every dialect needs; the dialect
//! modules only name and shape them. Every body is written by [`expo::Writer`].

mod dcgm;
mod llamacpp;
mod sglang;
mod tgi;
mod vllm;

pub use dcgm::{Placement, render as render_dcgm};

use expo::{Format, MetricType, OwnedFamily, OwnedSample, Writer};

use crate::config::{EngineKind, SimConfig};
use crate::scheduler::FinishReason;

/// The engines' histograms: the one shared histogram type.
pub use strata_core::Histogram;

/// How a bucket bound is spelled: Python's client writes `1.0`, Rust's exporter `1`.
pub(crate) use expo::LeStyle;

/// Builds a list of families.
pub(crate) struct Families {
    fams: Vec<OwnedFamily>,
    le: LeStyle,
}

impl Families {
    pub(crate) fn new(le: LeStyle) -> Families {
        Families {
            fams: Vec::with_capacity(48),
            le,
        }
    }

    fn family(&mut self, name: &str, help: Option<&str>, t: MetricType, samples: Vec<OwnedSample>) {
        self.fams.push(OwnedFamily {
            name: name.to_string(),
            metric_type: t,
            help: help.map(str::to_string),
            unit: None,
            samples,
        });
    }

    pub(crate) fn gauge(
        &mut self,
        name: &str,
        help: Option<&str>,
        labels: &[(&str, &str)],
        v: f64,
    ) {
        let s = vec![OwnedSample::new(name, labels, v)];
        self.family(name, help, MetricType::Gauge, s);
    }

    pub(crate) fn counter(
        &mut self,
        name: &str,
        help: Option<&str>,
        labels: &[(&str, &str)],
        v: f64,
    ) {
        let s = vec![OwnedSample::new(name, labels, v)];
        self.family(name, help, MetricType::Counter, s);
    }

    /// One family, several label sets.
    pub(crate) fn multi(
        &mut self,
        name: &str,
        help: Option<&str>,
        t: MetricType,
        rows: &[(Vec<(&str, &str)>, f64)],
    ) {
        let s = rows
            .iter()
            .map(|(l, v)| OwnedSample::new(name, l, *v))
            .collect();
        self.family(name, help, t, s);
    }

    pub(crate) fn histogram(
        &mut self,
        name: &str,
        help: Option<&str>,
        labels: &[(&str, &str)],
        h: &Histogram,
    ) {
        let mut samples = Vec::with_capacity(h.bounds().len() + 3);
        self.histogram_samples(name, labels, h, &mut samples);
        self.family(name, help, MetricType::Histogram, samples);
    }

    pub(crate) fn histogram_samples(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        h: &Histogram,
        samples: &mut Vec<OwnedSample>,
    ) {
        let labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        samples.extend(expo::histogram_samples(name, &labels, h, self.le));
    }

    /// A family from samples built with [`Families::histogram_samples`].
    pub(crate) fn push_samples(&mut self, name: &str, t: MetricType, samples: Vec<OwnedSample>) {
        self.family(name, None, t, samples);
    }

    pub(crate) fn finish(self) -> String {
        Writer::render(Format::Prometheus, &self.fams)
    }
}

/// Engine state at the moment of a scrape.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Live {
    /// Requests in the running batch.
    pub running: u32,
    /// Requests queued.
    pub waiting: u32,
    /// KV blocks in use, 0..1.
    pub kv_usage: f64,
    /// KV blocks in total.
    pub num_blocks: u32,
    /// Tokens held in the KV cache.
    pub used_tokens: u64,
    /// Tokens reserved in the TGI budget.
    pub reserved_tokens: u64,
}

/// Counters and histograms every dialect draws from.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// Prompt tokens of admitted requests.
    pub prompt_tokens: u64,
    /// Output tokens produced.
    pub generation_tokens: u64,
    /// Preemptions.
    pub preemptions: u64,
    /// Prefix-cache query tokens.
    pub prefix_queries: u64,
    /// Prefix-cache hit tokens.
    pub prefix_hits: u64,
    /// Finished requests by reason: stop, length, abort.
    pub finished: [u64; 3],
    /// Requests received (TGI counts refused ones too).
    pub received: u64,
    /// Requests refused because the queue was full.
    pub overloaded: u64,
    /// Requests refused by validation.
    pub invalid: u64,
    /// Steps with prompt tokens / with decoding sequences.
    pub prefill_steps: u64,
    /// Steps with decoding sequences.
    pub decode_steps: u64,
    /// Time to first token.
    pub ttft: Histogram,
    /// Gap between consecutive tokens.
    pub itl: Histogram,
    /// Per-request mean time per output token.
    pub tpot: Histogram,
    /// End to end.
    pub e2e: Histogram,
    /// Waiting before first scheduled.
    pub queue: Histogram,
    /// First scheduled to first token.
    pub prefill: Histogram,
    /// First token to last.
    pub decode: Histogram,
    /// First scheduled to last token.
    pub inference: Histogram,
    /// Prompt lengths.
    pub prompt_len: Histogram,
    /// Output lengths.
    pub gen_len: Histogram,
    /// `max_tokens` requested.
    pub max_tokens: Histogram,
    /// `n` requested (always 1).
    pub n_param: Histogram,
    /// Tokens per step.
    pub iteration_tokens: Histogram,
    /// TGI: size of each batch that joins.
    pub batch_next_size: Histogram,
    /// TGI: validation time.
    pub validation: Histogram,
    /// TGI: prefill forward durations.
    pub batch_prefill: Histogram,
    /// TGI: decode forward durations.
    pub batch_decode: Histogram,
    /// llama.cpp: seconds spent on prompts / generation, decode calls, longest sequence.
    pub prompt_seconds: f64,
    /// llama.cpp: seconds generating.
    pub predicted_seconds: f64,
    /// llama.cpp: `llama_decode` calls.
    pub n_decode: u64,
    /// llama.cpp: longest sequence seen.
    pub n_tokens_max: u64,
    /// llama.cpp's since-last-scrape window (reset by every scrape).
    pub window: Window,
    /// SGLang: smoothed generation throughput, tokens/s.
    pub gen_throughput: f64,
    /// Speculative decoding counters.
    pub spec: SpecStats,
}

/// Speculative decoding counters (vLLM's `spec_decode_*`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpecStats {
    /// Draft proposals (one per decoding sequence per step).
    pub drafts: u64,
    /// Draft tokens proposed.
    pub draft_tokens: u64,
    /// Draft tokens accepted.
    pub accepted_tokens: u64,
    /// Accepted tokens by draft position.
    pub per_pos: Vec<u64>,
}

/// llama.cpp's per-scrape averaging window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Window {
    /// Prompt tokens in the window.
    pub prompt_tokens: u64,
    /// Prompt seconds in the window.
    pub prompt_s: f64,
    /// Generated tokens in the window.
    pub predicted_tokens: u64,
    /// Generation seconds in the window.
    pub predicted_s: f64,
    /// Busy slots summed over decode calls.
    pub busy_slots: u64,
    /// Decode calls.
    pub decodes: u64,
}

const VLLM_TTFT: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];
const VLLM_ITL: &[f64] = &[
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
    40.0, 80.0,
];
const VLLM_REQ: &[f64] = &[
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
    480.0, 960.0, 1920.0, 7680.0,
];
const VLLM_ITER: &[f64] = &[
    1.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0,
];
const SGLANG_TTFT: &[f64] = &[
    0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 20.0, 40.0, 60.0,
];
const SGLANG_ITL: &[f64] = &[
    0.002, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.25, 0.5, 1.0,
];
const SGLANG_E2E: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 40.0, 60.0, 120.0, 300.0,
];

/// vLLM's 1-2-5 token buckets up to `max`.
fn one_two_five(max: u32) -> Vec<f64> {
    let mut out = Vec::new();
    let mut base = 1.0;
    loop {
        for m in [1.0, 2.0, 5.0] {
            let v = base * m;
            if v > max as f64 {
                return out;
            }
            out.push(v);
        }
        base *= 10.0;
    }
}

/// TGI's duration buckets: 35 steps of ×1.5 from 0.1 ms.
fn tgi_durations() -> Vec<f64> {
    let mut v = 0.0001;
    (0..35)
        .map(|_| {
            v *= 1.5;
            v
        })
        .collect()
}

/// TGI's length buckets: 100 equal steps up to `max`.
fn tgi_linear(max: u32) -> Vec<f64> {
    (0..100)
        .map(|x| (max as f64 / 100.0) * (x + 1) as f64)
        .collect()
}

impl Stats {
    /// Empty stats with the buckets of `cfg`'s dialect.
    pub fn new(cfg: &SimConfig) -> Stats {
        let h = |b: &[f64]| Histogram::new(b);
        let none = || Histogram::new(&[]);
        let ctx = cfg.context();
        let (ttft, itl, tpot, req, tokens) = match cfg.engine {
            EngineKind::Vllm => (
                h(VLLM_TTFT),
                h(VLLM_ITL),
                h(VLLM_ITL),
                VLLM_REQ.to_vec(),
                one_two_five(ctx),
            ),
            EngineKind::Sglang => (
                h(SGLANG_TTFT),
                h(SGLANG_ITL),
                h(SGLANG_ITL),
                SGLANG_E2E.to_vec(),
                Vec::new(),
            ),
            EngineKind::Tgi => (
                none(),
                none(),
                Histogram::new(&tgi_durations()),
                tgi_durations(),
                Vec::new(),
            ),
            EngineKind::Llamacpp => (none(), none(), none(), Vec::new(), Vec::new()),
        };
        let tgi = cfg.engine == EngineKind::Tgi;
        let (prompt_len, gen_len, max_tokens) = if tgi {
            // TGI: input length up to max_input_tokens, generated up to max_total_tokens.
            (
                Histogram::new(&tgi_linear(ctx - 1)),
                Histogram::new(&tgi_linear(ctx)),
                Histogram::new(&tgi_linear(ctx)),
            )
        } else {
            (
                Histogram::new(&tokens),
                Histogram::new(&tokens),
                Histogram::new(&tokens),
            )
        };
        let tgi_h = |b: Vec<f64>| if tgi { Histogram::new(&b) } else { none() };
        Stats {
            prompt_tokens: 0,
            generation_tokens: 0,
            preemptions: 0,
            prefix_queries: 0,
            prefix_hits: 0,
            finished: [0; 3],
            received: 0,
            overloaded: 0,
            invalid: 0,
            prefill_steps: 0,
            decode_steps: 0,
            ttft,
            itl,
            tpot,
            e2e: Histogram::new(&req),
            queue: Histogram::new(&req),
            prefill: Histogram::new(&req),
            decode: Histogram::new(&req),
            inference: Histogram::new(&req),
            prompt_len,
            gen_len,
            max_tokens,
            n_param: if cfg.engine == EngineKind::Vllm {
                h(&[1.0, 2.0, 5.0, 10.0, 20.0])
            } else {
                none()
            },
            iteration_tokens: if cfg.engine == EngineKind::Vllm {
                h(VLLM_ITER)
            } else {
                none()
            },
            batch_next_size: tgi_h((1..=1024).map(f64::from).collect()),
            validation: tgi_h(tgi_durations()),
            batch_prefill: tgi_h(tgi_durations()),
            batch_decode: tgi_h(tgi_durations()),
            prompt_seconds: 0.0,
            predicted_seconds: 0.0,
            n_decode: 0,
            n_tokens_max: 0,
            window: Window::default(),
            gen_throughput: 0.0,
            spec: SpecStats::default(),
        }
    }

    /// Counts a finished request.
    pub fn finish(&mut self, reason: FinishReason) {
        let i = match reason {
            FinishReason::Stop => 0,
            FinishReason::Length => 1,
            FinishReason::Abort => 2,
        };
        self.finished[i] += 1;
    }

    /// Requests finished, all reasons.
    pub fn finished_total(&self) -> u64 {
        self.finished.iter().sum()
    }
}

/// Renders the engine's `/metrics` body in `cfg`'s dialect. Takes `stats` mutably because
/// llama.cpp resets its throughput window on every scrape, as the real server does.
pub fn render_engine(cfg: &SimConfig, live: &Live, stats: &mut Stats) -> String {
    match cfg.engine {
        EngineKind::Vllm => vllm::render(cfg, live, stats),
        EngineKind::Tgi => tgi::render(cfg, live, stats),
        EngineKind::Sglang => sglang::render(cfg, live, stats),
        EngineKind::Llamacpp => llamacpp::render(cfg, live, stats),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_le_spelled_like_the_engine() {
        let h = Histogram::new(&[0.1, 1.0]);
        for v in [0.05, 0.1, 0.5, 3.0] {
            h.observe(v);
        }
        let mut f = Families::new(LeStyle::Decimal);
        f.histogram("x", None, &[("a", "b")], &h);
        let body = f.finish();
        assert!(body.contains("x_bucket{a=\"b\",le=\"0.1\"} 2\n"), "{body}");
        assert!(body.contains("x_bucket{a=\"b\",le=\"1.0\"} 3\n"), "{body}");
        assert!(body.contains("x_bucket{a=\"b\",le=\"+Inf\"} 4\n"), "{body}");
        assert!(body.contains("x_count{a=\"b\"} 4\n"), "{body}");
        assert_eq!(LeStyle::Integer.format(1.0), "1");
        assert_eq!(one_two_five(8192).last(), Some(&5000.0));
        assert_eq!(tgi_durations().len(), 35);
        assert!((tgi_durations()[0] - 0.00015).abs() < 1e-12);
    }
}
