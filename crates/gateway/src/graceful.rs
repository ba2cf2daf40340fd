//! Graceful shutdown of client connections: when shutdown starts, each connection finishes
//! the exchange in progress and closes; the accept loop waits for all of them.
//!
//! hyper-util's watcher does the same but polls its shutdown signal (a mutex inside tokio's
//! `Notify`) on every wake-up of the connection, i.e. once per forwarded token. Here the
//! signal is an atomic version check; the waker is registered again only when the task's
//! waker changed.

use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use hyper_util::server::graceful::GracefulConnection;
use tokio::sync::watch;

/// Starts shutdown and waits for the watched connections.
pub(crate) struct Shutdown {
    tx: watch::Sender<bool>,
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown {
            tx: watch::channel(false).0,
        }
    }

    /// Wraps a connection so that it shuts down gracefully with the others.
    pub fn watch<C: GracefulConnection>(&self, conn: C) -> Watched<C> {
        let rx = self.tx.subscribe();
        let mut waiting = rx.clone();
        Watched {
            conn: Box::pin(conn),
            rx,
            signal: Box::pin(async move {
                let _ = waiting.changed().await;
            }),
            armed: None,
            shutting: false,
        }
    }

    /// Tells every connection to finish, and waits until all have.
    pub async fn shutdown(self) {
        let _ = self.tx.send(true);
        self.tx.closed().await;
    }
}

/// A connection that closes after its exchange in progress once shutdown starts.
pub(crate) struct Watched<C> {
    conn: Pin<Box<C>>,
    /// Held until the connection ends: `Shutdown::shutdown` waits for it.
    rx: watch::Receiver<bool>,
    /// Wakes the connection's task when shutdown starts.
    signal: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// The waker `signal` was last polled with.
    armed: Option<Waker>,
    shutting: bool,
}

impl<C: GracefulConnection> Future for Watched<C> {
    type Output = C::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<C::Output> {
        let this = &mut *self;
        if !this.shutting {
            // A closed channel (the accept loop is gone) is a shutdown too.
            if this.rx.has_changed().unwrap_or(true) {
                this.shutting = true;
                this.conn.as_mut().graceful_shutdown();
            } else if !this.armed.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                let _ = this.signal.as_mut().poll(cx);
                this.armed = Some(cx.waker().clone());
            }
        }
        this.conn.as_mut().poll(cx)
    }
}
