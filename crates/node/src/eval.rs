//! The rule evaluation loop of `strata up`: every group on its interval, its due alerts
//! fed to the findings tracker and to the notifier, its evaluation time recorded.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rules::findings::Findings;
use rules::inhibit::InhibitRule;
use rules::{GroupSpec, RuleEngine};
use sinks::notify::Notifier;

use strata_core::query::Query;

use super::ingest::Ingest;
use super::selfmetrics::SelfMetrics;

/// Evidence kept per finding.
const EVIDENCE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// The rule engine, its schedule and the findings it feeds.
pub(crate) struct Evaluator {
    /// The engine (also read by the API's /rules and /alerts); a reload swaps its groups.
    pub engine: Arc<RuleEngine>,
    /// Diagnoses that fired: open and closed.
    pub findings: Mutex<Findings>,
    /// The inhibition rules that nest symptoms under their cause.
    inhibit: Vec<InhibitRule>,
    default_interval: Duration,
    schedule: Mutex<Arc<Schedule>>,
    /// Set once every group of a schedule was evaluated: a reload does not unready.
    ready: AtomicBool,
    running: Mutex<Option<Running>>,
}

/// The groups' names and intervals as loaded, and which were evaluated.
struct Schedule {
    names: Vec<String>,
    every: Vec<Duration>,
    first: Vec<AtomicBool>,
    evaluated: AtomicUsize,
}

impl Schedule {
    fn new(groups: &[GroupSpec], default_interval: Duration) -> Schedule {
        Schedule {
            names: groups.iter().map(|g| g.name.clone()).collect(),
            every: groups
                .iter()
                .map(|g| g.interval.unwrap_or(default_interval))
                .collect(),
            first: groups.iter().map(|_| AtomicBool::new(false)).collect(),
            evaluated: AtomicUsize::new(0),
        }
    }

    fn all_evaluated(&self) -> bool {
        self.evaluated.load(Ordering::Relaxed) >= self.names.len()
    }
}

/// What the group loops read and write, and the loops themselves.
struct Running {
    query: Arc<dyn Query>,
    /// How far behind now groups are evaluated (a backend that hides its newest samples).
    delay: i64,
    out: Arc<Ingest>,
    notifier: Option<Arc<Notifier>>,
    metrics: Arc<SelfMetrics>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Evaluator {
    /// Prepares `groups`; groups without an interval run every `default_interval`;
    /// `inhibit` relates the firing alerts to the findings that explain them.
    pub(crate) fn new(
        groups: Vec<GroupSpec>,
        mut cfg: rules::EngineConfig,
        default_interval: Duration,
        inhibit: Vec<InhibitRule>,
    ) -> Evaluator {
        cfg.default_interval = default_interval;
        let schedule = Arc::new(Schedule::new(&groups, default_interval));
        Evaluator {
            engine: Arc::new(RuleEngine::new(groups, cfg)),
            findings: Mutex::new(Findings::new(EVIDENCE_WINDOW.as_millis() as i64)),
            inhibit,
            default_interval,
            schedule: Mutex::new(schedule),
            ready: AtomicBool::new(false),
            running: Mutex::new(None),
        }
    }

    /// Whether every group has been evaluated once (true when there are none); stays true
    /// across reloads.
    pub(crate) fn all_evaluated(&self) -> bool {
        if self.ready.load(Ordering::Relaxed) {
            return true;
        }
        let all = self.current().all_evaluated();
        if all {
            self.ready.store(true, Ordering::Relaxed);
        }
        all
    }

    /// The names of the groups in force, in evaluation order.
    pub(crate) fn group_names(&self) -> Vec<String> {
        self.current().names.clone()
    }

    fn current(&self) -> Arc<Schedule> {
        strata_core::sync::lock(&self.schedule).clone()
    }

    /// Runs every group on its interval until [`Evaluator::stop`], each evaluation at now
    /// minus `delay` (zero on the embedded store; a backend's hidden newest window).
    pub(crate) fn start(
        self: &Arc<Self>,
        query: Arc<dyn Query>,
        delay: Duration,
        out: Arc<Ingest>,
        notifier: Option<Arc<Notifier>>,
        metrics: Arc<SelfMetrics>,
    ) {
        let mut running = Running {
            query,
            delay: delay.as_millis() as i64,
            out,
            notifier,
            metrics,
            tasks: Vec::new(),
        };
        running.tasks = self.spawn(&self.current(), &running);
        *strata_core::sync::lock(&self.running) = Some(running);
    }

    /// Evaluates `groups` from now on (a config reload): the group loops restart, groups
    /// whose rules are unchanged keep their alert state. Returns how many groups were kept.
    pub(crate) fn reload(self: &Arc<Self>, groups: Vec<GroupSpec>) -> usize {
        let mut running = strata_core::sync::lock(&self.running);
        if let Some(r) = running.as_mut() {
            for t in r.tasks.drain(..) {
                t.abort();
            }
        }
        let schedule = Arc::new(Schedule::new(&groups, self.default_interval));
        let kept = self.engine.replace(groups);
        *strata_core::sync::lock(&self.schedule) = schedule.clone();
        if let Some(r) = running.as_mut() {
            r.tasks = self.spawn(&schedule, r);
        }
        kept
    }

    /// Stops the group loops, waiting for each to end.
    pub(crate) async fn stop(&self) {
        let running = strata_core::sync::lock(&self.running).take();
        for t in running.map(|r| r.tasks).unwrap_or_default() {
            t.abort();
            let _ = t.await;
        }
    }

    fn spawn(
        self: &Arc<Self>,
        schedule: &Arc<Schedule>,
        r: &Running,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        (0..schedule.names.len())
            .map(|i| {
                let (me, schedule) = (self.clone(), schedule.clone());
                let (query, out, notifier, metrics, delay) = (
                    r.query.clone(),
                    r.out.clone(),
                    r.notifier.clone(),
                    r.metrics.clone(),
                    r.delay,
                );
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(schedule.every[i]);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                    loop {
                        tick.tick().await;
                        let (e, q, o) = (me.clone(), query.clone(), out.clone());
                        let started = Instant::now();
                        let due = tokio::task::spawn_blocking(move || {
                            let t = sources::now_ms() - delay;
                            let due = e.engine.eval_group(i, t, &*q, &*o);
                            let firing = e.engine.alerts();
                            let mut f = strata_core::sync::lock(&e.findings);
                            f.observe(t, &due, &*q);
                            f.relate(&firing, &e.inhibit);
                            drop(f);
                            due
                        })
                        .await
                        .unwrap_or_default();
                        metrics.rule_group(&schedule.names[i], started.elapsed());
                        if !schedule.first[i].swap(true, Ordering::Relaxed) {
                            schedule.evaluated.fetch_add(1, Ordering::Relaxed);
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
