//! Staleness markers: when a series disappears from a target, or the target goes down, the
//! series ends with a staleness marker, so queries stop returning its last value.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::point::{LabelSet, Point};

/// Remembers the series of a target's previous scrape.
#[derive(Debug, Default)]
pub struct SeriesTracker {
    /// The previous scrape's series, each once, in the order they came.
    previous: Vec<(String, LabelSet)>,
    /// Names the last scrape's series list; see [`SeriesTracker::layout`].
    layout: u64,
}

/// Source of layout numbers: unique across every tracker of the process.
static NEXT_LAYOUT: AtomicU64 = AtomicU64::new(1);

impl SeriesTracker {
    /// Records this scrape's series and returns a staleness marker for each series of the
    /// previous scrape that is gone.
    pub fn update(&mut self, points: &[Point], timestamp_ms: i64) -> Vec<Point> {
        // A target exposes the same series in the same order scrape after scrape: then
        // nothing is gone and nothing needs copying.
        if points.len() == self.previous.len()
            && points
                .iter()
                .zip(&self.previous)
                .all(|(p, (name, labels))| p.name == *name && p.labels == *labels)
        {
            return Vec::new();
        }
        self.layout = NEXT_LAYOUT.fetch_add(1, Ordering::Relaxed);
        let current: HashSet<(&str, &[(String, String)])> = points
            .iter()
            .map(|p| (p.name.as_str(), p.labels.as_slice()))
            .collect();
        let gone = self
            .previous
            .iter()
            .filter(|(name, labels)| !current.contains(&(name.as_str(), labels.as_slice())))
            .map(|(name, labels)| stale(name, labels, timestamp_ms))
            .collect();
        let mut seen = HashSet::with_capacity(points.len());
        self.previous = points
            .iter()
            .filter(|p| seen.insert((p.name.as_str(), p.labels.as_slice())))
            .map(|p| (p.name.clone(), p.labels.clone()))
            .collect();
        gone
    }

    /// A number for the series list (names and labels, in order) of the points last given
    /// to [`SeriesTracker::update`]: the same non-zero number means exactly the same list,
    /// in this tracker and in no other. 0 before any series, and after a target went down.
    pub fn layout(&self) -> u64 {
        self.layout
    }

    /// The target is down: every previous series ends now.
    pub fn all_stale(&mut self, timestamp_ms: i64) -> Vec<Point> {
        self.layout = 0;
        self.previous
            .drain(..)
            .map(|(name, labels)| stale(&name, &labels, timestamp_ms))
            .collect()
    }
}

fn stale(name: &str, labels: &LabelSet, timestamp_ms: i64) -> Point {
    Point {
        name: name.to_string(),
        labels: labels.clone(),
        value: expo::stale_nan(),
        timestamp_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str) -> Point {
        Point::new(name, vec![("job".into(), "j".into())], 1.0, 0)
    }

    #[test]
    fn vanished_series_and_down_targets_get_markers() {
        let mut t = SeriesTracker::default();
        assert!(t.update(&[p("a"), p("b")], 1).is_empty());
        let gone = t.update(&[p("a")], 2);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].name, "b");
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
        assert!(t.update(&[p("a"), p("b"), p("b")], 1).is_empty());
        assert!(
            t.update(&[p("b"), p("a")], 2).is_empty(),
            "same series, new order"
        );
        assert!(t.update(&[p("b"), p("a")], 3).is_empty(), "unchanged");
        let gone = t.update(&[p("c")], 4);
        let mut names: Vec<_> = gone.iter().map(|g| g.name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["a", "b"], "one marker per series");
        assert_eq!(t.all_stale(5).len(), 1);
    }

    #[test]
    fn layouts_name_one_series_list_of_one_tracker() {
        let (mut t, mut u) = (SeriesTracker::default(), SeriesTracker::default());
        t.update(&[p("a"), p("b")], 1);
        u.update(&[p("a"), p("b")], 1);
        let first = t.layout();
        assert_ne!(first, 0);
        assert_ne!(first, u.layout(), "another tracker never shares a layout");
        t.update(&[p("a"), p("b")], 2);
        assert_eq!(t.layout(), first, "same series, same order");
        t.update(&[p("b"), p("a")], 3);
        assert_ne!(t.layout(), first, "another order is another layout");
        t.all_stale(4);
        assert_eq!(t.layout(), 0);
    }
}
