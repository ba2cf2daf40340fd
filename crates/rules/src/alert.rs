//! One alerting rule's alerts and their states, with Prometheus's semantics
//! (`rules/alerting.go`): a new result is pending, fires once it has held for `for`, keeps
//! firing `keep_firing_for` after its condition clears, and is kept 15 min once resolved so
//! the resolution is sent.

use std::collections::BTreeMap;
use std::time::Duration;

use sources::Point;

use crate::check::AlertSpec;
use crate::template::Data;

/// Sorted label pairs.
pub type Labels = Vec<(String, String)>;

/// How long a resolved alert is kept (and re-sent as resolved).
const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

/// Alert state as Prometheus names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Condition no longer true (resolved).
    Inactive,
    /// Condition true for less than `for`.
    Pending,
    /// Condition true for `for` or more.
    Firing,
}

impl State {
    /// `inactive` / `pending` / `firing`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Inactive => "inactive",
            State::Pending => "pending",
            State::Firing => "firing",
        }
    }
}

/// One alert instance (one label set of one rule).
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Labels: the result's (minus `__name__`), the rule's, and `alertname`.
    pub labels: Labels,
    /// Rendered annotations.
    pub annotations: Labels,
    /// Current state.
    pub state: State,
    /// Value of the last evaluation that returned this label set.
    pub value: f64,
    /// When it became pending (ms).
    pub active_at_ms: i64,
    /// When it started firing (ms).
    pub fired_at_ms: Option<i64>,
    /// When it was resolved (ms).
    pub resolved_at_ms: Option<i64>,
    /// When it was last sent to notifiers (ms).
    pub last_sent_ms: Option<i64>,
    /// `endsAt` sent while firing: a few resend periods ahead (ms).
    pub valid_until_ms: i64,
    /// Since when its condition has been false while `keep_firing_for` holds it (ms).
    pub keep_firing_since_ms: Option<i64>,
}

/// What the templates may see besides the alert: Strata's external labels and URL.
#[derive(Debug, Clone, Default)]
pub struct External {
    /// Labels added to every alert sent out.
    pub labels: Labels,
    /// Strata's URL (in `generatorURL` and `$externalURL`).
    pub url: String,
}

/// An alerting rule with its active alerts.
#[derive(Debug, Clone)]
pub struct AlertingRule {
    /// The rule as loaded.
    pub spec: AlertSpec,
    /// Alerts by label set.
    pub active: BTreeMap<Labels, Alert>,
}

impl AlertingRule {
    /// A rule with no alerts yet.
    pub fn new(spec: AlertSpec) -> AlertingRule {
        AlertingRule {
            spec,
            active: BTreeMap::new(),
        }
    }

    /// Applies one evaluation's result at `t_ms`; returns the `ALERTS` and
    /// `ALERTS_FOR_STATE` samples, or an error when two results collapse to one label set.
    pub fn eval(
        &mut self,
        result: Vec<(Labels, f64)>,
        t_ms: i64,
        ext: &External,
    ) -> Result<Vec<Point>, String> {
        let mut current: BTreeMap<Labels, Alert> = BTreeMap::new();
        for (mut labels, value) in result {
            labels.retain(|(k, _)| k != "__name__");
            let data = Data {
                labels: &labels,
                value,
                external_labels: &ext.labels,
                external_url: &ext.url,
            };
            let render = |(k, t): &(String, crate::template::Template)| {
                t.render(&data)
                    .map(|v| (k.clone(), v))
                    .map_err(|e| format!("{k}: {e}"))
            };
            let extra: Vec<(String, String)> = self
                .spec
                .labels
                .iter()
                .map(render)
                .collect::<Result<_, _>>()?;
            let annotations: Labels = self
                .spec
                .annotations
                .iter()
                .map(render)
                .collect::<Result<_, _>>()?;
            let mut all: BTreeMap<String, String> = labels.into_iter().collect();
            all.extend(extra);
            all.insert("alertname".into(), self.spec.name.clone());
            let all: Labels = all.into_iter().collect();
            if current.contains_key(&all) {
                return Err(
                    "vector contains metrics with the same labelset after applying alert labels"
                        .into(),
                );
            }
            current.insert(
                all.clone(),
                Alert {
                    labels: all,
                    annotations,
                    state: State::Pending,
                    value,
                    active_at_ms: t_ms,
                    fired_at_ms: None,
                    resolved_at_ms: None,
                    last_sent_ms: None,
                    valid_until_ms: 0,
                    keep_firing_since_ms: None,
                },
            );
        }
        for (labels, fresh) in &current {
            match self.active.get_mut(labels) {
                Some(a) if a.state != State::Inactive => {
                    a.value = fresh.value;
                    a.annotations = fresh.annotations.clone();
                }
                _ => {
                    self.active.insert(labels.clone(), fresh.clone());
                }
            }
        }
        let hold = ms(self.spec.for_);
        let keep_for = ms(self.spec.keep_firing_for);
        let mut out = Vec::new();
        self.active.retain(|labels, a| {
            if current.contains_key(labels) {
                a.keep_firing_since_ms = None;
            } else {
                let mut keep_firing = false;
                if a.state == State::Firing && keep_for > 0 {
                    let since = *a.keep_firing_since_ms.get_or_insert(t_ms);
                    keep_firing = t_ms - since < keep_for;
                }
                let expired = a.state == State::Pending
                    || a.resolved_at_ms
                        .is_some_and(|r| t_ms - r > RESOLVED_RETENTION_MS);
                if a.state != State::Inactive && !keep_firing {
                    a.state = State::Inactive;
                    a.resolved_at_ms = Some(t_ms);
                }
                if !keep_firing {
                    return !expired;
                }
            }
            if a.state == State::Pending && t_ms - a.active_at_ms >= hold {
                a.state = State::Firing;
                a.fired_at_ms = Some(t_ms);
            }
            let mut alerts = a.labels.clone();
            alerts.push(("alertstate".into(), a.state.as_str().into()));
            out.push(Point::new("ALERTS", alerts, 1.0, t_ms));
            out.push(Point::new(
                "ALERTS_FOR_STATE",
                a.labels.clone(),
                (a.active_at_ms / 1000) as f64,
                t_ms,
            ));
            true
        });
        Ok(out)
    }

    /// Alerts due to be sent at `t_ms` (firing ones every `resend_delay`, resolved ones
    /// once after resolving), marked as sent.
    pub fn due(&mut self, t_ms: i64, resend_delay: Duration, interval: Duration) -> Vec<Alert> {
        let delta = ms(resend_delay.max(interval));
        let resend = ms(resend_delay);
        let mut out = Vec::new();
        for a in self.active.values_mut() {
            if a.state == State::Pending {
                continue;
            }
            let resolved_since_sent = match (a.resolved_at_ms, a.last_sent_ms) {
                (Some(r), Some(s)) => r > s,
                (Some(_), None) => true,
                _ => false,
            };
            let stale = a.last_sent_ms.is_none_or(|s| s + resend < t_ms);
            if resolved_since_sent || stale {
                a.last_sent_ms = Some(t_ms);
                a.valid_until_ms = t_ms + 4 * delta;
                out.push(a.clone());
            }
        }
        out
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Label pairs as a JSON object (the API's and the notifications' shape).
pub fn labels_json(pairs: &Labels) -> serde_json::Value {
    serde_json::Value::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect(),
    )
}

/// RFC 3339 with milliseconds, UTC (the API's and the notifications' time format).
pub fn rfc3339(ms: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{RuleSpec, load};

    fn rule(extra: &str) -> AlertingRule {
        let text = format!(
            "groups:\n- name: g\n  rules:\n  - alert: QueueHigh\n    expr: q > 10\n{extra}    labels: {{severity: page}}\n    annotations: {{summary: '{{{{ $labels.model }}}} at {{{{ $value }}}}'}}\n"
        );
        let groups = load("t.yml", &text).expect("valid");
        match groups[0].rules[0].clone() {
            RuleSpec::Alerting(a) => AlertingRule::new(a),
            RuleSpec::Recording { .. } => panic!("alert expected"),
        }
    }

    fn hit(v: f64) -> Vec<(Labels, f64)> {
        vec![(
            vec![
                ("__name__".into(), "q".into()),
                ("model".into(), "m".into()),
            ],
            v,
        )]
    }

    fn state(r: &AlertingRule) -> Option<State> {
        r.active.values().next().map(|a| a.state)
    }

    const MIN: i64 = 60_000;

    #[test]
    fn pending_then_firing_after_for_then_resolved() {
        let mut r = rule("    for: 2m\n");
        let ext = External::default();
        let out = r.eval(hit(12.0), 0, &ext).expect("eval");
        assert_eq!(state(&r), Some(State::Pending));
        assert!(
            out.iter()
                .any(|p| p.name == "ALERTS" && p.label("alertstate") == Some("pending"))
        );
        r.eval(hit(13.0), MIN, &ext).expect("eval");
        assert_eq!(state(&r), Some(State::Pending));
        assert!(
            r.due(MIN, Duration::from_secs(60), Duration::from_secs(60))
                .is_empty()
        );
        r.eval(hit(14.0), 2 * MIN, &ext).expect("eval");
        assert_eq!(state(&r), Some(State::Firing));
        let a = r.active.values().next().expect("alert");
        assert_eq!(
            a.labels,
            vec![
                ("alertname".to_string(), "QueueHigh".to_string()),
                ("model".to_string(), "m".to_string()),
                ("severity".to_string(), "page".to_string()),
            ]
        );
        assert_eq!(a.annotations[0].1, "m at 14");
        assert_eq!(a.active_at_ms, 0);
        let sent = r.due(2 * MIN, Duration::from_secs(60), Duration::from_secs(15));
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].valid_until_ms, 2 * MIN + 4 * MIN);
        assert!(
            r.due(
                2 * MIN + 30_000,
                Duration::from_secs(60),
                Duration::from_secs(15)
            )
            .is_empty()
        );
        let out = r.eval(vec![], 3 * MIN, &ext).expect("eval");
        assert!(out.is_empty(), "no ALERTS series once resolved");
        assert_eq!(state(&r), Some(State::Inactive));
        let sent = r.due(3 * MIN, Duration::from_secs(60), Duration::from_secs(15));
        assert_eq!(sent[0].resolved_at_ms, Some(3 * MIN));
        r.eval(vec![], 3 * MIN + RESOLVED_RETENTION_MS + 1, &ext)
            .expect("eval");
        assert!(r.active.is_empty(), "dropped after the retention");
    }

    #[test]
    fn pending_alert_that_clears_is_forgotten_and_restarts_its_clock() {
        let mut r = rule("    for: 2m\n");
        let ext = External::default();
        r.eval(hit(12.0), 0, &ext).expect("eval");
        r.eval(vec![], MIN, &ext).expect("eval");
        assert!(r.active.is_empty());
        r.eval(hit(12.0), 2 * MIN, &ext).expect("eval");
        assert_eq!(
            r.active.values().next().map(|a| a.active_at_ms),
            Some(2 * MIN)
        );
    }

    #[test]
    fn zero_for_fires_at_once_and_keep_firing_for_holds_it() {
        let mut r = rule("    keep_firing_for: 2m\n");
        let ext = External::default();
        r.eval(hit(12.0), 0, &ext).expect("eval");
        assert_eq!(state(&r), Some(State::Firing));
        r.eval(vec![], MIN, &ext).expect("eval");
        assert_eq!(state(&r), Some(State::Firing), "held by keep_firing_for");
        r.eval(vec![], 2 * MIN + 1, &ext).expect("eval");
        assert_eq!(
            state(&r),
            Some(State::Firing),
            "2m counted from the first miss at 1m"
        );
        r.eval(vec![], 3 * MIN, &ext).expect("eval");
        assert_eq!(state(&r), Some(State::Inactive));
    }

    #[test]
    fn colliding_label_sets_are_an_error() {
        let mut r = rule("");
        let two = vec![
            (
                vec![
                    ("__name__".to_string(), "a".to_string()),
                    ("model".to_string(), "m".to_string()),
                ],
                11.0,
            ),
            (
                vec![
                    ("__name__".to_string(), "b".to_string()),
                    ("model".to_string(), "m".to_string()),
                ],
                12.0,
            ),
        ];
        assert!(r.eval(two, 0, &External::default()).is_err());
    }
}
