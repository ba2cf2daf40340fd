//! How the rule engine reads from and writes to a store without knowing which: the embedded
//! store (`node::StoreQuery` / `node::Ingest`) or a test double.

use crate::Point;

/// Label pairs of one result series.
pub type Labels = Vec<(String, String)>;

/// Instant queries.
pub trait Query: Send + Sync {
    /// Evaluates `expr` at `t_ms`: each result series' labels (`__name__` included when
    /// present) and value. Scalars come back as one series with no labels.
    fn instant(&self, expr: &str, t_ms: i64) -> Result<Vec<(Labels, f64)>, String>;
}

/// Where rule results are written.
pub trait Append: Send + Sync {
    /// Appends samples.
    fn append(&self, points: Vec<Point>);
}
