//! Findings: what a firing diagnosis (`packs/diagnoses.yml`, label `kind="diagnosis"`)
//! becomes for the operator — its name, severity, the affected instance / model / GPU, the
//! action in plain words, and the values of its evidence expressions over the window —
//! kept as a history with start and end.

use std::collections::BTreeMap;

use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};

use crate::alert::{Alert, Labels, State};
use crate::engine::Query;

/// Labels that identify what a finding is about; evidence series are narrowed to them.
pub const IDENTITY: [&str; 6] = ["instance", "model", "engine", "gpu", "gpu_uuid", "Hostname"];

/// One evidence series and its values over the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvidenceSeries {
    /// The series' labels.
    pub labels: BTreeMap<String, String>,
    /// `(t_ms, value)`, oldest first.
    pub points: Vec<(i64, f64)>,
}

/// One evidence expression and what it returned.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    /// The PromQL expression.
    pub expr: String,
    /// Its series, narrowed to the finding's identity labels.
    pub series: Vec<EvidenceSeries>,
}

/// A diagnosis that fired.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// The identity labels of what is affected (instance, model, engine, GPU).
    pub affected: BTreeMap<String, String>,
    /// When it started firing (ms).
    pub started_ms: i64,
    /// When it stopped (ms); `None` while it fires.
    pub ended_ms: Option<i64>,
    /// The evidence over the window.
    pub evidence: Vec<Evidence>,
}

/// The findings history: open findings and closed ones.
#[derive(Debug, Default)]
pub struct Findings {
    window_ms: i64,
    open: BTreeMap<Labels, Finding>,
    closed: Vec<Finding>,
}

fn label<'a>(labels: &'a Labels, name: &str) -> &'a str {
    labels
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// Whether the series labels agree with `affected` on every identity label both carry.
fn concerns(series: &Labels, affected: &BTreeMap<String, String>) -> bool {
    series
        .iter()
        .all(|(k, v)| affected.get(k).is_none_or(|a| a == v))
}

impl Findings {
    /// An empty history keeping evidence values over `window_ms`.
    pub fn new(window_ms: i64) -> Findings {
        Findings {
            window_ms: window_ms.max(1),
            ..Findings::default()
        }
    }

    /// Applies the alerts one evaluation made due (firing ones open or refresh a finding and
    /// sample its evidence at `t_ms`; resolved ones close it). Non-diagnosis alerts are
    /// ignored.
    pub fn observe(&mut self, t_ms: i64, alerts: &[Alert], query: &dyn Query) {
        for a in alerts
            .iter()
            .filter(|a| label(&a.labels, "kind") == "diagnosis")
        {
            match a.state {
                State::Firing => {
                    let f = self
                        .open
                        .entry(a.labels.clone())
                        .or_insert_with(|| new_finding(a, t_ms));
                    sample(f, t_ms, self.window_ms, query);
                }
                State::Inactive => {
                    if let Some(mut f) = self.open.remove(&a.labels) {
                        f.ended_ms = Some(a.resolved_at_ms.unwrap_or(t_ms));
                        self.closed.push(f);
                    }
                }
                State::Pending => {}
            }
        }
    }

    /// Records an ended event that is not a diagnosis (an incident-mode switch, say).
    pub fn record(&mut self, event: Finding) {
        self.closed.push(event);
    }

    /// Findings firing now.
    pub fn open(&self) -> impl Iterator<Item = &Finding> {
        self.open.values()
    }

    /// Every finding, closed ones first (in the order they ended), then open ones.
    pub fn history(&self) -> impl Iterator<Item = &Finding> {
        self.closed.iter().chain(self.open.values())
    }
}

/// `{"open": [Finding...], "history": [Finding...]}`: what `GET /api/v1/findings` serves.
impl Serialize for Findings {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let open: Vec<&Finding> = self.open().collect();
        let history: Vec<&Finding> = self.history().collect();
        let mut st = s.serialize_struct("Findings", 2)?;
        st.serialize_field("open", &open)?;
        st.serialize_field("history", &history)?;
        st.end()
    }
}

fn annotation(a: &Alert, name: &str) -> String {
    label(&a.annotations, name).to_string()
}

fn new_finding(a: &Alert, t_ms: i64) -> Finding {
    let evidence = annotation(a, "evidence")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|expr| Evidence {
            expr: expr.to_string(),
            series: Vec::new(),
        })
        .collect();
    Finding {
        name: label(&a.labels, "diagnosis").to_string(),
        alert: label(&a.labels, "alertname").to_string(),
        severity: label(&a.labels, "severity").to_string(),
        summary: annotation(a, "summary"),
        action: annotation(a, "action"),
        affected: a
            .labels
            .iter()
            .filter(|(k, _)| IDENTITY.contains(&k.as_str()))
            .cloned()
            .collect(),
        started_ms: a.fired_at_ms.unwrap_or(t_ms),
        ended_ms: None,
        evidence,
    }
}

/// Queries each evidence expression at `t_ms` and appends the values of the series that
/// concern the finding; values older than the window are dropped.
fn sample(f: &mut Finding, t_ms: i64, window_ms: i64, query: &dyn Query) {
    for e in &mut f.evidence {
        let result = match query.instant(&e.expr, t_ms) {
            Ok(r) => r,
            Err(err) => {
                tracing::debug!("evidence {} failed: {err}", e.expr);
                continue;
            }
        };
        for (labels, v) in result {
            if !concerns(&labels, &f.affected) || !v.is_finite() {
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
            s.points.retain(|(t, _)| *t > t_ms - window_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;

    impl Query for Fixed {
        fn instant(&self, expr: &str, t_ms: i64) -> Result<Vec<(Labels, f64)>, String> {
            let l = |i: &str| vec![("instance".to_string(), i.to_string())];
            match expr {
                "waiting" => Ok(vec![(l("a"), t_ms as f64), (l("b"), -1.0)]),
                _ => Err("unknown".into()),
            }
        }
    }

    fn alert(state: State, t_ms: i64) -> Alert {
        let pairs = |p: &[(&str, &str)]| -> Labels {
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        Alert {
            labels: pairs(&[
                ("alertname", "DiagnosisX"),
                ("diagnosis", "x"),
                ("instance", "a"),
                ("kind", "diagnosis"),
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

    #[test]
    fn a_finding_opens_gathers_evidence_of_its_instance_over_the_window_and_closes() {
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
        assert_eq!(
            ev.series[0].points,
            vec![(20_000, 20_000.0), (30_000, 30_000.0)]
        );
        assert!(
            open[0].evidence[1].series.is_empty(),
            "a failing expression stays empty"
        );
        let json = serde_json::to_value(&f).expect("serialize");
        assert_eq!(json["open"][0]["name"], "x");
        assert_eq!(
            json["open"][0]["evidence"][0]["series"][0]["points"][1][1],
            30_000.0
        );
        assert_eq!(json["history"].as_array().map(Vec::len), Some(1));
        f.observe(40_000, &[alert(State::Inactive, 40_000)], &Fixed);
        let all: Vec<&Finding> = f.history().collect();
        assert_eq!(f.open().count(), 0);
        assert_eq!((all[0].started_ms, all[0].ended_ms), (1000, Some(40_000)));
        let json = serde_json::to_value(&f).expect("serialize");
        assert_eq!(json["open"].as_array().map(Vec::len), Some(0));
        assert_eq!(json["history"][0]["ended_ms"], 40_000);
    }
}
