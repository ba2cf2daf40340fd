//! The gateway's view of the same requests: the TTFT a Strata gateway timed for each
//! request, matched to the client's by `x-request-id`, from the gateway's request log (one
//! JSON line per request with `request_id` and `ttft_ms`) or from `strata up`'s
//! `GET /api/v1/requests/{request_id}`. The difference is what lies between the two clocks:
//! the network and the gateway's own forwarding, both ways.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;
use serde_json::Value;

use crate::measure::Outcome;
use crate::report::Stats;

/// Gateway TTFT (ms) by request id; `None` when the gateway saw no token.
pub type GatewayTtfts = HashMap<String, Option<f64>>;

/// Adds the records of a gateway request log (JSON lines) to `into`; lines that are not
/// JSON objects with a `request_id` are skipped (a log file may hold other lines).
pub fn parse_log(text: &str, into: &mut GatewayTtfts) {
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if let Some(id) = v.get("request_id").and_then(Value::as_str) {
            into.insert(id.to_string(), v.get("ttft_ms").and_then(Value::as_f64));
        }
    }
}

/// How many lookups `fetch` keeps in flight.
const FETCHERS: usize = 16;

/// Asks `strata up` at `api` (`http://host:9464`) for each of `ids` by
/// `GET /api/v1/requests/{id}`; ids it does not know (404) are left out. Fails only when
/// the API cannot be reached or answers something else than the contract.
pub async fn fetch(
    http: &reqwest::Client,
    api: &str,
    ids: Vec<String>,
) -> Result<GatewayTtfts, String> {
    let base = reqwest::Url::parse(api)
        .and_then(|u| u.join("api/v1/requests/"))
        .map_err(|e| {
            format!("bad --gateway-api `{api}`: {e} (write e.g. http://127.0.0.1:9464)")
        })?;
    let ids = Arc::new(ids);
    let next = Arc::new(AtomicUsize::new(0));
    let mut set = tokio::task::JoinSet::<Result<Vec<(String, Option<f64>)>, String>>::new();
    for _ in 0..FETCHERS.min(ids.len()) {
        let (http, base, ids, next) = (http.clone(), base.clone(), ids.clone(), next.clone());
        set.spawn(async move {
            let mut found = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(id) = ids.get(i) else {
                    return Ok(found);
                };
                if let Some(ttft) = fetch_one(&http, &base, id).await? {
                    found.push((id.clone(), ttft));
                }
            }
        });
    }
    let mut out = GatewayTtfts::new();
    while let Some(r) = set.join_next().await {
        let found = r.map_err(|e| format!("gateway lookup task failed: {e}"))??;
        out.extend(found);
    }
    Ok(out)
}

/// One record: `Some(ttft)` when found, `None` on 404.
async fn fetch_one(
    http: &reqwest::Client,
    base: &reqwest::Url,
    id: &str,
) -> Result<Option<Option<f64>>, String> {
    let url = base
        .join(id)
        .map_err(|e| format!("request id `{id}` does not fit in a URL: {e}"))?;
    let hint = "is `strata up` running with the gateway, and is --gateway-api its API URL (e.g. http://127.0.0.1:9464)?";
    let resp = http
        .get(url.clone())
        .send()
        .await
        .map_err(|e| format!("cannot reach {url}: {e}; {hint}"))?;
    if resp.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !resp.status().is_success() {
        return Err(format!("{url} answered HTTP {}; {hint}", resp.status()));
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| format!("cannot read {url}: {e}; {hint}"))?;
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| format!("{url} did not answer JSON: {e}; {hint}"))?;
    let data = v
        .get("data")
        .filter(|d| d.get("request_id").is_some())
        .ok_or_else(|| format!("{url} answered without data.request_id; {hint}"))?;
    Ok(Some(data.get("ttft_ms").and_then(Value::as_f64)))
}

/// Client and gateway TTFT of the same requests, side by side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Where the gateway's times came from (the log file or the API URL).
    pub source: String,
    /// Successful requests the gateway timed, matched by `x-request-id`.
    pub matched: u64,
    /// Successful requests the gateway has no TTFT for.
    pub unmatched: u64,
    /// Client TTFT of the matched requests (ms).
    pub client_ttft_ms: Stats,
    /// Gateway TTFT of the same requests (ms).
    pub gateway_ttft_ms: Stats,
    /// Per request, client TTFT − gateway TTFT (ms): network and forwarding both ways.
    pub difference_ms: Stats,
}

impl Comparison {
    /// Matches the successful `outcomes` with the gateway's `ttfts`.
    pub fn new(outcomes: &[Outcome], ttfts: &GatewayTtfts, source: &str) -> Comparison {
        let (mut client, mut gateway, mut diff) = (Vec::new(), Vec::new(), Vec::new());
        let mut unmatched = 0;
        for o in outcomes {
            let Ok(t) = &o.result else { continue };
            match ttfts.get(&o.request_id).copied().flatten() {
                Some(g) => {
                    let c = t.ttft.as_secs_f64() * 1e3;
                    client.push(c);
                    gateway.push(g);
                    diff.push(c - g);
                }
                None => unmatched += 1,
            }
        }
        Comparison {
            source: source.to_string(),
            matched: client.len() as u64,
            unmatched,
            client_ttft_ms: Stats::of(&mut client),
            gateway_ttft_ms: Stats::of(&mut gateway),
            difference_ms: Stats::of(&mut diff),
        }
    }

    /// The comparison as table rows (appended to a step's table).
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "  client vs gateway TTFT, {} requests matched by x-request-id ({} not timed by the gateway), from {}",
            self.matched, self.unmatched, self.source
        );
        let _ = writeln!(
            s,
            "  {:<14}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}",
            "TTFT (ms)", "p50", "p90", "p95", "p99", "max", "mean"
        );
        for (name, st) in [
            ("client", &self.client_ttft_ms),
            ("gateway", &self.gateway_ttft_ms),
            ("difference", &self.difference_ms),
        ] {
            let _ = writeln!(
                s,
                "  {name:<14}{:>9.3}{:>9.3}{:>9.3}{:>9.3}{:>9.3}{:>9.3}",
                st.p50, st.p90, st.p95, st.p99, st.max, st.mean
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::measure::{ErrorClass, Failure, Timing};

    fn ok(id: &str, ttft_ms: u64) -> Outcome {
        Outcome {
            request_id: id.into(),
            sent_at: Duration::ZERO,
            result: Ok(Timing {
                ttft: Duration::from_millis(ttft_ms),
                e2e: Duration::from_millis(ttft_ms + 10),
                output_tokens: 2,
                tokens_from_usage: true,
                chunks: 2,
                gaps_ns: vec![10_000_000],
            }),
        }
    }

    #[test]
    fn log_lines_match_by_request_id_and_differences_are_per_request() {
        let log = r#"{"ts":"x","msg":"request","request_id":"a","ttft_ms":9.5,"e2e_ms":20.0}
not json
{"msg":"request","request_id":"b","ttft_ms":18.0}
{"msg":"request","request_id":"c","ttft_ms":null}
{"msg":"other"}
"#;
        let mut t = GatewayTtfts::new();
        parse_log(log, &mut t);
        assert_eq!(t.len(), 3);
        let failed = Outcome {
            request_id: "b".into(),
            sent_at: Duration::ZERO,
            result: Err(Failure {
                class: ErrorClass::ServerError,
                detail: "HTTP 500".into(),
            }),
        };
        let outcomes = [ok("a", 10), ok("c", 12), ok("d", 30), failed];
        let c = Comparison::new(&outcomes, &t, "gw.log");
        assert_eq!((c.matched, c.unmatched), (1, 2));
        assert_eq!((c.client_ttft_ms.p50, c.gateway_ttft_ms.p50), (10.0, 9.5));
        assert_eq!(c.difference_ms.p50, 0.5);
        let table = c.table();
        assert!(
            table.contains("1 requests matched") && table.contains("difference"),
            "{table}"
        );
    }
}
