//! Triage: rule groups evaluated step by step against a query source (the store in
//! `strata diagnose`, virtual time in tests), honouring each group's interval, with the
//! firing alerts (inhibition applied) and the findings history kept.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::alert::{Alert, Labels, State};
use crate::check::GroupSpec;
use crate::engine::{Append, EngineConfig, Query, RuleEngine};
use crate::findings::Findings;
use crate::inhibit::InhibitRule;

/// Groups, their schedule, the alerts firing and the findings.
pub struct Triage {
    engine: RuleEngine,
    every_ms: Vec<i64>,
    next_ms: Vec<Option<i64>>,
    inhibit: Vec<InhibitRule>,
    firing: BTreeMap<Labels, Alert>,
    fired: BTreeSet<String>,
    /// The findings history.
    pub findings: Findings,
}

fn alertname(a: &Alert) -> &str {
    a.labels
        .iter()
        .find(|(k, _)| k == "alertname")
        .map_or("", |(_, v)| v.as_str())
}

fn is_diagnosis(a: &Alert) -> bool {
    a.labels
        .iter()
        .any(|(k, v)| k == "kind" && v == "diagnosis")
}

impl Triage {
    /// Prepares `groups` (groups without an interval run every `default_interval`);
    /// findings keep `window` of evidence.
    pub fn new(
        groups: Vec<GroupSpec>,
        default_interval: Duration,
        window: Duration,
        inhibit: Vec<InhibitRule>,
    ) -> Triage {
        let every_ms = groups
            .iter()
            .map(|g| g.interval.unwrap_or(default_interval).as_millis().max(1) as i64)
            .collect();
        let next_ms = vec![None; groups.len()];
        let cfg = EngineConfig {
            default_interval,
            // Every evaluation hands back every firing alert, so state is tracked exactly.
            resend_delay: Duration::ZERO,
            ..EngineConfig::default()
        };
        Triage {
            engine: RuleEngine::new(groups, cfg),
            every_ms,
            next_ms,
            inhibit,
            firing: BTreeMap::new(),
            fired: BTreeSet::new(),
            findings: Findings::new(window.as_millis() as i64),
        }
    }

    /// Evaluates, in order, every group due at `t_ms`.
    pub fn step(&mut self, t_ms: i64, query: &dyn Query, out: &dyn Append) {
        for i in 0..self.every_ms.len() {
            if self.next_ms[i].is_some_and(|n| n > t_ms) {
                continue;
            }
            self.next_ms[i] = Some(t_ms + self.every_ms[i]);
            let due = self.engine.eval_group(i, t_ms, query, out);
            for a in &due {
                match a.state {
                    State::Firing => {
                        self.firing.insert(a.labels.clone(), a.clone());
                    }
                    _ => {
                        self.firing.remove(&a.labels);
                    }
                }
            }
            self.findings.observe(t_ms, &due, query);
        }
        let firing: Vec<Alert> = self.firing.values().cloned().collect();
        self.findings.relate(&firing, &self.inhibit);
        let live: Vec<String> = self
            .alerts()
            .iter()
            .filter(|a| !is_diagnosis(a))
            .map(|a| alertname(a).to_string())
            .collect();
        self.fired.extend(live);
    }

    /// Alerts (not diagnoses) firing now and not muted by inhibition.
    pub fn alerts(&self) -> Vec<&Alert> {
        let labels: Vec<Labels> = self.firing.values().map(|a| a.labels.clone()).collect();
        self.firing
            .values()
            .filter(|a| !is_diagnosis(a))
            .filter(|a| !self.inhibit.iter().any(|r| r.inhibits(&a.labels, &labels)))
            .collect()
    }

    /// Alerts (not diagnoses) firing now, muted or not.
    pub fn all_alerts(&self) -> Vec<&Alert> {
        self.firing.values().filter(|a| !is_diagnosis(a)).collect()
    }

    /// Names of the alerts that fired, unmuted, at some step.
    pub fn fired(&self) -> &BTreeSet<String> {
        &self.fired
    }
}
