//! What one query may spend: its deadline, its cancellation token and the samples it holds
//! in memory at once. The evaluator checks the budget inside its loops (per series, per
//! step), so a query stops within moments of its timeout or cancellation, and refuses to
//! grow past `max_samples` instead of exhausting memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{EngineConfig, QueryError};

/// A token the caller keeps to stop a running query (client went away, shutdown); clones
/// share the same flag. The query returns [`super::ErrorKind::Canceled`] at its next check.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A token not yet canceled.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Asks every query holding this token (or a clone) to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`Cancel::cancel`] was called.
    pub fn is_canceled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Per-call settings of [`super::Engine::instant_with`] and [`super::Engine::range_with`].
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    /// Time limit of this query (e.g. the HTTP `timeout` parameter); the engine's
    /// [`EngineConfig::timeout`] still applies when it is shorter.
    pub timeout: Option<Duration>,
    /// Stops the query when canceled.
    pub cancel: Option<Cancel>,
}

/// The limits of one running query and what it has used of them.
pub(crate) struct Budget {
    deadline: Instant,
    timeout: Duration,
    cancel: Option<Cancel>,
    max_samples: usize,
    /// Samples held until the query ends (loaded data, caches, the result being built).
    kept: usize,
    /// Samples held by the step being evaluated (subquery and range-selector points).
    transient: usize,
}

impl Budget {
    pub(crate) fn new(cfg: &EngineConfig, opts: &QueryOptions) -> Budget {
        let timeout = opts.timeout.map_or(cfg.timeout, |t| t.min(cfg.timeout));
        Budget {
            deadline: Instant::now()
                .checked_add(timeout)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365)),
            timeout,
            cancel: opts.cancel.clone(),
            max_samples: cfg.max_samples,
            kept: 0,
            transient: 0,
        }
    }

    /// Errors once the query is canceled or past its deadline.
    pub(crate) fn check(&self) -> Result<(), QueryError> {
        if self.cancel.as_ref().is_some_and(Cancel::is_canceled) {
            return Err(QueryError::canceled(
                "query canceled by the caller (client went away or shutdown)",
            ));
        }
        if Instant::now() > self.deadline {
            return Err(QueryError::timeout(format!(
                "query timed out after {:?} (EngineConfig::timeout or the timeout parameter): narrow the selectors or the time range, or raise the timeout",
                self.timeout
            )));
        }
        Ok(())
    }

    fn over(&self) -> Result<(), QueryError> {
        if self.kept.saturating_add(self.transient) > self.max_samples {
            return Err(QueryError::too_many_samples(format!(
                "query processing would load too many samples into memory in query execution (limit max_samples = {}): narrow the selectors, shorten ranges and subqueries, use a coarser subquery step, or raise max_samples",
                self.max_samples
            )));
        }
        Ok(())
    }

    /// Counts `n` samples held until the query ends.
    pub(crate) fn keep(&mut self, n: usize) -> Result<(), QueryError> {
        self.kept = self.kept.saturating_add(n);
        self.over()
    }

    /// Forgets `n` samples counted by [`Budget::keep`] that were dropped.
    pub(crate) fn unkeep(&mut self, n: usize) {
        self.kept = self.kept.saturating_sub(n);
    }

    /// Counts `n` samples held by the current step.
    pub(crate) fn hold(&mut self, n: usize) -> Result<(), QueryError> {
        self.transient = self.transient.saturating_add(n);
        self.over()
    }

    /// The transient count, to return to with [`Budget::release_to`] once what was held
    /// since has been reduced or dropped.
    pub(crate) fn mark(&self) -> usize {
        self.transient
    }

    /// Forgets the transient samples counted since `mark`.
    pub(crate) fn release_to(&mut self, mark: usize) {
        self.transient = self.transient.min(mark);
    }
}
