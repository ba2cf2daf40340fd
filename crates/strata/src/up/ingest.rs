//! Where samples go (the store, and remote_write when configured), and the store as the
//! rule engine's query source.

use std::sync::Arc;

use rules::alert::Labels;
use rules::{Appender, Query};
use sinks::remote_write::RemoteWriter;
use sources::Point;
use tsdb::promql::{Engine, Value};
use tsdb::{SampleRef, Store};

/// The tsdb engine as the rule engine's query source.
pub(crate) struct StoreQuery(pub(crate) Arc<Engine>);

impl Query for StoreQuery {
    fn instant(&self, expr: &str, t_ms: i64) -> Result<Vec<(Labels, f64)>, String> {
        match self.0.instant(expr, t_ms).map_err(|e| e.to_string())? {
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

/// Where every sample goes: the store, and remote_write when configured.
pub(crate) struct Ingest {
    pub(crate) store: Arc<Store>,
    pub(crate) remote: Option<RemoteWriter>,
    /// Added to remote-written samples that lack them.
    pub(crate) external: Labels,
}

impl Ingest {
    /// Appends `points` from `source` to the store (and remote_write).
    pub(crate) fn write(&self, source: &str, points: &[Point]) {
        let report = self.store.append(
            source,
            points.iter().map(|p| SampleRef {
                name: &p.name,
                labels: &p.labels,
                t_ms: p.timestamp_ms,
                value: p.value,
            }),
        );
        for r in report.refused.iter().take(3) {
            tracing::warn!("store refused {} from {}: {}", r.metric, r.source, r.reason);
        }
        if let Some(rw) = &self.remote {
            if self.external.is_empty() {
                rw.push(points);
            } else {
                let labelled: Vec<Point> = points
                    .iter()
                    .map(|p| {
                        let mut labels = p.labels.clone();
                        for (k, v) in &self.external {
                            if p.label(k).is_none() {
                                labels.push((k.clone(), v.clone()));
                            }
                        }
                        Point::new(p.name.clone(), labels, p.value, p.timestamp_ms)
                    })
                    .collect();
                rw.push(&labelled);
            }
        }
    }
}

impl Appender for Ingest {
    fn append(&self, points: Vec<Point>) {
        self.write("rules", &points);
    }
}
