//! Findings: what a firing diagnosis (`packs/diagnoses.yml`, label `kind="diagnosis"`)
//! becomes for the operator — one incident per cause: the pattern, its severity, every
//! engine it affects (named from `strata_engine_info`), the action in plain words, the
//! alerts it explains (its symptoms, muted by the inhibition rules and nested under it),
//! and its evidence charts from a baseline before onset until now — kept as a history with
//! start and end.

use std::collections::BTreeMap;

use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};

use crate::alert::{Alert, Labels, State};
use crate::engine::Query;
use crate::inhibit::InhibitRule;

/// Labels that identify what a finding is about; evidence series are narrowed to them.
pub const IDENTITY: [&str; 6] = ["instance", "model", "engine", "gpu", "gpu_uuid", "Hostname"];

/// The longest baseline before onset (sampled every [`SAMPLE_EVERY_MS`], as the evidence
/// since onset is).
const BASELINE_MAX_MS: i64 = 5 * 60 * 1000;
/// Evidence of an open finding is sampled at most this often.
const SAMPLE_EVERY_MS: i64 = 10_000;

/// One evidence series and its values over the window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvidenceSeries {
    /// The series' labels.
    pub labels: BTreeMap<String, String>,
    /// `(t_ms, value)`, oldest first; the first ones precede the finding (its baseline).
    pub points: Vec<(i64, f64)>,
}

/// One evidence expression, how to show it, and what it returned.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The PromQL expression.
    pub expr: String,
    /// What it shows, in plain words (the expression when the rule names none).
    #[serde(default)]
    pub title: String,
    /// `percent` (a 0-1 ratio shown as %), `seconds`, `count`, `per_second`, `bytes`,
    /// `bytes_per_second` or `ratio`; empty when the rule names none.
    #[serde(default)]
    pub unit: String,
    /// The line the diagnosis compares this value with, if any (in the value's own scale:
    /// 0.95 for 95 %).
    #[serde(default)]
    pub threshold: Option<f64>,
    /// Its series, narrowed to the finding's engines and GPUs.
    #[serde(default)]
    pub series: Vec<EvidenceSeries>,
}

/// An engine a finding affects.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EngineRef {
    /// The scrape instance (`host:port`).
    pub instance: String,
    /// Its display name (`strata_engine_info`'s `name`, else the instance).
    pub name: String,
    /// The served model, if known.
    #[serde(default)]
    pub model: String,
    /// The node it runs on, if known.
    #[serde(default)]
    pub node: String,
}

/// A firing alert explained (and muted) by a cause.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Symptom {
    /// Its alert name.
    pub alert: String,
    /// `page` or `ticket`.
    pub severity: String,
    /// Its summary annotation.
    pub summary: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
}

/// A diagnosis that fired: one per cause, whatever the number of engines it affects.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The pattern (`cache_thrash`, `compute_bound`, ...).
    pub name: String,
    /// The alert rule that raised it.
    pub alert: String,
    /// `page` or `ticket`.
    pub severity: String,
    /// What is happening.
    pub summary: String,
    /// What to do, in plain words.
    pub action: String,
    /// The identity labels every affected series shares (instance, model, engine, GPU).
    pub affected: BTreeMap<String, String>,
    /// When it started firing (ms).
    pub started_ms: i64,
    /// When it stopped (ms); `None` while it fires.
    pub ended_ms: Option<i64>,
    /// The evidence over the window.
    pub evidence: Vec<Evidence>,
    /// Every engine the cause affects.
    #[serde(default)]
    pub engines: Vec<EngineRef>,
    /// The firing alerts this cause explains (muted, nested under it).
    #[serde(default)]
    pub symptoms: Vec<Symptom>,
}

/// A finding firing now and the diagnosis alerts (one per engine or GPU) behind it.
#[derive(Debug)]
struct Open {
    finding: Finding,
    members: BTreeMap<Labels, Labels>,
    sampled_ms: i64,
}

/// The findings history: open findings and closed ones, and the alerts inhibition mutes.
#[derive(Debug, Default)]
pub struct Findings {
    window_ms: i64,
    open: BTreeMap<(String, String), Open>,
    closed: Vec<Finding>,
    muted: Vec<Symptom>,
}

fn label<'a>(labels: &'a Labels, name: &str) -> &'a str {
    labels
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

fn identity(labels: &Labels) -> Labels {
    labels
        .iter()
        .filter(|(k, _)| IDENTITY.contains(&k.as_str()))
        .cloned()
        .collect()
}

/// Whether the series labels agree with `member` on every identity label both carry.
fn concerns(series: &Labels, member: &Labels) -> bool {
    series
        .iter()
        .all(|(k, v)| member.iter().all(|(mk, mv)| mk != k || mv == v))
}

fn is_diagnosis(labels: &Labels) -> bool {
    label(labels, "kind") == "diagnosis"
}

fn rank(severity: &str) -> u8 {
    match severity {
        "page" => 2,
        "ticket" => 1,
        _ => 0,
    }
}

impl Findings {
    /// An empty history keeping evidence values over `window_ms`.
    pub fn new(window_ms: i64) -> Findings {
        Findings {
            window_ms: window_ms.max(1),
            ..Findings::default()
        }
    }

    /// Applies the alerts one evaluation made due (firing diagnoses open a finding or join
    /// the one of their cause; resolved ones leave it, and it closes when none is left),
    /// then samples the evidence of the open findings at `t_ms`. Non-diagnosis alerts are
    /// ignored here (see [`Findings::relate`]).
    pub fn observe(&mut self, t_ms: i64, alerts: &[Alert], query: &dyn Query) {
        for a in alerts.iter().filter(|a| is_diagnosis(&a.labels)) {
            let key = (
                label(&a.labels, "alertname").to_string(),
                label(&a.labels, "diagnosis").to_string(),
            );
            match a.state {
                State::Firing => {
                    let baseline = (self.window_ms / 2).min(BASELINE_MAX_MS);
                    let open = self.open.entry(key).or_insert_with(|| {
                        let finding = new_finding(a, t_ms);
                        let mut open = Open {
                            finding,
                            members: BTreeMap::new(),
                            sampled_ms: i64::MIN,
                        };
                        open.members.insert(a.labels.clone(), identity(&a.labels));
                        let start = open.finding.started_ms;
                        for i in 0..(baseline / SAMPLE_EVERY_MS).max(1) {
                            let at = start - baseline + i * SAMPLE_EVERY_MS;
                            sample(&mut open, at, i64::MAX, query);
                        }
                        open
                    });
                    let fired = a.fired_at_ms.unwrap_or(t_ms);
                    let f = &mut open.finding;
                    f.started_ms = f.started_ms.min(fired);
                    if rank(label(&a.labels, "severity")) > rank(&f.severity) {
                        f.severity = label(&a.labels, "severity").to_string();
                    }
                    if open
                        .members
                        .insert(a.labels.clone(), identity(&a.labels))
                        .is_none()
                        || open.finding.engines.is_empty()
                    {
                        regroup(open, t_ms, query);
                    }
                }
                State::Inactive => {
                    let Some(open) = self.open.get_mut(&key) else {
                        continue;
                    };
                    open.members.remove(&a.labels);
                    if open.members.is_empty() {
                        if let Some(mut open) = self.open.remove(&key) {
                            open.finding.ended_ms = Some(a.resolved_at_ms.unwrap_or(t_ms));
                            self.closed.push(open.finding);
                        }
                    } else {
                        regroup(open, t_ms, query);
                    }
                }
                State::Pending => {}
            }
        }
        for open in self.open.values_mut() {
            if t_ms.saturating_sub(open.sampled_ms) >= SAMPLE_EVERY_MS {
                sample(open, t_ms, self.window_ms, query);
            }
        }
    }

    /// Relates the alerts firing now (`firing`: every active alert, pending ones are
    /// skipped) to the open findings through `inhibit`: an alert muted by a finding's
    /// diagnosis (or by one of its symptoms) becomes a symptom of that finding; every
    /// alert muted by any firing alert is listed as inhibited.
    pub fn relate(&mut self, firing: &[Alert], inhibit: &[InhibitRule]) {
        let firing: Vec<&Alert> = firing.iter().filter(|a| a.state == State::Firing).collect();
        let mutes = |src: &Labels, target: &Labels| inhibit.iter().any(|r| r.mutes(src, target));
        self.muted = firing
            .iter()
            .filter(|t| !is_diagnosis(&t.labels))
            .filter(|t| firing.iter().any(|s| mutes(&s.labels, &t.labels)))
            .map(|a| symptom(a))
            .collect();
        for open in self.open.values_mut() {
            let mut causes: Vec<&Labels> = open.members.keys().collect();
            let mut nested: Vec<&Alert> = Vec::new();
            // Symptoms of symptoms nest too (a full KV cache explains the queue).
            while let Some(src) = causes.pop() {
                for t in firing.iter().filter(|t| !is_diagnosis(&t.labels)) {
                    if !nested.iter().any(|n| n.labels == t.labels) && mutes(src, &t.labels) {
                        nested.push(t);
                        causes.push(&t.labels);
                    }
                }
            }
            open.finding.symptoms = nested.into_iter().map(symptom).collect();
        }
    }

    /// Records an ended event that is not a diagnosis (an incident-mode switch, say).
    pub fn record(&mut self, event: Finding) {
        self.closed.push(event);
    }

    /// Findings firing now.
    pub fn open(&self) -> impl Iterator<Item = &Finding> {
        self.open.values().map(|o| &o.finding)
    }

    /// Every finding, closed ones first (in the order they ended), then open ones.
    pub fn history(&self) -> impl Iterator<Item = &Finding> {
        self.closed.iter().chain(self.open())
    }

    /// Firing alerts muted by another firing alert (symptoms of a cause, or a lower tier
    /// of the same alert), as of the last [`Findings::relate`].
    pub fn inhibited(&self) -> &[Symptom] {
        &self.muted
    }
}

/// `{"open": [Finding...], "history": [Finding...], "inhibited": [Symptom...]}`: what
/// `GET /api/v1/findings` serves.
impl Serialize for Findings {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let open: Vec<&Finding> = self.open().collect();
        let history: Vec<&Finding> = self.history().collect();
        let mut st = s.serialize_struct("Findings", 3)?;
        st.serialize_field("open", &open)?;
        st.serialize_field("history", &history)?;
        st.serialize_field("inhibited", &self.muted)?;
        st.end()
    }
}

fn annotation(a: &Alert, name: &str) -> String {
    label(&a.annotations, name).to_string()
}

fn symptom(a: &Alert) -> Symptom {
    Symptom {
        alert: label(&a.labels, "alertname").to_string(),
        severity: label(&a.labels, "severity").to_string(),
        summary: annotation(a, "summary"),
        labels: a.labels.iter().cloned().collect(),
    }
}

/// The `evidence` annotation: a YAML list of `{expr, title, unit, threshold}`, or (rules
/// written before titles existed) one PromQL expression per line.
pub fn parse_evidence(text: &str) -> Vec<Evidence> {
    if let Ok(list) = serde_saphyr::from_str::<Vec<Evidence>>(text) {
        return list
            .into_iter()
            .filter(|e| !e.expr.trim().is_empty())
            .map(|e| Evidence {
                title: if e.title.is_empty() {
                    e.expr.clone()
                } else {
                    e.title
                },
                series: Vec::new(),
                ..e
            })
            .collect();
    }
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|expr| Evidence {
            expr: expr.to_string(),
            title: expr.to_string(),
            ..Evidence::default()
        })
        .collect()
}

fn new_finding(a: &Alert, t_ms: i64) -> Finding {
    Finding {
        name: label(&a.labels, "diagnosis").to_string(),
        alert: label(&a.labels, "alertname").to_string(),
        severity: label(&a.labels, "severity").to_string(),
        summary: annotation(a, "summary"),
        action: annotation(a, "action"),
        affected: identity(&a.labels).into_iter().collect(),
        started_ms: a.fired_at_ms.unwrap_or(t_ms),
        ended_ms: None,
        evidence: parse_evidence(&annotation(a, "evidence")),
        engines: Vec::new(),
        symptoms: Vec::new(),
    }
}

/// Recomputes what the members share (`affected`) and the engines they name.
fn regroup(open: &mut Open, t_ms: i64, query: &dyn Query) {
    let mut members = open.members.values();
    let mut shared: BTreeMap<String, String> = members
        .next()
        .map(|m| m.iter().cloned().collect())
        .unwrap_or_default();
    for m in members {
        shared.retain(|k, v| label(m, k) == v.as_str());
    }
    open.finding.affected = shared;
    let mut engines: Vec<EngineRef> = open
        .members
        .values()
        .filter(|m| !label(m, "instance").is_empty())
        .map(|m| engine_ref(m, t_ms, query))
        .collect();
    engines.sort();
    engines.dedup();
    open.finding.engines = engines;
}

/// The engine of a member: its `strata_engine_info` when recorded, else its labels.
fn engine_ref(member: &Labels, t_ms: i64, query: &dyn Query) -> EngineRef {
    let instance = label(member, "instance");
    let quoted = instance.replace('\\', "\\\\").replace('"', "\\\"");
    let info = query
        .instant(
            &format!("strata_engine_info{{instance=\"{quoted}\"}}"),
            t_ms,
        )
        .ok()
        .and_then(|r| r.into_iter().next())
        .map(|(l, _)| l)
        .unwrap_or_default();
    let pick = |name: &str, fallback: &str| -> String {
        let v = label(&info, name);
        if v.is_empty() { fallback } else { v }.to_string()
    };
    EngineRef {
        instance: instance.to_string(),
        name: pick("name", instance),
        model: pick("model", label(member, "model")),
        node: pick("node", ""),
    }
}

/// Queries each evidence expression at `t_ms` and appends the values of the series that
/// concern one of the finding's members; values from its own time older than `window_ms`
/// are dropped (the baseline before onset is kept).
fn sample(open: &mut Open, t_ms: i64, window_ms: i64, query: &dyn Query) {
    if t_ms >= open.finding.started_ms {
        open.sampled_ms = t_ms;
    }
    let start = open.finding.started_ms;
    for e in &mut open.finding.evidence {
        let result = match query.instant(&e.expr, t_ms) {
            Ok(r) => r,
            Err(err) => {
                tracing::debug!("evidence {} failed: {err}", e.expr);
                continue;
            }
        };
        for (labels, v) in result {
            if !v.is_finite() || !open.members.values().any(|m| concerns(&labels, m)) {
                continue;
            }
            let labels: BTreeMap<String, String> = labels
                .into_iter()
                .filter(|(k, _)| k != "__name__")
                .collect();
            let at = e.series.iter().position(|s| s.labels == labels);
            let s = match at {
                Some(i) => &mut e.series[i],
                None => {
                    e.series.push(EvidenceSeries {
                        labels,
                        points: Vec::new(),
                    });
                    let last = e.series.len() - 1;
                    &mut e.series[last]
                }
            };
            s.points.push((t_ms, v));
            s.points
                .retain(|(t, _)| *t < start || *t > t_ms.saturating_sub(window_ms));
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;

    fn pairs(p: &[(&str, &str)]) -> Labels {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    impl Query for Fixed {
        fn instant(&self, expr: &str, t_ms: i64) -> Result<Vec<(Labels, f64)>, String> {
            let l = |i: &str| vec![("instance".to_string(), i.to_string())];
            match expr {
                "waiting" => Ok(vec![(l("a"), t_ms as f64), (l("b"), -1.0), (l("c"), 7.0)]),
                r#"strata_engine_info{instance="a"}"# => Ok(vec![(
                    pairs(&[("instance", "a"), ("name", "vllm-a"), ("node", "n1")]),
                    1.0,
                )]),
                _ => Err("unknown".into()),
            }
        }
    }

    fn alert_on(instance: &str, state: State, t_ms: i64) -> Alert {
        Alert {
            labels: pairs(&[
                ("alertname", "DiagnosisX"),
                ("diagnosis", "x"),
                ("instance", instance),
                ("kind", "diagnosis"),
                ("model", "m"),
                ("severity", "page"),
            ]),
            annotations: pairs(&[("action", "do y"), ("evidence", "waiting\nbroken\n")]),
            state,
            value: 1.0,
            active_at_ms: 0,
            fired_at_ms: Some(1000),
            resolved_at_ms: (state == State::Inactive).then_some(t_ms),
            last_sent_ms: None,
            valid_until_ms: 0,
            keep_firing_since_ms: None,
        }
    }

    fn alert(state: State, t_ms: i64) -> Alert {
        alert_on("a", state, t_ms)
    }

    #[test]
    fn a_finding_opens_gathers_evidence_of_its_instance_from_a_baseline_and_closes() {
        let mut f = Findings::new(20_000);
        for t in [10_000, 20_000, 30_000] {
            f.observe(t, &[alert(State::Firing, t)], &Fixed);
        }
        let open: Vec<&Finding> = f.open().collect();
        assert_eq!(open.len(), 1);
        assert_eq!(
            (open[0].name.as_str(), open[0].action.as_str()),
            ("x", "do y")
        );
        assert_eq!(
            open[0].affected.get("instance").map(String::as_str),
            Some("a")
        );
        let ev = &open[0].evidence[0];
        assert_eq!(ev.series.len(), 1, "only instance a");
        let points = &ev.series[0].points;
        let before: Vec<&(i64, f64)> = points.iter().filter(|p| p.0 < 1000).collect();
        let since: Vec<&(i64, f64)> = points.iter().filter(|p| p.0 >= 1000).collect();
        assert_eq!(before, [&(-9000, -9000.0)], "baseline before onset");
        assert_eq!(
            since,
            vec![&(20_000, 20_000.0), &(30_000, 30_000.0)],
            "values of the window since"
        );
        assert!(
            open[0].evidence[1].series.is_empty(),
            "a failing expression stays empty"
        );
        let json = serde_json::to_value(&f).expect("serialize");
        assert_eq!(json["open"][0]["name"], "x");
        assert_eq!(json["open"][0]["engines"][0]["name"], "vllm-a");
        assert_eq!(json["open"][0]["engines"][0]["node"], "n1");
        assert_eq!(json["history"].as_array().map(Vec::len), Some(1));
        f.observe(40_000, &[alert(State::Inactive, 40_000)], &Fixed);
        let all: Vec<&Finding> = f.history().collect();
        assert_eq!(f.open().count(), 0);
        assert_eq!((all[0].started_ms, all[0].ended_ms), (1000, Some(40_000)));
        let json = serde_json::to_value(&f).expect("serialize");
        assert_eq!(json["open"].as_array().map(Vec::len), Some(0));
        assert_eq!(json["history"][0]["ended_ms"], 40_000);
    }

    #[test]
    fn one_finding_per_cause_lists_every_engine_and_closes_when_the_last_one_recovers() {
        let mut f = Findings::new(60_000);
        f.observe(
            10_000,
            &[
                alert_on("a", State::Firing, 10_000),
                alert_on("c", State::Firing, 10_000),
            ],
            &Fixed,
        );
        let open: Vec<&Finding> = f.open().collect();
        assert_eq!(open.len(), 1, "one card for the cause");
        let names: Vec<&str> = open[0].engines.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["vllm-a", "c"], "info name, else the instance");
        assert_eq!(open[0].engines[1].model, "m");
        assert!(!open[0].affected.contains_key("instance"), "not shared");
        assert_eq!(open[0].affected.get("model").map(String::as_str), Some("m"));
        assert_eq!(open[0].evidence[0].series.len(), 2, "a and c, not b");
        f.observe(20_000, &[alert_on("a", State::Inactive, 20_000)], &Fixed);
        assert_eq!(f.open().count(), 1, "c still fires");
        assert_eq!(f.open().next().map(|o| o.engines.len()), Some(1));
        f.observe(30_000, &[alert_on("c", State::Inactive, 30_000)], &Fixed);
        assert_eq!(f.open().count(), 0);
        assert_eq!(f.history().next().and_then(|h| h.ended_ms), Some(30_000));
    }

    #[test]
    fn symptoms_nest_under_their_cause_through_inhibition() {
        let rules = crate::packs::inhibit_rules(crate::packs::INHIBIT).expect("pack rules");
        let mut f = Findings::new(60_000);
        let mut cause = alert_on("a", State::Firing, 10_000);
        cause.labels = pairs(&[
            ("alertname", "DiagnosisCacheThrash"),
            ("diagnosis", "cache_thrash"),
            ("instance", "a"),
            ("kind", "diagnosis"),
            ("model", "m"),
            ("severity", "page"),
        ]);
        let firing = |name: &str, instance: &str, extra: &[(&str, &str)]| {
            let mut a = alert_on(instance, State::Firing, 10_000);
            a.labels = pairs(&[
                ("alertname", name),
                ("instance", instance),
                ("model", "m"),
                ("severity", "page"),
            ]);
            a.labels.extend(pairs(extra));
            a.labels.sort();
            a
        };
        let kv = firing("LLMKVCacheExhaustion", "a", &[("tier", "critical")]);
        let queue = firing("LLMRequestQueueBackup", "a", &[]);
        let other = firing("LLMRequestQueueBackup", "b", &[]);
        f.observe(10_000, std::slice::from_ref(&cause), &Fixed);
        f.relate(&[cause, kv, queue, other], &rules);
        let open = f.open().next().expect("open");
        let nested: Vec<&str> = open.symptoms.iter().map(|s| s.alert.as_str()).collect();
        assert_eq!(nested, ["LLMKVCacheExhaustion", "LLMRequestQueueBackup"]);
        assert!(open.symptoms.iter().all(|s| s.labels["instance"] == "a"));
        let muted: Vec<(&str, &str)> = f
            .inhibited()
            .iter()
            .map(|s| (s.alert.as_str(), s.labels["instance"].as_str()))
            .collect();
        assert_eq!(
            muted,
            [
                ("LLMKVCacheExhaustion", "a"),
                ("LLMRequestQueueBackup", "a")
            ],
            "the queue of b is no symptom"
        );
    }

    #[test]
    fn evidence_declares_title_unit_and_threshold_or_falls_back_to_lines() {
        let e = parse_evidence(
            "- title: 'KV cache used'\n  unit: percent\n  threshold: 0.95\n  expr: 'max(kv)'\n",
        );
        assert_eq!(
            (
                e[0].title.as_str(),
                e[0].unit.as_str(),
                e[0].threshold,
                e[0].expr.as_str()
            ),
            ("KV cache used", "percent", Some(0.95), "max(kv)")
        );
        let old = parse_evidence("max(a)\n\nsum(b)\n");
        let exprs: Vec<&str> = old.iter().map(|e| e.title.as_str()).collect();
        assert_eq!(exprs, ["max(a)", "sum(b)"]);
        assert!(
            old.iter()
                .all(|e| e.threshold.is_none() && e.unit.is_empty())
        );
    }

    #[test]
    fn every_pack_diagnosis_titles_its_evidence_in_plain_words_with_a_unit() {
        const UNITS: [&str; 7] = [
            "percent",
            "seconds",
            "count",
            "per_second",
            "bytes",
            "bytes_per_second",
            "ratio",
        ];
        let groups = crate::packs::shared().expect("packs");
        let mut seen = 0;
        for g in groups.iter() {
            for r in &g.rules {
                let crate::check::RuleSpec::Alerting(a) = r else {
                    continue;
                };
                if !a
                    .raw_labels
                    .iter()
                    .any(|(k, v)| k == "kind" && v == "diagnosis")
                {
                    continue;
                }
                let Some(text) = a.raw_annotations.iter().find(|(k, _)| k == "evidence") else {
                    continue;
                };
                for e in parse_evidence(&text.1) {
                    seen += 1;
                    assert!(!e.title.contains('('), "{}: title {:?}", e.expr, e.title);
                    assert!(
                        UNITS.contains(&e.unit.as_str()),
                        "{}: unit {:?}",
                        e.expr,
                        e.unit
                    );
                }
            }
        }
        assert!(seen > 30, "{seen} evidence expressions");
    }
}
