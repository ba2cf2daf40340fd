//! The report of a run: per step, percentiles of every latency over successful requests
//! only, throughput, errors by class, and goodput against an SLO profile; as a table or
//! as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;

use crate::gateway::Comparison;
use crate::measure::{ErrorClass, Timing};
use crate::run::StepResult;
use crate::shape::Shape;

/// Latency objectives a request must meet to count toward goodput.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Slo {
    /// Profile name (`chat`, `rag`, `code`) or `custom`.
    pub name: String,
    /// TTFT must be at most this.
    #[serde(serialize_with = "ser_ms")]
    pub ttft: Duration,
    /// The request's own p95 inter-token gap must be at most this.
    #[serde(serialize_with = "ser_ms")]
    pub itl: Duration,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1e3)
}

impl FromStr for Slo {
    type Err = String;

    /// `chat` (TTFT 1 s, ITL 80 ms), `rag` (3 s, 50 ms), `code` (500 ms, 30 ms), or
    /// `ttft=800ms,itl=40ms`.
    fn from_str(s: &str) -> Result<Slo, String> {
        let ms = Duration::from_millis;
        let (ttft, itl) = match s {
            "chat" => (ms(1000), ms(80)),
            "rag" => (ms(3000), ms(50)),
            "code" => (ms(500), ms(30)),
            _ => return custom_slo(s),
        };
        Ok(Slo {
            name: s.to_string(),
            ttft,
            itl,
        })
    }
}

fn custom_slo(s: &str) -> Result<Slo, String> {
    let help = "use chat, rag, code or ttft=DURATION,itl=DURATION (e.g. ttft=800ms,itl=40ms)";
    let (mut ttft, mut itl) = (None, None);
    for part in s.split(',') {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("`{s}`: {help}"))?;
        let d = parse_ms(v.trim()).ok_or_else(|| format!("`{v}` is not a duration; {help}"))?;
        match k.trim() {
            "ttft" => ttft = Some(d),
            "itl" => itl = Some(d),
            other => return Err(format!("unknown SLO key `{other}`; {help}")),
        }
    }
    match (ttft, itl) {
        (Some(ttft), Some(itl)) => Ok(Slo {
            name: "custom".into(),
            ttft,
            itl,
        }),
        _ => Err(format!("`{s}` needs both ttft and itl; {help}")),
    }
}

/// `800ms`, `1.5s`, `2s`.
fn parse_ms(v: &str) -> Option<Duration> {
    let (num, scale) = if let Some(n) = v.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1.0)
    } else {
        return None;
    };
    let x: f64 = num.trim().parse().ok()?;
    Duration::try_from_secs_f64(x * scale).ok()
}

/// Percentiles of one measure (linear interpolation between closest ranks, as numpy's
/// default, which vLLM's benchmark uses).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Stats {
    /// Number of values.
    pub n: usize,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Stats {
    /// Stats of `v` (sorted in place); all zero when empty.
    pub fn of(v: &mut [f64]) -> Stats {
        if v.is_empty() {
            return Stats::default();
        }
        v.sort_unstable_by(f64::total_cmp);
        Stats {
            n: v.len(),
            mean: v.iter().sum::<f64>() / v.len() as f64,
            p50: quantile(v, 0.50),
            p90: quantile(v, 0.90),
            p95: quantile(v, 0.95),
            p99: quantile(v, 0.99),
            max: v[v.len() - 1],
        }
    }
}

/// The `q` quantile of sorted, non-empty `v` (linear interpolation).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Failed requests of one class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorCount {
    /// How many.
    pub count: u64,
    /// What the first one said.
    pub example: String,
}

/// Requests that met an SLO.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Goodput {
    /// The objectives.
    pub slo: Slo,
    /// Successful requests that met both objectives.
    pub good: u64,
    /// Good requests per second of wall time.
    pub requests_per_s: f64,
    /// Good requests over all finished requests (failed ones count as not good).
    pub share: f64,
    /// Whether the run as a whole met the profile: TTFT p95 and ITL p95 within bounds.
    pub met_at_p95: bool,
}

/// The report of one step (one shape).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepReport {
    /// The load shape.
    pub shape: Shape,
    /// Wall time, first request sent to last finished (s).
    pub wall_s: f64,
    /// Requests that finished with output.
    pub completed: u64,
    /// Requests that failed (by class in `errors`); not in any latency statistic.
    pub failed: u64,
    /// Requests cut off by Ctrl-C.
    pub cancelled: u64,
    /// Whether Ctrl-C ended this step early (the report is partial).
    pub interrupted: bool,
    /// Failures by class.
    pub errors: BTreeMap<ErrorClass, ErrorCount>,
    /// Completed requests per second.
    pub requests_per_s: f64,
    /// Output tokens of completed requests per second.
    pub output_tokens_per_s: f64,
    /// Completed requests whose token count came from the server's usage.
    pub tokens_from_usage: u64,
    /// Time to first token (ms).
    pub ttft_ms: Stats,
    /// Every inter-token gap of every completed request (ms).
    pub itl_ms: Stats,
    /// Time per output token per request (ms), requests with ≥ 2 tokens.
    pub tpot_ms: Stats,
    /// End-to-end latency (ms).
    pub e2e_ms: Stats,
    /// Output tokens per request.
    pub output_tokens: Stats,
    /// Goodput against the chosen SLO.
    pub goodput: Option<Goodput>,
    /// The gateway's TTFT of the same requests, when a gateway source was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Comparison>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The p95 of one request's gaps (ms), `None` without gaps.
fn request_itl_p95(t: &Timing) -> Option<f64> {
    if t.gaps_ns.is_empty() {
        return None;
    }
    let mut g: Vec<f64> = t.gaps_ns.iter().map(|&n| n as f64 / 1e6).collect();
    g.sort_unstable_by(f64::total_cmp);
    Some(quantile(&g, 0.95))
}

impl StepReport {
    /// Summarises a step; `slo` adds goodput.
    pub fn new(r: &StepResult, slo: Option<&Slo>) -> StepReport {
        let ok: Vec<&Timing> = r
            .outcomes
            .iter()
            .filter_map(|o| o.result.as_ref().ok())
            .collect();
        let mut errors: BTreeMap<ErrorClass, ErrorCount> = BTreeMap::new();
        for f in r.outcomes.iter().filter_map(|o| o.result.as_ref().err()) {
            errors
                .entry(f.class)
                .or_insert_with(|| ErrorCount {
                    count: 0,
                    example: f.detail.clone(),
                })
                .count += 1;
        }
        let failed = (r.outcomes.len() - ok.len()) as u64;
        let wall = r.wall.as_secs_f64().max(1e-9);
        let mut ttft: Vec<f64> = ok.iter().map(|t| ms(t.ttft)).collect();
        let mut e2e: Vec<f64> = ok.iter().map(|t| ms(t.e2e)).collect();
        let mut tpot: Vec<f64> = ok.iter().filter_map(|t| t.tpot()).map(ms).collect();
        let mut itl: Vec<f64> = ok
            .iter()
            .flat_map(|t| t.gaps_ns.iter().map(|&n| n as f64 / 1e6))
            .collect();
        let mut toks: Vec<f64> = ok.iter().map(|t| f64::from(t.output_tokens)).collect();
        let total_tokens: f64 = toks.iter().sum();
        let ttft_ms = Stats::of(&mut ttft);
        let itl_ms = Stats::of(&mut itl);
        let goodput = slo.map(|slo| {
            let good = ok
                .iter()
                .filter(|t| {
                    t.ttft <= slo.ttft && request_itl_p95(t).is_none_or(|p| p <= ms(slo.itl))
                })
                .count() as u64;
            Goodput {
                slo: slo.clone(),
                good,
                requests_per_s: good as f64 / wall,
                share: good as f64 / r.outcomes.len().max(1) as f64,
                met_at_p95: !ok.is_empty()
                    && ttft_ms.p95 <= ms(slo.ttft)
                    && itl_ms.p95 <= ms(slo.itl),
            }
        });
        StepReport {
            shape: r.shape,
            wall_s: r.wall.as_secs_f64(),
            completed: ok.len() as u64,
            failed,
            cancelled: r.cancelled,
            interrupted: r.interrupted,
            errors,
            requests_per_s: ok.len() as f64 / wall,
            output_tokens_per_s: total_tokens / wall,
            tokens_from_usage: ok.iter().filter(|t| t.tokens_from_usage).count() as u64,
            ttft_ms,
            itl_ms,
            tpot_ms: Stats::of(&mut tpot),
            e2e_ms: Stats::of(&mut e2e),
            output_tokens: Stats::of(&mut toks),
            goodput,
            gateway: None,
        }
    }

    /// The step as a text table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let partial = if self.interrupted {
            " — interrupted, partial"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "{}{partial}: {} completed, {} failed, {} cancelled in {:.2} s",
            self.shape, self.completed, self.failed, self.cancelled, self.wall_s
        );
        let _ = writeln!(
            s,
            "  throughput  {:.1} req/s, {:.0} output tok/s ({} of {} token counts from usage)",
            self.requests_per_s, self.output_tokens_per_s, self.tokens_from_usage, self.completed
        );
        let _ = writeln!(
            s,
            "  {:<14}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}",
            "latency (ms)", "p50", "p90", "p95", "p99", "max", "mean"
        );
        for (name, st) in [
            ("TTFT", &self.ttft_ms),
            ("ITL", &self.itl_ms),
            ("TPOT", &self.tpot_ms),
            ("E2E", &self.e2e_ms),
            ("out tokens", &self.output_tokens),
        ] {
            let _ = writeln!(
                s,
                "  {name:<14}{:>9.2}{:>9.2}{:>9.2}{:>9.2}{:>9.2}{:>9.2}",
                st.p50, st.p90, st.p95, st.p99, st.max, st.mean
            );
        }
        if let Some(g) = &self.goodput {
            let _ = writeln!(
                s,
                "  goodput ({}: TTFT ≤ {:.0} ms, request ITL p95 ≤ {:.0} ms)  {:.1} req/s, {:.1} % of requests; run p95s {}",
                g.slo.name,
                ms(g.slo.ttft),
                ms(g.slo.itl),
                g.requests_per_s,
                g.share * 100.0,
                if g.met_at_p95 {
                    "meet the SLO"
                } else {
                    "MISS the SLO"
                }
            );
        }
        if let Some(g) = &self.gateway {
            s.push_str(&g.table());
        }
        for (class, e) in &self.errors {
            let _ = writeln!(
                s,
                "  error {:<13} {:>6}  e.g. {}",
                class.name(),
                e.count,
                e.example
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::{Failure, Outcome};

    fn ok(ttft_ms: u64, gaps_ms: &[u64]) -> Outcome {
        let gaps_ns: Vec<u64> = gaps_ms.iter().map(|g| g * 1_000_000).collect();
        let e2e = ttft_ms + gaps_ms.iter().sum::<u64>();
        Outcome {
            request_id: "r".into(),
            sent_at: Duration::ZERO,
            result: Ok(Timing {
                ttft: Duration::from_millis(ttft_ms),
                e2e: Duration::from_millis(e2e),
                output_tokens: gaps_ms.len() as u32 + 1,
                tokens_from_usage: true,
                chunks: gaps_ms.len() as u32 + 1,
                gaps_ns,
            }),
        }
    }

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let mut v: Vec<f64> = (1..=10).map(f64::from).collect();
        let s = Stats::of(&mut v);
        assert_eq!((s.p50, s.max, s.mean), (5.5, 10.0, 5.5));
        assert!((s.p90 - 9.1).abs() < 1e-9 && (s.p99 - 9.91).abs() < 1e-9);
        assert_eq!(Stats::of(&mut []), Stats::default());
    }

    #[test]
    fn failures_stay_out_of_latencies_and_goodput_counts_requests_meeting_both() {
        let failure = Outcome {
            request_id: "f".into(),
            sent_at: Duration::ZERO,
            result: Err(Failure {
                class: ErrorClass::RateLimited,
                detail: "HTTP 429".into(),
            }),
        };
        let r = StepResult {
            shape: Shape::Concurrency { n: 2 },
            outcomes: vec![
                ok(100, &[20, 20]),
                ok(1500, &[20, 20]),
                ok(200, &[20, 200]),
                failure,
            ],
            wall: Duration::from_secs(2),
            cancelled: 1,
            interrupted: false,
        };
        let rep = StepReport::new(&r, Some(&"chat".parse().unwrap()));
        assert_eq!((rep.completed, rep.failed, rep.cancelled), (3, 1, 1));
        assert_eq!(rep.errors[&ErrorClass::RateLimited].count, 1);
        assert_eq!(rep.ttft_ms.max, 1500.0);
        assert_eq!(rep.itl_ms.n, 6);
        assert_eq!(rep.requests_per_s, 1.5);
        assert_eq!(rep.output_tokens_per_s, 4.5);
        let g = rep.goodput.as_ref().unwrap();
        assert_eq!((g.good, g.share, g.requests_per_s), (1, 0.25, 0.5));
        assert!(!g.met_at_p95);
        let t = rep.table();
        assert!(
            t.contains("error rate_limited") && t.contains("MISS the SLO"),
            "{t}"
        );
    }

    #[test]
    fn slo_profiles_and_custom_thresholds() {
        let rag: Slo = "rag".parse().unwrap();
        assert_eq!(
            (rag.ttft, rag.itl),
            (Duration::from_secs(3), Duration::from_millis(50))
        );
        let c: Slo = "ttft=1.5s,itl=40ms".parse().unwrap();
        assert_eq!(
            (c.ttft, c.itl),
            (Duration::from_millis(1500), Duration::from_millis(40))
        );
        for bad in ["fast", "ttft=1s", "ttft=1s,itl=x", "ttft=1s,foo=2s"] {
            assert!(bad.parse::<Slo>().is_err(), "{bad}");
        }
    }
}
