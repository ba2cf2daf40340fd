//! LLM SLOs per workload profile, generated as rules: SLI error ratios over the windows of
//! the Google SRE workbook, error budget remaining, and multi-window multi-burn-rate alerts
//! (14.4× over 1 h and 5 m → page; 6× over 6 h and 30 m → page; 3× over 1 d and 2 h →
//! ticket; 1× over 3 d and 6 h → ticket).
//!
//! Strata's gateway histograms are the primary SLI source (their buckets sit on the
//! thresholds); the canonical engine histograms are the fallback, at the largest vLLM
//! bucket boundary at or below the threshold (stricter, never looser).

use std::fmt::Write;

use crate::yaml::{Group, Rule, render};

/// The windows error ratios are recorded over; the last is the error-budget period.
pub const WINDOWS: [&str; 8] = ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"];

/// When an SLI's data began (seconds since epoch), per SLO, profile and model: the elapsed
/// part of the error-budget period is measured from it.
pub const DATA_START: &str = "slo:data_start:timestamp";
/// The error-budget period (the last of [`WINDOWS`]), in days and seconds.
const PERIOD_DAYS: u32 = 30;
const PERIOD_SECONDS: u32 = PERIOD_DAYS * 86_400;

/// Burn-rate alert pairs: (long window, short window, burn factor, severity).
pub const BURN_PAIRS: [(&str, &str, f64, &str); 4] = [
    ("1h", "5m", 14.4, "page"),
    ("6h", "30m", 6.0, "page"),
    ("1d", "2h", 3.0, "ticket"),
    ("3d", "6h", 1.0, "ticket"),
];

/// vLLM's TTFT bucket boundaries (the engine fallback reads the one at or below the target).
const ENGINE_TTFT_LE: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// vLLM's inter-token-latency bucket boundaries.
const ENGINE_ITL_LE: &[f64] = &[0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 1.0];

/// A workload profile's objectives.
#[derive(Debug, Clone, PartialEq)]
pub struct SloProfile {
    /// Profile name (`chat`, `rag`, `code`, or a custom one): the `profile` label.
    pub name: String,
    /// Regex of the `model` label values the profile covers (`.*`: every model).
    pub models: String,
    /// p95 TTFT target, seconds.
    pub ttft_seconds: f64,
    /// p95 inter-token latency target, seconds.
    pub itl_seconds: f64,
    /// Share of requests that must meet the latency targets (0.95 for "p95 <").
    pub latency_objective: f64,
    /// Share of requests that must complete with a 2xx and a finish reason (the gateway
    /// labels streams that ended without one, cut mid-response, `none`).
    pub success_objective: f64,
    /// Share of requests that must end on `stop` (not length, abort or error).
    pub completeness_objective: f64,
    /// Queue depth the engine's p95 must stay under (capacity headroom).
    pub queue_limit: f64,
    /// Share of time the queue depth must stay under `queue_limit`.
    pub headroom_objective: f64,
}

impl SloProfile {
    /// A profile with Strata's default objectives and the given latency targets.
    pub fn custom(name: &str, ttft_seconds: f64, itl_seconds: f64) -> SloProfile {
        SloProfile {
            name: name.to_string(),
            models: ".*".to_string(),
            ttft_seconds,
            itl_seconds,
            latency_objective: 0.95,
            success_objective: 0.99,
            completeness_objective: 0.95,
            queue_limit: 10.0,
            headroom_objective: 0.95,
        }
    }

    /// The built-in profiles: `chat` (TTFT p95 < 1 s, ITL p95 < 80 ms), `rag` (3 s, 50 ms),
    /// `code` (500 ms, 30 ms).
    pub fn builtin() -> Vec<SloProfile> {
        vec![
            SloProfile::custom("chat", 1.0, 0.080),
            SloProfile::custom("rag", 3.0, 0.050),
            SloProfile::custom("code", 0.5, 0.030),
        ]
    }
}

/// The regex matching a bucket boundary however it is spelled (`1` and `1.0`).
fn le_regex(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v}|{v}.0")
    } else {
        format!("{v}")
    }
}

/// The largest engine boundary at or below `target` (the smallest when all are above).
fn engine_le(bounds: &[f64], target: f64) -> f64 {
    bounds
        .iter()
        .copied()
        .rfind(|b| *b <= target + 1e-12)
        .unwrap_or(bounds[0])
}

/// One SLI: its name, what it means, and its error-ratio expression over a window.
struct Sli {
    name: &'static str,
    title: &'static str,
    objective: f64,
    error_ratio: Box<dyn Fn(&str) -> String>,
}

fn latency_error(gw: &str, engine: &str, le_gw: f64, le_engine: f64, m: &str, w: &str) -> String {
    let ratio = |family: &str, le: f64| {
        format!(
            "1 - (\n  sum by (model) (rate({family}_bucket{{le=~\"{}\", model=~\"{m}\"}}[{w}]))\n  / sum by (model) (rate({family}_count{{model=~\"{m}\"}}[{w}]))\n)",
            le_regex(le)
        )
    };
    format!("{}\nor\n{}", ratio(gw, le_gw), ratio(engine, le_engine))
}

/// The share of requests that were not good: from the gateway's requests, else from the
/// engine's finished requests plus its failed ones (`llm:requests_failed_total`, vLLM's
/// `finished_reason="error"`): an engine error is never good and never left out.
fn share_error(gw_good: &str, engine_good: &str, m: &str, w: &str) -> String {
    let gateway = "strata_gateway_requests_total";
    let finished = "llm:requests_finished_total";
    let failed = "llm:requests_failed_total";
    let rate = |family: &str, filter: &str| {
        format!("sum by (model) (rate({family}{{{filter}model=~\"{m}\"}}[{w}]))")
    };
    let good = |g: &str| format!("{g}, ");
    format!(
        "1 - (\n  {}\n  / {}\n)\nor\n1 - (\n  {}\n  / ({} + ({} or 0 * {}))\n)",
        rate(gateway, &good(gw_good)),
        rate(gateway, ""),
        rate(finished, &good(engine_good)),
        rate(finished, ""),
        rate(failed, ""),
        rate(finished, ""),
    )
}

/// A latency SLI: the share of requests of the `models` slower than `threshold`, from the
/// gateway histogram `gw`, else the engine histogram `engine` at its bucket nearest the threshold.
fn latency_sli(
    (name, title): (&'static str, &'static str),
    objective: f64,
    (gw, engine): (&'static str, &'static str),
    (engine_bounds, threshold): (&'static [f64], f64),
    models: String,
) -> Sli {
    Sli {
        name,
        title,
        objective,
        error_ratio: Box::new(move |w| {
            let le = engine_le(engine_bounds, threshold);
            latency_error(gw, engine, threshold, le, &models, w)
        }),
    }
}

fn slis(p: &SloProfile) -> Vec<Sli> {
    let m = p.models.clone();
    let (ttft, itl) = (p.ttft_seconds, p.itl_seconds);
    let (m1, m2, m3, m4) = (m.clone(), m.clone(), m.clone(), m.clone());
    let name = p.name.clone();
    vec![
        latency_sli(
            ("ttft", "TTFT"),
            p.latency_objective,
            ("strata_gateway_ttft_seconds", "llm:ttft_seconds"),
            (ENGINE_TTFT_LE, ttft),
            m1,
        ),
        latency_sli(
            ("itl", "ITL"),
            p.latency_objective,
            ("strata_gateway_itl_seconds", "llm:itl_seconds"),
            (ENGINE_ITL_LE, itl),
            m2,
        ),
        Sli {
            name: "success",
            title: "completion success",
            objective: p.success_objective,
            error_ratio: Box::new(move |w| {
                share_error(
                    "status=~\"2..\", finish_reason!=\"none\"",
                    "finish_reason!=\"abort\"",
                    &m3,
                    w,
                )
            }),
        },
        Sli {
            name: "completeness",
            title: "streaming completeness",
            objective: p.completeness_objective,
            error_ratio: Box::new(move |w| {
                share_error("finish_reason=\"stop\"", "finish_reason=\"stop\"", &m4, w)
            }),
        },
        Sli {
            name: "headroom",
            title: "capacity headroom",
            objective: p.headroom_objective,
            error_ratio: Box::new(move |w| {
                format!("avg_over_time(slo:queue_over_limit{{profile=\"{name}\"}}[{w}])")
            }),
        },
    ]
}

fn labels(slo: &str, p: &SloProfile) -> Vec<(String, String)> {
    vec![
        ("slo".to_string(), slo.to_string()),
        ("profile".to_string(), p.name.clone()),
    ]
}

fn ratio_name(w: &str) -> String {
    format!("slo:sli_error:ratio_rate{w}")
}

fn selector(w: &str, slo: &str, p: &SloProfile) -> String {
    format!("{}{{slo=\"{slo}\", profile=\"{}\"}}", ratio_name(w), p.name)
}

/// The SLI recording group and the alert group of one profile.
pub fn groups(p: &SloProfile) -> Vec<Group> {
    let mut record = vec![Rule {
        comment: vec![format!(
            "1 while the engine's queue is deeper than {} (the capacity-headroom SLI).",
            p.queue_limit
        )],
        record: Some("slo:queue_over_limit".into()),
        expr: format!(
            "max by (model) (llm:requests_waiting{{model=~\"{}\"}}) > bool {}",
            p.models, p.queue_limit
        ),
        labels: vec![("profile".into(), p.name.clone())],
        ..Rule::default()
    }];
    let mut alerts = Vec::new();
    for sli in slis(p) {
        let budget = 1.0 - sli.objective;
        for (i, w) in WINDOWS.iter().enumerate() {
            record.push(Rule {
                comment: if i == 0 {
                    vec![format!(
                        "{} SLI: objective {}, error budget {budget:.3}.",
                        sli.title, sli.objective
                    )]
                } else {
                    Vec::new()
                },
                record: Some(ratio_name(w)),
                expr: (sli.error_ratio)(w),
                labels: labels(sli.name, p),
                ..Rule::default()
            });
        }
        let period = selector(WINDOWS[WINDOWS.len() - 1], sli.name, p);
        let start = format!(
            "{DATA_START}{{slo=\"{}\", profile=\"{}\"}}",
            sli.name, p.name
        );
        record.push(Rule {
            comment: vec![
                "When this SLI's data began (kept from its previous value; reset after an hour without data).".into(),
            ],
            record: Some(DATA_START.into()),
            expr: format!("last_over_time({start}[1h])\nor\n(0 * {period} + time())"),
            labels: labels(sli.name, p),
            ..Rule::default()
        });
        record.push(Rule {
            comment: vec![format!(
                "Share of the {PERIOD_DAYS}-day budget left: errors so far, spent pro rata over the elapsed part of the period (3 minutes of data never spends more than 3 minutes' worth)."
            )],
            record: Some("slo:error_budget_remaining:ratio".into()),
            expr: format!(
                "1 - {period} / {budget:.6} * clamp_max((time() - {start}) / {PERIOD_SECONDS}, 1)"
            ),
            labels: labels(sli.name, p),
            ..Rule::default()
        });
        for severity in ["page", "ticket"] {
            let mut expr = String::new();
            let mut windows = Vec::new();
            for (long, short, factor, _) in BURN_PAIRS.iter().filter(|b| b.3 == severity) {
                if !expr.is_empty() {
                    expr.push_str("\nor\n");
                }
                let threshold = factor * budget;
                let _ = write!(
                    expr,
                    "(\n  {} > {threshold:.6}\n  and\n  {} > {threshold:.6}\n)",
                    selector(long, sli.name, p),
                    selector(short, sli.name, p)
                );
                windows.push(format!("{factor}× over {long} and {short}"));
            }
            let title = sli.title;
            alerts.push(Rule {
                alert: Some(format!("LLMSLOBurnRate{}", capitalise(sli.name))),
                expr,
                for_: Some(if severity == "page" { "2m" } else { "15m" }.into()),
                labels: vec![
                    ("severity".into(), severity.into()),
                    ("slo".into(), sli.name.into()),
                    ("profile".into(), p.name.clone()),
                ],
                annotations: vec![
                    (
                        "summary".into(),
                        format!(
                            "{title} SLO of profile {} burns its error budget fast for {{{{ $labels.model }}}}: {{{{ $value | humanizePercentage }}}} of requests miss it",
                            p.name
                        ),
                    ),
                    (
                        "description".into(),
                        format!(
                            "Objective {} (budget {budget:.3}); this alert fires at {}. At this pace the 30-day budget is gone early. Run `strata diagnose` for the cause.",
                            sli.objective,
                            windows.join(", or ")
                        ),
                    ),
                ],
                ..Rule::default()
            });
        }
    }
    vec![
        Group {
            name: format!("slo-{}-sli", p.name),
            interval: Some("30s".into()),
            comment: vec![format!(
                "Profile {}: TTFT p95 < {} s, ITL p95 < {} s, models =~ \"{}\".",
                p.name, p.ttft_seconds, p.itl_seconds, p.models
            )],
            rules: record,
        },
        Group {
            name: format!("slo-{}-alerts", p.name),
            interval: Some("30s".into()),
            comment: Vec::new(),
            rules: alerts,
        },
    ]
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The rule file of one profile (`packs/slo-<name>.yml` for the built-in ones).
pub fn file(p: &SloProfile) -> String {
    render(
        &[
            format!(
                "GENERATED by rules::slo for profile {}: do not edit.",
                p.name
            ),
            "Regenerate: STRATA_REGENERATE=1 cargo test -p rules --test packs".into(),
            "Load one profile file per set of models (their `models` regexes must not overlap)."
                .into(),
        ],
        &groups(p),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_fallback_bucket_is_at_or_below_the_target() {
        assert_eq!(engine_le(ENGINE_TTFT_LE, 1.0), 1.0);
        assert_eq!(engine_le(ENGINE_TTFT_LE, 3.0), 2.5);
        assert_eq!(engine_le(ENGINE_ITL_LE, 0.080), 0.075);
        assert_eq!(engine_le(ENGINE_ITL_LE, 0.030), 0.025);
        assert_eq!(engine_le(ENGINE_ITL_LE, 0.001), 0.01);
        assert_eq!(le_regex(1.0), "1|1.0");
        assert_eq!(le_regex(0.08), "0.08");
    }

    #[test]
    fn chat_profile_burn_alerts_use_the_workbook_pairs() {
        let g = groups(&SloProfile::builtin()[0]);
        let ttft_page = g[1]
            .rules
            .iter()
            .find(|r| {
                r.alert.as_deref() == Some("LLMSLOBurnRateTtft")
                    && r.labels.contains(&("severity".into(), "page".into()))
            })
            .expect("page alert");
        // Budget 5 %: 14.4 × 0.05 = 0.72 over 1h and 5m, 6 × 0.05 = 0.3 over 6h and 30m.
        assert!(
            ttft_page
                .expr
                .contains("ratio_rate1h{slo=\"ttft\", profile=\"chat\"} > 0.720000")
        );
        assert!(
            ttft_page
                .expr
                .contains("ratio_rate5m{slo=\"ttft\", profile=\"chat\"} > 0.720000")
        );
        assert!(
            ttft_page
                .expr
                .contains("ratio_rate6h{slo=\"ttft\", profile=\"chat\"} > 0.300000")
        );
        let sli = &g[0]
            .rules
            .iter()
            .find(|r| r.labels.contains(&("slo".into(), "itl".into())))
            .expect("itl")
            .expr;
        assert!(
            sli.contains("strata_gateway_itl_seconds_bucket{le=~\"0.08\""),
            "{sli}"
        );
        assert!(
            sli.contains("llm:itl_seconds_bucket{le=~\"0.075\""),
            "{sli}"
        );
        assert!(
            sli.find("strata_gateway") < sli.find("llm:"),
            "gateway first"
        );
        let success = &g[0]
            .rules
            .iter()
            .find(|r| r.labels.contains(&("slo".into(), "success".into())))
            .expect("success")
            .expr;
        // Engine errors (vLLM finished_reason="error" -> llm:requests_failed_total) count
        // against success: they are in the denominator and never in the numerator.
        let engine = &success[success.find("llm:").expect("engine side")..];
        assert!(engine.contains("llm:requests_failed_total"), "{success}");
        assert!(!engine.contains("finish_reason=\"error\""), "{success}");
        crate::load("slo.yml", &file(&SloProfile::builtin()[0])).expect("valid");
    }
}
