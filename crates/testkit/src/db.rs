//! A real store and PromQL engine behind the rule engine's `Query` and `Append`, through the
//! node's own adapters (`node::StoreQuery`, `node::Ingest`): what the virtual-time rule tests
//! evaluate the packs against, exactly as `strata up` does.

use std::sync::Arc;

use node::{Batch, Ingest, StoreQuery};
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
