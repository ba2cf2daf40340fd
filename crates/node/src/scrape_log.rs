//! How scrape failures reach the log: a target's first failure and its recovery are warnings
//! (seen at the default level), the repeats in between are info, so one dead target does
//! not flood the log and its state changes are never missed.

use std::collections::HashSet;

use sources::scrape::ScrapeReport;

/// What one report means for its target's log state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    /// It answered, as before.
    Healthy,
    /// It failed after answering (or on its first scrape).
    FirstFailure,
    /// It failed again.
    StillFailing,
    /// It answered after failing.
    Recovered,
}

/// The targets failing now.
#[derive(Debug, Default)]
pub(crate) struct TargetHealth {
    down: HashSet<String>,
}

impl TargetHealth {
    /// Records one scrape of `instance`.
    pub(crate) fn note(&mut self, instance: &str, failed: bool) -> Transition {
        match (failed, self.down.contains(instance)) {
            (true, false) => {
                self.down.insert(instance.to_string());
                Transition::FirstFailure
            }
            (true, true) => Transition::StillFailing,
            (false, true) => {
                self.down.remove(instance);
                Transition::Recovered
            }
            (false, false) => Transition::Healthy,
        }
    }
}

/// Logs `report` at the level its transition calls for.
pub(crate) fn log(transition: Transition, report: &ScrapeReport) {
    let error = report.error.as_deref().unwrap_or("");
    match transition {
        Transition::FirstFailure => tracing::warn!(
            "scrape of {} ({}) failed: {error} (repeats are logged at info until it answers again)",
            report.instance,
            report.job
        ),
        Transition::StillFailing => {
            tracing::info!("scrape of {} failed: {error}", report.instance)
        }
        Transition::Recovered => {
            tracing::warn!(
                "scrape of {} ({}) answers again",
                report.instance,
                report.job
            )
        }
        Transition::Healthy => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_failure_and_recovery_stand_out_repeats_do_not() {
        let mut h = TargetHealth::default();
        assert_eq!(h.note("a:1", false), Transition::Healthy);
        assert_eq!(h.note("a:1", true), Transition::FirstFailure);
        assert_eq!(h.note("b:2", true), Transition::FirstFailure, "per target");
        for _ in 0..5 {
            assert_eq!(h.note("a:1", true), Transition::StillFailing);
        }
        assert_eq!(h.note("a:1", false), Transition::Recovered);
        assert_eq!(h.note("a:1", false), Transition::Healthy);
        assert_eq!(
            h.note("a:1", true),
            Transition::FirstFailure,
            "a new outage warns again"
        );
        assert_eq!(h.note("b:2", true), Transition::StillFailing);
    }
}
