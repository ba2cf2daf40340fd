//! The rule evaluation loop of `strata up`: every group on its interval, its due alerts
//! fed to the findings tracker and to the notifier, its evaluation time recorded.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rules::findings::Findings;
use rules::notify::Notifier;
use rules::{GroupSpec, RuleEngine};

use super::ingest::{Ingest, StoreQuery};
use super::selfmetrics::SelfMetrics;

/// Evidence kept per finding.
const EVIDENCE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// The rule engine, its schedule and the findings it feeds.
pub(crate) struct Evaluator {
    /// The engine (also read by the API's /rules and /alerts).
    pub engine: Arc<RuleEngine>,
    /// Diagnoses that fired: open and closed.
    pub findings: Mutex<Findings>,
    names: Vec<String>,
    every: Vec<Duration>,
    /// Groups evaluated at least once.
    evaluated: AtomicUsize,
    first: Vec<std::sync::atomic::AtomicBool>,
}

impl Evaluator {
    /// Prepares `groups`; groups without an interval run every `default_interval`.
    pub(crate) fn new(
        groups: Vec<GroupSpec>,
        mut cfg: rules::EngineConfig,
        default_interval: Duration,
    ) -> Evaluator {
        cfg.default_interval = default_interval;
        let names = groups.iter().map(|g| g.name.clone()).collect();
        let every: Vec<Duration> = groups
            .iter()
            .map(|g| g.interval.unwrap_or(default_interval))
            .collect();
        let first = every
            .iter()
            .map(|_| std::sync::atomic::AtomicBool::new(false))
            .collect();
        Evaluator {
            engine: Arc::new(RuleEngine::new(groups, cfg)),
            findings: Mutex::new(Findings::new(EVIDENCE_WINDOW.as_millis() as i64)),
            names,
            every,
            evaluated: AtomicUsize::new(0),
            first,
        }
    }

    /// Whether every group has been evaluated once (true when there are none).
    pub(crate) fn all_evaluated(&self) -> bool {
        self.evaluated.load(Ordering::Relaxed) >= self.names.len()
    }

    /// Runs every group on its interval until the handles are aborted.
    pub(crate) fn start(
        self: &Arc<Self>,
        query: Arc<StoreQuery>,
        out: Arc<Ingest>,
        notifier: Option<Arc<Notifier>>,
        metrics: Arc<SelfMetrics>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        (0..self.names.len())
            .map(|i| {
                let me = self.clone();
                let (query, out, notifier, metrics) = (
                    query.clone(),
                    out.clone(),
                    notifier.clone(),
                    metrics.clone(),
                );
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(me.every[i]);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                    loop {
                        tick.tick().await;
                        let (e, q, o) = (me.clone(), query.clone(), out.clone());
                        let started = Instant::now();
                        let due = tokio::task::spawn_blocking(move || {
                            let t = sources::now_ms();
                            let due = e.engine.eval_group(i, t, &*q, &*o);
                            e.findings
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .observe(t, &due, &*q);
                            due
                        })
                        .await
                        .unwrap_or_default();
                        metrics.rule_group(&me.names[i], started.elapsed());
                        if !me.first[i].swap(true, Ordering::Relaxed) {
                            me.evaluated.fetch_add(1, Ordering::Relaxed);
                        }
                        if let Some(n) = &notifier {
                            n.send(due);
                        }
                    }
                })
            })
            .collect()
    }
}
