//! Drives one load shape against a client until its bounds are reached or a stop is
//! asked for (Ctrl-C): a closed loop of N workers for a concurrency (their first requests
//! spread over a ramp, [`Driver::step_ramped`], so identical streams do not run in lockstep), an open loop of
//! scheduled arrivals for a rate (optionally gated to at most M in flight, an arrival
//! waiting for a slot as in vLLM's benchmark). Stopping issues nothing more and cancels what is in
//! flight; those requests are counted as cancelled, never as failures.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;

use crate::client::Client;
use crate::measure::Outcome;
use crate::shape::{Arrivals, Shape};
use crate::workload::Workload;

/// When a step ends: after this many requests and/or this long (whichever comes first;
/// requests in flight at the deadline are waited for).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Limits {
    /// Requests to issue.
    pub requests: Option<u64>,
    /// How long to keep issuing.
    pub duration: Option<Duration>,
}

/// What one step produced.
#[derive(Debug, Clone)]
pub struct StepResult {
    /// The shape it ran.
    pub shape: Shape,
    /// Every finished request, successful or failed, in completion order.
    pub outcomes: Vec<Outcome>,
    /// From the first request sent to the last one finished.
    pub wall: Duration,
    /// Requests cut off by a stop.
    pub cancelled: u64,
    /// Whether a stop ended the step early.
    pub interrupted: bool,
}

/// Everything a step needs besides its shape.
#[derive(Debug, Clone)]
pub struct Driver {
    /// The client requests go through.
    pub client: Arc<Client>,
    /// What requests ask for.
    pub workload: Arc<Workload>,
    /// Seed of the arrival process.
    pub seed: u64,
    /// Prefix of every `x-request-id` (unique per run): ids are `PREFIX-INDEX`.
    pub id_prefix: Arc<str>,
    /// Becomes true on Ctrl-C.
    pub stop: watch::Receiver<bool>,
}

/// When worker `k` of `n` starts, after the step's start, for a ramp of `ramp`.
pub fn start_offset(k: u32, n: u32, ramp: Duration) -> Duration {
    if n == 0 {
        return Duration::ZERO;
    }
    ramp.mul_f64(f64::from(k) / f64::from(n))
}

struct Shared {
    driver: Driver,
    next: AtomicU64,
    cancelled: AtomicU64,
    limits: Limits,
    deadline: Option<Instant>,
    start: Instant,
}

impl Shared {
    fn stopped(&self) -> bool {
        *self.driver.stop.borrow()
    }

    fn take_index(&self) -> Option<u64> {
        if self.stopped() || self.deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        match self.limits.requests {
            Some(n) if i >= n => None,
            _ => Some(i),
        }
    }

    /// Issues request `i`, after taking a slot of `gate` when there is one.
    async fn one(&self, i: u64, tx: &mpsc::UnboundedSender<Outcome>, gate: Option<&Semaphore>) {
        let d = &self.driver;
        let mut stop = d.stop.clone();
        let send = async {
            // The gate is never closed, so acquiring fails only if it were.
            let _slot = match gate {
                Some(g) => g.acquire().await.ok(),
                None => None,
            };
            let id = format!("{}-{i}", d.id_prefix);
            let prompt = d.workload.prompt(i);
            let sent_at = self.start.elapsed();
            let result = d.client.send(&prompt, &id).await;
            Outcome {
                request_id: id,
                sent_at,
                result,
            }
        };
        tokio::select! {
            outcome = send => {
                let _ = tx.send(outcome);
            }
            _ = stop.wait_for(|s| *s) => {
                self.cancelled.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl Driver {
    /// Runs `shape` within `limits`, every worker of a concurrency starting at once;
    /// `observe` sees every outcome as it finishes (for progress). Request indices start at
    /// `first_index`.
    pub async fn step(
        &self,
        shape: Shape,
        limits: Limits,
        first_index: u64,
        observe: &mut dyn FnMut(&Outcome),
    ) -> StepResult {
        self.step_ramped(shape, limits, Duration::ZERO, first_index, observe)
            .await
    }

    /// [`Driver::step`], with the workers of a concurrency starting over `ramp`: worker `k`
    /// of `n` sends its first request `ramp × k / n` after the step starts
    /// ([`start_offset`]). Streams started together with the same lengths would otherwise
    /// emit their tokens in lockstep for the whole run. Rate shapes ignore it (their
    /// arrivals are already spread).
    pub async fn step_ramped(
        &self,
        shape: Shape,
        limits: Limits,
        ramp: Duration,
        first_index: u64,
        observe: &mut dyn FnMut(&Outcome),
    ) -> StepResult {
        let start = Instant::now();
        let limits = Limits {
            requests: limits.requests.map(|n| n + first_index),
            ..limits
        };
        let shared = Arc::new(Shared {
            driver: self.clone(),
            next: AtomicU64::new(first_index),
            cancelled: AtomicU64::new(0),
            limits,
            deadline: limits.duration.map(|d| start + d),
            start,
        });
        let (tx, mut rx) = mpsc::unbounded_channel();
        match shape {
            Shape::Concurrency { n } => {
                for k in 0..n {
                    let (s, tx) = (shared.clone(), tx.clone());
                    let at = start + start_offset(k, n, ramp);
                    tokio::spawn(async move {
                        let mut stop = s.driver.stop.clone();
                        tokio::select! {
                            _ = tokio::time::sleep_until(at) => {}
                            _ = stop.wait_for(|s| *s) => return,
                        }
                        while let Some(i) = s.take_index() {
                            s.one(i, &tx, None).await;
                        }
                    });
                }
            }
            Shape::Rate {
                rate,
                burstiness,
                max_concurrency,
            } => {
                let (s, tx) = (shared.clone(), tx.clone());
                let gate = max_concurrency.map(|m| Arc::new(Semaphore::new(m as usize)));
                let mut arrivals = Arrivals::new(rate, burstiness, self.seed ^ first_index);
                tokio::spawn(async move {
                    let mut at = start;
                    let mut stop = s.driver.stop.clone();
                    loop {
                        tokio::select! {
                            _ = tokio::time::sleep_until(at) => {}
                            _ = stop.wait_for(|s| *s) => return,
                        }
                        let Some(i) = s.take_index() else { return };
                        let (s2, tx, gate) = (s.clone(), tx.clone(), gate.clone());
                        tokio::spawn(async move { s2.one(i, &tx, gate.as_deref()).await });
                        at += arrivals.next_gap();
                    }
                });
            }
        }
        drop(tx);
        let mut outcomes = Vec::new();
        while let Some(o) = rx.recv().await {
            observe(&o);
            outcomes.push(o);
        }
        StepResult {
            shape,
            outcomes,
            wall: start.elapsed(),
            cancelled: shared.cancelled.load(Ordering::Relaxed),
            interrupted: shared.stopped(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_offsets_spread_evenly_over_the_ramp() {
        let ramp = Duration::from_millis(100);
        let at: Vec<Duration> = (0..4).map(|k| start_offset(k, 4, ramp)).collect();
        assert_eq!(at, [0, 25, 50, 75].map(Duration::from_millis).to_vec());
        assert_eq!(start_offset(3, 4, Duration::ZERO), Duration::ZERO);
        assert_eq!(start_offset(0, 0, ramp), Duration::ZERO);
    }
}
