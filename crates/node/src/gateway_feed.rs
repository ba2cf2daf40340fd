//! The gateway inside the pipeline: started with it, its metrics fed into the store through
//! the one ingest path every few seconds, drained at shutdown.

use std::sync::Arc;
use std::time::Duration;

use gateway::GatewayConfig;

use crate::ingest::{Batch, Ingest};

/// A gateway running inside `strata up`, its metrics copied into the store.
pub struct Embedded {
    running: gateway::Running,
    feed: tokio::task::JoinHandle<()>,
}

/// How often the gateway's metrics are copied into the store.
const FEED_EVERY: Duration = Duration::from_secs(5);

impl Embedded {
    /// Starts the gateway and the task that copies its metrics into `ingest` every 5 s.
    pub async fn start(cfg: GatewayConfig, ingest: Arc<Ingest>) -> Result<Embedded, String> {
        let running = gateway::start(cfg).await?;
        eprintln!("strata up: gateway on http://{}", running.addr);
        let metrics = running.metrics.clone();
        let feed = tokio::spawn(async move {
            let mut tick = tokio::time::interval(FEED_EVERY);
            loop {
                tick.tick().await;
                ingest.write(Batch::families(
                    "gateway",
                    &metrics.families(),
                    sources::now_ms(),
                ));
            }
        });
        Ok(Embedded { running, feed })
    }

    /// The gateway's recent and slowest requests (served at `/api/v1/requests`).
    pub fn recent(&self) -> Arc<gateway::recent::Recent> {
        self.running.recent.clone()
    }

    /// Where clients connect.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.running.addr
    }

    /// Stops the feed, then the gateway: open streams get up to `drain`.
    pub async fn stop(self, drain: Duration) {
        self.feed.abort();
        self.running.shutdown(drain).await;
    }
}
