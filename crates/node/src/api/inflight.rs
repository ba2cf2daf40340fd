//! Queries in flight, bounded and cancellable: at most `max_concurrency` run at once (the
//! rest wait in line, up to their own timeout, then get 503), each carries a
//! [`Cancel`] token that fires when its client goes away (the handler future is dropped) and
//! when the node shuts down ([`Inflight::cancel_all`]), so no query outlives its asker.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tsdb::promql::Cancel;

use super::ApiError;

/// The queries running now and the slots they take.
pub struct Inflight {
    slots: Arc<Semaphore>,
    max: usize,
    next: AtomicU64,
    running: Mutex<HashMap<u64, Cancel>>,
}

/// One admitted query: its token, its slot. Dropping it (the query ended, or its client
/// left and the handler was dropped) cancels the token and frees the slot.
pub(crate) struct Ticket {
    id: u64,
    cancel: Cancel,
    owner: Arc<Inflight>,
    _slot: OwnedSemaphorePermit,
}

impl Inflight {
    /// Room for `max_concurrency` queries at once (at least one).
    pub fn new(max_concurrency: usize) -> Arc<Inflight> {
        let max = max_concurrency.max(1);
        Arc::new(Inflight {
            slots: Arc::new(Semaphore::new(max)),
            max,
            next: AtomicU64::new(0),
            running: Mutex::new(HashMap::new()),
        })
    }

    /// Waits for a slot for at most `wait`; 503 naming the limit when none frees up.
    pub(crate) async fn admit(self: &Arc<Self>, wait: Duration) -> Result<Ticket, ApiError> {
        let slot = match tokio::time::timeout(wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(slot)) => slot,
            _ => {
                return Err(ApiError {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    kind: "timeout",
                    message: format!(
                        "{} queries were already running for {:.1}s: retry later, or raise --query-max-concurrency / [api] query_max_concurrency",
                        self.max,
                        wait.as_secs_f64()
                    ),
                });
            }
        };
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let cancel = Cancel::new();
        strata_core::sync::lock(&self.running).insert(id, cancel.clone());
        Ok(Ticket {
            id,
            cancel,
            owner: self.clone(),
            _slot: slot,
        })
    }

    /// Cancels every running query (shutdown); returns how many there were.
    pub fn cancel_all(&self) -> usize {
        let running = strata_core::sync::lock(&self.running);
        for c in running.values() {
            c.cancel();
        }
        running.len()
    }
}

impl Ticket {
    /// The token to hand to the engine.
    pub(crate) fn cancel(&self) -> Cancel {
        self.cancel.clone()
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.cancel.cancel();
        strata_core::sync::lock(&self.owner.running).remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slots_bound_queries_and_dropped_tickets_cancel() {
        let q = Inflight::new(1);
        let a = q
            .admit(Duration::from_millis(10))
            .await
            .ok()
            .expect("a slot");
        let token = a.cancel();
        let e = q
            .admit(Duration::from_millis(20))
            .await
            .err()
            .expect("full");
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(e.message.contains("query_max_concurrency"), "{}", e.message);
        assert_eq!(strata_core::sync::lock(&q.running).len(), 1);
        drop(a);
        assert!(
            token.is_canceled(),
            "a handler dropped (client gone) cancels its query"
        );
        assert_eq!(strata_core::sync::lock(&q.running).len(), 0);
        let b = q
            .admit(Duration::from_millis(10))
            .await
            .ok()
            .expect("freed");
        let t = b.cancel();
        assert_eq!(q.cancel_all(), 1);
        assert!(t.is_canceled());
    }
}
