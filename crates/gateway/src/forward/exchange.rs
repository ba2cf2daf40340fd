//! One request in flight: its record under construction and the series it counts in.
//! Finalised exactly once — when the response ends, when the gateway answers an error, or
//! when it is dropped early (the client went away) — into metrics, the tail sampler,
//! spans, the log line, the recent-requests recorder and capture.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::Shared;
use crate::errors::ErrorClass;
use crate::ids::hex;
use crate::log::capture::Item;
use crate::metrics::{Key, Series, trace_exemplar};
use crate::record::{Cost, Endpoint, Record};
use crate::route::InFlight;
use crate::sse::HEAD_BYTES;

/// A request between its arrival and its log line.
pub(crate) struct Exchange {
    gw: Arc<Shared>,
    rec: Option<Record>,
    series: Option<Arc<Series>>,
    in_flight: Option<InFlight>,
    completed: bool,
}

impl Exchange {
    pub fn new(gw: Arc<Shared>, rec: Record) -> Exchange {
        Exchange {
            gw,
            rec: Some(rec),
            series: None,
            in_flight: None,
            completed: false,
        }
    }

    /// The record (present until finalised).
    pub fn rec(&mut self) -> &mut Record {
        self.rec.as_mut().expect("record used after finalise")
    }

    /// Counts the request under its (model, tenant, upstream) from now on.
    pub fn attach(&mut self, in_flight: Option<InFlight>) {
        let rec = self.rec.as_mut().expect("record used after finalise");
        if let Some(f) = &in_flight {
            rec.upstream = Some(f.0.clone());
        }
        self.in_flight = in_flight;
        if rec.endpoint == Endpoint::Other {
            return;
        }
        let s = self.gw.metrics.series(Key {
            model: rec.model_name().to_string(),
            tenant: rec.tenant.clone(),
            upstream: rec.upstream_name().to_string(),
        });
        s.in_flight.fetch_add(1, Ordering::Relaxed);
        if rec.params.usage_injected {
            s.usage_injected.fetch_add(1, Ordering::Relaxed);
        }
        self.series = Some(s);
    }

    /// `n` token events forwarded at `now`: TTFT and ITL observed live.
    pub fn tokens(&mut self, now: Instant, n: u64) {
        let Some(rec) = self.rec.as_mut() else { return };
        let obs = rec.timing.tokens(now, n);
        if let Some(s) = &self.series {
            if let Some(t) = obs.ttft {
                s.ttft.observe_duration(t);
            }
            if let Some(g) = obs.gap {
                s.itl.observe_duration(g);
            }
            for _ in 1..n {
                s.itl.observe(0.0);
            }
        }
    }

    /// Whether shutdown has cut open streams (one atomic load: asked per token).
    pub fn cutting(&self) -> bool {
        self.gw.cut.has_changed().unwrap_or(false)
    }

    /// Records an error (the first one wins).
    pub fn fail(&mut self, class: ErrorClass, message: String) {
        let rec = self.rec();
        if rec.error.is_none() {
            rec.error = Some((class, message));
        }
    }

    /// The response ended as the upstream ended it.
    pub fn complete(&mut self) {
        self.completed = true;
        self.finalise();
    }

    /// Finalises now (idempotent).
    pub fn finalise(&mut self) {
        let Some(mut r) = self.rec.take() else {
            return;
        };
        let now = Instant::now();
        r.timing.end.get_or_insert(now);
        if !self.completed && r.error.is_none() {
            let after = r.timing.received.elapsed().as_millis();
            r.error = Some((
                ErrorClass::ClientDisconnect,
                format!("the client went away {after} ms after sending the request"),
            ));
        }
        if r.summary.error.is_some() && r.error.is_none() {
            let m = r.summary.error.clone().unwrap_or_default();
            r.error = Some((
                ErrorClass::Upstream5xx,
                format!("upstream {} sent an error event: {m}", r.upstream_name()),
            ));
        }
        let gw = self.gw.clone();
        if r.endpoint != Endpoint::Other {
            let prices = &gw.cfg.prices;
            r.cost = prices
                .cost(
                    r.model_name(),
                    r.summary.prompt_tokens,
                    r.generation_tokens(),
                )
                .map(|amount| Cost {
                    amount,
                    currency: prices.currency.clone(),
                });
        }
        match &self.series {
            Some(s) => record_metrics(&gw, s, &r),
            None => {
                gw.metrics
                    .pipeline
                    .passthrough
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        self.in_flight = None;
        let keep = gw.sampler.decide(&r);
        let p = &gw.metrics.pipeline;
        match keep {
            Some(k) => {
                p.traces_kept[k as usize].fetch_add(1, Ordering::Relaxed);
            }
            None => {
                p.traces_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        if keep.is_some() {
            if let Some(s) = &self.series {
                exemplars(s, &r);
            }
            if gw.exporter.enabled() {
                gw.exporter
                    .submit(crate::trace::spans(&r, || gw.ids.span_id()));
            }
        }
        if gw.log.enabled() {
            gw.log.write(crate::log::line(&r, keep.is_some()));
        }
        gw.recent.record(&r);
        if let (Some(c), Some(prompt)) = (&gw.capture, r.prompt_capture.take()) {
            c.submit(Item {
                unix_ns: r.timing.unix_ns(now),
                request_id: r.request_id.clone(),
                trace_id: hex(&r.trace_id),
                tenant: r.tenant.clone(),
                model: r.model.clone(),
                prompt,
                completion: r.summary.capture.take().unwrap_or_default(),
            });
        }
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        self.finalise();
    }
}

fn record_metrics(gw: &Shared, s: &Series, r: &Record) {
    s.in_flight.fetch_sub(1, Ordering::Relaxed);
    let t = &r.timing;
    if let Some(e2e) = t.e2e() {
        s.e2e.observe_duration(e2e);
    }
    let gen_tokens = r.generation_tokens();
    if let Some(tpot) = t.tpot(gen_tokens) {
        s.tpot.observe_duration(tpot);
    }
    if let Some(p) = r.summary.prompt_tokens {
        s.prompt_tokens.fetch_add(p, Ordering::Relaxed);
    }
    s.generation_tokens.fetch_add(gen_tokens, Ordering::Relaxed);
    if r.useful() {
        s.useful_prompt_tokens
            .fetch_add(r.summary.prompt_tokens.unwrap_or(0), Ordering::Relaxed);
        s.useful_generation_tokens
            .fetch_add(gen_tokens, Ordering::Relaxed);
    }
    s.outcome(r.status, r.finish_reason());
    if let Some((class, _)) = &r.error {
        s.error(*class);
    }
    if r.summary.malformed > 0 {
        s.malformed
            .fetch_add(r.summary.malformed, Ordering::Relaxed);
    }
    let ok = r.error.is_none() && (200..300).contains(&r.status);
    if !ok {
        return;
    }
    let head = r.summary.head.to_lowercase();
    if gw.refusals.iter().any(|p| head.contains(p.as_str())) {
        s.refusals.fetch_add(1, Ordering::Relaxed);
    }
    let whole_head = r.summary.head.len() < HEAD_BYTES;
    if whole_head && r.summary.head.trim().chars().count() < gw.cfg.quality.short_response_chars {
        s.short_responses.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(max) = r.params.max_tokens.filter(|m| *m > 0) {
        s.output_ratio.observe(gen_tokens as f64 / max as f64);
    }
}

/// Kept traces put their ids on the buckets their values fell in.
fn exemplars(s: &Series, r: &Record) {
    let t = &r.timing;
    let at = t.unix_ns(t.end.unwrap_or(t.received)) as f64 / 1e9;
    let ex = |v: f64| trace_exemplar(hex(&r.trace_id), hex(&r.server_span), at, v);
    if let Some(v) = t.ttft() {
        s.ttft.exemplar(v.as_secs_f64(), ex(v.as_secs_f64()));
    }
    if t.first_token.is_some() && t.batches.len() > 1 {
        s.itl
            .exemplar(t.max_itl.as_secs_f64(), ex(t.max_itl.as_secs_f64()));
    }
    if let Some(v) = t.tpot(r.generation_tokens()) {
        s.tpot.exemplar(v.as_secs_f64(), ex(v.as_secs_f64()));
    }
    if let Some(v) = t.e2e() {
        s.e2e.exemplar(v.as_secs_f64(), ex(v.as_secs_f64()));
    }
}
