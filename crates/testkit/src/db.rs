//! A real store and PromQL engine behind the rule engine's `Query` and `Append`, through the
//! node's own adapters (`node::StoreQuery`, `node::Ingest`): what the virtual-time rule tests
//! evaluate the packs against, exactly as `strata up` does.

use std::sync::Arc;
use std::time::Duration;

use node::{Batch, Ingest, StoreQuery};
use rules::triage::Triage;
use strata_core::query::Labels;
use strata_core::{Append, Point, Query};
use tsdb::promql::{Engine, EngineConfig};
use tsdb::{Store, StoreConfig};

/// An in-memory store, its query engine and the ingest path into it.
pub struct Db {
    /// The store (for stats and direct reads).
    pub store: Arc<Store>,
    ingest: Ingest,
    query: StoreQuery,
}

impl Default for Db {
    fn default() -> Db {
        Db::new()
    }
}

impl Db {
    /// An empty store with default settings.
    pub fn new() -> Db {
        let (store, _) = Store::open(StoreConfig::default());
        let store = Arc::new(store);
        Db {
            query: StoreQuery::new(Arc::new(Engine::new(
                store.clone(),
                EngineConfig::default(),
            ))),
            ingest: Ingest::new(store.clone(), None, Vec::new()),
            store,
        }
    }

    /// Appends `points` as from `source`; the store must refuse none of them.
    pub fn write(&self, source: &str, points: &[Point]) {
        let dropped = |s: &Store| {
            let d = s.stats().drops;
            d.out_of_order + d.forbidden_label + d.series_limit + d.metric_series_limit
        };
        let before = dropped(&self.store);
        self.ingest.write(Batch::points(source, points.to_vec()));
        assert_eq!(
            dropped(&self.store),
            before,
            "the store refused samples from {source}"
        );
    }
}

impl Query for Db {
    fn instant(&self, expr: &str, t_ms: i64) -> Result<Vec<(Labels, f64)>, String> {
        self.query.instant(expr, t_ms)
    }
}

impl Append for Db {
    fn append(&self, points: Vec<Point>) {
        self.write("rules", &points);
    }
}

/// The built-in packs named (file names of `rules::packs::FILES`, loaded in that order) in a
/// triage that evaluates every 15 s over a 10-minute finding window: what the virtual-time
/// pack tests step through.
pub fn triage_of(packs: &[&str]) -> Triage {
    let mut groups = Vec::new();
    for pack in packs {
        let (name, text) = rules::packs::FILES
            .iter()
            .find(|(n, _)| n == pack)
            .unwrap_or_else(|| panic!("{pack} is not a built-in pack"));
        groups.extend(rules::load(name, text).unwrap_or_else(|e| panic!("{pack}: {e:?}")));
    }
    Triage::new(
        groups,
        Duration::from_secs(15),
        Duration::from_secs(600),
        Vec::new(),
    )
}

/// The value of label `name` in `labels`, empty when absent.
pub fn label(labels: &Labels, name: &str) -> String {
    labels
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}
