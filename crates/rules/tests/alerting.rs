//! The rule engine end to end: evaluation against a scripted query source, notifications
//! to a real Alertmanager (API v2) and to a JSON webhook with inhibition, and agreement
//! with `promtool check rules` on good and bad files.

use testkit::peer;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rules::alert::Labels;
use rules::inhibit::InhibitRule;
use rules::{Append, EngineConfig, Query, RuleEngine};
use sinks::notify::{Notifier, NotifyConfig, Receiver};
use sources::Point;

/// Answers each expression with a fixed result set that the test changes over time.
#[derive(Default)]
struct Scripted(Mutex<HashMap<String, Vec<(Labels, f64)>>>);

impl Scripted {
    fn set(&self, expr: &str, result: Vec<(Labels, f64)>) {
        self.0
            .lock()
            .expect("lock")
            .insert(expr.to_string(), result);
    }
}

impl Query for Scripted {
    fn instant(&self, expr: &str, _t_ms: i64) -> Result<Vec<(Labels, f64)>, String> {
        Ok(self
            .0
            .lock()
            .expect("lock")
            .get(expr)
            .cloned()
            .unwrap_or_default())
    }
}

#[derive(Default)]
struct Collected(Mutex<Vec<Point>>);

impl Append for Collected {
    fn append(&self, points: Vec<Point>) {
        self.0.lock().expect("lock").extend(points);
    }
}

fn l(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const RULES: &str = r#"groups:
- name: engine
  interval: 10s
  rules:
  - record: job:queue:sum
    expr: sum by (job) (vllm:num_requests_waiting)
    labels: {source: strata}
  - alert: EngineDown
    expr: up == 0
    labels: {severity: critical}
    annotations:
      summary: "{{ $labels.instance }} is down"
  - alert: QueueHigh
    expr: vllm:num_requests_waiting > 10
    for: 20s
    labels: {severity: warning}
    annotations:
      summary: "{{ $labels.model }} has {{ $value }} waiting"
      share: "{{ 0.4567 | humanizePercentage }}"
"#;

fn engine() -> RuleEngine {
    let groups = rules::load("engine.yml", RULES).expect("rules load");
    let mut cfg = EngineConfig::default();
    cfg.external.url = "http://strata.test:9464".into();
    cfg.external.labels = l(&[("cluster", "test")]);
    RuleEngine::new(groups, cfg)
}

#[test]
fn recording_rules_write_back_and_alerts_walk_their_states() {
    let e = engine();
    let q = Scripted::default();
    let out = Collected::default();
    q.set(
        "sum by (job) (vllm:num_requests_waiting)",
        vec![(l(&[("job", "vllm")]), 14.0)],
    );
    let waiting = vec![(
        l(&[
            ("__name__", "vllm:num_requests_waiting"),
            ("instance", "a:8000"),
            ("model", "llama"),
        ]),
        14.0,
    )];
    q.set("vllm:num_requests_waiting > 10", waiting.clone());
    let t0 = 1_700_000_000_000;
    assert!(
        e.eval_group(0, t0, &q, &out).is_empty(),
        "pending alerts are not sent"
    );
    {
        let points = out.0.lock().expect("lock");
        let rec = points
            .iter()
            .find(|p| p.name == "job:queue:sum")
            .expect("recorded");
        assert_eq!(rec.labels, l(&[("job", "vllm"), ("source", "strata")]));
        assert_eq!(rec.value, 14.0);
        assert!(
            points
                .iter()
                .any(|p| p.name == "ALERTS" && p.label("alertstate") == Some("pending"))
        );
    }
    let alerts = e.alerts_json();
    assert_eq!(alerts["alerts"][0]["state"], "pending");
    assert_eq!(alerts["alerts"][0]["value"], "1.4e+01");
    assert_eq!(
        alerts["alerts"][0]["annotations"]["summary"],
        "llama has 14 waiting"
    );
    assert_eq!(alerts["alerts"][0]["annotations"]["share"], "45.67%");
    e.eval_group(0, t0 + 10_000, &q, &out);
    let due = e.eval_group(0, t0 + 20_000, &q, &out);
    assert_eq!(due.len(), 1, "fires after for: 20s");
    let rules = e.rules_json(Some("alert"));
    assert_eq!(
        rules["groups"][0]["rules"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(rules["groups"][0]["rules"][1]["state"], "firing");
    assert_eq!(rules["groups"][0]["rules"][1]["duration"], 20.0);
    q.set("vllm:num_requests_waiting > 10", vec![]);
    q.set("sum by (job) (vllm:num_requests_waiting)", vec![]);
    out.0.lock().expect("lock").clear();
    let due = e.eval_group(0, t0 + 30_000, &q, &out);
    assert_eq!(
        due[0].resolved_at_ms,
        Some(t0 + 30_000),
        "resolution is sent"
    );
    let points = out.0.lock().expect("lock");
    let stale = points
        .iter()
        .find(|p| p.name == "job:queue:sum")
        .expect("marker");
    assert!(
        expo::is_stale_nan(stale.value),
        "vanished series get a staleness marker"
    );
}

async fn wait_for<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firing_alert_reaches_a_real_alertmanager() {
    let Some(bin) = peer::find("prometheus-alertmanager", "prometheus-alertmanager") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let port = peer::free_port();
    let am = tokio::task::block_in_place(|| {
        peer::alertmanager(
            &bin,
            dir.path(),
            port,
            "route:\n  receiver: none\nreceivers:\n- name: none\n",
        )
    });
    let e = engine();
    let q = Scripted::default();
    q.set(
        "up == 0",
        vec![(
            l(&[("__name__", "up"), ("instance", "b:8000"), ("job", "vllm")]),
            0.0,
        )],
    );
    let mut cfg = NotifyConfig::new(vec![Receiver::Alertmanager(
        format!("http://{}/", am.addr).parse().expect("url"),
    )]);
    cfg.external.labels = l(&[("cluster", "test")]);
    cfg.external.url = "http://strata.test:9464".into();
    let notifier = Notifier::start(cfg).expect("notifier");
    notifier.send(e.eval_group(0, sources::now_ms(), &q, &Collected::default()));
    let url = format!("http://{}/api/v2/alerts", am.addr);
    let alert = wait_for("the alert in Alertmanager", async || {
        let body = reqwest::get(&url).await.ok()?.bytes().await.ok()?;
        let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
        v.as_array()?.first().cloned()
    })
    .await;
    assert_eq!(alert["labels"]["alertname"], "EngineDown");
    assert_eq!(alert["labels"]["cluster"], "test");
    assert_eq!(alert["labels"]["instance"], "b:8000");
    assert_eq!(alert["annotations"]["summary"], "b:8000 is down");
    assert_eq!(alert["status"]["state"], "active");
    assert_eq!(
        alert["generatorURL"],
        "http://strata.test:9464/alerts#EngineDown"
    );
    assert_eq!(notifier.stats().sent, 1);
    drop(am);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_gets_alerts_minus_inhibited_ones_and_retries() {
    let got: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let calls = Arc::new(Mutex::new(0u32));
    let (g, c) = (got.clone(), calls.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| async move {
            let mut n = c.lock().expect("lock");
            *n += 1;
            if *n == 1 {
                return axum::http::StatusCode::SERVICE_UNAVAILABLE;
            }
            g.lock()
                .expect("lock")
                .push(serde_json::from_slice(&body).expect("json"));
            axum::http::StatusCode::OK
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });

    let e = engine();
    let q = Scripted::default();
    q.set(
        "up == 0",
        vec![(l(&[("instance", "a:8000"), ("job", "vllm")]), 0.0)],
    );
    q.set(
        "vllm:num_requests_waiting > 10",
        vec![
            (l(&[("instance", "a:8000"), ("model", "llama")]), 20.0),
            (l(&[("instance", "b:8000"), ("model", "llama")]), 30.0),
        ],
    );
    let mut cfg = NotifyConfig::new(vec![Receiver::Webhook(
        format!("http://{addr}/hook").parse().expect("url"),
    )]);
    cfg.backoff = Duration::from_millis(20);
    cfg.inhibit = vec![InhibitRule {
        source_match: [("severity".to_string(), "critical".to_string())].into(),
        target_match: [("severity".to_string(), "warning".to_string())].into(),
        equal: vec!["instance".into()],
        ..InhibitRule::default()
    }];
    let notifier = Notifier::start(cfg).expect("notifier");
    let t0 = sources::now_ms();
    let out = Collected::default();
    let mut due = e.eval_group(0, t0, &q, &out);
    assert_eq!(due.len(), 1, "EngineDown fires at once (no `for`)");
    due.extend(e.eval_group(0, t0 + 20_000, &q, &out));
    assert_eq!(due.len(), 3, "EngineDown + two QueueHigh");
    notifier.send(due);
    let body = wait_for("the webhook call", async || {
        got.lock().expect("lock").first().cloned()
    })
    .await;
    let names: Vec<(String, String)> = body["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .map(|a| {
            (
                a["labels"]["alertname"].as_str().unwrap_or("").into(),
                a["labels"]["instance"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            ("EngineDown".into(), "a:8000".into()),
            ("QueueHigh".into(), "b:8000".into())
        ]
    );
    assert_eq!(body["status"], "firing");
    assert_eq!(*calls.lock().expect("lock"), 2, "one 503, then delivered");
    let stats = notifier.stats();
    assert_eq!((stats.sent, stats.inhibited), (2, 1));
}

#[test]
fn promtool_and_strata_agree_on_rule_files() {
    let Some(promtool) = peer::find("promtool", "prometheus") else {
        return;
    };
    let cases = [
        ("good", RULES),
        (
            "bad_expr",
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: sum(rate(x[5m])\n",
        ),
        (
            "bad_func",
            "groups:\n- name: g\n  rules:\n  - record: r\n    expr: bogus(up)\n",
        ),
        (
            "both",
            "groups:\n- name: g\n  rules:\n  - alert: A\n    record: r\n    expr: up\n",
        ),
        (
            "rec_for",
            "groups:\n- name: g\n  rules:\n  - record: r\n    expr: up\n    for: 1m\n",
        ),
        (
            "dup_group",
            "groups:\n- name: g\n  rules: []\n- name: g\n  rules: []\n",
        ),
        ("unknown_field", "groups:\n- name: g\n  rulez: []\n"),
        (
            "bad_template",
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    annotations: {s: '{{ $labels.x '}\n",
        ),
        (
            "bad_name",
            "groups:\n- name: g\n  rules:\n  - record: 'a-b'\n    expr: up\n",
        ),
        (
            "keep_firing",
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    keep_firing_for: 5m\n",
        ),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in cases {
        let path = dir.path().join(format!("{name}.yml"));
        std::fs::write(&path, text).expect("write");
        let theirs = std::process::Command::new(&promtool)
            .args(["check", "rules"])
            .arg(&path)
            .output()
            .expect("run promtool");
        let ours = rules::load(name, text);
        assert_eq!(
            ours.is_ok(),
            theirs.status.success(),
            "{name}: strata {:?} vs promtool {}",
            ours.err(),
            String::from_utf8_lossy(&theirs.stderr)
        );
    }
}

#[test]
fn replace_keeps_the_state_of_unchanged_groups_only() {
    let e = engine();
    let (q, out) = (Scripted::default(), Collected::default());
    q.set("up == 0", vec![(l(&[("instance", "a:8000")]), 0.0)]);
    e.eval_group(0, 1_700_000_000_000, &q, &out);
    assert_eq!(e.alerts_json()["alerts"].as_array().map(Vec::len), Some(1));
    let mut groups = rules::load("engine.yml", RULES).expect("rules load");
    let extra = rules::load(
        "extra.yml",
        "groups:\n- name: extra\n  rules:\n  - record: x\n    expr: sum(up)\n",
    )
    .expect("extra load");
    groups.extend(extra);
    assert_eq!(e.replace(groups), 1, "the unchanged group is kept");
    assert_eq!(e.len(), 2);
    assert_eq!(e.alerts_json()["alerts"].as_array().map(Vec::len), Some(1));
    let changed = rules::load("engine.yml", &RULES.replace("up == 0", "up < 1")).expect("load");
    assert_eq!(e.replace(changed), 0, "a changed group starts fresh");
    assert_eq!(e.alerts_json()["alerts"].as_array().map(Vec::len), Some(0));
}
