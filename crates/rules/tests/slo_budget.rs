//! The error budget left is spent pro rata over the elapsed part of the 30-day period:
//! synthetic gateway counters in virtual time go into a real `tsdb::Store` and the
//! generated SLO group of the `chat` profile is evaluated by Strata's rule engine.

use rules::slo::{DATA_START, SloProfile, file};
use rules::{EngineConfig, Query, RuleEngine};
use sources::Point;
use testkit::db::Db;

const T0: i64 = 1_700_000_000_000;
const STEP_S: i64 = 15;
const PERIOD_S: f64 = 30.0 * 86_400.0;

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut l: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    l.sort();
    l
}

/// `success` rows of `expr` at `t_s`, per model.
fn success(db: &Db, expr: &str, t_s: i64) -> Vec<(String, f64)> {
    let rows = db.instant(expr, T0 + t_s * 1000).expect(expr);
    let mut out: Vec<(String, f64)> = rows
        .iter()
        .filter(|(l, _)| l.iter().any(|(k, v)| k == "slo" && v == "success"))
        .map(|(l, v)| {
            let model = l.iter().find(|(k, _)| k == "model").map_or("", |(_, v)| v);
            (model.to_string(), *v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn three_minutes_of_errors_spend_three_minutes_of_budget() {
    let db = Db::new();
    let chat = SloProfile::builtin().remove(0);
    let groups = rules::load("slo-chat.yml", &file(&chat)).expect("slo rules load");
    let n = groups.len();
    let engine = RuleEngine::new(groups, EngineConfig::default());
    // Half of model m's requests fail (5 xx) for three minutes; m2 is all good.
    let last_s = 180;
    for step in 0..=(last_s / STEP_S) {
        let t = step * STEP_S;
        let mut points = Vec::new();
        for (model, status, per_s) in [("m", "200", 1.0), ("m", "503", 1.0), ("m2", "200", 2.0)] {
            let l = labels(&[
                ("model", model),
                ("status", status),
                (
                    "finish_reason",
                    if status == "200" { "stop" } else { "none" },
                ),
                ("instance", "gw:8080"),
            ]);
            points.push(Point::new(
                "strata_gateway_requests_total",
                l,
                per_s * t as f64,
                T0 + t * 1000,
            ));
        }
        db.write("test", &points);
        for g in 0..n {
            engine.eval_group(g, T0 + t * 1000, &db, &db);
        }
    }
    let start = success(&db, DATA_START, last_s);
    assert_eq!(start.len(), 2, "{start:?}");
    // Recorded at the first evaluation with data (t = 15 s: rate needs two samples) and kept.
    for (_, s) in &start {
        assert!(
            *s <= (T0 / 1000 + 30) as f64,
            "start kept from the beginning: {s}"
        );
    }
    let left = success(&db, "slo:error_budget_remaining:ratio", last_s);
    let elapsed = last_s as f64 - (start[0].1 - (T0 / 1000) as f64);
    // m: error ratio 0.5, budget 0.01 → 50 × the budget's rate, for `elapsed` of 30 days.
    let want_m = 1.0 - 0.5 / 0.01 * elapsed / PERIOD_S;
    assert_eq!(left[0].0, "m");
    assert!(
        (left[0].1 - want_m).abs() < 1e-3,
        "m: {} vs {want_m}",
        left[0].1
    );
    assert!(
        left[0].1 > 0.99,
        "3 minutes never spend the month: {}",
        left[0].1
    );
    assert_eq!(left[1], ("m2".to_string(), 1.0));
}
