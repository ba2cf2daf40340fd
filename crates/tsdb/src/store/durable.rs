//! A store that survives restarts and `kill -9`: a data directory holding a lock file, the
//! latest snapshot (the checkpoint) and a write-ahead log of everything appended since.
//!
//! ```text
//! DIR/LOCK          exclusive lock, holds the owner's pid
//! DIR/snapshot      checkpoint written by Store::snapshot
//! DIR/wal/00000001  log segments after the checkpoint
//! ```
//!
//! Opening loads the checkpoint, then replays the segments after it. A torn or corrupt record
//! ends the log there: the segment is truncated at the last good record, later segments are
//! deleted, and the damage is reported in [`OpenReport::warnings`] (never fatal).

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::record;
use super::wal::{self, Entry, Log};
use super::{Ingest, Store, StoreConfig};
use crate::labels::Labels;
use strata_core::sync::{lock, write};

/// How the write-ahead log is written.
#[derive(Debug, Clone)]
pub struct WalOptions {
    /// A segment is closed and the next started once it would grow past this (default
    /// 32 MiB). Checkpoints delete whole segments, so smaller segments free disk sooner.
    pub segment_bytes: u64,
    /// How often a background thread hands buffered records to the OS (and fsyncs them when
    /// [`WalOptions::fsync`] is set): `kill -9` loses at most this much of the latest data.
    /// Default 1 s. Zero writes (and fsyncs) before every `append` returns, with no thread.
    pub flush_interval: Duration,
    /// Also fsync at every flush, so a power loss loses at most `flush_interval` too
    /// (default true). Without it the OS decides when data reaches the disk.
    pub fsync: bool,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_bytes: 32 << 20,
            flush_interval: Duration::from_secs(1),
            fsync: true,
        }
    }
}

/// Write-ahead log counters, in [`StoreStats`](super::StoreStats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Bytes of records written since open.
    pub bytes_written: u64,
    /// Writes, flushes or fsyncs that failed (see [`Store::wal_last_error`]); the samples
    /// stay in memory and reach disk with the next snapshot.
    pub write_errors: u64,
}

/// What [`Store::open_durable`] found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Series loaded from the checkpoint snapshot.
    pub checkpoint_series: usize,
    /// Log segments replayed after the checkpoint.
    pub wal_segments: usize,
    /// Samples restored from the log.
    pub wal_samples: u64,
    /// Logged samples already in the checkpoint (a crash between a checkpoint and the
    /// removal of the segments it covers): dropped silently, they are not data loss.
    pub wal_duplicates: u64,
    /// Logged samples whose series is unknown (its record was lost to corruption).
    pub wal_orphans: u64,
    /// Damaged snapshot records and log truncations found.
    pub corruptions: usize,
    /// One line per problem: what was damaged, what was kept, what was set aside.
    pub warnings: Vec<String>,
}

/// Why a data directory could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// Another process holds the directory's lock.
    Locked {
        /// The data directory.
        dir: PathBuf,
        /// The pid written by the holder, when readable.
        pid: Option<u32>,
    },
    /// A file or directory could not be created, read or written.
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Locked { dir, pid } => write!(
                f,
                "data directory {} is in use by another process ({}; lock file {}): stop that process first, or give this one a different data directory",
                dir.display(),
                pid.map_or("pid unknown".to_string(), |p| format!("pid {p}")),
                dir.join(LOCK_FILE).display()
            ),
            OpenError::Io { path, source } => write!(
                f,
                "cannot use {}: {source}; check that the path exists, is writable and the disk is not full",
                path.display()
            ),
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpenError::Io { source, .. } => Some(source),
            OpenError::Locked { .. } => None,
        }
    }
}

const LOCK_FILE: &str = "LOCK";

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> OpenError + '_ {
    move |source| OpenError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The log, the flusher and the directory lock of a durable store.
pub(crate) struct Durable {
    wal_dir: PathBuf,
    log: Arc<Mutex<LogState>>,
    opts: WalOptions,
    /// Dropping the sender stops the flusher thread.
    flusher: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
    /// Held (locked) for the store's lifetime; closing it releases the lock.
    _lock: File,
}

/// The log plus its error counters, behind one mutex.
struct LogState {
    log: Log,
    write_errors: u64,
    last_error: Option<String>,
}

impl LogState {
    fn note(&mut self, r: io::Result<()>) {
        if let Err(e) = r {
            self.write_errors += 1;
            self.last_error = Some(format!("write-ahead log: {e}"));
        }
    }
}

/// Writes buffered records out, fsyncing (outside the lock) when asked to.
fn flush(log: &Mutex<LogState>, fsync: bool) -> io::Result<()> {
    let handle = lock(log).log.flush()?;
    if fsync {
        handle.sync_data()?;
    }
    Ok(())
}

impl Durable {
    /// Logs framed records; failures are counted, never returned to the appender.
    pub(crate) fn write(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut st = lock(&self.log);
        let r = st.log.append(bytes);
        st.note(r);
        if self.opts.flush_interval.is_zero() {
            let r = st.log.flush().and_then(|h| {
                if self.opts.fsync {
                    h.sync_data()
                } else {
                    Ok(())
                }
            });
            st.note(r);
        }
    }

    /// Starts a new segment (for a checkpoint); returns the last one the checkpoint covers.
    pub(crate) fn rotate(&self) -> io::Result<u32> {
        lock(&self.log).log.rotate()
    }

    /// Deletes the segments numbered `covered` and below (a checkpoint holds their data).
    pub(crate) fn delete_through(&self, covered: u32) -> io::Result<()> {
        for (seq, path) in wal::segments(&self.wal_dir)? {
            if seq <= covered {
                std::fs::remove_file(&path)?;
            }
        }
        Ok(())
    }

    pub(crate) fn stats(&self) -> WalStats {
        let st = lock(&self.log);
        WalStats {
            bytes_written: st.log.bytes_written,
            write_errors: st.write_errors,
        }
    }

    fn stop_flusher(&mut self) {
        if let Some((stop, thread)) = self.flusher.take() {
            drop(stop);
            let _ = thread.join();
        }
    }
}

impl Drop for Durable {
    fn drop(&mut self) {
        self.stop_flusher();
    }
}

impl Store {
    /// Opens (or creates) a durable store in `dir`: takes the directory's lock, loads the
    /// checkpoint snapshot, replays the write-ahead log after it and starts logging appends.
    /// `cfg.snapshot_path` is replaced by `dir/snapshot`.
    ///
    /// Damage never stops the open: what verifies is kept and [`OpenReport::warnings`] says
    /// what was lost. Errors are a directory held by another process or unusable files.
    ///
    /// ```
    /// use tsdb::{SampleRef, Store, StoreConfig, WalOptions};
    ///
    /// let dir = std::env::temp_dir().join(format!("tsdb-doc-durable-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let labels = vec![("gpu".to_string(), "0".to_string())];
    /// let sample = |t_ms| SampleRef { name: "DCGM_FI_DEV_GPU_TEMP", labels: &labels, t_ms, value: 60.0 };
    ///
    /// let (store, report) = Store::open_durable(StoreConfig::default(), &dir, WalOptions::default())?;
    /// assert!(report.warnings.is_empty());
    /// store.append("dcgm", [sample(1_000), sample(2_000)]);
    /// // A second process (or a second open here) is refused while the store is open.
    /// let second = Store::open_durable(StoreConfig::default(), &dir, WalOptions::default());
    /// assert!(second.err().is_some_and(|e| e.to_string().contains("in use by another process")));
    /// store.close()?;
    ///
    /// let (store, report) = Store::open_durable(StoreConfig::default(), &dir, WalOptions::default())?;
    /// assert_eq!(report.wal_samples, 2);
    /// assert_eq!(store.stats().samples, 2);
    /// store.snapshot()?; // checkpoint: the replayed log segments are deleted
    /// store.close()?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_durable(
        mut cfg: StoreConfig,
        dir: &Path,
        opts: WalOptions,
    ) -> Result<(Store, OpenReport), OpenError> {
        let wal_dir = dir.join("wal");
        std::fs::create_dir_all(&wal_dir).map_err(io_err(&wal_dir))?;
        let dir_lock = lock_dir(dir)?;
        let snapshot_path = dir.join("snapshot");
        cfg.snapshot_path = Some(snapshot_path.clone());
        let mut store = Store::empty(cfg, None);
        let mut report = OpenReport::default();
        let loaded = store.restore_snapshot(&snapshot_path);
        report.checkpoint_series = loaded.series;
        report.corruptions += loaded.dropped.max(usize::from(!loaded.warnings.is_empty()));
        report.warnings.extend(loaded.warnings);
        let last = {
            let mut ing = lock(&store.ingest);
            store.replay(&mut ing, &wal_dir, loaded.covered, &mut report)?
        };
        let log = Log::create(&wal_dir, last + 1, opts.segment_bytes).map_err(io_err(&wal_dir))?;
        let log = Arc::new(Mutex::new(LogState {
            log,
            write_errors: 0,
            last_error: None,
        }));
        let flusher = (!opts.flush_interval.is_zero())
            .then(|| spawn_flusher(log.clone(), &opts))
            .transpose()
            .map_err(io_err(&wal_dir))?;
        store.durable = Some(Durable {
            wal_dir,
            log,
            opts,
            flusher,
            _lock: dir_lock,
        });
        store.after_load();
        Ok((store, report))
    }

    /// Replays the segments after `covered` (deleting those up to it); returns the number of
    /// the last segment seen.
    fn replay(
        &self,
        ing: &mut Ingest,
        wal_dir: &Path,
        covered: u32,
        report: &mut OpenReport,
    ) -> Result<u32, OpenError> {
        let segments = wal::segments(wal_dir).map_err(io_err(wal_dir))?;
        let mut last = covered;
        let mut iter = segments.into_iter();
        while let Some((seq, path)) = iter.next() {
            last = last.max(seq);
            if seq <= covered {
                std::fs::remove_file(&path).map_err(io_err(&path))?;
                continue;
            }
            report.wal_segments += 1;
            let bytes = std::fs::read(&path).map_err(io_err(&path))?;
            let Some((good, why)) = self.replay_segment(ing, &bytes, report) else {
                continue;
            };
            report.corruptions += 1;
            let f = File::options()
                .write(true)
                .open(&path)
                .map_err(io_err(&path))?;
            f.set_len(good as u64).map_err(io_err(&path))?;
            f.sync_all().map_err(io_err(&path))?;
            let (mut dropped, mut dropped_bytes) = (0, bytes.len() - good);
            for (seq, later) in iter.by_ref() {
                last = last.max(seq);
                dropped += 1;
                dropped_bytes += std::fs::metadata(&later).map_or(0, |m| m.len() as usize);
                std::fs::remove_file(&later).map_err(io_err(&later))?;
            }
            report.warnings.push(format!(
                "write-ahead log segment {} is damaged at byte {good} ({why}): kept everything before it, truncated it there and deleted {dropped} later segment(s); {dropped_bytes} bytes of log lost",
                path.display()
            ));
        }
        Ok(last)
    }

    /// Applies one segment's records; on damage returns the offset of the last good record's
    /// end and the reason.
    fn replay_segment(
        &self,
        ing: &mut Ingest,
        bytes: &[u8],
        report: &mut OpenReport,
    ) -> Option<(usize, String)> {
        let mut at = 0;
        loop {
            let payload = match record::read_at(bytes, at) {
                Ok(Some((payload, next))) => {
                    let start = at;
                    at = next;
                    match wal::decode(payload) {
                        Ok(e) => e,
                        Err(why) => return Some((start, why)),
                    }
                }
                Ok(None) => return None,
                Err(why) => return Some((at, why.to_string())),
            };
            match payload {
                Entry::Series(id, pairs) => {
                    if let Err(why) = self.place(ing, id, Labels::new(pairs)) {
                        report.corruptions += 1;
                        report
                            .warnings
                            .push(format!("write-ahead log: {why}; record skipped"));
                    }
                }
                Entry::Samples(samples) => {
                    for (id, t, v) in samples {
                        match self.replay_sample(ing, id, t, v) {
                            Some(true) => report.wal_samples += 1,
                            Some(false) => report.wal_duplicates += 1,
                            None => report.wal_orphans += 1,
                        }
                    }
                }
                Entry::Metadata(name, m) => {
                    write(&self.metadata).insert(name, m);
                }
            }
        }
    }

    /// Writes buffered log records to the OS and fsyncs them. The background flusher does
    /// this every [`WalOptions::flush_interval`]; call it to make an append durable now.
    /// Without a log it does nothing.
    pub fn flush(&self) -> io::Result<()> {
        match &self.durable {
            Some(d) => flush(&d.log, true),
            None => Ok(()),
        }
    }

    /// The last write-ahead-log error (counted in [`WalStats::write_errors`]), if any.
    pub fn wal_last_error(&self) -> Option<String> {
        self.durable
            .as_ref()
            .and_then(|d| lock(&d.log).last_error.clone())
    }

    /// Stops the flusher, writes and fsyncs the log and releases the data directory. Call
    /// [`Store::snapshot`] first for a fast next start (replay then has nothing to do).
    /// A store dropped without `close` behaves like a crash: the next open replays the log.
    /// Behind an `Arc` that cannot be unwrapped at shutdown, [`Store::flush`] is enough: the
    /// directory lock goes with the process.
    pub fn close(mut self) -> io::Result<()> {
        match self.durable.take() {
            Some(mut d) => {
                d.stop_flusher();
                flush(&d.log, true)
            }
            None => Ok(()),
        }
    }
}

fn spawn_flusher(
    log: Arc<Mutex<LogState>>,
    opts: &WalOptions,
) -> io::Result<(mpsc::Sender<()>, JoinHandle<()>)> {
    let (stop, stopped) = mpsc::channel::<()>();
    let (every, fsync) = (opts.flush_interval, opts.fsync);
    let thread = std::thread::Builder::new()
        .name("tsdb-wal-flush".into())
        .spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                let r = flush(&log, fsync);
                lock(&log).note(r);
            }
        })?;
    Ok((stop, thread))
}

/// Takes the exclusive lock on `dir` and writes this process' pid into the lock file.
fn lock_dir(dir: &Path) -> Result<File, OpenError> {
    let path = dir.join(LOCK_FILE);
    let mut f = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_err(&path))?;
    match f.try_lock() {
        Ok(()) => {
            f.set_len(0).map_err(io_err(&path))?;
            f.write_all(format!("{}\n", std::process::id()).as_bytes())
                .map_err(io_err(&path))?;
            Ok(f)
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = f.read_to_string(&mut holder);
            Err(OpenError::Locked {
                dir: dir.to_path_buf(),
                pid: holder.trim().parse().ok(),
            })
        }
        Err(std::fs::TryLockError::Error(e)) => Err(io_err(&path)(e)),
    }
}
