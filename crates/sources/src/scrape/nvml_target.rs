//! The local NVML collector as a scrape target: polled on the GPU profiles' cadence (250 ms
//! with the reduced field set in an incident), reported like any scraped target.

use std::time::Instant;

use super::ingest::target_labels;
use super::profile::{KindProfiles, ProfileSettings};
use super::runner::{ScrapeReport, add_meta};
use super::staleness::SeriesTracker;
use crate::gpu::nvml::NvmlCollector;
use crate::point::{Point, now_ms};

/// The `job` label of NVML series.
pub const NVML_JOB: &str = "nvml";

/// NVML as a target. The collector makes blocking driver calls, so each collection runs on
/// a blocking thread.
pub struct NvmlTarget {
    collector: Option<NvmlCollector>,
    profiles: KindProfiles,
    instance: String,
    tracker: SeriesTracker,
}

impl NvmlTarget {
    /// Wraps an opened collector; `instance` is the node name.
    pub fn new(collector: NvmlCollector, instance: String, profiles: KindProfiles) -> NvmlTarget {
        NvmlTarget {
            collector: Some(collector),
            profiles,
            instance,
            tracker: SeriesTracker::default(),
        }
    }

    /// The collector's status line (NVML and driver versions, GPUs, optional groups).
    pub fn status(&self) -> String {
        self.collector.as_ref().map_or_else(
            || "NVML collector lost after a crash".to_string(),
            NvmlCollector::status,
        )
    }

    /// The GPU profiles this target follows.
    pub fn profiles(&self) -> KindProfiles {
        self.profiles
    }

    /// Collects once with `settings.fields`; field failures become report errors.
    pub async fn scrape(&mut self, settings: ProfileSettings) -> ScrapeReport {
        let timestamp_ms = now_ms();
        let started = Instant::now();
        let mut report = ScrapeReport::new(NVML_JOB, &self.instance, timestamp_ms);
        let collected = match self.collector.take() {
            Some(mut c) => tokio::task::spawn_blocking(move || {
                let got = c.collect(settings.fields, timestamp_ms);
                (c, got)
            })
            .await
            .map_err(|e| format!("the NVML collector crashed: {e}; NVML is off until restart")),
            None => {
                Err("the NVML collector crashed earlier; NVML is off until restart".to_string())
            }
        };
        report.duration = started.elapsed();
        match collected {
            Ok((collector, collection)) => {
                self.collector = Some(collector);
                let labels = target_labels(NVML_JOB, &self.instance, &[]);
                let mut points: Vec<Point> = collection
                    .points
                    .into_iter()
                    .map(|mut p| {
                        p.labels.extend(labels.iter().cloned());
                        Point::new(p.name, p.labels, p.value, p.timestamp_ms)
                    })
                    .collect();
                report.samples_scraped = points.len();
                let stale = self.tracker.update(&points, timestamp_ms);
                points.extend(stale);
                report.points = points;
                report.warnings = collection.errors;
            }
            Err(e) => {
                report.error = Some(e);
                report.points = self.tracker.all_stale(timestamp_ms);
            }
        }
        add_meta(&mut report, NVML_JOB);
        report
    }
}
