//! The group scheduler: each group is evaluated on its interval, rules in order (a rule sees
//! what earlier rules of its group wrote), recording results and `ALERTS` series are written
//! back through [`Append`], due alerts go to the caller (the node sends them to `sinks::notify`). Series a rule stops
//! producing get a staleness marker, as in Prometheus.

use std::collections::BTreeSet;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sources::Point;

use crate::alert::labels_json as map;
use crate::alert::{Alert, AlertingRule, External, Labels, State};
use crate::check::{GroupSpec, RuleSpec};

pub use strata_core::{Append, Query};

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Interval of groups that set none.
    pub default_interval: Duration,
    /// Firing alerts are re-sent this often.
    pub resend_delay: Duration,
    /// External labels and URL for templates and notifications.
    pub external: External,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            default_interval: Duration::from_secs(60),
            resend_delay: Duration::from_secs(60),
            external: External::default(),
        }
    }
}

enum Rule {
    Recording { spec: RuleSpec },
    Alerting(Box<AlertingRule>),
}

struct RuleState {
    rule: Rule,
    health: &'static str,
    last_error: String,
    last_eval_ms: i64,
    eval_seconds: f64,
}

struct Group {
    spec: GroupSpec,
    interval: Duration,
    rules: Vec<RuleState>,
    last_eval_ms: i64,
    eval_seconds: f64,
    previous: BTreeSet<(String, Labels)>,
}

impl Group {
    fn new(spec: GroupSpec, cfg: &EngineConfig) -> Group {
        let rules = spec
            .rules
            .iter()
            .map(|r| RuleState {
                rule: match r {
                    RuleSpec::Alerting(a) => Rule::Alerting(Box::new(AlertingRule::new(a.clone()))),
                    rec => Rule::Recording { spec: rec.clone() },
                },
                health: "unknown",
                last_error: String::new(),
                last_eval_ms: 0,
                eval_seconds: 0.0,
            })
            .collect();
        Group {
            interval: spec.interval.unwrap_or(cfg.default_interval),
            spec,
            rules,
            last_eval_ms: 0,
            eval_seconds: 0.0,
            previous: BTreeSet::new(),
        }
    }
}

/// All loaded groups and their states.
pub struct RuleEngine {
    cfg: EngineConfig,
    groups: RwLock<Vec<Mutex<Group>>>,
}

impl RuleEngine {
    /// Prepares `groups`; nothing runs until a scheduler (the node's, or a test's loop)
    /// calls [`RuleEngine::eval_group`].
    pub fn new(groups: Vec<GroupSpec>, cfg: EngineConfig) -> RuleEngine {
        let groups = groups
            .into_iter()
            .map(|spec| Mutex::new(Group::new(spec, &cfg)))
            .collect();
        RuleEngine {
            cfg,
            groups: RwLock::new(groups),
        }
    }

    /// Replaces the loaded groups by `groups` (a config reload): a group whose file, name
    /// and rules are unchanged keeps its state (pending and firing alerts, last evaluation);
    /// the others start fresh. Returns how many groups were kept.
    pub fn replace(&self, groups: Vec<GroupSpec>) -> usize {
        let mut current = strata_core::sync::write(&self.groups);
        let mut old: Vec<Option<Group>> = current
            .drain(..)
            .map(|g| Some(g.into_inner().unwrap_or_else(|p| p.into_inner())))
            .collect();
        let mut kept = 0;
        for spec in groups {
            // GroupSpec has no PartialEq (templates); its Debug form holds every field.
            let same = format!("{spec:?}");
            let found = old.iter_mut().find(|g| {
                g.as_ref()
                    .is_some_and(|g| g.spec.file == spec.file && format!("{:?}", g.spec) == same)
            });
            let group = match found.and_then(Option::take) {
                Some(g) => {
                    kept += 1;
                    g
                }
                None => Group::new(spec, &self.cfg),
            };
            current.push(Mutex::new(group));
        }
        kept
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Mutex<Group>>> {
        strata_core::sync::read(&self.groups)
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether no group is loaded.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// Evaluates group `index` once at `t_ms`: writes results through `out`, returns the
    /// alerts due for notification.
    pub fn eval_group(
        &self,
        index: usize,
        t_ms: i64,
        query: &dyn Query,
        out: &dyn Append,
    ) -> Vec<Alert> {
        let groups = self.read();
        let Some(group) = groups.get(index) else {
            return Vec::new();
        };
        let mut g = strata_core::sync::lock(group);
        let started = Instant::now();
        let interval = g.interval;
        let limit = g.spec.limit as usize;
        let mut current = BTreeSet::new();
        let mut due = Vec::new();
        for r in &mut g.rules {
            let rule_started = Instant::now();
            let result = query.instant(
                match &r.rule {
                    Rule::Recording { spec } => spec.expr(),
                    Rule::Alerting(a) => &a.spec.expr,
                },
                t_ms,
            );
            let produced = result.and_then(|res| {
                if limit > 0 && res.len() > limit {
                    return Err(format!(
                        "exceeded limit of {limit} with {} series",
                        res.len()
                    ));
                }
                match &mut r.rule {
                    Rule::Recording { spec } => Ok(recorded(spec, res, t_ms)),
                    Rule::Alerting(a) => a.eval(res, t_ms, &self.cfg.external),
                }
            });
            match produced {
                Ok(points) => {
                    r.health = "ok";
                    r.last_error.clear();
                    for p in &points {
                        current.insert((p.name.clone(), p.labels.clone()));
                    }
                    out.append(points);
                }
                Err(e) => {
                    r.health = "err";
                    r.last_error = e;
                }
            }
            if let Rule::Alerting(a) = &mut r.rule {
                due.extend(a.due(t_ms, self.cfg.resend_delay, interval));
            }
            r.last_eval_ms = t_ms;
            r.eval_seconds = rule_started.elapsed().as_secs_f64();
        }
        let stale: Vec<Point> = g
            .previous
            .difference(&current)
            .map(|(name, labels)| {
                Point::new(
                    name.clone(),
                    labels.clone(),
                    strata_core::stale::marker(),
                    t_ms,
                )
            })
            .collect();
        if !stale.is_empty() {
            out.append(stale);
        }
        g.previous = current;
        g.last_eval_ms = t_ms;
        g.eval_seconds = started.elapsed().as_secs_f64();
        due
    }

    /// The `data` of `/api/v1/rules` (`type` = `alert`/`record` filters, else all).
    pub fn rules_json(&self, kind: Option<&str>) -> Value {
        let groups: Vec<Value> = self
            .read()
            .iter()
            .map(|g| {
                let g = strata_core::sync::lock(g);
                let rules: Vec<Value> = g
                    .rules
                    .iter()
                    .filter(|r| {
                        !matches!(
                            (kind, &r.rule),
                            (Some("alert"), Rule::Recording { .. })
                                | (Some("record"), Rule::Alerting(_))
                        )
                    })
                    .map(rule_json)
                    .collect();
                json!({
                    "name": g.spec.name,
                    "file": g.spec.file,
                    "interval": g.interval.as_secs_f64(),
                    "limit": g.spec.limit,
                    "rules": rules,
                    "evaluationTime": g.eval_seconds,
                    "lastEvaluation": rfc3339_or_zero(g.last_eval_ms),
                })
            })
            .collect();
        json!({ "groups": groups })
    }

    /// Every pending and firing alert, typed (what internal code reads).
    pub fn alerts(&self) -> Vec<Alert> {
        let mut alerts = Vec::new();
        for g in self.read().iter() {
            let g = strata_core::sync::lock(g);
            for r in &g.rules {
                if let Rule::Alerting(a) = &r.rule {
                    alerts.extend(
                        a.active
                            .values()
                            .filter(|x| x.state != State::Inactive)
                            .cloned(),
                    );
                }
            }
        }
        alerts
    }

    /// The `data` of `/api/v1/alerts` (the API edge): every pending and firing alert.
    pub fn alerts_json(&self) -> Value {
        let alerts: Vec<Value> = self.alerts().iter().map(alert_json).collect();
        json!({ "alerts": alerts })
    }
}

fn recorded(spec: &RuleSpec, result: Vec<(Labels, f64)>, t_ms: i64) -> Vec<Point> {
    let RuleSpec::Recording { name, labels, .. } = spec else {
        return Vec::new();
    };
    result
        .into_iter()
        .map(|(mut l, v)| {
            l.retain(|(k, _)| k != "__name__" && !labels.iter().any(|(lk, _)| lk == k));
            l.extend(labels.iter().cloned());
            Point::new(name.clone(), l, v, t_ms)
        })
        .collect()
}

fn rfc3339_or_zero(ms: i64) -> String {
    if ms <= 0 {
        return "0001-01-01T00:00:00Z".into();
    }
    crate::alert::rfc3339(ms)
}

fn alert_json(a: &Alert) -> Value {
    json!({
        "labels": map(&a.labels),
        "annotations": map(&a.annotations),
        "state": a.state.as_str(),
        "activeAt": rfc3339_or_zero(a.active_at_ms),
        "value": go_e(a.value),
    })
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`, as Prometheus writes alert values.
fn go_e(v: f64) -> String {
    if !v.is_finite() {
        return crate::humanize::go_g(v, 4);
    }
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

fn rule_json(r: &RuleState) -> Value {
    let common = |v: &mut Value| {
        v["health"] = json!(r.health);
        v["evaluationTime"] = json!(r.eval_seconds);
        v["lastEvaluation"] = json!(rfc3339_or_zero(r.last_eval_ms));
        if !r.last_error.is_empty() {
            v["lastError"] = json!(r.last_error);
        }
    };
    let mut v = match &r.rule {
        Rule::Recording { spec } => {
            let RuleSpec::Recording { name, expr, labels } = spec else {
                return Value::Null;
            };
            json!({ "name": name, "query": expr, "labels": map(labels), "type": "recording" })
        }
        Rule::Alerting(a) => {
            let alerts: Vec<Value> = a
                .active
                .values()
                .filter(|x| x.state != State::Inactive)
                .map(alert_json)
                .collect();
            let state = a
                .active
                .values()
                .map(|x| x.state)
                .fold(State::Inactive, |acc, s| match (acc, s) {
                    (State::Firing, _) | (_, State::Firing) => State::Firing,
                    (State::Pending, _) | (_, State::Pending) => State::Pending,
                    _ => State::Inactive,
                });
            json!({
                "state": state.as_str(),
                "name": a.spec.name,
                "query": a.spec.expr,
                "duration": a.spec.for_.as_secs_f64(),
                "keepFiringFor": a.spec.keep_firing_for.as_secs_f64(),
                "labels": map(&a.spec.raw_labels),
                "annotations": map(&a.spec.raw_annotations),
                "alerts": alerts,
                "type": "alerting",
            })
        }
    };
    common(&mut v);
    v
}
