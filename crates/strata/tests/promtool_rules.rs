//! Strata's rule engine against `promtool test rules`: one rule file (recording rules with
//! labels, alerts with `for`, `keep_firing_for`, labels and templated annotations), one set
//! of input series and one table of expected firing alerts. promtool must pass the table
//! (so it is what Prometheus does), then the same series go into a Strata store and the
//! same rules run through Strata's rule engine in virtual time, and at every eval time of
//! the table Strata's firing alerts must be the table's: same labels, same annotations.

use testkit::peer;

use std::collections::BTreeMap;

use rules::{EngineConfig, RuleEngine};
use sources::Point;
use tsdb::promql::{Engine, EngineConfig as QueryConfig, Value};

const RULES: &str = r#"groups:
- name: api
  interval: 1m
  rules:
  - record: job:errors:sum
    expr: sum by (job) (errors_total)
    labels: {team: core}
  - alert: ErrorsHigh
    expr: job:errors:sum > 25000
    for: 2m
    keep_firing_for: 3m
    labels: {severity: warning}
    annotations:
      summary: "{{ $labels.job }} ({{ $labels.team }}) has {{ $value }} errors"
      short: "{{ $value | humanize }}"
  - alert: InstanceDown
    expr: up == 0
    for: 1m
    labels: {severity: critical, page: "yes"}
    annotations:
      summary: "{{ $labels.instance }} of {{ $labels.job }} is down"
  - alert: QueueDeep
    expr: queue_depth > 4
    labels: {severity: info}
    annotations:
      summary: "{{ $labels.instance }}: {{ $value }} waiting"
"#;

/// Input series at 1 m: one value per minute from t = 0.
const SERIES: [(&str, &str); 6] = [
    (
        r#"errors_total{job="api",instance="a"}"#,
        "0 10000 20000 30000 40000 50000 10000 0 0 0 0 0 0",
    ),
    (
        r#"errors_total{job="api",instance="b"}"#,
        "0 0 0 0 0 0 0 0 0 0 0 0 0",
    ),
    (r#"up{job="api",instance="a"}"#, "1 1 0 0 0 1 1 1 1 1 1 1 1"),
    (r#"up{job="api",instance="b"}"#, "1 1 1 1 1 1 1 1 1 1 1 1 1"),
    (r#"queue_depth{instance="a"}"#, "1 2 3 5 6 2 1 1 8 1 1 1 1"),
    (r#"queue_depth{instance="b"}"#, "0 0 0 0 0 0 0 0 9 0 0 0 0"),
];

/// One firing alert: labels other than `alertname`, and annotations.
type Expected = (
    Vec<(&'static str, &'static str)>,
    Vec<(&'static str, &'static str)>,
);

/// `(eval minute, alertname, every alert of that name firing then)`.
fn expected() -> Vec<(i64, &'static str, Vec<Expected>)> {
    let errors = |value: &'static str, short: &'static str| -> Expected {
        (
            vec![("job", "api"), ("severity", "warning"), ("team", "core")],
            vec![("short", short), ("summary", value)],
        )
    };
    let down = || -> Expected {
        (
            vec![
                ("instance", "a"),
                ("job", "api"),
                ("page", "yes"),
                ("severity", "critical"),
            ],
            vec![("summary", "a of api is down")],
        )
    };
    let deep = |instance: &'static str, summary: &'static str| -> Expected {
        (
            vec![("instance", instance), ("severity", "info")],
            vec![("summary", summary)],
        )
    };
    vec![
        (2, "InstanceDown", vec![]),
        (3, "InstanceDown", vec![down()]),
        (4, "InstanceDown", vec![down()]),
        (5, "InstanceDown", vec![]),
        (3, "ErrorsHigh", vec![]),
        (4, "ErrorsHigh", vec![]),
        (
            5,
            "ErrorsHigh",
            vec![errors("api (core) has 50000 errors", "50k")],
        ),
        (
            6,
            "ErrorsHigh",
            vec![errors("api (core) has 50000 errors", "50k")],
        ),
        (
            8,
            "ErrorsHigh",
            vec![errors("api (core) has 50000 errors", "50k")],
        ),
        (9, "ErrorsHigh", vec![]),
        (10, "ErrorsHigh", vec![]),
        (3, "QueueDeep", vec![deep("a", "a: 5 waiting")]),
        (5, "QueueDeep", vec![]),
        (
            8,
            "QueueDeep",
            vec![deep("a", "a: 8 waiting"), deep("b", "b: 9 waiting")],
        ),
    ]
}

/// Recording-rule output both must hold: `(eval minute, expression, series, value)`.
const RECORDED: [(i64, &str, &str, &str); 2] = [
    (
        4,
        "job:errors:sum",
        r#"job:errors:sum{job="api",team="core"}"#,
        "40000",
    ),
    (
        8,
        r#"ALERTS{alertname="ErrorsHigh"}"#,
        r#"ALERTS{alertname="ErrorsHigh",alertstate="firing",job="api",severity="warning",team="core"}"#,
        "1",
    ),
];

/// The promtool unit-test file for [`SERIES`] and [`expected`].
fn promtool_test(rule_file: &str) -> String {
    let mut t = format!(
        "rule_files: ['{rule_file}']\nevaluation_interval: 1m\ntests:\n- interval: 1m\n  input_series:\n"
    );
    for (series, values) in SERIES {
        t.push_str(&format!("  - series: '{series}'\n    values: '{values}'\n"));
    }
    t.push_str("  promql_expr_test:\n");
    for (minute, expr, series, value) in RECORDED {
        t.push_str(&format!(
            "  - expr: '{expr}'\n    eval_time: {minute}m\n    exp_samples:\n    - labels: '{series}'\n      value: {value}\n"
        ));
    }
    t.push_str("  alert_rule_test:\n");
    for (minute, name, alerts) in expected() {
        t.push_str(&format!(
            "  - eval_time: {minute}m\n    alertname: {name}\n    exp_alerts:"
        ));
        if alerts.is_empty() {
            t.push_str(" []\n");
        }
        t.push('\n');
        for (labels, annotations) in alerts {
            let map = |pairs: Vec<(&str, &str)>| {
                let items: Vec<String> = pairs
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", serde_json::json!(v)))
                    .collect();
                format!("{{{}}}", items.join(", "))
            };
            t.push_str(&format!(
                "    - exp_labels: {}\n      exp_annotations: {}\n",
                map(labels),
                map(annotations)
            ));
        }
    }
    t
}

/// `name{a="x",b="y"}` as a name and labels.
fn parse_series(s: &str) -> (String, Vec<(String, String)>) {
    let (name, rest) = s.split_once('{').unwrap_or((s, "}"));
    let labels = rest
        .trim_end_matches('}')
        .split(',')
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect();
    (name.to_string(), labels)
}

/// Strata's firing alerts named `name`, each as (labels less `alertname`, annotations).
fn firing(
    engine: &RuleEngine,
    name: &str,
) -> Vec<(BTreeMap<String, String>, BTreeMap<String, String>)> {
    let json = engine.alerts_json();
    let map = |v: &serde_json::Value| -> BTreeMap<String, String> {
        v.as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| *k != "alertname")
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect()
    };
    let mut out: Vec<_> = json["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["state"] == "firing" && a["labels"]["alertname"] == name)
        .map(|a| (map(&a["labels"]), map(&a["annotations"])))
        .collect();
    out.sort();
    out
}

#[test]
fn strata_fires_the_alerts_promtool_expects() {
    let Some(promtool) = peer::find("promtool", "prometheus") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("rules.yml"), RULES).expect("write rules");
    let test_file = dir.path().join("rules_test.yml");
    std::fs::write(&test_file, promtool_test("rules.yml")).expect("write test");
    let out = std::process::Command::new(&promtool)
        .args(["test", "rules"])
        .arg(&test_file)
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool test rules failed (the expectations are not Prometheus's):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let db = testkit::db::Db::new();
    for (series, values) in SERIES {
        let (name, labels) = parse_series(series);
        let points: Vec<Point> = values
            .split_whitespace()
            .enumerate()
            .map(|(i, v)| {
                let v: f64 = v.parse().expect("value");
                Point::new(name.clone(), labels.clone(), v, i as i64 * 60_000)
            })
            .collect();
        db.write("test", &points);
    }
    // Recorded series are compared in tsdb's own text form.
    let raw = Engine::new(db.store.clone(), QueryConfig::default());
    let engine = RuleEngine::new(
        rules::load("rules.yml", RULES).expect("rules load"),
        EngineConfig::default(),
    );
    let table = expected();
    let mut recorded = RECORDED.iter().peekable();
    let last = table.iter().map(|(m, _, _)| *m).max().unwrap_or(0);
    for minute in 0..=last {
        engine.eval_group(0, minute * 60_000, &db, &db);
        while let Some((_, expr, series, value)) = recorded.next_if(|r| r.0 == minute) {
            let Ok(Value::Vector(v)) = raw.instant(expr, minute * 60_000) else {
                panic!("{expr} at {minute}m is not a vector");
            };
            let got: Vec<(String, String)> = v
                .iter()
                .map(|s| (s.labels.to_string(), tsdb::promql::format_float(s.v)))
                .collect();
            let (name, labels) = parse_series(series);
            let mut want = labels;
            want.push(("__name__".into(), name));
            let want = tsdb::Labels::new(want).to_string();
            assert_eq!(got, vec![(want, value.to_string())], "{expr} at {minute}m");
        }
        for (_, name, alerts) in table.iter().filter(|(m, _, _)| *m == minute) {
            let own = |pairs: &Vec<(&str, &str)>| -> BTreeMap<String, String> {
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            };
            let mut want: Vec<_> = alerts.iter().map(|(l, a)| (own(l), own(a))).collect();
            want.sort();
            assert_eq!(
                firing(&engine, name),
                want,
                "{name} at {minute}m differs from promtool's"
            );
        }
    }
}
