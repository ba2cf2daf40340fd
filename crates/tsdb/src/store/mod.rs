//! The store: series keyed by label set, compressed chunks, retention by time and bytes,
//! out-of-order rejection, a cardinality guard, snapshots and an optional write-ahead log.
//!
//! Locking, so that a long query never holds up an append:
//! - series live in [`shard::SHARDS`] shards by identity hash, each behind its own
//!   `RwLock`; the postings index and the metadata have their own locks;
//! - appends are serialised by one `Mutex` (`Ingest`, which also holds the counters and the
//!   series limits) and take a shard's write lock per sample;
//! - a query takes the postings read lock to narrow candidates, then each shard's read lock in
//!   turn just long enough to copy chunk references (closed chunks are immutable `Arc`s, the
//!   small head is copied), and decodes with no lock held.
//!
//! Lock order: `Ingest` → postings → one shard; `Ingest` or metadata → write-ahead log.
//! Every drop is counted in [`StoreStats`].

mod durable;
pub(crate) mod index;
mod record;
mod retention;
mod series;
mod shard;
mod snapshot;
mod wal;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use promql_parser::label::Matcher;

use crate::labels::{Labels, METRIC_NAME};
use crate::spread::Spread;
pub use durable::{OpenError, OpenReport, WalOptions, WalStats};
use index::{Postings, matches, series_hash};
use series::MemSeries;
pub(crate) use series::SeriesView;
use shard::{SHARDS, Shard, shard_of, shard_of_id};
use strata_core::sync::{lock, read, write};

pub use strata_core::stale::{STALE_NAN_BITS, is_stale};

/// Labels that would explode cardinality and are always refused (they belong to traces/logs).
pub use strata_core::labels::FORBIDDEN as ALWAYS_FORBIDDEN;

/// Store settings; plain data so the binary can fill it from its config file.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Samples older than the newest sample minus this are dropped (whole chunks).
    pub retention: Duration,
    /// Upper bound on encoded chunk bytes; the oldest closed chunks are dropped first.
    pub max_bytes: usize,
    /// Total series limit; new series beyond it are refused.
    pub max_series: usize,
    /// Series limit per metric name.
    pub max_series_per_metric: usize,
    /// Extra label names to refuse (the [`ALWAYS_FORBIDDEN`] ones apply regardless).
    pub forbidden_labels: Vec<String>,
    /// Where [`Store::snapshot`] writes and [`Store::open`] reads; `None` keeps memory only.
    /// [`Store::open_durable`] sets it to `snapshot` inside its data directory.
    pub snapshot_path: Option<PathBuf>,
    /// Capacity of the exemplar buffer ([`Store::exemplars`]); 0 turns exemplar storage off.
    pub max_exemplars: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            retention: Duration::from_secs(6 * 3600),
            max_bytes: 512 << 20,
            max_series: 1_000_000,
            max_series_per_metric: 100_000,
            forbidden_labels: Vec::new(),
            snapshot_path: None,
            max_exemplars: crate::exemplars::DEFAULT_EXEMPLARS_LIMIT,
        }
    }
}

/// One incoming sample; `labels` excludes the metric name (a `__name__` entry is ignored)
/// and may come in any order.
#[derive(Debug, Clone, Copy)]
pub struct SampleRef<'a> {
    /// Metric name.
    pub name: &'a str,
    /// Labels other than `__name__`.
    pub labels: &'a [(String, String)],
    /// Timestamp in milliseconds since the Unix epoch.
    pub t_ms: i64,
    /// Value; a staleness marker is stored as such and ends the series' lookback.
    pub value: f64,
}

/// Which series each sample of a source's last [`Store::append_repeated`] went to, in
/// order: a scrape target sends the same series every time, so the next append can skip
/// finding them. One per source, kept by the caller.
#[derive(Debug, Clone, Default)]
pub struct SeriesRefs {
    /// The series id of each sample ([`NO_SERIES`] where it was refused).
    ids: Vec<u32>,
    /// The store's removal count when `ids` were valid; `None` before the first append.
    removed: Option<u64>,
}

/// A refused sample in [`SeriesRefs`]: found again (and refused or admitted) each time.
const NO_SERIES: u32 = u32::MAX;

/// What happened to one [`Store::append`] call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppendReport {
    /// Samples stored.
    pub appended: usize,
    /// Samples refused because their timestamp was not after the series' newest one.
    pub out_of_order: usize,
    /// Series refused by the cardinality guard or a series limit (one entry per metric and reason).
    pub refused: Vec<RefusedSeries>,
}

/// A series the store refused, with a reason that names the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedSeries {
    /// Metric name.
    pub metric: String,
    /// Where the sample came from (scrape target, remote-write peer), as given to `append`.
    pub source: String,
    /// Human-readable reason, e.g. "label request_id is forbidden …".
    pub reason: String,
}

/// Type, help and unit of a metric family, served by `/api/v1/metadata`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Metadata {
    /// `counter`, `gauge`, `histogram`, `summary` or `unknown`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Help text.
    pub help: String,
    /// Unit, often empty.
    pub unit: String,
}

/// Counters of everything the store refused or dropped, since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounts {
    /// Samples refused for being out of order (or duplicates).
    pub out_of_order: u64,
    /// Samples refused because their series carried a forbidden label.
    pub forbidden_label: u64,
    /// Samples refused because the total series limit was reached.
    pub series_limit: u64,
    /// Samples refused because their metric's series limit was reached.
    pub metric_series_limit: u64,
    /// Chunks dropped by time retention.
    pub retention_time_chunks: u64,
    /// Chunks dropped because the store exceeded `max_bytes`.
    pub retention_bytes_chunks: u64,
}

/// A snapshot of the store's size and drop counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Series held.
    pub series: usize,
    /// Samples held.
    pub samples: u64,
    /// Encoded chunk bytes held.
    pub bytes: usize,
    /// Samples appended since start.
    pub appended_total: u64,
    /// Everything refused or dropped.
    pub drops: DropCounts,
    /// Write-ahead log health; all zero for a store without one.
    pub wal: WalStats,
}

/// The embedded time-series store. `Send + Sync`; share it as `Arc<Store>`.
///
/// ```
/// use tsdb::{SampleRef, Store, StoreConfig};
///
/// let (store, warning) = Store::open(StoreConfig::default());
/// assert!(warning.is_none());
/// let labels = vec![("gpu".to_string(), "0".to_string())];
/// let report = store.append(
///     "dcgm",
///     [SampleRef { name: "DCGM_FI_DEV_GPU_TEMP", labels: &labels, t_ms: 1_000, value: 61.0 }],
/// );
/// assert_eq!(report.appended, 1);
/// assert_eq!(store.stats().series, 1);
/// ```
pub struct Store {
    cfg: StoreConfig,
    shards: Box<[RwLock<Shard>]>,
    postings: RwLock<Postings>,
    metadata: RwLock<BTreeMap<String, Metadata>>,
    ingest: Mutex<Ingest>,
    /// Serialises snapshots: a periodic one and the shutdown one share the temp file.
    snapshot_lock: Mutex<()>,
    /// The write-ahead log and data-directory lock of a store opened with `open_durable`.
    durable: Option<durable::Durable>,
    /// Scraped and gateway exemplars (memory only).
    exemplars: crate::exemplars::Exemplars,
}

/// State only appends (and retention, replay) change: held for a whole append.
pub(crate) struct Ingest {
    per_metric: HashMap<String, usize>,
    live: usize,
    max_t: i64,
    bytes: usize,
    samples: u64,
    appended_total: u64,
    drops: DropCounts,
    retention_checked_at: i64,
    /// Series removed so far (retention, replaced ids): [`SeriesRefs`] taken at another
    /// count may name freed or reused ids.
    removed: u64,
}

/// Data-time interval between two time-retention passes.
const RETENTION_EVERY_MS: i64 = 60_000;

impl Store {
    /// Opens a store, loading `cfg.snapshot_path` when it exists. Records of a snapshot that
    /// fail their checksum are dropped and the rest kept; a damaged file is renamed aside
    /// (never overwritten) and the returned warning says what was lost and where the file is.
    pub fn open(cfg: StoreConfig) -> (Store, Option<String>) {
        let store = Store::empty(cfg, None);
        let warnings = match store.cfg.snapshot_path.clone() {
            Some(p) => store.restore_snapshot(&p).warnings,
            None => Vec::new(),
        };
        store.after_load();
        (store, (!warnings.is_empty()).then(|| warnings.join("; ")))
    }

    fn empty(cfg: StoreConfig, durable: Option<durable::Durable>) -> Store {
        // The per-request ids need no entry here: `admit` refuses them in any spelling.
        Store {
            exemplars: crate::exemplars::Exemplars::new(cfg.max_exemplars),
            cfg,
            shards: (0..SHARDS).map(|i| RwLock::new(Shard::new(i))).collect(),
            postings: RwLock::default(),
            metadata: RwLock::default(),
            ingest: Mutex::new(Ingest {
                per_metric: HashMap::new(),
                live: 0,
                max_t: i64::MIN,
                bytes: 0,
                samples: 0,
                appended_total: 0,
                drops: DropCounts::default(),
                retention_checked_at: i64::MIN,
                removed: 0,
            }),
            snapshot_lock: Mutex::new(()),
            durable,
        }
    }

    /// Applies retention once after a snapshot or log was loaded (they may hold old data).
    fn after_load(&self) {
        let mut ing = lock(&self.ingest);
        self.enforce_retention(&mut ing);
    }

    /// Appends samples from `source` (a target or peer name used in refusal messages).
    /// With a write-ahead log, the stored samples (and new series) are logged before it
    /// returns; see [`WalOptions::flush_interval`] for when they reach the disk.
    pub fn append<'a>(
        &self,
        source: &str,
        samples: impl IntoIterator<Item = SampleRef<'a>>,
    ) -> AppendReport {
        self.append_inner(source, samples, None)
    }

    /// [`Store::append`] for a source that sends the same series in the same order time
    /// after time (a scrape target): `refs` remembers which series each sample went to, and
    /// when the caller vouches with `same_series` that this batch's series are exactly the
    /// previous batch's, in order, the samples go straight to those series (no hashing, no
    /// index lookup, no label comparison). The store drops the memory when it removed any
    /// series since (retention, a replaced id), so a reused id never lands in another series.
    pub fn append_repeated<'a>(
        &self,
        source: &str,
        samples: impl IntoIterator<Item = SampleRef<'a>>,
        refs: &mut SeriesRefs,
        same_series: bool,
    ) -> AppendReport {
        self.append_inner(source, samples, Some((refs, same_series)))
    }

    fn append_inner<'a>(
        &self,
        source: &str,
        samples: impl IntoIterator<Item = SampleRef<'a>>,
        mut refs: Option<(&mut SeriesRefs, bool)>,
    ) -> AppendReport {
        let mut report = AppendReport::default();
        let mut ing = lock(&self.ingest);
        let mut log = self.durable.as_ref().map(|_| wal::Batch::default());
        let reuse = refs
            .as_ref()
            .is_some_and(|(r, same)| *same && r.removed == Some(ing.removed));
        if let Some((r, _)) = refs.as_mut()
            && !reuse
        {
            r.ids.clear();
        }
        // One buffer for every sample's identity: no allocation per sample.
        let mut pairs = Vec::new();
        for (i, s) in samples.into_iter().enumerate() {
            let known = match &refs {
                Some((r, _)) if reuse => r.ids.get(i).copied().filter(|&id| id != NO_SERIES),
                _ => None,
            };
            if let Some(id) = known {
                let mut shard = write(&self.shards[shard_of_id(id)]);
                self.push_sample(&mut shard, &mut ing, &mut report, log.as_mut(), id, s);
                continue;
            }
            let found =
                self.find_or_create(source, &mut ing, &mut report, log.as_mut(), s, &mut pairs);
            if let Some((r, _)) = refs.as_mut() {
                let id = found.as_ref().map_or(NO_SERIES, |(id, _)| *id);
                match r.ids.get_mut(i) {
                    Some(slot) => *slot = id,
                    None => r.ids.push(id),
                }
            }
            if let Some((id, mut shard)) = found {
                self.push_sample(&mut shard, &mut ing, &mut report, log.as_mut(), id, s);
            }
        }
        if let Some((r, _)) = refs.as_mut() {
            r.removed = Some(ing.removed);
        }
        ing.appended_total += report.appended as u64;
        ing.drops.out_of_order += report.out_of_order as u64;
        if let (Some(d), Some(log)) = (&self.durable, log) {
            d.write(&log.encode());
        }
        if ing.bytes > self.cfg.max_bytes
            || ing.max_t.saturating_sub(ing.retention_checked_at) >= RETENTION_EVERY_MS
        {
            self.enforce_retention(&mut ing);
        }
        report
    }

    /// Appends one sample to series `id` (its shard locked), counting it.
    fn push_sample(
        &self,
        shard: &mut Shard,
        ing: &mut Ingest,
        report: &mut AppendReport,
        log: Option<&mut wal::Batch>,
        id: u32,
        s: SampleRef<'_>,
    ) {
        if push(shard, ing, id, s.t_ms, s.value) {
            report.appended += 1;
            if let Some(log) = log {
                log.sample(id, s.t_ms, s.value);
            }
        } else {
            report.out_of_order += 1;
        }
    }

    /// The series of `s` with its shard locked, created when new; `None` when refused
    /// (counted and named in `report`).
    fn find_or_create<'a, 's>(
        &'s self,
        source: &str,
        ing: &mut Ingest,
        report: &mut AppendReport,
        log: Option<&mut wal::Batch>,
        s: SampleRef<'a>,
        pairs: &mut Vec<(&'a str, &'a str)>,
    ) -> Option<(u32, std::sync::RwLockWriteGuard<'s, Shard>)> {
        {
            let hash = identity(s.name, s.labels, pairs);
            let shard_index = shard_of(hash);
            let mut shard = write(&self.shards[shard_index]);
            let id = match shard.find(hash, s.name, pairs) {
                Some(id) => id,
                None => {
                    drop(shard);
                    match self.admit(ing, s) {
                        Ok(labels) => {
                            let id = self.create(ing, hash, labels.clone());
                            if let Some(log) = log {
                                log.series(id, &labels);
                            }
                            shard = write(&self.shards[shard_index]);
                            id
                        }
                        Err((reason, drop)) => {
                            match drop {
                                Refusal::Forbidden => ing.drops.forbidden_label += 1,
                                Refusal::Total => ing.drops.series_limit += 1,
                                Refusal::PerMetric => ing.drops.metric_series_limit += 1,
                            }
                            if !report
                                .refused
                                .iter()
                                .any(|r| r.metric == s.name && r.reason == reason)
                            {
                                report.refused.push(RefusedSeries {
                                    metric: s.name.to_string(),
                                    source: source.to_string(),
                                    reason,
                                });
                            }
                            return None;
                        }
                    }
                }
            };
            Some((id, shard))
        }
    }

    /// Checks the guard and limits for a new series; returns its label set.
    fn admit(&self, ing: &mut Ingest, s: SampleRef<'_>) -> Result<Labels, (String, Refusal)> {
        if let Some((l, _)) = s
            .labels
            .iter()
            // The per-request ids in any spelling (`Request_ID`, `exported_request_id`, ...),
            // plus the configured names exactly.
            .find(|(n, v)| {
                !v.is_empty()
                    && (strata_core::labels::forbidden(n).is_some()
                        || self.cfg.forbidden_labels.contains(n))
            })
        {
            return Err((
                format!(
                    "label {l} is forbidden on metrics (unbounded cardinality; it belongs in traces and logs): drop it at the source or with a relabel rule"
                ),
                Refusal::Forbidden,
            ));
        }
        if ing.live >= self.cfg.max_series {
            return Err((
                format!(
                    "the store holds its limit of {} series (max_series): raise the limit or drop labels that multiply series",
                    self.cfg.max_series
                ),
                Refusal::Total,
            ));
        }
        if ing.per_metric.get(s.name).copied().unwrap_or(0) >= self.cfg.max_series_per_metric {
            return Err((
                format!(
                    "metric {} has reached its limit of {} series (max_series_per_metric): drop the label that varies most or raise the limit",
                    s.name, self.cfg.max_series_per_metric
                ),
                Refusal::PerMetric,
            ));
        }
        let mut pairs: Vec<(String, String)> = s
            .labels
            .iter()
            .filter(|(n, _)| n != METRIC_NAME)
            .cloned()
            .collect();
        pairs.push((METRIC_NAME.to_string(), s.name.to_string()));
        Ok(Labels::new(pairs))
    }

    /// Creates a series (limits already checked) and returns its id.
    fn create(&self, ing: &mut Ingest, hash: u64, labels: Labels) -> u32 {
        let mut postings = write(&self.postings);
        let id = write(&self.shards[shard_of(hash)]).insert(hash, labels.clone());
        postings.add(id, &labels);
        *ing.per_metric.entry(labels.name().to_string()).or_default() += 1;
        ing.live += 1;
        id
    }

    /// Puts a series named by a snapshot or log at exactly `id` (no limits: it was admitted
    /// when first written). A different series in that slot is removed: its id was freed and
    /// reused before the log was written.
    fn place(&self, ing: &mut Ingest, id: u32, labels: Labels) -> Result<(), String> {
        let hash = series_hash(labels.name(), labels.iter());
        if shard_of(hash) != shard_of_id(id) {
            return Err(format!("series id {id} does not match the labels {labels}"));
        }
        let mut postings = write(&self.postings);
        let mut shard = write(&self.shards[shard_of(hash)]);
        if shard.get(id).is_some_and(|s| s.labels == labels) {
            return Ok(());
        }
        if let Some(old) = shard.place(id, hash, labels.clone())? {
            forget(ing, &mut postings, id, &old);
        }
        postings.add(id, &labels);
        *ing.per_metric.entry(labels.name().to_string()).or_default() += 1;
        ing.live += 1;
        Ok(())
    }

    /// Appends a replayed sample: `Some(false)` when it is not newer than the series' last
    /// one (already in the checkpoint), `None` when the series is unknown.
    fn replay_sample(&self, ing: &mut Ingest, id: u32, t: i64, v: f64) -> Option<bool> {
        let mut shard = write(&self.shards[shard_of_id(id)]);
        shard.get(id)?;
        Some(push(&mut shard, ing, id, t, v))
    }

    /// Writes a snapshot to `snapshot_path` (temp file, fsync, atomic rename). Without a path
    /// it does nothing. The binary calls it every few minutes and at shutdown.
    ///
    /// With a write-ahead log this is a checkpoint: the log moves to a new segment first, and
    /// once the snapshot is safely renamed into place the segments it covers are deleted. A
    /// crash between the two steps only means those samples are replayed again and dropped
    /// as duplicates.
    pub fn snapshot(&self) -> std::io::Result<()> {
        let Some(path) = &self.cfg.snapshot_path else {
            return Ok(());
        };
        let _one_at_a_time = lock(&self.snapshot_lock);
        let covered = match &self.durable {
            Some(d) => d.rotate()?,
            None => 0,
        };
        let bytes = snapshot::encode(&self.capture(), covered);
        snapshot::write_atomic(path, &bytes)?;
        if let Some(d) = &self.durable {
            d.delete_through(covered)?;
        }
        Ok(())
    }

    /// Every series (all chunks, by reference) and the metadata, one shard lock at a time.
    fn capture(&self) -> snapshot::Captured {
        let mut series = Vec::new();
        for shard in self.shards.iter() {
            let shard = read(shard);
            series.extend(shard.iter().map(|(id, s)| (id, s.view(i64::MIN, i64::MAX))));
        }
        let metadata = read(&self.metadata)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        snapshot::Captured { series, metadata }
    }

    /// Size and drop counters.
    pub fn stats(&self) -> StoreStats {
        let wal = self.durable.as_ref().map(|d| d.stats()).unwrap_or_default();
        let ing = lock(&self.ingest);
        StoreStats {
            series: ing.live,
            samples: ing.samples,
            bytes: ing.bytes,
            appended_total: ing.appended_total,
            drops: ing.drops,
            wal,
        }
    }

    /// Records type/help/unit of a metric (from a scrape's `# TYPE`/`# HELP` lines). With a
    /// write-ahead log, a change is logged.
    pub fn set_metadata(&self, metric: &str, meta: Metadata) {
        let mut all = write(&self.metadata);
        if all.get(metric) == Some(&meta) {
            return;
        }
        if let Some(d) = &self.durable {
            d.write(&wal::metadata_record(metric, &meta));
        }
        all.insert(metric.to_string(), meta);
    }

    /// All recorded metadata, sorted by metric name.
    pub fn metadata(&self) -> Vec<(String, Metadata)> {
        read(&self.metadata)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Calls `pick` under a shard read lock for every series matching all `matchers`; `pick`
    /// must be cheap (copy references, never decode).
    fn each_matching<T>(
        &self,
        matchers: &[Matcher],
        mut pick: impl FnMut(&MemSeries) -> Option<T>,
    ) -> Vec<T> {
        let candidates = read(&self.postings).candidates_for(matchers);
        let mut out = Vec::new();
        match candidates {
            Some(ids) => {
                let mut per_shard: Vec<Vec<u32>> = vec![Vec::new(); SHARDS];
                for id in ids {
                    per_shard[shard_of_id(id)].push(id);
                }
                for (i, ids) in per_shard
                    .iter()
                    .enumerate()
                    .filter(|(_, ids)| !ids.is_empty())
                {
                    let shard = read(&self.shards[i]);
                    out.extend(
                        ids.iter()
                            .filter_map(|id| shard.get(*id))
                            .filter(|s| matches(&s.labels, matchers))
                            .filter_map(&mut pick),
                    );
                }
            }
            None => {
                for shard in self.shards.iter() {
                    let shard = read(shard);
                    out.extend(
                        shard
                            .iter()
                            .map(|(_, s)| s)
                            .filter(|s| matches(&s.labels, matchers))
                            .filter_map(&mut pick),
                    );
                }
            }
        }
        out
    }

    /// Series matching all `matchers` with samples in `[mint, maxt]`, and those samples
    /// (staleness markers included), sorted by labels. This is what the evaluator reads.
    /// Chunks are decoded after every lock is released.
    pub fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Vec<(Labels, Vec<(i64, f64)>)> {
        self.select_spread(matchers, mint, maxt, true, Spread::SERIAL)
    }

    /// [`Store::select`] with the chunks decoded by up to `spread`'s threads (a large range
    /// query's read), staleness markers left out unless `stale` (range selectors never
    /// include them); a series with only markers there is kept, without points.
    pub(crate) fn select_spread(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        stale: bool,
        spread: Spread,
    ) -> Vec<(Labels, Vec<(i64, f64)>)> {
        decode_views(&self.views(matchers, mint, maxt), mint, maxt, stale, spread)
    }

    /// The chunks of each series matching `matchers` that overlap `[mint, maxt]`, sorted by
    /// labels, not decoded: a range query decodes them part by part, where it uses them.
    pub(crate) fn views(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<SeriesView> {
        let mut views = self.each_matching(matchers, |s| {
            s.overlaps(mint, maxt).then(|| s.view(mint, maxt))
        });
        views.sort_by(|a, b| a.labels.cmp(&b.labels));
        views
    }

    /// [`Store::select`] folded: each series' samples in `[mint, maxt]` handed to `fold` in
    /// time order as they are decoded, none kept (a month-long window of a counter summed up
    /// without holding its points). Series without a sample there are left out.
    pub(crate) fn fold_between<T: Default + Send>(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        fold: impl Fn(&mut T, i64, f64) + Sync,
    ) -> Vec<(Labels, T)> {
        self.read_between(matchers, mint, maxt, Spread::SERIAL, |v| {
            let mut acc = T::default();
            let mut any = false;
            for c in v.chunks() {
                for (t, x) in c.iter().filter(|(t, _)| *t >= mint && *t <= maxt) {
                    fold(&mut acc, t, x);
                    any = true;
                }
            }
            any.then_some(acc)
        })
    }

    /// What `read` makes of each series matching `matchers` whose chunks overlap
    /// `[mint, maxt]` (read after every lock is released, by up to `spread`'s threads, in
    /// contiguous runs of series), sorted by labels; series it returns `None` for are left
    /// out.
    fn read_between<T: Send>(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        spread: Spread,
        read: impl Fn(&SeriesView) -> Option<T> + Sync,
    ) -> Vec<(Labels, T)> {
        read_views(&self.views(matchers, mint, maxt), spread, read)
    }

    /// [`Store::select`] reduced to each series' newest sample in `[mint, maxt]` (a
    /// staleness marker included): all an instant selector evaluated once needs. Decodes at
    /// most one chunk per series, none when that sample is its chunk's last.
    pub fn select_latest(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Vec<(Labels, Vec<(i64, f64)>)> {
        let found = self.each_matching(matchers, |s| {
            s.latest(mint, maxt).map(|l| (s.labels.clone(), l))
        });
        let mut out: Vec<(Labels, Vec<(i64, f64)>)> = found
            .into_iter()
            .filter_map(|(labels, l)| Some((labels, vec![l.sample(mint, maxt)?])))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Label sets of the series matching `matchers` that hold samples in `[mint, maxt]`.
    pub fn series_labels(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<Labels> {
        let mut out = self.each_matching(matchers, |s| {
            s.overlaps(mint, maxt).then(|| s.labels.clone())
        });
        out.sort();
        out
    }

    /// The exemplar buffer: scrapes and the gateway add to it, `/api/v1/query_exemplars`
    /// reads it.
    pub fn exemplars(&self) -> &crate::exemplars::Exemplars {
        &self.exemplars
    }

    /// Every label name in use (for `/api/v1/labels` without matchers).
    pub fn label_names(&self) -> Vec<String> {
        let mut names: Vec<String> = read(&self.postings).names().map(str::to_string).collect();
        names.sort();
        names
    }
}

/// What `read` makes of each of `views` (sorted by labels: the result is too), by up to
/// `spread`'s threads in contiguous runs; views it returns `None` for are left out.
fn read_views<T: Send>(
    views: &[SeriesView],
    spread: Spread,
    read: impl Fn(&SeriesView) -> Option<T> + Sync,
) -> Vec<(Labels, T)> {
    // Samples to decode: what one part's share is measured in.
    let work = views.iter().flat_map(|v| v.chunks()).map(|c| c.len()).sum();
    spread.flat_map(views, work, |part| {
        part.iter()
            .filter_map(|v| Some((v.labels.clone(), read(v)?)))
            .collect()
    })
}

/// The samples of `views` (sorted by labels) in `[mint, maxt]`, decoded by up to `spread`'s
/// threads, staleness markers left out unless `stale`; views without any sample there are
/// left out, those with only markers kept without points ([`Store::select_spread`]).
pub(crate) fn decode_views(
    views: &[SeriesView],
    mint: i64,
    maxt: i64,
    stale: bool,
    spread: Spread,
) -> Vec<(Labels, Vec<(i64, f64)>)> {
    read_views(views, spread, |v| {
        let mut samples = v.samples_between(mint, maxt);
        if samples.is_empty() {
            return None;
        }
        if !stale {
            samples.retain(|p| !is_stale(p.1));
        }
        Some(samples)
    })
}

/// Which limit refused a series (for the drop counters).
enum Refusal {
    Forbidden,
    Total,
    PerMetric,
}

/// The identity hash of an incoming sample's series; fills `pairs` with its labels other
/// than the name, sorted, without empty values (the form [`Shard::find`] compares).
fn identity<'a>(
    name: &str,
    labels: &'a [(String, String)],
    pairs: &mut Vec<(&'a str, &'a str)>,
) -> u64 {
    pairs.clear();
    pairs.extend(
        labels
            .iter()
            .filter(|(n, v)| !v.is_empty() && n != METRIC_NAME)
            .map(|(n, v)| (n.as_str(), v.as_str())),
    );
    if !pairs.windows(2).all(|w| w[0].0 < w[1].0) {
        pairs.sort_by(|a, b| a.0.cmp(b.0));
    }
    series_hash(name, pairs.iter().copied())
}

/// Appends to series `id` in `shard`; false when the sample is out of order.
fn push(shard: &mut Shard, ing: &mut Ingest, id: u32, t: i64, v: f64) -> bool {
    let Some(s) = shard.get_mut(id) else {
        return false;
    };
    if s.last_t().is_some_and(|last| t <= last) {
        return false;
    }
    let grown = s.push(t, v);
    ing.bytes = (ing.bytes as isize + grown).max(0) as usize;
    ing.samples += 1;
    ing.max_t = ing.max_t.max(t);
    true
}

/// Takes a removed series out of the index and the counters.
fn forget(ing: &mut Ingest, postings: &mut Postings, id: u32, s: &MemSeries) {
    ing.removed += 1;
    if let Some(n) = ing.per_metric.get_mut(s.labels.name()) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            ing.per_metric.remove(s.labels.name());
        }
    }
    ing.live = ing.live.saturating_sub(1);
    postings.remove(id, &s.labels);
    ing.bytes = ing.bytes.saturating_sub(s.bytes());
    ing.samples = ing.samples.saturating_sub(s.len());
}

#[cfg(test)]
mod tests;
