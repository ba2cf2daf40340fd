//! Recent and slowest requests, for the UI's request table and its request → silicon
//! drill-down: a bounded ring of the last requests and the slowest by E2E over a sliding
//! window. Only what the log line holds (ids, tenant, model, upstream, timings, token
//! counts) plus each token's arrival offset; never prompts or completions.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::record::{Endpoint, Record};

/// Requests kept in the recent ring.
pub const RECENT: usize = 1000;
/// Requests kept in the slowest list.
pub const SLOWEST: usize = 100;
/// How long a request stays eligible for the slowest list.
pub const SLOWEST_WINDOW_MS: i64 = 15 * 60 * 1000;

/// One finished request as the `/api/v1/requests` API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestSummary {
    /// `x-request-id`.
    pub request_id: String,
    /// Tenant.
    pub tenant: String,
    /// Model asked for.
    pub model: Option<String>,
    /// Upstream that served it (its configured name).
    pub upstream: Option<String>,
    /// The upstream's `host:port`: the `instance` label its engine metrics carry when
    /// Strata scrapes the same address.
    pub instance: Option<String>,
    /// GPUs the upstream is configured to run on (UUIDs or indexes; empty when unknown).
    pub gpus: Vec<String>,
    /// HTTP status sent to the client (0: none was sent).
    pub status: u16,
    /// Finish reason, when the response had one.
    pub finish_reason: Option<String>,
    /// Error class, when the request failed.
    pub error_class: Option<&'static str>,
    /// When the gateway read the request headers (Unix milliseconds).
    pub received_ms: i64,
    /// Time to first token (ms).
    pub ttft_ms: Option<f64>,
    /// Received to end (ms).
    pub e2e_ms: Option<f64>,
    /// Prompt tokens, when reported.
    pub prompt_tokens: Option<u64>,
    /// Generated tokens (usage, else token events).
    pub output_tokens: u64,
    /// Each token's arrival in ms since `received_ms` (the first
    /// [`crate::timing::MAX_TOKEN_OFFSETS`] tokens only).
    pub token_offsets_ms: Vec<f64>,
    /// Cost of the request in the `[cost]` currency, when its model has token prices.
    pub cost: Option<f64>,
}

impl RequestSummary {
    /// The summary of a finished record.
    pub fn of(r: &Record) -> RequestSummary {
        let t = &r.timing;
        let ms = |d: std::time::Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
        RequestSummary {
            request_id: r.request_id.clone(),
            tenant: r.tenant.clone(),
            model: r.model.clone(),
            upstream: r.upstream.as_deref().map(|u| u.name.clone()),
            instance: r.upstream.as_deref().map(|u| u.authority.to_string()),
            gpus: r
                .upstream
                .as_deref()
                .map_or_else(Vec::new, |u| u.gpus.clone()),
            status: r.status,
            finish_reason: r.summary.finish_reason.clone(),
            error_class: r.error.as_ref().map(|(c, _)| c.as_str()),
            received_ms: (t.received_unix_ns / 1_000_000) as i64,
            ttft_ms: t.ttft().map(ms),
            e2e_ms: t.e2e().map(ms),
            prompt_tokens: r.summary.prompt_tokens,
            output_tokens: r.generation_tokens(),
            token_offsets_ms: t
                .token_offsets_us
                .iter()
                .map(|us| f64::from(*us) / 1e3)
                .collect(),
            cost: r.cost.as_ref().map(|c| c.amount),
        }
    }

    fn e2e(&self) -> f64 {
        self.e2e_ms.unwrap_or(0.0)
    }
}

/// Which list to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Most recently finished first.
    Recent,
    /// Slowest E2E first (within [`SLOWEST_WINDOW_MS`]).
    Slowest,
}

#[derive(Debug, Default)]
struct Lists {
    /// Shared with `slowest`: a request in both is stored once, and keeping the slowest
    /// sorted moves pointers, not summaries.
    recent: VecDeque<Arc<RequestSummary>>,
    /// Sorted by E2E, slowest first.
    slowest: Vec<Arc<RequestSummary>>,
}

/// The recorder: fed by the gateway as each timed request finishes.
#[derive(Debug)]
pub struct Recent {
    lists: Mutex<Lists>,
    recent_cap: usize,
    slowest_cap: usize,
    window_ms: i64,
}

impl Default for Recent {
    fn default() -> Recent {
        Recent::new(RECENT, SLOWEST, SLOWEST_WINDOW_MS)
    }
}

impl Recent {
    /// A recorder keeping `recent` requests and the `slowest` slowest of the last
    /// `window_ms`.
    pub fn new(recent: usize, slowest: usize, window_ms: i64) -> Recent {
        Recent {
            lists: Mutex::new(Lists::default()),
            recent_cap: recent.max(1),
            slowest_cap: slowest.max(1),
            window_ms,
        }
    }

    /// Records a finished request (untimed pass-through requests are not kept).
    pub fn record(&self, r: &Record) {
        if r.endpoint == Endpoint::Other {
            return;
        }
        self.push(RequestSummary::of(r));
    }

    /// Adds one summary.
    pub fn push(&self, s: RequestSummary) {
        let s = Arc::new(s);
        let mut l = strata_core::sync::lock(&self.lists);
        let horizon = s.received_ms - self.window_ms;
        l.slowest.retain(|x| x.received_ms >= horizon);
        let full = l.slowest.len() >= self.slowest_cap;
        if !full || l.slowest.last().is_some_and(|x| x.e2e() < s.e2e()) {
            let at = l.slowest.partition_point(|x| x.e2e() >= s.e2e());
            l.slowest.insert(at, s.clone());
            l.slowest.truncate(self.slowest_cap);
        }
        if l.recent.len() >= self.recent_cap {
            l.recent.pop_back();
        }
        l.recent.push_front(s);
    }

    /// Up to `limit` requests in `order`.
    pub fn list(&self, order: Order, limit: usize) -> Vec<RequestSummary> {
        let l = strata_core::sync::lock(&self.lists);
        match order {
            Order::Recent => l.recent.iter().take(limit).map(|x| (**x).clone()).collect(),
            Order::Slowest => {
                let horizon = l.recent.front().map_or(i64::MIN, |n| n.received_ms) - self.window_ms;
                l.slowest
                    .iter()
                    .filter(|x| x.received_ms >= horizon)
                    .take(limit)
                    .map(|x| (**x).clone())
                    .collect()
            }
        }
    }

    /// The request with this id, if it is still kept.
    pub fn get(&self, request_id: &str) -> Option<RequestSummary> {
        let l = strata_core::sync::lock(&self.lists);
        l.recent
            .iter()
            .chain(l.slowest.iter())
            .find(|x| x.request_id == request_id)
            .map(|x| (**x).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(id: &str, received_ms: i64, e2e: f64) -> RequestSummary {
        RequestSummary {
            request_id: id.into(),
            tenant: "t".into(),
            model: Some("m".into()),
            upstream: Some("u".into()),
            instance: Some("127.0.0.1:1".into()),
            gpus: Vec::new(),
            status: 200,
            finish_reason: Some("stop".into()),
            error_class: None,
            received_ms,
            ttft_ms: Some(1.0),
            e2e_ms: Some(e2e),
            prompt_tokens: Some(3),
            output_tokens: 2,
            token_offsets_ms: vec![1.0, 2.0],
            cost: None,
        }
    }

    #[test]
    fn ring_keeps_the_newest_and_slowest_keeps_the_largest_e2e() {
        let r = Recent::new(3, 2, 1000);
        for (i, e2e) in [5.0, 50.0, 1.0, 30.0, 2.0].into_iter().enumerate() {
            r.push(req(&format!("r{i}"), i as i64, e2e));
        }
        let ids = |v: Vec<RequestSummary>| v.into_iter().map(|x| x.request_id).collect::<Vec<_>>();
        assert_eq!(ids(r.list(Order::Recent, 10)), ["r4", "r3", "r2"]);
        assert_eq!(ids(r.list(Order::Recent, 1)), ["r4"]);
        assert_eq!(ids(r.list(Order::Slowest, 10)), ["r1", "r3"]);
        // Evicted from the ring but among the slowest: still found.
        assert_eq!(r.get("r1").map(|x| x.e2e_ms), Some(Some(50.0)));
        assert!(r.get("r0").is_none());
    }

    #[test]
    fn slowest_forgets_requests_older_than_the_window() {
        let r = Recent::new(10, 5, 1000);
        r.push(req("old", 0, 900.0));
        r.push(req("new", 2000, 10.0));
        let slow: Vec<_> = r.list(Order::Slowest, 10);
        assert_eq!(slow.len(), 1);
        assert_eq!(slow[0].request_id, "new");
    }
}
