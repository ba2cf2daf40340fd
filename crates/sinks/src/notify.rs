//! Sending alerts out: Alertmanager API v2 (`POST /api/v2/alerts`) and a generic JSON
//! webhook, from a bounded queue (oldest dropped and counted when full) with retries and
//! backoff; inhibition is applied for the webhook, which has no Alertmanager in between.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::sync::Notify;

use rules::alert::{Alert, External, Labels, State, labels_json as map, rfc3339};
use rules::inhibit::InhibitRule;

/// Where notifications go.
#[derive(Debug, Clone, PartialEq)]
pub enum Receiver {
    /// An Alertmanager: base URL (`http://am:9093`); `/api/v2/alerts` is appended.
    Alertmanager(reqwest::Url),
    /// A JSON webhook URL, with inhibition applied by Strata.
    Webhook(reqwest::Url),
}

/// Notifier settings, as plain data.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// Receivers; every alert goes to each.
    pub receivers: Vec<Receiver>,
    /// Inhibition rules for webhooks.
    pub inhibit: Vec<InhibitRule>,
    /// Alerts queued at most; the oldest are dropped (counted) beyond.
    pub queue_capacity: usize,
    /// Attempts per batch and receiver.
    pub attempts: u32,
    /// First retry delay (doubled each time).
    pub backoff: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// External labels and URL.
    pub external: External,
}

impl NotifyConfig {
    /// Defaults: 10 000 queued alerts, 3 attempts from 200 ms, 10 s timeout.
    pub fn new(receivers: Vec<Receiver>) -> NotifyConfig {
        NotifyConfig {
            receivers,
            inhibit: Vec::new(),
            queue_capacity: 10_000,
            attempts: 3,
            backoff: Duration::from_millis(200),
            timeout: Duration::from_secs(10),
            external: External::default(),
        }
    }
}

/// Notifier counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifyStats {
    /// Alerts delivered (per receiver).
    pub sent: u64,
    /// Alerts given up on after all attempts (per receiver).
    pub failed: u64,
    /// Alerts dropped because the queue was full.
    pub dropped: u64,
    /// Alerts muted by inhibition (webhook).
    pub inhibited: u64,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    inhibited: AtomicU64,
}

/// The notification queue and its sender task.
pub struct Notifier {
    cfg: NotifyConfig,
    queue: Mutex<VecDeque<Alert>>,
    wake: Notify,
    counters: Counters,
    client: reqwest::Client,
}

impl Notifier {
    /// Builds the notifier and starts its sender task (inside a Tokio runtime).
    pub fn start(cfg: NotifyConfig) -> Result<Arc<Notifier>, String> {
        // Err only means a provider is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .build()
            .map_err(|e| format!("cannot build the notification HTTP client: {e}"))?;
        let n = Arc::new(Notifier {
            cfg,
            queue: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            counters: Counters::default(),
            client,
        });
        tokio::spawn(run(n.clone()));
        Ok(n)
    }

    /// Queues alerts for every receiver.
    pub fn send(&self, alerts: Vec<Alert>) {
        if alerts.is_empty() {
            return;
        }
        let mut q = strata_core::sync::lock(&self.queue);
        for a in alerts {
            if q.len() >= self.cfg.queue_capacity {
                q.pop_front();
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
            q.push_back(a);
        }
        drop(q);
        self.wake.notify_one();
    }

    /// Counters now.
    pub fn stats(&self) -> NotifyStats {
        let c = &self.counters;
        NotifyStats {
            sent: c.sent.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            inhibited: c.inhibited.load(Ordering::Relaxed),
        }
    }

    async fn deliver(&self, receiver: &Receiver, alerts: &[Alert]) {
        let (url, body, count) = match receiver {
            Receiver::Alertmanager(base) => {
                let url = base.join("api/v2/alerts").unwrap_or_else(|_| base.clone());
                (
                    url,
                    alertmanager_body(alerts, &self.cfg.external),
                    alerts.len(),
                )
            }
            Receiver::Webhook(url) => {
                let firing: Vec<Labels> = alerts
                    .iter()
                    .filter(|a| a.state == State::Firing)
                    .map(|a| a.labels.clone())
                    .collect();
                let kept: Vec<Alert> = alerts
                    .iter()
                    .filter(|a| {
                        !self
                            .cfg
                            .inhibit
                            .iter()
                            .any(|r| r.inhibits(&a.labels, &firing))
                    })
                    .cloned()
                    .collect();
                let muted = (alerts.len() - kept.len()) as u64;
                self.counters.inhibited.fetch_add(muted, Ordering::Relaxed);
                if kept.is_empty() {
                    return;
                }
                (
                    url.clone(),
                    webhook_body(&kept, &self.cfg.external),
                    kept.len(),
                )
            }
        };
        let mut delay = self.cfg.backoff;
        for attempt in 1..=self.cfg.attempts.max(1) {
            let result = self.client.post(url.clone()).json_body(&body).send().await;
            let why = match result {
                Ok(r) if r.status().is_success() => {
                    self.counters
                        .sent
                        .fetch_add(count as u64, Ordering::Relaxed);
                    return;
                }
                Ok(r) if r.status().is_client_error() => {
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default();
                    tracing::warn!(
                        "{url} refused {count} alerts: HTTP {status}: {}",
                        text.trim()
                    );
                    break;
                }
                Ok(r) => format!("HTTP {}", r.status()),
                Err(e) => format!("{e:#}"),
            };
            tracing::debug!("notify {url} attempt {attempt} failed: {why}");
            if attempt < self.cfg.attempts {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
        self.counters
            .failed
            .fetch_add(count as u64, Ordering::Relaxed);
        tracing::warn!("giving up sending {count} alerts to {url}");
    }
}

trait JsonBody {
    fn json_body(self, v: &Value) -> Self;
}

impl JsonBody for reqwest::RequestBuilder {
    fn json_body(self, v: &Value) -> Self {
        self.header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(v.to_string())
    }
}

async fn run(n: Arc<Notifier>) {
    loop {
        let batch: Vec<Alert> = {
            let mut q = strata_core::sync::lock(&n.queue);
            let take = q.len().min(64);
            q.drain(..take).collect()
        };
        if batch.is_empty() {
            n.wake.notified().await;
            continue;
        }
        for r in &n.cfg.receivers {
            n.deliver(r, &batch).await;
        }
    }
}

fn with_external(labels: &Labels, ext: &External) -> Value {
    let mut m = serde_json::Map::new();
    for (k, v) in ext.labels.iter().chain(labels.iter()) {
        m.insert(k.clone(), Value::String(v.clone()));
    }
    Value::Object(m)
}

fn ends_at(a: &Alert) -> i64 {
    a.resolved_at_ms.unwrap_or(a.valid_until_ms)
}

fn generator_url(a: &Alert, ext: &External) -> String {
    let name = a
        .labels
        .iter()
        .find(|(k, _)| k == "alertname")
        .map_or("", |(_, v)| v.as_str());
    format!("{}/alerts#{name}", ext.url.trim_end_matches('/'))
}

/// The Alertmanager v2 `postableAlerts` body.
pub fn alertmanager_body(alerts: &[Alert], ext: &External) -> Value {
    Value::Array(
        alerts
            .iter()
            .map(|a| {
                json!({
                    "labels": with_external(&a.labels, ext),
                    "annotations": map(&a.annotations),
                    "startsAt": rfc3339(a.active_at_ms),
                    "endsAt": rfc3339(ends_at(a)),
                    "generatorURL": generator_url(a, ext),
                })
            })
            .collect(),
    )
}

/// The webhook body: Alertmanager's webhook payload shape (`version` 4), so receivers
/// written for Alertmanager read it unchanged; plus each alert's `value`.
pub fn webhook_body(alerts: &[Alert], ext: &External) -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let firing = alerts.iter().any(|a| a.resolved_at_ms.is_none());
    json!({
        "version": "4",
        "receiver": "strata",
        "status": if firing { "firing" } else { "resolved" },
        "externalURL": ext.url,
        "alerts": alerts.iter().map(|a| json!({
            "status": if a.resolved_at_ms.is_some() { "resolved" } else { "firing" },
            "labels": with_external(&a.labels, ext),
            "annotations": map(&a.annotations),
            "startsAt": rfc3339(a.active_at_ms),
            "endsAt": if a.resolved_at_ms.is_some() { rfc3339(ends_at(a)) } else { "0001-01-01T00:00:00Z".to_string() },
            "generatorURL": generator_url(a, ext),
            "value": a.value,
            "sentAt": rfc3339(now),
        })).collect::<Vec<_>>(),
    })
}
