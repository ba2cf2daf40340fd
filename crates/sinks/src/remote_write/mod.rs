//! Prometheus remote_write: samples are batched in memory, each batch is written to a
//! bounded on-disk queue ([`queue`]), and one sender task POSTs batches oldest first,
//! retrying 5xx, 429 and network errors with exponential backoff and dropping (counted)
//! what the receiver refuses with another 4xx.

pub mod proto;
pub mod queue;
mod send;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use strata_core::Point;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

pub use queue::{DiskQueue, Fsync, Recovery};

/// Everything a remote_write sink needs, as plain data (the binary reads files and flags).
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteWriteConfig {
    /// Receiver endpoint, e.g. `http://127.0.0.1:9090/api/v1/write`.
    pub url: reqwest::Url,
    /// Directory of the on-disk queue (one per sink).
    pub queue_dir: PathBuf,
    /// Bound of the on-disk queue; oldest batches are dropped (counted) beyond it.
    pub max_queue_bytes: u64,
    /// Segment fsync policy.
    pub fsync: Fsync,
    /// Samples per request.
    pub max_samples_per_send: usize,
    /// A partial batch is cut after this long.
    pub batch_deadline: Duration,
    /// First retry delay; doubled after each failure.
    pub min_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// `Authorization: Bearer …` for the receiver.
    pub bearer_token: Option<String>,
}

impl RemoteWriteConfig {
    /// Prometheus-like defaults: 2000 samples per send, 1 s deadline, 30 ms–5 s backoff,
    /// 256 MiB queue, fsync on every segment.
    pub fn new(url: reqwest::Url, queue_dir: PathBuf) -> RemoteWriteConfig {
        RemoteWriteConfig {
            url,
            queue_dir,
            max_queue_bytes: 256 << 20,
            fsync: Fsync::Always,
            max_samples_per_send: 2000,
            batch_deadline: Duration::from_secs(1),
            min_backoff: Duration::from_millis(30),
            max_backoff: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            bearer_token: None,
        }
    }
}

/// Why the sink could not start.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The queue directory cannot be used.
    #[error("remote_write queue: {0} (choose a writable queue directory)")]
    Queue(#[from] std::io::Error),
    /// The HTTP client could not be built.
    #[error("remote_write client for {url}: {reason}")]
    Client {
        /// Receiver URL.
        url: String,
        /// What failed.
        reason: String,
    },
}

/// Counters of one sink, for logs and Strata's own metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteWriteStats {
    /// Samples handed to [`RemoteWriter::push`].
    pub samples_in: u64,
    /// Samples the receiver accepted (2xx).
    pub samples_sent: u64,
    /// Samples dropped because the on-disk queue was full (oldest first) or unreadable.
    pub dropped_queue_full: u64,
    /// Samples the receiver refused with a 4xx other than 429 (not retried).
    pub dropped_rejected: u64,
    /// Samples that could not be written to the queue (disk error).
    pub dropped_io: u64,
    /// Failed attempts that were retried.
    pub retries: u64,
    /// Samples waiting on disk.
    pub queued_samples: u64,
    /// Bytes waiting on disk.
    pub queued_bytes: u64,
}

#[derive(Default)]
struct Counters {
    samples_in: AtomicU64,
    samples_sent: AtomicU64,
    dropped_rejected: AtomicU64,
    dropped_io: AtomicU64,
    retries: AtomicU64,
}

struct Shared {
    cfg: RemoteWriteConfig,
    queue: Mutex<DiskQueue>,
    pending: Mutex<Vec<Point>>,
    counters: Counters,
    wake: Notify,
    closing: AtomicBool,
    drain_until: Mutex<Option<Instant>>,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, DiskQueue> {
        strata_core::sync::lock(&self.queue)
    }

    fn stats(&self) -> RemoteWriteStats {
        let c = &self.counters;
        let q = self.queue();
        RemoteWriteStats {
            samples_in: c.samples_in.load(Ordering::Relaxed),
            samples_sent: c.samples_sent.load(Ordering::Relaxed),
            dropped_queue_full: q.dropped_samples(),
            dropped_rejected: c.dropped_rejected.load(Ordering::Relaxed),
            dropped_io: c.dropped_io.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            queued_samples: q.samples(),
            queued_bytes: q.bytes(),
        }
    }

    /// Writes the in-memory batch to the queue and wakes the sender.
    fn cut(&self) {
        let batch = std::mem::take(&mut *strata_core::sync::lock(&self.pending));
        for chunk in batch.chunks(self.cfg.max_samples_per_send.max(1)) {
            let body = proto::encode_body(chunk);
            let samples = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
            if let Err(e) = self.queue().push(samples, &body) {
                tracing::error!("remote_write to {}: batch lost: {e}", self.cfg.url);
                self.counters
                    .dropped_io
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
        }
        self.wake.notify_one();
    }
}

/// A running remote_write sink. Dropping it without [`RemoteWriter::shutdown`] leaves
/// queued batches on disk for the next start.
pub struct RemoteWriter {
    shared: Arc<Shared>,
    /// Taken by the first [`RemoteWriter::shutdown`].
    tasks: Mutex<Option<(JoinHandle<()>, JoinHandle<()>)>>,
}

impl RemoteWriter {
    /// Opens the queue (resuming batches left by a previous run) and starts the sender.
    /// Must be called inside a Tokio runtime.
    pub fn start(cfg: RemoteWriteConfig) -> Result<(RemoteWriter, Recovery), SinkError> {
        // Err only means a provider is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .build()
            .map_err(|e| SinkError::Client {
                url: cfg.url.to_string(),
                reason: e.to_string(),
            })?;
        let (queue, recovery) = DiskQueue::open(&cfg.queue_dir, cfg.max_queue_bytes, cfg.fsync)?;
        let shared = Arc::new(Shared {
            cfg,
            queue: Mutex::new(queue),
            pending: Mutex::new(Vec::new()),
            counters: Counters::default(),
            wake: Notify::new(),
            closing: AtomicBool::new(false),
            drain_until: Mutex::new(None),
        });
        let sender = tokio::spawn(send::run(shared.clone(), client));
        let ticker = tokio::spawn(tick(shared.clone()));
        Ok((
            RemoteWriter {
                shared,
                tasks: Mutex::new(Some((sender, ticker))),
            },
            recovery,
        ))
    }

    /// Queues `points` for sending; a full batch goes to disk at once.
    pub fn push(&self, points: &[Point]) {
        self.shared
            .counters
            .samples_in
            .fetch_add(points.len() as u64, Ordering::Relaxed);
        let full = {
            let mut pending = strata_core::sync::lock(&self.shared.pending);
            pending.extend_from_slice(points);
            pending.len() >= self.shared.cfg.max_samples_per_send
        };
        if full {
            self.shared.cut();
        }
    }

    /// The sink's counters now.
    pub fn stats(&self) -> RemoteWriteStats {
        self.shared.stats()
    }

    /// Writes the pending batch to disk, then keeps sending for at most `drain` before
    /// stopping; whatever is still queued stays on disk for the next start. Later calls only
    /// report the counters.
    pub async fn shutdown(&self, drain: Duration) -> RemoteWriteStats {
        let Some((mut sender, ticker)) = strata_core::sync::lock(&self.tasks).take() else {
            return self.shared.stats();
        };
        ticker.abort();
        self.shared.cut();
        *strata_core::sync::lock(&self.shared.drain_until) = Some(Instant::now() + drain);
        self.shared.closing.store(true, Ordering::SeqCst);
        self.shared.wake.notify_one();
        if tokio::time::timeout(drain + Duration::from_secs(1), &mut sender)
            .await
            .is_err()
        {
            tracing::warn!("remote_write sender did not stop in time");
        }
        self.shared.stats()
    }
}

/// Cuts the partial batch every `batch_deadline`.
async fn tick(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(shared.cfg.batch_deadline);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let has_pending = !strata_core::sync::lock(&shared.pending).is_empty();
        if has_pending {
            shared.cut();
        }
    }
}
