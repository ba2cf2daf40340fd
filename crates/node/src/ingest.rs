//! The one ingest path: scrape reports, rule outputs and the embedded gateway's own series
//! all become a [`Batch`] and go through [`Ingest::write`] — into the store (metadata
//! included) and to remote_write when configured. The store is also the rule engine's query
//! source ([`StoreQuery`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rules::alert::Labels;
use rules::{Append, Query};
use sinks::remote_write::RemoteWriter;
use sources::Point;
use sources::scrape::{ScrapedExemplar, SeriesSamples};
use strata_core::Throttle;
use tsdb::promql::{Engine, Prepared, QueryOptions, Value};
use tsdb::{Metadata, SampleRef, SeriesRefs, Store};

/// The PromQL engine over the store as the rule engine's (and diagnoses') query source,
/// each query under the same options (timeout, cancellation).
pub struct StoreQuery {
    engine: Arc<Engine>,
    opts: QueryOptions,
    /// Queries parsed before, by text: rules ask the same expressions every interval, and
    /// parsing them (the packs' long `label_replace` chains) cost more than evaluating.
    parsed: Mutex<HashMap<String, Arc<Prepared>>>,
}

/// Most parsed queries [`StoreQuery`] keeps; past it, the cache starts over (the packs
/// hold a few hundred expressions; one-off queries must not grow it without bound).
const PARSED_MAX: usize = 4096;

impl StoreQuery {
    /// Queries `engine` with its own limits only.
    pub fn new(engine: Arc<Engine>) -> StoreQuery {
        StoreQuery::with(engine, QueryOptions::default())
    }

    /// Queries `engine` with `opts` on every query.
    pub fn with(engine: Arc<Engine>, opts: QueryOptions) -> StoreQuery {
        StoreQuery {
            engine,
            opts,
            parsed: Mutex::new(HashMap::new()),
        }
    }

    /// `expr` parsed, from the cache when it was parsed before (a query that does not
    /// parse is not kept: it fails the same way each time).
    fn prepared(&self, expr: &str) -> Result<Arc<Prepared>, String> {
        if let Some(p) = strata_core::sync::lock(&self.parsed).get(expr) {
            return Ok(p.clone());
        }
        let p = Arc::new(self.engine.prepare(expr).map_err(|e| e.to_string())?);
        let mut parsed = strata_core::sync::lock(&self.parsed);
        if parsed.len() >= PARSED_MAX {
            parsed.clear();
        }
        parsed.insert(expr.to_string(), p.clone());
        Ok(p)
    }
}

impl Query for StoreQuery {
    fn instant(&self, expr: &str, t_ms: i64) -> Result<Vec<(Labels, f64)>, String> {
        let prepared = self.prepared(expr)?;
        match self
            .engine
            .instant_prepared(&prepared, t_ms, &self.opts)
            .map_err(|e| e.to_string())?
        {
            Value::Vector(v) => Ok(v
                .into_iter()
                .map(|s| (s.labels.as_slice().to_vec(), s.v))
                .collect()),
            Value::Scalar { v, .. } => Ok(vec![(Vec::new(), v)]),
            other => Err(format!(
                "rule expressions must return a vector or scalar, got {other:?}"
            )),
        }
    }
}

/// One family's type, help and unit, as a source described it.
#[derive(Debug, Clone, PartialEq)]
pub struct FamilyMeta {
    /// Metric family name.
    pub name: String,
    /// Its metadata for `/api/v1/metadata`.
    pub meta: Metadata,
}

impl FamilyMeta {
    /// The metadata of a parsed exposition family.
    pub fn of(name: &str, kind: expo::MetricType, help: Option<&str>, unit: Option<&str>) -> Self {
        FamilyMeta {
            name: name.to_string(),
            meta: Metadata {
                kind: kind.word(expo::Format::Prometheus).to_string(),
                help: help.unwrap_or_default().to_string(),
                unit: unit.unwrap_or_default().to_string(),
            },
        }
    }
}

/// What one source delivers at once: its samples and, when it has them, its families'
/// metadata. Scrapes, rules and the gateway all write batches.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// Who wrote it (a scrape instance, `rules`, `gateway`): named in refusals.
    pub source: String,
    /// A scrape's samples on its shared series list (written before `points`).
    pub samples: SeriesSamples,
    /// The samples (after `samples`).
    pub points: Vec<Point>,
    /// Metadata of the families the samples belong to.
    pub metadata: Vec<FamilyMeta>,
    /// Exemplars (scraped OpenMetrics ones, the gateway's histograms'), each with its series.
    pub exemplars: Vec<ScrapedExemplar>,
    /// A scrape report's [`sources::scrape::ScrapeReport::series_layout`]; 0 for others.
    pub series_layout: u64,
}

impl Batch {
    /// A batch of samples without metadata.
    pub fn points(source: &str, points: Vec<Point>) -> Batch {
        Batch {
            source: source.to_string(),
            samples: SeriesSamples::default(),
            points,
            metadata: Vec::new(),
            exemplars: Vec::new(),
            series_layout: 0,
        }
    }

    /// Every sample of `families` stamped `t_ms`, with their metadata and exemplars (the
    /// gateway's own registry as store points).
    pub fn families(source: &str, families: &[expo::OwnedFamily], t_ms: i64) -> Batch {
        let point =
            |s: &expo::OwnedSample| Point::new(s.name.clone(), s.labels.clone(), s.value, t_ms);
        Batch {
            source: source.to_string(),
            series_layout: 0,
            samples: SeriesSamples::default(),
            points: families
                .iter()
                .flat_map(|f| f.samples.iter())
                .map(point)
                .collect(),
            exemplars: families
                .iter()
                .flat_map(|f| f.samples.iter())
                .filter_map(|s| {
                    let e = s.exemplar.as_ref()?;
                    Some(ScrapedExemplar {
                        point: point(s),
                        exemplar: strata_core::Exemplar {
                            labels: e.labels.clone(),
                            value: e.value,
                            timestamp: e.timestamp,
                        },
                    })
                })
                .collect(),
            metadata: families
                .iter()
                .map(|f| {
                    FamilyMeta::of(&f.name, f.metric_type, f.help.as_deref(), f.unit.as_deref())
                })
                .collect(),
        }
    }

    /// A scrape report's samples and metadata (moved, not copied: a report is written once).
    pub fn scrape(report: sources::scrape::ScrapeReport) -> Batch {
        Batch {
            source: report.instance,
            series_layout: report.series_layout,
            samples: report.samples,
            points: report.points,
            exemplars: report.exemplars,
            metadata: report
                .metadata
                .iter()
                .map(|m| {
                    FamilyMeta::of(&m.name, m.metric_type, m.help.as_deref(), m.unit.as_deref())
                })
                .collect(),
        }
    }
}

/// Where every sample goes: the store, and remote_write when configured.
pub struct Ingest {
    /// The embedded store.
    pub store: Arc<Store>,
    /// remote_write, when configured.
    pub remote: Option<RemoteWriter>,
    /// Added to remote-written samples that lack them.
    pub external: Labels,
    /// Refusals logged at most one line a minute per (source, metric).
    warned: Mutex<Throttle<(String, String)>>,
    /// Per scrape source: the series layout of its last batch and the store series its
    /// samples went to, so an unchanged target's samples skip the series lookup.
    repeated: Mutex<HashMap<String, (u64, SeriesRefs)>>,
}

/// How often the same refusal (source, metric) is logged again; all are counted.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(60);

impl Ingest {
    /// Writes into `store`, and to `remote` with `external` labels added when given.
    pub fn new(store: Arc<Store>, remote: Option<RemoteWriter>, external: Labels) -> Ingest {
        Ingest {
            store,
            remote,
            external,
            warned: Mutex::new(Throttle::new(REFUSAL_LOG_EVERY)),
            repeated: Mutex::new(HashMap::new()),
        }
    }

    /// Forgets the series references of scrape sources other than `instances` (targets a
    /// reload removed), so the cache never outgrows the targets scraped.
    pub fn keep_sources(&self, instances: &[String]) {
        strata_core::sync::lock(&self.repeated).retain(|source, _| instances.contains(source));
    }

    /// Appends `batch` to the store (metadata first, exemplars to its exemplar buffer) and
    /// queues its samples for remote_write.
    pub fn write(&self, batch: Batch) {
        for m in &batch.metadata {
            self.store.set_metadata(&m.name, m.meta.clone());
        }
        for e in &batch.exemplars {
            // Refusals are counted in the buffer's stats (a scrape re-exposing an unchanged
            // exemplar is a duplicate, skipped as Prometheus does).
            self.store.exemplars().add(
                &e.point.name,
                &e.point.labels,
                &e.exemplar,
                e.point.timestamp_ms,
            );
        }
        let shared = batch.samples.iter().map(|(s, r)| SampleRef {
            name: &s.name,
            labels: &s.labels,
            t_ms: r.timestamp_ms,
            value: r.value,
        });
        let samples = shared.chain(batch.points.iter().map(|p| SampleRef {
            name: &p.name,
            labels: &p.labels,
            t_ms: p.timestamp_ms,
            value: p.value,
        }));
        let report = if batch.series_layout == 0 {
            self.store.append(&batch.source, samples)
        } else {
            let mut repeated = strata_core::sync::lock(&self.repeated);
            let (layout, refs) = repeated.entry(batch.source.clone()).or_default();
            let same = *layout == batch.series_layout;
            *layout = batch.series_layout;
            self.store
                .append_repeated(&batch.source, samples, refs, same)
        };
        if !report.refused.is_empty() {
            let now = Instant::now();
            let mut warned = strata_core::sync::lock(&self.warned);
            for r in &report.refused {
                if !warned.allow((r.source.clone(), r.metric.clone()), now) {
                    continue;
                }
                tracing::warn!(
                    "store refused {} from {}: {} (logged once a minute per metric; every drop is counted in strata_store_dropped_samples_total)",
                    r.metric,
                    r.source,
                    r.reason
                );
            }
        }
        let Some(rw) = &self.remote else {
            return;
        };
        let points: Vec<Point> = if batch.samples.is_empty() {
            batch.points
        } else {
            batch.samples.points().chain(batch.points).collect()
        };
        if self.external.is_empty() {
            rw.push(&points);
            return;
        }
        let labelled: Vec<Point> = points
            .into_iter()
            .map(|mut p| {
                for (k, v) in &self.external {
                    if p.label(k).is_none() {
                        p.labels.push((k.clone(), v.clone()));
                    }
                }
                p
            })
            .collect();
        rw.push(&labelled);
    }
}

impl Append for Ingest {
    fn append(&self, points: Vec<Point>) {
        self.write(Batch::points("rules", points));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_metrics_become_store_points_with_metadata() {
        let m = gateway::Metrics::new(10);
        let s = m.series(gateway::metrics::Key {
            model: "m".into(),
            tenant: "t".into(),
            upstream: "u".into(),
        });
        s.ttft.observe(0.4);
        s.ttft.exemplar(
            0.4,
            gateway::metrics::trace_exemplar("ab".repeat(16), "cd".repeat(8), 1.5, 0.4),
        );
        s.outcome(200, "stop");
        let batch = Batch::families("gateway", &m.families(), 1000);
        let (store, _) = Store::open(tsdb::StoreConfig::default());
        let ingest = Ingest::new(Arc::new(store), None, Vec::new());
        ingest.write(batch.clone());
        let held = ingest.store.exemplars().select(&[], i64::MIN, i64::MAX);
        assert!(held.is_empty(), "no selector selects nothing");
        let any = tsdb::promql::Engine::new(ingest.store.clone(), Default::default())
            .query_exemplars("strata_gateway_ttft_seconds_bucket", 0, 2000)
            .expect("query")
            .unwrap_or_default();
        assert_eq!(any.len(), 1, "{any:?}");
        assert_eq!(any[0].series.get("le"), Some("0.4"));
        assert_eq!(any[0].exemplars[0].t_ms, 1500, "the exemplar's own time");
        assert_eq!(
            any[0].exemplars[0].labels.get("trace_id"),
            Some("abababababababababababababababab")
        );
        let bucket = batch
            .points
            .iter()
            .find(|p| {
                p.name == "strata_gateway_ttft_seconds_bucket" && p.label("le") == Some("0.5")
            })
            .expect("bucket point");
        assert_eq!(bucket.value, 1.0);
        assert_eq!(bucket.label("model"), Some("m"));
        assert!(
            batch
                .points
                .iter()
                .any(|p| p.name == "strata_gateway_requests_total"
                    && p.label("finish_reason") == Some("stop"))
        );
        assert!(batch.points.iter().all(|p| p.timestamp_ms == 1000));
        let ttft = batch
            .metadata
            .iter()
            .find(|f| f.name == "strata_gateway_ttft_seconds")
            .expect("ttft metadata");
        assert_eq!(ttft.meta.kind, "histogram");
    }

    /// Scrape batches carry a shared series list and readings, then their own points; a
    /// repeated layout is appended by position, so a list shared across batches, a new order
    /// and the points after the list must each land on their own series.
    #[test]
    fn shared_series_samples_land_on_their_series() {
        use sources::scrape::{Reading, Series, SeriesSamples};
        let (store, _) = Store::open(tsdb::StoreConfig::default());
        let ingest = Ingest::new(Arc::new(store), None, Vec::new());
        let series = |names: &[&str]| -> Arc<[Series]> {
            names
                .iter()
                .map(|n| Series {
                    name: "m".to_string(),
                    labels: vec![("s".to_string(), n.to_string())],
                })
                .collect()
        };
        let (ab, ba) = (series(&["a", "b"]), series(&["b", "a"]));
        let batches = [
            (&ab, 1, 5),
            (&ab, 2, 5),
            (&ba, 3, 6),
            (&ba, 4, 6),
            (&ab, 5, 7),
        ];
        for (list, t, layout) in batches {
            let readings = (0..2)
                .map(|i| Reading {
                    value: (10 * t + i) as f64,
                    timestamp_ms: t,
                })
                .collect();
            let mut b = Batch::points(
                "target:1",
                vec![Point::new(
                    "up",
                    vec![("s".into(), "a".into())],
                    t as f64,
                    t,
                )],
            );
            b.samples = SeriesSamples {
                series: list.clone(),
                readings,
            };
            b.series_layout = layout;
            ingest.write(b);
        }
        let got: Vec<(String, Vec<f64>)> = ingest
            .store
            .select(&[], i64::MIN, i64::MAX)
            .into_iter()
            .map(|(labels, samples)| {
                (
                    labels.to_string(),
                    samples.into_iter().map(|(_, v)| v).collect(),
                )
            })
            .collect();
        let key = |name: &str, s: &str| format!("{name}{{s=\"{s}\"}}");
        assert_eq!(
            got,
            [
                (key("m", "a"), vec![10.0, 20.0, 31.0, 41.0, 50.0]),
                (key("m", "b"), vec![11.0, 21.0, 30.0, 40.0, 51.0]),
                (key("up", "a"), vec![1.0, 2.0, 3.0, 4.0, 5.0]),
            ]
        );
    }

    #[test]
    fn removed_sources_lose_their_series_references() {
        let (store, _) = Store::open(tsdb::StoreConfig::default());
        let ingest = Ingest::new(Arc::new(store), None, Vec::new());
        for (source, t) in [("a:1", 1), ("b:2", 1), ("a:1", 2)] {
            let mut b = Batch::points(source, vec![Point::new("up", Vec::new(), 1.0, t)]);
            b.series_layout = 7;
            ingest.write(b);
        }
        let held = |i: &Ingest| {
            let mut k: Vec<String> = strata_core::sync::lock(&i.repeated)
                .keys()
                .cloned()
                .collect();
            k.sort();
            k
        };
        assert_eq!(held(&ingest), ["a:1", "b:2"]);
        ingest.keep_sources(&["b:2".to_string()]);
        assert_eq!(held(&ingest), ["b:2"]);
    }

    #[test]
    fn batches_reach_the_store_with_their_metadata() {
        let (store, _) = Store::open(tsdb::StoreConfig::default());
        let ingest = Ingest::new(Arc::new(store), None, Vec::new());
        let mut b = Batch::points("x", vec![Point::new("up".to_string(), Vec::new(), 1.0, 5)]);
        b.metadata.push(FamilyMeta::of(
            "up",
            expo::MetricType::Gauge,
            Some("target up"),
            None,
        ));
        ingest.write(b);
        assert_eq!(ingest.store.stats().series, 1);
        let meta = ingest.store.metadata();
        assert_eq!(meta.len(), 1);
        assert_eq!(meta[0].1.help, "target up");
    }

    #[test]
    fn store_query_parses_once_and_evaluates_every_time() {
        let (store, _) = Store::open(tsdb::StoreConfig::default());
        let ingest = Ingest::new(Arc::new(store), None, Vec::new());
        let q = StoreQuery::new(Arc::new(Engine::new(
            ingest.store.clone(),
            Default::default(),
        )));
        let point = |t: i64, v: f64| Point::new("m", vec![("k".into(), "a".into())], v, t);
        let expr = r#"label_replace(m * 2, "x", "$1", "k", "(.+)")"#;
        let labels = vec![("k".to_string(), "a".to_string()), ("x".into(), "a".into())];
        ingest.write(Batch::points("t", vec![point(1_000, 1.0)]));
        assert_eq!(q.instant(expr, 1_000), Ok(vec![(labels.clone(), 2.0)]));
        ingest.write(Batch::points("t", vec![point(2_000, 5.0)]));
        assert_eq!(
            q.instant(expr, 2_000),
            Ok(vec![(labels, 10.0)]),
            "the parsed query is kept, not its result"
        );
        assert_eq!(strata_core::sync::lock(&q.parsed).len(), 1);
        let bad = q.instant("sum(m", 2_000).expect_err("does not parse");
        assert_eq!(q.instant("sum(m", 2_000), Err(bad), "the same error again");
        assert_eq!(
            strata_core::sync::lock(&q.parsed).len(),
            1,
            "what does not parse is not kept"
        );
    }
}
