//! Incident mode: while configured alerts fire, or for a set time after
//! `POST /api/v1/incident`, `strata up` scrapes GPUs with the incident profile (250 ms, the
//! reduced field set), then goes back to steady. Each switch is logged and kept in a findings
//! history (`GET /api/v1/incident`). A `strata agent` evaluates no alerts: it reads the ones
//! about its node from the backend the brain writes `ALERTS` to ([`AlertFeed`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strata_core::now_ms;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use rules::alert::{Alert, State as AlertState};
use rules::findings::{Finding, Findings};
use serde_json::{Value, json};
use sources::scrape::{Profile, Scraper};
use tokio::time::Instant;

/// How often firing alerts are checked and the end of an incident is looked for.
const TICK: Duration = Duration::from_millis(250);

/// How often an agent asks the backend which alerts fire (the brain evaluates every 15 s).
const FEED_EVERY: Duration = Duration::from_secs(15);

/// Labels of an alert that can name a node or one of its targets.
const NODE_LABELS: [&str; 4] = ["node", "instance", "Hostname", "hostname"];

/// Where an agent learns which alerts fire about its node: the backend the brain writes
/// `ALERTS` to (Alertmanager cannot address one pod of a DaemonSet, so agents ask).
pub struct AlertFeed {
    backend: crate::backend::Backend,
    /// Label values that name this node or its targets (`node`, target `instance`s).
    names: Vec<String>,
}

impl AlertFeed {
    /// A feed from `backend` of the alerts whose `node`, `instance` or `Hostname` is one of
    /// `names`.
    pub fn new(backend: crate::backend::Backend, names: Vec<String>) -> AlertFeed {
        AlertFeed { backend, names }
    }

    /// The first alert among `wanted` that fires about this node, by the backend's `ALERTS`.
    async fn firing(&self, wanted: &[String]) -> Result<Option<String>, String> {
        let alerts = self
            .backend
            .instant("ALERTS{alertstate=\"firing\"}", now_ms())
            .await?;
        Ok(alerts
            .iter()
            .filter(|(labels, _)| about(labels, &self.names))
            .filter_map(|(labels, _)| labels.iter().find(|(k, _)| k == "alertname"))
            .map(|(_, name)| name)
            .find(|name| wanted.contains(name))
            .cloned())
    }
}

/// Whether an alert's labels name one of `names` (this node or its targets).
fn about(labels: &[(String, String)], names: &[String]) -> bool {
    labels
        .iter()
        .any(|(k, v)| NODE_LABELS.contains(&k.as_str()) && names.contains(v))
}

/// The page-severity alerts of the built-in GPU/engine pack.
fn default_alerts() -> Vec<String> {
    let Some((name, text)) = rules::packs::FILES.iter().find(|(n, _)| *n == "alerts.yml") else {
        return Vec::new();
    };
    let Ok(groups) = rules::load(name, text) else {
        return Vec::new();
    };
    groups
        .iter()
        .flat_map(|g| &g.rules)
        .filter_map(|r| match r {
            rules::RuleSpec::Alerting(a)
                if a.raw_labels
                    .iter()
                    .any(|(k, v)| k == "severity" && v == "page") =>
            {
                Some(a.name.clone())
            }
            _ => None,
        })
        .collect()
}

struct Active {
    until: Instant,
    event: Finding,
}

/// The incident-mode switch of one `strata up`.
pub struct Incident {
    scraper: Arc<Scraper>,
    duration: Duration,
    alerts: Vec<String>,
    active: Mutex<Option<Active>>,
    history: Mutex<Findings>,
}

impl Incident {
    /// A switch over `scraper`'s profile, triggered by `alerts` (none: the built-in
    /// pack's page alerts), lasting `duration` after the last trigger.
    pub fn new(scraper: Arc<Scraper>, alerts: Vec<String>, duration: Duration) -> Arc<Incident> {
        let alerts = if alerts.is_empty() {
            default_alerts()
        } else {
            alerts
        };
        Arc::new(Incident {
            scraper,
            duration,
            alerts,
            active: Mutex::new(None),
            history: Mutex::new(Findings::new(1)),
        })
    }

    /// Enters (or extends) incident mode for `duration` because of `trigger`.
    pub fn trigger(&self, trigger: &str, duration: Duration) {
        let until = Instant::now() + duration;
        let mut active = strata_core::sync::lock(&self.active);
        match active.as_mut() {
            Some(a) => a.until = a.until.max(until),
            None => {
                self.scraper.set_profile(Profile::Incident);
                let summary = format!(
                    "GPU scraping switched to the incident profile (250 ms) for {}: {trigger}",
                    humantime::format_duration(duration)
                );
                eprintln!("strata up: incident mode on: {summary}");
                *active = Some(Active {
                    until,
                    event: Finding {
                        name: "incident_mode".to_string(),
                        alert: trigger.to_string(),
                        severity: "info".to_string(),
                        summary,
                        action: "Read the 250 ms GPU series while it lasts; POST /api/v1/incident again to extend it.".to_string(),
                        affected: BTreeMap::from([(
                            "trigger".to_string(),
                            trigger.to_string(),
                        )]),
                        started_ms: now_ms(),
                        ..Finding::default()
                    },
                });
            }
        }
    }

    /// Goes back to steady once the incident time is over.
    fn expire(&self) {
        let mut active = strata_core::sync::lock(&self.active);
        if active.as_ref().is_some_and(|a| a.until <= Instant::now())
            && let Some(mut a) = active.take()
        {
            self.scraper.set_profile(Profile::Steady);
            a.event.ended_ms = Some(now_ms());
            eprintln!("strata up: incident mode off: GPU scraping back to steady");
            strata_core::sync::lock(&self.history).record(a.event);
        }
    }

    /// Watches `rules`' firing alerts and `feed`'s (when given) and ends incidents on time.
    pub fn start(
        self: &Arc<Incident>,
        rules: Option<Arc<rules::RuleEngine>>,
        feed: Option<AlertFeed>,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(TICK);
            let mut asked: Option<Instant> = None;
            let mut complaints = strata_core::Throttle::new(Duration::from_secs(300));
            loop {
                tick.tick().await;
                if let Some(r) = &rules {
                    let firing = firing(&r.alerts(), &me.alerts);
                    if let Some(name) = firing {
                        me.trigger(&format!("alert {name} firing"), me.duration);
                    }
                }
                if let Some(f) = &feed
                    && asked.is_none_or(|t| t.elapsed() >= FEED_EVERY)
                {
                    asked = Some(Instant::now());
                    match f.firing(&me.alerts).await {
                        Ok(Some(name)) => me.trigger(
                            &format!("alert {name} firing about this node (backend ALERTS)"),
                            me.duration,
                        ),
                        Ok(None) => {}
                        Err(e) => {
                            if complaints.allow((), std::time::Instant::now()) {
                                eprintln!(
                                    "strata agent: cannot read firing alerts for incident mode: {e} (check --incident-from; repeats silenced for 5 min)"
                                );
                            }
                        }
                    }
                }
                me.expire();
            }
        })
    }

    /// The switch in force (if any) and the ended ones, as findings events.
    pub fn events(&self) -> (Option<Finding>, Vec<Finding>) {
        let active = strata_core::sync::lock(&self.active);
        let history = strata_core::sync::lock(&self.history);
        (
            active.as_ref().map(|a| a.event.clone()),
            history.history().cloned().collect(),
        )
    }

    fn json(&self) -> Value {
        let active = strata_core::sync::lock(&self.active);
        let history = strata_core::sync::lock(&self.history);
        json!({
            "profile": if active.is_some() { "incident" } else { "steady" },
            "current": active.as_ref().map(|a| &a.event),
            "remaining_seconds": active.as_ref().map(|a| a.until.saturating_duration_since(Instant::now()).as_secs_f64()),
            "alerts": self.alerts,
            "history": history.history().collect::<Vec<_>>(),
        })
    }

    /// `GET /api/v1/incident` (state and history) and `POST /api/v1/incident` (an
    /// Alertmanager webhook payload, or `{"duration":"10m"}`).
    pub fn router(self: &Arc<Incident>) -> Router {
        Router::new()
            .route("/api/v1/incident", get(show).post(post))
            .with_state(self.clone())
    }
}

/// The first alert named in `names` that fires in an `/api/v1/alerts` `data` object.
fn firing(alerts: &[Alert], names: &[String]) -> Option<String> {
    alerts
        .iter()
        .filter(|a| a.state == AlertState::Firing)
        .filter_map(|a| a.labels.iter().find(|(k, _)| k == "alertname"))
        .map(|(_, n)| n)
        .find(|n| names.contains(n))
        .cloned()
}

async fn show(State(i): State<Arc<Incident>>) -> axum::Json<Value> {
    axum::Json(json!({"status": "success", "data": i.json()}))
}

/// The longest incident a POST may ask for: the 250 ms profile costs exporter and store load,
/// so it is never left on for days by a typo.
const MAX_INCIDENT: Duration = Duration::from_secs(24 * 3600);

/// A POSTed duration: positive and at most [`MAX_INCIDENT`].
fn bounded_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("\"duration\" {s:?}: {e} (write e.g. 10m, 1h)"))?;
    if d.is_zero() || d > MAX_INCIDENT {
        return Err(format!(
            "\"duration\" {s:?} must be greater than zero and at most 24h"
        ));
    }
    Ok(d)
}

/// What a POST asks for: `Ok(None)` for a webhook with nothing firing.
fn request(body: &str, default: Duration) -> Result<Option<(String, Duration)>, String> {
    let v: Value = if body.trim().is_empty() {
        json!({})
    } else {
        serde_json::from_str(body).map_err(|e| {
            format!("body is not JSON ({e}): send an Alertmanager webhook payload or {{\"duration\":\"10m\"}}")
        })?
    };
    let duration = match v.get("duration") {
        None => default,
        Some(d) => {
            let s = d
                .as_str()
                .ok_or("\"duration\" must be a string like \"10m\"")?;
            bounded_duration(s)?
        }
    };
    let Some(alerts) = v.get("alerts") else {
        return Ok(Some(("POST /api/v1/incident".to_string(), duration)));
    };
    let names: Vec<&str> = alerts
        .as_array()
        .ok_or("\"alerts\" must be an array (Alertmanager webhook payload)")?
        .iter()
        .filter(|a| a["status"] == "firing")
        .filter_map(|a| a["labels"]["alertname"].as_str())
        .collect();
    if names.is_empty() {
        return Ok(None);
    }
    Ok(Some((
        format!("webhook: {} firing", names.join(", ")),
        duration,
    )))
}

async fn post(State(i): State<Arc<Incident>>, body: String) -> (StatusCode, axum::Json<Value>) {
    match request(&body, i.duration) {
        Ok(Some((trigger, d))) => i.trigger(&trigger, d),
        Ok(None) => {}
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"status": "error", "errorType": "bad_data", "error": e})),
            );
        }
    }
    (
        StatusCode::OK,
        axum::Json(json!({"status": "success", "data": i.json()})),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posts_are_read_as_webhooks_or_durations() {
        let d = Duration::from_secs(600);
        assert_eq!(
            request("", d).unwrap(),
            Some(("POST /api/v1/incident".to_string(), d))
        );
        assert_eq!(
            request(r#"{"duration":"3s"}"#, d).unwrap().unwrap().1,
            Duration::from_secs(3)
        );
        let hook = r#"{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"GPUXidError"}},{"status":"resolved","labels":{"alertname":"Other"}}]}"#;
        assert_eq!(
            request(hook, d).unwrap(),
            Some(("webhook: GPUXidError firing".to_string(), d))
        );
        let resolved = r#"{"alerts":[{"status":"resolved","labels":{"alertname":"X"}}]}"#;
        assert_eq!(request(resolved, d).unwrap(), None);
        assert!(request("{", d).unwrap_err().contains("duration"));
        assert!(request(r#"{"duration":"soon"}"#, d).is_err());
        let e = request(r#"{"duration":"10000000000h"}"#, d).unwrap_err();
        assert!(e.contains("at most 24h"), "{e}");
        assert!(request(r#"{"duration":"0s"}"#, d).is_err());
        assert_eq!(
            request(r#"{"duration":"24h"}"#, d).unwrap().unwrap().1,
            Duration::from_secs(24 * 3600)
        );
    }

    #[test]
    fn an_agent_takes_alerts_naming_its_node_or_its_targets() {
        let names = vec!["node-b".to_string(), "node-b:8000".to_string()];
        let l = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        assert!(about(&l("instance", "node-b:8000"), &names));
        assert!(about(&l("node", "node-b"), &names));
        assert!(about(&l("Hostname", "node-b"), &names));
        assert!(!about(&l("instance", "node-a:8000"), &names));
        assert!(!about(&l("model", "node-b"), &names));
    }

    #[test]
    fn the_default_alerts_are_the_packs_page_alerts() {
        let a = default_alerts();
        assert!(!a.is_empty());
        let alert = |name: &str, state| Alert {
            labels: vec![("alertname".to_string(), name.to_string())],
            annotations: Vec::new(),
            state,
            value: 1.0,
            active_at_ms: 0,
            fired_at_ms: None,
            resolved_at_ms: None,
            last_sent_ms: None,
            valid_until_ms: 0,
            keep_firing_since_ms: None,
        };
        let v = [
            alert(&a[0], AlertState::Pending),
            alert("NotConfigured", AlertState::Firing),
        ];
        assert_eq!(firing(&v, &a), None);
        let v = [alert(&a[0], AlertState::Firing)];
        assert_eq!(firing(&v, &a), Some(a[0].clone()));
    }
}
