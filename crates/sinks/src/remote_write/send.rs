//! The sender task: POSTs the oldest queued batch until the receiver takes it, backing off
//! on 5xx, 429 and network errors; any other 4xx drops the batch (counted) because resending
//! the same bytes cannot succeed.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::Shared;

/// What one POST led to.
enum Outcome {
    Accepted,
    Refused(String),
    Retry(String, Option<Duration>),
}

pub(super) async fn run(shared: Arc<Shared>, client: reqwest::Client) {
    loop {
        let next = shared.queue().peek();
        let Some(batch) = next else {
            if shared.closing.load(Ordering::SeqCst) {
                return;
            }
            shared.wake.notified().await;
            continue;
        };
        let mut backoff = shared.cfg.min_backoff;
        loop {
            match post(&shared, &client, batch.body.clone()).await {
                Outcome::Accepted => {
                    shared
                        .counters
                        .samples_sent
                        .fetch_add(u64::from(batch.samples), Ordering::Relaxed);
                    break;
                }
                Outcome::Refused(why) => {
                    tracing::warn!(
                        "remote_write to {} refused a batch of {} samples, dropped: {why}",
                        shared.cfg.url,
                        batch.samples
                    );
                    shared
                        .counters
                        .dropped_rejected
                        .fetch_add(u64::from(batch.samples), Ordering::Relaxed);
                    break;
                }
                Outcome::Retry(why, retry_after) => {
                    shared.counters.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!("remote_write to {} failed, retrying: {why}", shared.cfg.url);
                    let delay = retry_after.unwrap_or(backoff).min(shared.cfg.max_backoff);
                    if past_drain_deadline(&shared, delay) {
                        tracing::warn!(
                            "remote_write to {}: stopping with {} batches still queued on disk ({why})",
                            shared.cfg.url,
                            shared.queue().len()
                        );
                        return;
                    }
                    tokio::time::sleep(delay).await;
                    backoff = (backoff * 2).min(shared.cfg.max_backoff);
                }
            }
        }
        shared.queue().ack(batch.seq);
    }
}

/// During shutdown, whether sleeping `delay` would overrun the drain deadline.
fn past_drain_deadline(shared: &Shared, delay: Duration) -> bool {
    shared.closing.load(Ordering::SeqCst)
        && strata_core::sync::lock(&shared.drain_until)
            .is_some_and(|until| Instant::now() + delay > until)
}

async fn post(shared: &Shared, client: &reqwest::Client, body: Vec<u8>) -> Outcome {
    let mut req = client
        .post(shared.cfg.url.clone())
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("User-Agent", concat!("strata/", env!("CARGO_PKG_VERSION")))
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body);
    if let Some(token) = &shared.cfg.bearer_token {
        req = req.bearer_auth(token);
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => return Outcome::Retry(format!("{e:#}"), None),
    };
    let status = resp.status();
    if status.is_success() {
        return Outcome::Accepted;
    }
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let text = resp.text().await.unwrap_or_default();
    let why = format!("HTTP {status}: {}", text.trim());
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        Outcome::Retry(why, retry_after)
    } else {
        Outcome::Refused(why)
    }
}
