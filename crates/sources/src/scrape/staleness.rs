//! Staleness markers: when a series disappears from a target, or the target goes down, the
//! series ends with a staleness marker, so queries stop returning its last value.

use std::collections::HashSet;

use crate::point::{LabelSet, Point};

/// Remembers the series of a target's previous scrape.
#[derive(Debug, Default)]
pub struct SeriesTracker {
    previous: HashSet<(String, LabelSet)>,
}

impl SeriesTracker {
    /// Records this scrape's series and returns a staleness marker for each series of the
    /// previous scrape that is gone.
    pub fn update(&mut self, points: &[Point], timestamp_ms: i64) -> Vec<Point> {
        let current: HashSet<(String, LabelSet)> = points
            .iter()
            .map(|p| (p.name.clone(), p.labels.clone()))
            .collect();
        let gone = self
            .previous
            .difference(&current)
            .map(|(name, labels)| stale(name, labels, timestamp_ms))
            .collect();
        self.previous = current;
        gone
    }

    /// The target is down: every previous series ends now.
    pub fn all_stale(&mut self, timestamp_ms: i64) -> Vec<Point> {
        self.previous
            .drain()
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
}
