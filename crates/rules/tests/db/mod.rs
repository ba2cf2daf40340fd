//! A real `tsdb` store and PromQL engine behind the rule engine's [`Query`] and
//! [`Append`]: what the virtual-time tests evaluate the packs against.

use std::sync::Arc;

use rules::alert::Labels;
use rules::{Append, Query};
use sources::Point;
use tsdb::promql::{Engine, EngineConfig, Value};
use tsdb::{SampleRef, Store, StoreConfig};

/// An in-memory store and its query engine.
pub struct Db {
    pub store: Arc<Store>,
    pub engine: Engine,
}

impl Db {
    /// An empty store with default settings.
    pub fn new() -> Db {
        let (store, _) = Store::open(StoreConfig::default());
        let store = Arc::new(store);
        Db {
            engine: Engine::new(store.clone(), EngineConfig::default()),
            store,
        }
    }

    /// Appends `points` as from `source`; the store must refuse none.
    pub fn write(&self, source: &str, points: &[Point]) {
        let r = self.store.append(
            source,
            points.iter().map(|p| SampleRef {
                name: &p.name,
                labels: &p.labels,
                t_ms: p.timestamp_ms,
                value: p.value,
            }),
        );
        assert!(r.refused.is_empty(), "{:?}", r.refused.first());
    }
}

impl Query for Db {
    fn instant(&self, expr: &str, t_ms: i64) -> Result<Vec<(Labels, f64)>, String> {
        match self.engine.instant(expr, t_ms).map_err(|e| e.to_string())? {
            Value::Vector(v) => Ok(v
                .into_iter()
                .map(|s| (s.labels.as_slice().to_vec(), s.v))
                .collect()),
            Value::Scalar { v, .. } => Ok(vec![(Vec::new(), v)]),
            other => Err(format!("not a vector: {other:?}")),
        }
    }
}

impl Append for Db {
    fn append(&self, points: Vec<Point>) {
        self.write("rules", &points);
    }
}
