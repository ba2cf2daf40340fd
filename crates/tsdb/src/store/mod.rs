//! The store: series keyed by label set, compressed chunks, retention by time and bytes,
//! out-of-order rejection, a cardinality guard and snapshots.
//!
//! One `RwLock` guards the whole index: appends (one scrape or remote-write batch at a time)
//! take it for writing, queries for reading. Every drop is counted in [`StoreStats`].

mod index;
mod retention;
mod series;
mod snapshot;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use promql_parser::label::Matcher;

use crate::labels::{Labels, METRIC_NAME};
use index::{Postings, series_hash};
use series::MemSeries;

/// Bit pattern Prometheus uses for staleness markers (a NaN that is not the usual NaN).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// True for a staleness marker (as opposed to an ordinary NaN sample).
pub fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// Labels that would explode cardinality and are always refused (they belong to traces/logs).
pub const ALWAYS_FORBIDDEN: [&str; 3] = ["request_id", "user_id", "session_id"];

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
    pub snapshot_path: Option<PathBuf>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            retention: Duration::from_secs(6 * 3600),
            max_bytes: 512 << 20,
            max_series: 1_000_000,
            max_series_per_metric: 100_000,
            forbidden_labels: ALWAYS_FORBIDDEN.iter().map(|s| s.to_string()).collect(),
            snapshot_path: None,
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
}

/// The embedded time-series store. `Send + Sync`; share it as `Arc<Store>`.
pub struct Store {
    cfg: StoreConfig,
    inner: RwLock<Inner>,
    /// Serialises snapshots: a periodic one and the shutdown one share the temp file.
    snapshot_lock: std::sync::Mutex<()>,
}

/// Everything behind the lock.
#[derive(Default)]
pub(crate) struct Inner {
    series: Vec<Option<MemSeries>>,
    free: Vec<u32>,
    by_hash: HashMap<u64, Vec<u32>>,
    postings: Postings,
    per_metric: HashMap<String, usize>,
    metadata: BTreeMap<String, Metadata>,
    max_t: i64,
    bytes: usize,
    samples: u64,
    appended_total: u64,
    drops: DropCounts,
    retention_checked_at: i64,
}

/// Data-time interval between two time-retention passes.
const RETENTION_EVERY_MS: i64 = 60_000;

impl Store {
    /// Opens a store, loading `cfg.snapshot_path` when it exists. A snapshot that cannot be
    /// read is renamed aside and reported in the returned warning; the store then starts empty.
    pub fn open(mut cfg: StoreConfig) -> (Store, Option<String>) {
        for l in ALWAYS_FORBIDDEN {
            if !cfg.forbidden_labels.iter().any(|f| f == l) {
                cfg.forbidden_labels.push(l.to_string());
            }
        }
        let mut inner = Inner {
            max_t: i64::MIN,
            retention_checked_at: i64::MIN,
            ..Inner::default()
        };
        let warning = cfg
            .snapshot_path
            .as_deref()
            .and_then(|p| snapshot::load(p, &mut inner));
        (
            Store {
                cfg,
                inner: RwLock::new(inner),
                snapshot_lock: std::sync::Mutex::new(()),
            },
            warning,
        )
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends samples from `source` (a target or peer name used in refusal messages).
    pub fn append<'a>(
        &self,
        source: &str,
        samples: impl IntoIterator<Item = SampleRef<'a>>,
    ) -> AppendReport {
        let mut report = AppendReport::default();
        let mut inner = self.write();
        for s in samples {
            let id = match inner.find(s.name, s.labels) {
                Some(id) => id,
                None => match self.admit(&mut inner, s) {
                    Ok(id) => id,
                    Err((reason, drop)) => {
                        match drop {
                            Refusal::Forbidden => inner.drops.forbidden_label += 1,
                            Refusal::Total => inner.drops.series_limit += 1,
                            Refusal::PerMetric => inner.drops.metric_series_limit += 1,
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
                        continue;
                    }
                },
            };
            if inner.push(id, s.t_ms, s.value) {
                report.appended += 1;
            } else {
                report.out_of_order += 1;
            }
        }
        inner.appended_total += report.appended as u64;
        inner.drops.out_of_order += report.out_of_order as u64;
        if inner.bytes > self.cfg.max_bytes
            || inner.max_t.saturating_sub(inner.retention_checked_at) >= RETENTION_EVERY_MS
        {
            inner.enforce_retention(&self.cfg);
        }
        report
    }

    /// Checks the guard and limits for a new series and creates it.
    fn admit(&self, inner: &mut Inner, s: SampleRef<'_>) -> Result<u32, (String, Refusal)> {
        if let Some((l, _)) = s
            .labels
            .iter()
            .find(|(n, v)| !v.is_empty() && self.cfg.forbidden_labels.contains(n))
        {
            return Err((
                format!(
                    "label {l} is forbidden on metrics (unbounded cardinality; it belongs in traces and logs): drop it at the source or with a relabel rule"
                ),
                Refusal::Forbidden,
            ));
        }
        if inner.live_series() >= self.cfg.max_series {
            return Err((
                format!(
                    "the store holds its limit of {} series (max_series): raise the limit or drop labels that multiply series",
                    self.cfg.max_series
                ),
                Refusal::Total,
            ));
        }
        if inner.per_metric.get(s.name).copied().unwrap_or(0) >= self.cfg.max_series_per_metric {
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
        Ok(inner.insert(Labels::new(pairs)))
    }

    /// Writes a snapshot to `snapshot_path` (temp file, fsync, atomic rename). Without a path
    /// it does nothing. The binary calls it every few minutes and at shutdown.
    pub fn snapshot(&self) -> std::io::Result<()> {
        let Some(path) = &self.cfg.snapshot_path else {
            return Ok(());
        };
        let _one_at_a_time = self
            .snapshot_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bytes = snapshot::encode(&self.read());
        snapshot::write_atomic(path, &bytes)
    }

    /// Size and drop counters.
    pub fn stats(&self) -> StoreStats {
        let inner = self.read();
        StoreStats {
            series: inner.live_series(),
            samples: inner.samples,
            bytes: inner.bytes,
            appended_total: inner.appended_total,
            drops: inner.drops,
        }
    }

    /// Records type/help/unit of a metric (from a scrape's `# TYPE`/`# HELP` lines).
    pub fn set_metadata(&self, metric: &str, meta: Metadata) {
        self.write().metadata.insert(metric.to_string(), meta);
    }

    /// All recorded metadata, sorted by metric name.
    pub fn metadata(&self) -> Vec<(String, Metadata)> {
        self.read()
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Series matching all `matchers` with samples in `[mint, maxt]`, and those samples
    /// (staleness markers included), sorted by labels. This is what the evaluator reads.
    pub fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Vec<(Labels, Vec<(i64, f64)>)> {
        let inner = self.read();
        let mut out: Vec<(Labels, Vec<(i64, f64)>)> = inner
            .matching(matchers)
            .into_iter()
            .filter_map(|s| {
                let mut samples = Vec::new();
                s.samples_between(mint, maxt, &mut samples);
                (!samples.is_empty()).then(|| (s.labels.clone(), samples))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Label sets of the series matching `matchers` that hold samples in `[mint, maxt]`.
    pub fn series_labels(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<Labels> {
        let inner = self.read();
        let mut out: Vec<Labels> = inner
            .matching(matchers)
            .into_iter()
            .filter(|s| s.overlaps(mint, maxt))
            .map(|s| s.labels.clone())
            .collect();
        out.sort();
        out
    }

    /// Every label name in use (for `/api/v1/labels` without matchers).
    pub fn label_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.read().postings.names().map(str::to_string).collect();
        names.sort();
        names
    }
}

/// Which limit refused a series (for the drop counters).
enum Refusal {
    Forbidden,
    Total,
    PerMetric,
}

impl Inner {
    fn live_series(&self) -> usize {
        self.series.len() - self.free.len()
    }

    fn find(&self, name: &str, labels: &[(String, String)]) -> Option<u32> {
        let sorted = labels.windows(2).all(|w| w[0].0 < w[1].0);
        let ordered: Vec<&(String, String)>;
        let pairs: &mut dyn Iterator<Item = &(String, String)> = if sorted {
            &mut labels.iter()
        } else {
            let mut v: Vec<&(String, String)> = labels.iter().collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            ordered = v;
            &mut ordered.iter().copied()
        };
        let pairs: Vec<(&str, &str)> = pairs
            .filter(|(n, v)| !v.is_empty() && n != METRIC_NAME)
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let hash = series_hash(name, pairs.iter().copied());
        self.by_hash.get(&hash)?.iter().copied().find(|id| {
            self.series[*id as usize].as_ref().is_some_and(|s| {
                s.labels.name() == name
                    && s.labels
                        .iter()
                        .filter(|(n, _)| *n != METRIC_NAME)
                        .eq(pairs.iter().copied())
            })
        })
    }

    fn insert(&mut self, labels: Labels) -> u32 {
        let hash = series_hash(labels.name(), labels.iter());
        *self
            .per_metric
            .entry(labels.name().to_string())
            .or_default() += 1;
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.series.push(None);
                (self.series.len() - 1) as u32
            }
        };
        self.postings.add(id, &labels);
        self.by_hash.entry(hash).or_default().push(id);
        self.series[id as usize] = Some(MemSeries::new(labels));
        id
    }

    /// Appends to series `id`; false when the sample is out of order.
    fn push(&mut self, id: u32, t: i64, v: f64) -> bool {
        let Some(s) = self.series[id as usize].as_mut() else {
            return false;
        };
        if s.last_t().is_some_and(|last| t <= last) {
            return false;
        }
        let grown = s.push(t, v);
        self.bytes = (self.bytes as isize + grown).max(0) as usize;
        self.samples += 1;
        self.max_t = self.max_t.max(t);
        true
    }

    fn remove_series(&mut self, id: u32) {
        let Some(s) = self.series[id as usize].take() else {
            return;
        };
        let hash = series_hash(s.labels.name(), s.labels.iter());
        if let Some(ids) = self.by_hash.get_mut(&hash) {
            ids.retain(|x| *x != id);
            if ids.is_empty() {
                self.by_hash.remove(&hash);
            }
        }
        if let Some(n) = self.per_metric.get_mut(s.labels.name()) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_metric.remove(s.labels.name());
            }
        }
        self.postings.remove(id, &s.labels);
        self.bytes = self.bytes.saturating_sub(s.bytes());
        self.samples = self
            .samples
            .saturating_sub(s.chunks().map(|c| c.len() as u64).sum());
        self.free.push(id);
    }

    fn matching(&self, matchers: &[Matcher]) -> Vec<&MemSeries> {
        let all = (0..self.series.len() as u32).filter(|id| self.series[*id as usize].is_some());
        self.postings
            .select(matchers, all, |id| {
                self.series
                    .get(id as usize)
                    .and_then(|s| s.as_ref())
                    .map(|s| &s.labels)
            })
            .into_iter()
            .filter_map(|id| self.series[id as usize].as_ref())
            .collect()
    }
}

#[cfg(test)]
mod tests;
