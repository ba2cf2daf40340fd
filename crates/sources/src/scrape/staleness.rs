//! Staleness markers: when a series disappears from a target, or the target goes down, the
//! series ends with a staleness marker, so queries stop returning its last value.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::ingest::Series;
use crate::point::Point;

/// Remembers the series of a target's previous scrape.
#[derive(Debug, Default)]
pub struct SeriesTracker {
    /// The previous scrape's series, in the order they came (shared with its report).
    previous: Arc<[Series]>,
    /// Names the last scrape's series list; see [`SeriesTracker::layout`].
    layout: u64,
}

/// Source of layout numbers: unique across every tracker of the process.
static NEXT_LAYOUT: AtomicU64 = AtomicU64::new(1);

impl SeriesTracker {
    /// Records this scrape's series and returns a staleness marker for each series of the
    /// previous scrape that is gone.
    pub fn update(&mut self, series: &Arc<[Series]>, timestamp_ms: i64) -> Vec<Point> {
        // A target exposes the same series in the same order scrape after scrape: then
        // nothing is gone (and a scrape that found so shares the very list).
        if Arc::ptr_eq(series, &self.previous) || **series == *self.previous {
            self.previous = series.clone();
            return Vec::new();
        }
        self.layout = NEXT_LAYOUT.fetch_add(1, Ordering::Relaxed);
        let current: HashSet<&Series> = series.iter().collect();
        let mut seen = HashSet::new();
        let gone = self
            .previous
            .iter()
            .filter(|s| !current.contains(s) && seen.insert(*s))
            .map(|s| s.point(expo::stale_nan(), timestamp_ms))
            .collect();
        self.previous = series.clone();
        gone
    }

    /// The series of the last scrape given to [`SeriesTracker::update`] (empty after the
    /// target went down).
    pub fn previous(&self) -> &Arc<[Series]> {
        &self.previous
    }

    /// A number for the series list (names and labels, in order) last given to
    /// [`SeriesTracker::update`]: the same non-zero number means exactly the same list, in
    /// this tracker and in no other. 0 before any series, and after a target went down.
    pub fn layout(&self) -> u64 {
        self.layout
    }

    /// The target is down: every previous series ends now.
    pub fn all_stale(&mut self, timestamp_ms: i64) -> Vec<Point> {
        self.layout = 0;
        let previous = std::mem::take(&mut self.previous);
        let mut seen = HashSet::new();
        previous
            .iter()
            .filter(|s| seen.insert(*s))
            .map(|s| s.point(expo::stale_nan(), timestamp_ms))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(names: &[&str]) -> Arc<[Series]> {
        names
            .iter()
            .map(|n| Series {
                name: n.to_string(),
                labels: vec![("job".into(), "j".into())],
            })
            .collect()
    }

    #[test]
    fn vanished_series_and_down_targets_get_markers() {
        let mut t = SeriesTracker::default();
        assert!(t.update(&s(&["a", "b"]), 1).is_empty());
        let gone = t.update(&s(&["a"]), 2);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].name, "b");
        assert_eq!(gone[0].label("job"), Some("j"));
        assert!(expo::is_stale_nan(gone[0].value));
        assert_eq!(gone[0].timestamp_ms, 2);
        let down = t.all_stale(3);
        assert_eq!(down.len(), 1);
        assert_eq!(down[0].name, "a");
        assert!(t.all_stale(4).is_empty(), "markers are sent once");
    }

    #[test]
    fn reordered_and_repeated_series_are_not_stale_and_end_once() {
        let mut t = SeriesTracker::default();
        assert!(t.update(&s(&["a", "b", "b"]), 1).is_empty());
        assert!(
            t.update(&s(&["b", "a"]), 2).is_empty(),
            "same series, new order"
        );
        assert!(t.update(&s(&["b", "a"]), 3).is_empty(), "unchanged");
        assert!(t.update(&s(&["b", "a", "a"]), 4).is_empty(), "repeated");
        let gone = t.update(&s(&["c"]), 5);
        let mut names: Vec<_> = gone.iter().map(|g| g.name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["a", "b"], "one marker per series");
        assert!(t.update(&s(&["c", "c"]), 6).is_empty());
        assert_eq!(t.all_stale(7).len(), 1, "one marker per series");
    }

    #[test]
    fn layouts_name_one_series_list_of_one_tracker() {
        let (mut t, mut u) = (SeriesTracker::default(), SeriesTracker::default());
        t.update(&s(&["a", "b"]), 1);
        u.update(&s(&["a", "b"]), 1);
        let first = t.layout();
        assert_ne!(first, 0);
        assert_ne!(first, u.layout(), "another tracker never shares a layout");
        t.update(&s(&["a", "b"]), 2);
        assert_eq!(t.layout(), first, "same series, same order");
        let shared = t.previous().clone();
        t.update(&shared, 3);
        assert_eq!(t.layout(), first, "the very list");
        t.update(&s(&["b", "a"]), 4);
        assert_ne!(t.layout(), first, "another order is another layout");
        t.all_stale(5);
        assert_eq!(t.layout(), 0);
        assert!(t.previous().is_empty());
    }
}
