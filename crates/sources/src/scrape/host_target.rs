//! A [`HostCollector`] as a scrape target: polled on its kind's profile cadence (NVML: 250 ms
//! with the reduced field set in an incident), reported like any scraped target.

use std::sync::Arc;
use std::time::Instant;

use super::ingest::{Reading, Series, SeriesSamples, target_labels};
use super::profile::{KindProfiles, ProfileSettings};
use super::runner::{ScrapeReport, add_meta};
use super::staleness::SeriesTracker;
use crate::collector::HostCollector;
use crate::point::now_ms;

/// A collector on this node as a target. Collections make blocking calls (a driver, files),
/// so each one runs on a blocking thread.
pub struct HostTarget {
    collector: Option<Box<dyn HostCollector>>,
    job: &'static str,
    profiles: KindProfiles,
    instance: String,
    tracker: SeriesTracker,
}

impl HostTarget {
    /// Wraps an opened collector; `instance` is the node name.
    pub fn new(
        collector: Box<dyn HostCollector>,
        instance: String,
        profiles: KindProfiles,
    ) -> HostTarget {
        HostTarget {
            job: collector.job(),
            collector: Some(collector),
            profiles,
            instance,
            tracker: SeriesTracker::default(),
        }
    }

    /// The `job` label of the collector's series.
    pub fn job(&self) -> &'static str {
        self.job
    }

    /// The collector's status line.
    pub fn status(&self) -> String {
        self.collector.as_ref().map_or_else(
            || format!("{} collector lost after a crash", self.job),
            |c| c.status(),
        )
    }

    /// The profiles this target follows.
    pub fn profiles(&self) -> KindProfiles {
        self.profiles
    }

    /// Collects once with `settings.fields`; failures become report warnings.
    pub async fn scrape(&mut self, settings: ProfileSettings) -> ScrapeReport {
        let job = self.job;
        let timestamp_ms = now_ms();
        let started = Instant::now();
        let mut report = ScrapeReport::new(job, &self.instance, timestamp_ms);
        let collected = match self.collector.take() {
            Some(mut c) => tokio::task::spawn_blocking(move || {
                let got = c.collect(settings.fields, timestamp_ms);
                (c, got)
            })
            .await
            .map_err(|e| format!("the {job} collector crashed: {e}; it is off until restart")),
            None => Err(format!(
                "the {job} collector crashed earlier; it is off until restart"
            )),
        };
        report.duration = started.elapsed();
        match collected {
            Ok((collector, collection)) => {
                self.collector = Some(collector);
                let labels = target_labels(job, &self.instance, &[]);
                // A point may name its own `instance` (an engine's, for the engine↔GPU
                // links); otherwise it is the node's.
                let (series, readings): (Vec<Series>, Vec<Reading>) = collection
                    .points
                    .into_iter()
                    .map(|mut p| {
                        for (name, value) in &labels {
                            if !p.labels.iter().any(|(n, _)| n == name) {
                                p.labels.push((name.clone(), value.clone()));
                            }
                        }
                        p.labels.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                        let reading = Reading {
                            value: p.value,
                            timestamp_ms: p.timestamp_ms,
                        };
                        (
                            Series {
                                name: p.name,
                                labels: p.labels,
                            },
                            reading,
                        )
                    })
                    .unzip();
                report.samples_scraped = readings.len();
                let series: Arc<[Series]> = series.into();
                report.points = self.tracker.update(&series, timestamp_ms);
                report.samples = SeriesSamples { series, readings };
                report.warnings = collection.errors;
            }
            Err(e) => {
                report.error = Some(e);
                report.points = self.tracker.all_stale(timestamp_ms);
            }
        }
        add_meta(&mut report, job);
        report
    }
}
