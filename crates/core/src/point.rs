//! The one sample type every source produces: a named, labelled value at a time.

/// Label pairs sorted by name, so equal label sets compare equal.
pub type LabelSet = Vec<(String, String)>;

/// One sample from any source (scraper, NVML, gateway), ready for the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Metric name (native, `llm:*`, `gpu:*` or Prometheus' own `up`...).
    pub name: String,
    /// Labels sorted by name; never `request_id`, `user_id` or `session_id`.
    pub labels: LabelSet,
    /// The value; a staleness marker is [`crate::stale::marker`].
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
}

impl Point {
    /// Builds a point, sorting `labels` by name.
    pub fn new(
        name: impl Into<String>,
        mut labels: LabelSet,
        value: f64,
        timestamp_ms: i64,
    ) -> Point {
        labels.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Point {
            name: name.into(),
            labels,
            value,
            timestamp_ms,
        }
    }

    /// The value of label `name`, if present.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}
