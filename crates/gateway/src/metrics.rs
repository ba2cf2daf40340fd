//! The gateway's own metrics: latency histograms by (model, tenant, upstream) with
//! exemplars of kept traces, request/token/quality counters, and the pipeline's health.
//!
//! Hot path: a request looks its [`Series`] up once; every observation after that is an
//! atomic add. Exemplars are written only for traces the tail sampler keeps, so every
//! exemplar leads to a trace that was exported.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use expo::{Format, MetricType, OwnedFamily, OwnedSample, Writer};
use strata_core::Throttle;

use crate::errors::ErrorClass;

/// TTFT buckets (seconds): dense around the seeds' SLO thresholds (code 0.5 s, chat 1 s,
/// RAG 3 s, sampling 2 s, alert 5 s), sparse up to 5 minutes so a saturated queue reads as
/// its real wait, not as a plateau at the top bucket.
pub const TTFT_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.75, 0.8, 1.0, 1.25,
    1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0, 180.0, 300.0,
];
/// ITL and TPOT buckets (seconds): every 5 ms from 20 to 50 ms and every 10 ms to 100 ms,
/// around the seeds' ITL thresholds (code 30 ms, RAG 50 ms, chat 80 ms).
pub const ITL_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.035, 0.04, 0.045, 0.05, 0.06, 0.07,
    0.08, 0.09, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0,
];
/// End-to-end buckets (seconds), up to 10 minutes; the seeds' 10 s SLA and 30 s alert are
/// boundaries.
pub const E2E_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0,
    180.0, 300.0, 600.0,
];
/// Output tokens / max_tokens (1 = truncated at the limit).
pub const RATIO_BUCKETS: &[f64] = &[0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0];

/// The gateway's histograms and their exemplars: the one shared histogram type.
pub use strata_core::{Exemplar, Histogram};

/// The exemplar of one kept request's trace on a histogram value.
pub fn trace_exemplar(
    trace_id: String,
    span_id: String,
    unix_seconds: f64,
    value: f64,
) -> Exemplar {
    Exemplar {
        labels: vec![
            ("trace_id".to_string(), trace_id),
            ("span_id".to_string(), span_id),
        ],
        value,
        timestamp: Some(unix_seconds),
    }
}

/// The label set of gateway metrics.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// Model asked for (`other` past the series cap, `unknown` when none).
    pub model: String,
    /// Tenant.
    pub tenant: String,
    /// Upstream name (`none` when no upstream was picked).
    pub upstream: String,
}

impl Key {
    fn labels(&self) -> Vec<(String, String)> {
        vec![
            ("model".to_string(), self.model.clone()),
            ("tenant".to_string(), self.tenant.clone()),
            ("upstream".to_string(), self.upstream.clone()),
        ]
    }
}

/// Everything recorded for one label set.
#[derive(Debug)]
pub struct Series {
    /// Its labels.
    pub key: Key,
    /// Time to first token.
    pub ttft: Histogram,
    /// Gaps between tokens.
    pub itl: Histogram,
    /// Received to last byte.
    pub e2e: Histogram,
    /// Per-request mean time per output token after the first.
    pub tpot: Histogram,
    /// Output tokens / max_tokens.
    pub output_ratio: Histogram,
    /// Prompt tokens.
    pub prompt_tokens: AtomicU64,
    /// Generated tokens.
    pub generation_tokens: AtomicU64,
    /// Prompt tokens of useful requests ([`crate::record::Record::useful`]).
    pub useful_prompt_tokens: AtomicU64,
    /// Generated tokens of useful requests.
    pub useful_generation_tokens: AtomicU64,
    /// Requests in flight.
    pub in_flight: AtomicI64,
    /// Responses matching a refusal phrase.
    pub refusals: AtomicU64,
    /// Empty or very short responses.
    pub short_responses: AtomicU64,
    /// Upstream streams or bodies that were not what the wire format says.
    pub malformed: AtomicU64,
    /// Requests the gateway added `include_usage` to.
    pub usage_injected: AtomicU64,
    errors: [AtomicU64; ErrorClass::ALL.len()],
    outcomes: Mutex<Vec<((u16, String), u64)>>,
}

impl Series {
    fn new(key: Key) -> Series {
        Series {
            key,
            ttft: Histogram::new(TTFT_BUCKETS),
            itl: Histogram::new(ITL_BUCKETS),
            e2e: Histogram::new(E2E_BUCKETS),
            tpot: Histogram::new(ITL_BUCKETS),
            output_ratio: Histogram::new(RATIO_BUCKETS),
            prompt_tokens: AtomicU64::new(0),
            generation_tokens: AtomicU64::new(0),
            useful_prompt_tokens: AtomicU64::new(0),
            useful_generation_tokens: AtomicU64::new(0),
            in_flight: AtomicI64::new(0),
            refusals: AtomicU64::new(0),
            short_responses: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            usage_injected: AtomicU64::new(0),
            errors: Default::default(),
            outcomes: Mutex::new(Vec::new()),
        }
    }

    /// Counts a finished request by status and finish reason.
    pub fn outcome(&self, status: u16, finish_reason: &str) {
        let mut o = strata_core::sync::lock(&self.outcomes);
        match o
            .iter_mut()
            .find(|((s, f), _)| *s == status && f == finish_reason)
        {
            Some((_, n)) => *n += 1,
            None => o.push(((status, finish_reason.to_string()), 1)),
        }
    }

    /// Counts an error.
    pub fn error(&self, class: ErrorClass) {
        self.errors[class.index()].fetch_add(1, Ordering::Relaxed);
    }
}

/// Counters of the gateway's own pipeline (export, log, sampling).
#[derive(Debug, Default)]
pub struct Pipeline {
    /// Spans accepted by the OTLP receiver.
    pub spans_exported: AtomicU64,
    /// Spans dropped because the export queue was full.
    pub spans_dropped_queue: AtomicU64,
    /// Spans dropped because an export call failed or timed out.
    pub spans_dropped_export: AtomicU64,
    /// Traces kept, by policy: error, slow_ttft, tenant, baseline.
    pub traces_kept: [AtomicU64; 4],
    /// Traces not kept.
    pub traces_dropped: AtomicU64,
    /// Log lines dropped because the log writer fell behind.
    pub log_lines_dropped: AtomicU64,
    /// Log lines that could not be written (I/O errors).
    pub log_write_errors: AtomicU64,
    /// Capture records dropped.
    pub captures_dropped: AtomicU64,
    /// Requests on paths the gateway passes through untimed.
    pub passthrough: AtomicU64,
}

/// The label value that series past a cap are folded into.
pub const OTHER: &str = "other";

/// Shortest time between two log lines about the tenant limit.
const OVERFLOW_LOG_EVERY: Duration = Duration::from_secs(60);

/// The series and the tenants that have their own.
#[derive(Debug, Default)]
struct Index {
    series: HashMap<Key, Arc<Series>>,
    tenants: HashSet<String>,
}

/// All gateway metrics.
#[derive(Debug)]
pub struct Metrics {
    index: RwLock<Index>,
    max_series: usize,
    max_tenants: usize,
    /// Requests counted under `tenant="other"` because the tenant limit was reached.
    pub tenant_overflow: AtomicU64,
    overflow_logged: Mutex<Throttle<()>>,
    /// Client connections open now.
    pub connections_open: AtomicI64,
    /// Client connections answered `503` and closed because `max_connections` were open.
    pub connections_rejected: AtomicU64,
    /// Client connections closed because no request head arrived within the header
    /// timeout (never sent a byte, or stalled mid-head).
    pub connections_timed_out: AtomicU64,
    /// Requests sent again on a fresh connection after a pooled one turned out closed, by
    /// upstream name.
    upstream_retries: Mutex<Vec<(String, u64)>>,
    /// Pipeline health counters.
    pub pipeline: Arc<Pipeline>,
}

/// Policy names, in [`Pipeline::traces_kept`] order.
pub const POLICIES: [&str; 4] = ["error", "slow_ttft", "tenant", "baseline"];

impl Metrics {
    /// No series yet; at most `max_series` label sets and
    /// [`crate::config::DEFAULT_MAX_TENANTS`] tenants.
    pub fn new(max_series: usize) -> Metrics {
        Metrics::with_limits(max_series, crate::config::DEFAULT_MAX_TENANTS)
    }

    /// No series yet; at most `max_series` label sets (later ones fold into
    /// `model="other",tenant="other"`) and `max_tenants` tenants (later ones fold into
    /// `tenant="other"`, counted).
    pub fn with_limits(max_series: usize, max_tenants: usize) -> Metrics {
        Metrics {
            index: RwLock::new(Index::default()),
            max_series: max_series.max(1),
            max_tenants: max_tenants.max(1),
            tenant_overflow: AtomicU64::new(0),
            overflow_logged: Mutex::new(Throttle::new(OVERFLOW_LOG_EVERY)),
            connections_open: AtomicI64::new(0),
            connections_rejected: AtomicU64::new(0),
            connections_timed_out: AtomicU64::new(0),
            upstream_retries: Mutex::new(Vec::new()),
            pipeline: Arc::new(Pipeline::default()),
        }
    }

    /// The series of a label set, created on first use. A tenant past the tenant limit is
    /// counted under `tenant="other"`; a label set past the series limit under
    /// `model="other",tenant="other"`: both caps hold whatever clients send.
    pub fn series(&self, mut key: Key) -> Arc<Series> {
        {
            let idx = strata_core::sync::read(&self.index);
            if let Some(s) = idx.series.get(&key) {
                return s.clone();
            }
            if !idx.tenants.contains(&key.tenant) && idx.tenants.len() >= self.max_tenants {
                self.overflowed(&key.tenant);
                key.tenant = OTHER.to_string();
                if let Some(s) = idx.series.get(&key) {
                    return s.clone();
                }
            }
        }
        let mut idx = strata_core::sync::write(&self.index);
        if let Some(s) = idx.series.get(&key) {
            return s.clone();
        }
        if key.tenant != OTHER && !idx.tenants.contains(&key.tenant) {
            if idx.tenants.len() >= self.max_tenants {
                self.overflowed(&key.tenant);
                key.tenant = OTHER.to_string();
            } else {
                idx.tenants.insert(key.tenant.clone());
            }
        }
        if !idx.series.contains_key(&key) && idx.series.len() >= self.max_series {
            key.model = OTHER.to_string();
            key.tenant = OTHER.to_string();
        }
        idx.series
            .entry(key.clone())
            .or_insert_with(|| Arc::new(Series::new(key)))
            .clone()
    }

    /// Counts one request of a tenant past the limit; logs at most once a minute.
    fn overflowed(&self, tenant: &str) {
        let n = self.tenant_overflow.fetch_add(1, Ordering::Relaxed) + 1;
        if strata_core::sync::lock(&self.overflow_logged).allow((), Instant::now()) {
            tracing::warn!(
                "tenant limit reached: {} tenants have their own metric series; requests of \
                 new tenants (this one: {tenant:?}) are counted under tenant=\"other\" \
                 ({n} so far); raise [gateway] max_tenants to keep more",
                self.max_tenants
            );
        }
    }

    /// Counts one request sent again to `upstream` on a fresh connection.
    pub fn upstream_retry(&self, upstream: &str) {
        let mut r = strata_core::sync::lock(&self.upstream_retries);
        match r.iter_mut().find(|(u, _)| u == upstream) {
            Some((_, n)) => *n += 1,
            None => r.push((upstream.to_string(), 1)),
        }
    }

    /// Every family, series sorted by labels.
    pub fn families(&self) -> Vec<OwnedFamily> {
        let mut all: Vec<Arc<Series>> = strata_core::sync::read(&self.index)
            .series
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| {
            (&a.key.model, &a.key.tenant, &a.key.upstream).cmp(&(
                &b.key.model,
                &b.key.tenant,
                &b.key.upstream,
            ))
        });
        let mut fams = Vec::new();
        let hist = |name: &str, help: &str, get: fn(&Series) -> &Histogram| {
            let mut samples = Vec::new();
            for s in &all {
                samples.extend(expo::histogram_samples(
                    name,
                    &s.key.labels(),
                    get(s),
                    expo::LeStyle::Decimal,
                ));
            }
            family(name, MetricType::Histogram, help, Some("seconds"), samples)
        };
        fams.push(hist(
            "strata_gateway_ttft_seconds",
            "Time to first token as the gateway forwards it (request received to first token written).",
            |s| &s.ttft,
        ));
        fams.push(hist(
            "strata_gateway_itl_seconds",
            "Gap between consecutive tokens as forwarded (tokens of one upstream read count as 0).",
            |s| &s.itl,
        ));
        fams.push(hist(
            "strata_gateway_e2e_seconds",
            "Request received to last byte forwarded.",
            |s| &s.e2e,
        ));
        fams.push(hist(
            "strata_gateway_tpot_seconds",
            "Per request: (last token - first token) / (output tokens - 1).",
            |s| &s.tpot,
        ));
        let mut ratio = hist(
            "strata_gateway_output_ratio",
            "Output tokens / max_tokens per request that set max_tokens (1 = truncated at the limit).",
            |s| &s.output_ratio,
        );
        ratio.unit = None;
        fams.push(ratio);

        let mut outcomes = Vec::new();
        let mut errors = Vec::new();
        for s in &all {
            let o = strata_core::sync::lock(&s.outcomes).clone();
            for ((status, finish), n) in o {
                let mut l = s.key.labels();
                l.push(("status".to_string(), status.to_string()));
                l.push(("finish_reason".to_string(), finish));
                outcomes.push(sample("strata_gateway_requests_total", l, n as f64));
            }
            for c in ErrorClass::ALL {
                let n = s.errors[c.index()].load(Ordering::Relaxed);
                if n > 0 {
                    let mut l = s.key.labels();
                    l.push(("class".to_string(), c.as_str().to_string()));
                    errors.push(sample("strata_gateway_errors_total", l, n as f64));
                }
            }
        }
        fams.push(family(
            "strata_gateway_requests_total",
            MetricType::Counter,
            "Finished LLM requests by HTTP status and finish reason (`none` when the stream ended without one).",
            None,
            outcomes,
        ));
        fams.push(family(
            "strata_gateway_errors_total",
            MetricType::Counter,
            "Requests that ended in an error, by class (upstream_4xx, upstream_5xx, connect, timeout, upstream_reset, client_disconnect, rejected, shutdown).",
            None,
            errors,
        ));
        let per = |name: &str, kind: MetricType, help: &str, get: fn(&Series) -> f64| {
            let samples = all
                .iter()
                .map(|s| sample(name, s.key.labels(), get(s)))
                .collect();
            family(name, kind, help, None, samples)
        };
        fams.push(per(
            "strata_gateway_prompt_tokens_total",
            MetricType::Counter,
            "Prompt tokens (from usage; TGI streams do not report them).",
            |s| s.prompt_tokens.load(Ordering::Relaxed) as f64,
        ));
        fams.push(per(
            "strata_gateway_generation_tokens_total",
            MetricType::Counter,
            "Generated tokens (from usage, else counted from the stream).",
            |s| s.generation_tokens.load(Ordering::Relaxed) as f64,
        ));
        fams.push(per(
            "strata_gateway_useful_prompt_tokens_total",
            MetricType::Counter,
            "Prompt tokens of useful requests (2xx, no error, ended on their own: not cut, truncated at max_tokens or aborted).",
            |s| s.useful_prompt_tokens.load(Ordering::Relaxed) as f64,
        ));
        fams.push(per(
            "strata_gateway_useful_generation_tokens_total",
            MetricType::Counter,
            "Generated tokens of useful requests (billed tokens minus those of failed, cut or truncated requests).",
            |s| s.useful_generation_tokens.load(Ordering::Relaxed) as f64,
        ));
        fams.push(per(
            "strata_gateway_requests_in_flight",
            MetricType::Gauge,
            "LLM requests in flight through the gateway.",
            |s| s.in_flight.load(Ordering::Relaxed) as f64,
        ));
        fams.push(per(
            "strata_gateway_refusals_total",
            MetricType::Counter,
            "Responses whose first 512 bytes contain a configured refusal phrase.",
            |s| s.refusals.load(Ordering::Relaxed) as f64,
        ));
        fams.push(per(
            "strata_gateway_short_responses_total",
            MetricType::Counter,
            "Successful responses that were empty or shorter than the configured length.",
            |s| s.short_responses.load(Ordering::Relaxed) as f64,
        ));
        fams.push(per(
            "strata_gateway_malformed_responses_total",
            MetricType::Counter,
            "Upstream events or bodies that were not the expected JSON (forwarded as is).",
            |s| s.malformed.load(Ordering::Relaxed) as f64,
        ));
        fams.push(per(
            "strata_gateway_usage_injected_total",
            MetricType::Counter,
            "Streaming requests the gateway asked for usage on the client's behalf (the usage chunk is removed).",
            |s| s.usage_injected.load(Ordering::Relaxed) as f64,
        ));
        let p = &self.pipeline;
        let one = |name: &str, help: &str, v: &AtomicU64| {
            family(
                name,
                MetricType::Counter,
                help,
                None,
                vec![sample(name, Vec::new(), v.load(Ordering::Relaxed) as f64)],
            )
        };
        let kept = POLICIES
            .iter()
            .zip(&p.traces_kept)
            .map(|(name, v)| {
                sample(
                    "strata_gateway_traces_kept_total",
                    vec![("policy".to_string(), name.to_string())],
                    v.load(Ordering::Relaxed) as f64,
                )
            })
            .collect();
        fams.push(family(
            "strata_gateway_traces_kept_total",
            MetricType::Counter,
            "Traces the tail sampler kept, by the first policy that matched.",
            None,
            kept,
        ));
        fams.push(one(
            "strata_gateway_traces_dropped_total",
            "Traces the tail sampler did not keep.",
            &p.traces_dropped,
        ));
        fams.push(one(
            "strata_gateway_spans_exported_total",
            "Spans accepted by the OTLP endpoint.",
            &p.spans_exported,
        ));
        let dropped = vec![
            sample(
                "strata_gateway_spans_dropped_total",
                vec![("reason".to_string(), "queue_full".to_string())],
                p.spans_dropped_queue.load(Ordering::Relaxed) as f64,
            ),
            sample(
                "strata_gateway_spans_dropped_total",
                vec![("reason".to_string(), "export_failed".to_string())],
                p.spans_dropped_export.load(Ordering::Relaxed) as f64,
            ),
        ];
        fams.push(family(
            "strata_gateway_spans_dropped_total",
            MetricType::Counter,
            "Spans of kept traces that were not exported: queue full (slow or dead endpoint) or export failed.",
            None,
            dropped,
        ));
        fams.push(one(
            "strata_gateway_log_lines_dropped_total",
            "Request log lines dropped because the writer fell behind.",
            &p.log_lines_dropped,
        ));
        fams.push(one(
            "strata_gateway_log_write_errors_total",
            "Request log writes that failed (disk full, permissions).",
            &p.log_write_errors,
        ));
        fams.push(one(
            "strata_gateway_captures_dropped_total",
            "Capture records dropped (writer behind or failing).",
            &p.captures_dropped,
        ));
        fams.push(one(
            "strata_gateway_passthrough_requests_total",
            "Requests on other paths, forwarded untimed.",
            &p.passthrough,
        ));
        fams.push(one(
            "strata_gateway_tenant_overflow_total",
            "Requests counted under tenant=\"other\" because max_tenants tenants already had their own series.",
            &self.tenant_overflow,
        ));
        fams.push(family(
            "strata_gateway_connections_open",
            MetricType::Gauge,
            "Client connections open now.",
            None,
            vec![sample(
                "strata_gateway_connections_open",
                Vec::new(),
                self.connections_open.load(Ordering::Relaxed) as f64,
            )],
        ));
        fams.push(one(
            "strata_gateway_connections_rejected_total",
            "Client connections answered 503 and closed because max_connections were open.",
            &self.connections_rejected,
        ));
        fams.push(one(
            "strata_gateway_connections_timed_out_total",
            "Client connections closed because no request head arrived within the header timeout.",
            &self.connections_timed_out,
        ));
        let retries = strata_core::sync::lock(&self.upstream_retries)
            .iter()
            .map(|(u, n)| {
                sample(
                    "strata_gateway_upstream_retries_total",
                    vec![("upstream".to_string(), u.clone())],
                    *n as f64,
                )
            })
            .collect();
        fams.push(family(
            "strata_gateway_upstream_retries_total",
            MetricType::Counter,
            "Requests sent again on a fresh connection because a pooled upstream connection was closed before any response byte.",
            None,
            retries,
        ));
        fams
    }

    /// `/metrics` body in `format` (exemplars only in OpenMetrics).
    pub fn render(&self, format: Format) -> String {
        Writer::render(format, &self.families())
    }
}

fn sample(name: &str, labels: Vec<(String, String)>, value: f64) -> OwnedSample {
    OwnedSample {
        name: name.to_string(),
        labels,
        value,
        timestamp_ms: None,
        exemplar: None,
    }
}

fn family(
    name: &str,
    metric_type: MetricType,
    help: &str,
    unit: Option<&str>,
    samples: Vec<OwnedSample>,
) -> OwnedFamily {
    OwnedFamily {
        name: name.to_string(),
        metric_type,
        help: Some(help.to_string()),
        unit: unit.map(str::to_string),
        samples,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(m: &str) -> Key {
        Key {
            model: m.into(),
            tenant: "t".into(),
            upstream: "u".into(),
        }
    }

    #[test]
    fn histograms_render_in_both_formats_with_exemplars_only_in_openmetrics() {
        let m = Metrics::new(10);
        let s = m.series(key("llama"));
        s.ttft.observe(0.2);
        s.ttft.observe(7.0);
        s.ttft.exemplar(
            7.0,
            trace_exemplar("ab".repeat(16), "cd".repeat(8), 1.5, 7.0),
        );
        s.outcome(200, "stop");
        let om = m.render(Format::OpenMetrics);
        assert!(
            om.contains(&format!(
                "strata_gateway_ttft_seconds_bucket{{model=\"llama\",tenant=\"t\",upstream=\"u\",le=\"7.5\"}} 2 # {{trace_id=\"{}\",span_id=\"{}\"}} 7 1.5",
                "ab".repeat(16),
                "cd".repeat(8)
            )),
            "{om}"
        );
        assert!(om.ends_with("# EOF\n"));
        let text = m.render(Format::Prometheus);
        assert!(!text.contains("trace_id"));
        assert!(text.contains("strata_gateway_ttft_seconds_bucket{model=\"llama\",tenant=\"t\",upstream=\"u\",le=\"0.2\"} 1\n"), "{text}");
        assert!(text.contains(
            "strata_gateway_ttft_seconds_count{model=\"llama\",tenant=\"t\",upstream=\"u\"} 2\n"
        ));
        assert!(text.contains("strata_gateway_requests_total{model=\"llama\",tenant=\"t\",upstream=\"u\",status=\"200\",finish_reason=\"stop\"} 1\n"));
        let parsed = expo::parse(&text, Format::Prometheus);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    }

    #[test]
    fn tenants_past_the_limit_share_one_other_series_and_are_counted() {
        // The reliability run's 4,103 tenants, with the default limits.
        let m = Metrics::new(2000);
        let k = |t: String| Key {
            model: "m".into(),
            tenant: t,
            upstream: "u".into(),
        };
        for i in 0..4103 {
            let s = m.series(k(format!("tenant-{i}")));
            s.generation_tokens.fetch_add(1, Ordering::Relaxed);
        }
        // Admitted tenants keep their own series, also after the limit was reached.
        assert_eq!(m.series(k("tenant-1".into())).key.tenant, "tenant-1");
        let text = m.render(Format::Prometheus);
        let tenants: std::collections::BTreeSet<&str> = text
            .lines()
            .filter_map(|l| l.split("tenant=\"").nth(1)?.split('"').next())
            .collect();
        assert_eq!(tenants.len(), 101, "100 tenants and `other`");
        assert!(tenants.contains("other") && tenants.contains("tenant-99"));
        assert!(
            text.contains("strata_gateway_generation_tokens_total{model=\"m\",tenant=\"other\",upstream=\"u\"} 4003\n"),
            "{text}"
        );
        assert!(text.contains("strata_gateway_tenant_overflow_total 4003\n"));
        assert!(text.len() < 2 << 20, "{} bytes", text.len());
    }

    #[test]
    fn the_series_cap_bounds_tenants_too() {
        let m = Metrics::with_limits(2, 1000);
        for i in 0..500 {
            m.series(Key {
                model: format!("m{i}"),
                tenant: format!("t{i}"),
                upstream: "u".into(),
            });
        }
        assert_eq!(m.index.read().unwrap().series.len(), 3);
    }

    #[test]
    fn series_are_capped() {
        let m = Metrics::new(2);
        m.series(key("a"));
        m.series(key("b"));
        assert_eq!(m.series(key("c")).key.model, "other");
        assert_eq!(m.series(key("a")).key.model, "a");
    }
}
