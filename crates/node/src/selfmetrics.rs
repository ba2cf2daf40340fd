//! Strata's own metrics (`GET /metrics`), by Prometheus conventions: scrape durations and
//! failures per job, store size and drops, queue lengths, remote_write and notification
//! counters, rule group evaluation time. Built as families and written by `expo`'s writer,
//! so every label value is escaped (a rule group or job named with `"` stays valid text).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use expo::{Format, LeStyle, MetricType, OwnedFamily, OwnedSample, Writer, histogram_samples};
use strata_core::Histogram;
use strata_core::sync::lock;

/// Upper bounds of the duration histograms, seconds.
const BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

struct Scrapes {
    duration: Histogram,
    failures: u64,
    samples: u64,
}

/// Counters the pipeline updates as it runs.
#[derive(Default)]
pub(crate) struct SelfMetrics {
    scrapes: Mutex<BTreeMap<String, Scrapes>>,
    groups: Mutex<BTreeMap<String, Histogram>>,
    reload: Mutex<Reload>,
}

/// The outcome of the last config (re)load.
#[derive(Default)]
struct Reload {
    successful: bool,
    success_unix_seconds: f64,
}

/// Values read at render time from the parts that keep their own counters.
pub(crate) struct Gauges {
    /// The store's counters.
    pub store: tsdb::StoreStats,
    /// Scrape reports waiting to be written to the store.
    pub ingest_queue: usize,
    /// remote_write counters, when configured.
    pub remote_write: Option<sinks::remote_write::RemoteWriteStats>,
    /// Notification counters, when receivers are configured.
    pub notify: Option<sinks::notify::NotifyStats>,
    /// Findings open now.
    pub findings_open: usize,
    /// The exemplar buffer's counters.
    pub exemplars: tsdb::exemplars::ExemplarStats,
}

/// The families of one rendering, in order.
struct Families(Vec<OwnedFamily>);

impl Families {
    fn family(&mut self, name: &str, kind: MetricType, help: &str, samples: Vec<OwnedSample>) {
        self.0.push(OwnedFamily {
            name: name.to_string(),
            metric_type: kind,
            help: Some(help.to_string()),
            unit: None,
            samples,
        });
    }

    /// One family whose samples differ by the value of `label`.
    fn by(&mut self, name: &str, kind: MetricType, help: &str, label: &str, vs: &[(&str, f64)]) {
        let samples = vs
            .iter()
            .map(|(l, v)| OwnedSample::new(name, &[(label, l)], *v))
            .collect();
        self.family(name, kind, help, samples);
    }

    fn one(&mut self, name: &str, kind: MetricType, help: &str, v: f64) {
        self.family(name, kind, help, vec![OwnedSample::new(name, &[], v)]);
    }

    /// A histogram family, one series per `(label value, histogram)`.
    fn histograms<'a>(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        hs: impl Iterator<Item = (&'a String, &'a Histogram)>,
    ) {
        let samples = hs
            .flat_map(|(v, h)| {
                histogram_samples(name, &[(label.to_string(), v.clone())], h, LeStyle::Decimal)
            })
            .collect();
        self.family(name, MetricType::Histogram, help, samples);
    }
}

impl SelfMetrics {
    /// Records one scrape of `job`.
    pub(crate) fn scrape(&self, job: &str, took: Duration, failed: bool, samples: usize) {
        let mut s = lock(&self.scrapes);
        let e = s.entry(job.to_string()).or_insert_with(|| Scrapes {
            duration: Histogram::new(&BUCKETS),
            failures: 0,
            samples: 0,
        });
        e.duration.observe(took.as_secs_f64());
        e.failures += u64::from(failed);
        e.samples += samples as u64;
    }

    /// Records one evaluation of rule group `group`.
    pub(crate) fn rule_group(&self, group: &str, took: Duration) {
        lock(&self.groups)
            .entry(group.to_string())
            .or_insert_with(|| Histogram::new(&BUCKETS))
            .observe(took.as_secs_f64());
    }

    /// Records a config load (the first at startup, then each reload): whether it applied.
    pub(crate) fn config_loaded(&self, successful: bool) {
        let mut r = lock(&self.reload);
        r.successful = successful;
        if successful {
            r.success_unix_seconds = strata_core::now_ms() as f64 / 1000.0;
        }
    }

    /// The text exposition (Prometheus 0.0.4).
    pub(crate) fn render(&self, g: &Gauges) -> String {
        use MetricType::{Counter, Gauge};
        let mut f = Families(Vec::new());
        f.family(
            "strata_build_info",
            Gauge,
            "Strata's version; always 1.",
            vec![OwnedSample::new(
                "strata_build_info",
                &[
                    ("version", env!("CARGO_PKG_VERSION")),
                    ("revision", crate::REVISION),
                ],
                1.0,
            )],
        );
        {
            let s = lock(&self.scrapes);
            f.histograms(
                "strata_scrape_duration_seconds",
                "Time a scrape took, per job.",
                "job",
                s.iter().map(|(job, v)| (job, &v.duration)),
            );
            let per_job = |pick: fn(&Scrapes) -> u64| -> Vec<(&str, f64)> {
                s.iter()
                    .map(|(job, v)| (job.as_str(), pick(v) as f64))
                    .collect()
            };
            f.by(
                "strata_scrape_failures_total",
                Counter,
                "Scrapes that failed (target down, timeout, bad body), per job.",
                "job",
                &per_job(|v| v.failures),
            );
            f.by(
                "strata_scrape_samples_total",
                Counter,
                "Samples scraped, per job.",
                "job",
                &per_job(|v| v.samples),
            );
        }
        f.histograms(
            "strata_rule_group_duration_seconds",
            "Time one evaluation of a rule group took.",
            "rule_group",
            lock(&self.groups).iter(),
        );
        let st = &g.store;
        f.one(
            "strata_store_series",
            Gauge,
            "Series in the store.",
            st.series as f64,
        );
        f.one(
            "strata_store_samples",
            Gauge,
            "Samples in the store.",
            st.samples as f64,
        );
        f.one(
            "strata_store_bytes",
            Gauge,
            "Encoded chunk bytes in the store.",
            st.bytes as f64,
        );
        f.one(
            "strata_store_appended_samples_total",
            Counter,
            "Samples appended to the store.",
            st.appended_total as f64,
        );
        let d = &st.drops;
        f.by(
            "strata_store_dropped_samples_total",
            Counter,
            "Samples the store refused, by reason.",
            "reason",
            &[
                ("out_of_order", d.out_of_order as f64),
                ("forbidden_label", d.forbidden_label as f64),
                ("series_limit", d.series_limit as f64),
                ("metric_series_limit", d.metric_series_limit as f64),
            ],
        );
        f.by(
            "strata_store_dropped_chunks_total",
            Counter,
            "Chunks dropped by retention, by reason.",
            "reason",
            &[
                ("time", d.retention_time_chunks as f64),
                ("bytes", d.retention_bytes_chunks as f64),
            ],
        );
        {
            let r = lock(&self.reload);
            f.one(
                "strata_config_last_reload_successful",
                Gauge,
                "Whether the last configuration reload attempt was successful.",
                f64::from(u8::from(r.successful)),
            );
            f.one(
                "strata_config_last_reload_success_timestamp_seconds",
                Gauge,
                "Timestamp of the last successful configuration reload.",
                r.success_unix_seconds,
            );
        }
        f.one(
            "strata_ingest_queue_length",
            Gauge,
            "Scrape reports waiting to be written to the store.",
            g.ingest_queue as f64,
        );
        f.one(
            "strata_findings_open",
            Gauge,
            "Diagnoses firing now.",
            g.findings_open as f64,
        );
        let e = &g.exemplars;
        f.one(
            "strata_exemplars_held",
            Gauge,
            "Exemplars held in memory (the query_exemplars API answers from them).",
            e.held as f64,
        );
        f.one(
            "strata_exemplars_series",
            Gauge,
            "Series with at least one exemplar held.",
            e.series as f64,
        );
        f.one(
            "strata_exemplars_limit",
            Gauge,
            "Exemplars the buffer holds at most ([store] exemplars_limit; 0: off).",
            e.limit as f64,
        );
        f.one(
            "strata_exemplars_appended_total",
            Counter,
            "Exemplars stored.",
            e.appended_total as f64,
        );
        f.by(
            "strata_exemplars_dropped_total",
            Counter,
            "Exemplars refused, by reason (older than the series' newest; labels too long or a per-request label).",
            "reason",
            &[
                ("out_of_order", e.out_of_order_total as f64),
                ("invalid", e.invalid_total as f64),
            ],
        );
        if let Some(rw) = &g.remote_write {
            f.one(
                "strata_remote_write_queue_samples",
                Gauge,
                "Samples queued on disk for remote_write.",
                rw.queued_samples as f64,
            );
            f.one(
                "strata_remote_write_queue_bytes",
                Gauge,
                "Bytes queued on disk for remote_write.",
                rw.queued_bytes as f64,
            );
            f.one(
                "strata_remote_write_samples_sent_total",
                Counter,
                "Samples the remote_write receiver accepted.",
                rw.samples_sent as f64,
            );
            f.by(
                "strata_remote_write_samples_dropped_total",
                Counter,
                "Samples remote_write gave up on, by reason.",
                "reason",
                &[
                    ("queue_full", rw.dropped_queue_full as f64),
                    ("rejected", rw.dropped_rejected as f64),
                    ("io", rw.dropped_io as f64),
                ],
            );
            f.one(
                "strata_remote_write_retries_total",
                Counter,
                "remote_write sends retried.",
                rw.retries as f64,
            );
        }
        if let Some(n) = &g.notify {
            f.by(
                "strata_notifications_total",
                Counter,
                "Alert notifications, by outcome (sent, failed, dropped from a full queue, inhibited).",
                "result",
                &[
                    ("sent", n.sent as f64),
                    ("failed", n.failed as f64),
                    ("dropped", n.dropped as f64),
                    ("inhibited", n.inhibited as f64),
                ],
            );
        }
        let mut w = Writer::new(Format::Prometheus);
        for family in &f.0 {
            w.write_family(family);
        }
        w.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauges() -> Gauges {
        Gauges {
            store: tsdb::StoreStats::default(),
            ingest_queue: 2,
            remote_write: None,
            notify: None,
            findings_open: 1,
            exemplars: tsdb::exemplars::ExemplarStats {
                held: 3,
                series: 2,
                limit: 100,
                appended_total: 5,
                out_of_order_total: 1,
                invalid_total: 1,
            },
        }
    }

    #[test]
    fn histograms_are_cumulative_and_families_parse() {
        let m = SelfMetrics::default();
        m.scrape("engine", Duration::from_millis(3), false, 10);
        m.scrape("engine", Duration::from_millis(300), true, 0);
        m.rule_group("g", Duration::from_millis(20));
        let text = m.render(&gauges());
        assert!(
            text.contains("strata_scrape_duration_seconds_bucket{job=\"engine\",le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("strata_scrape_duration_seconds_bucket{job=\"engine\",le=\"0.5\"} 2")
        );
        assert!(text.contains("strata_scrape_failures_total{job=\"engine\"} 1"));
        assert!(text.contains("strata_exemplars_held 3"), "{text}");
        assert!(text.contains("strata_exemplars_dropped_total{reason=\"out_of_order\"} 1"));
        assert!(text.contains("strata_rule_group_duration_seconds_count{rule_group=\"g\"} 1"));
        assert!(text.contains("strata_ingest_queue_length 2"));
        let parsed = expo::parse(&text, expo::Format::Prometheus);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    }

    #[test]
    fn label_values_with_quotes_and_newlines_stay_valid_text() {
        let m = SelfMetrics::default();
        m.rule_group("bad \"group\"\nname\\", Duration::from_millis(20));
        m.scrape("job\"x", Duration::from_millis(3), false, 1);
        let text = m.render(&gauges());
        let parsed = expo::parse(&text, expo::Format::Prometheus);
        assert!(parsed.errors.is_empty(), "{:?}\n{text}", parsed.errors);
        let group = parsed
            .families
            .iter()
            .find(|f| f.name == "strata_rule_group_duration_seconds")
            .expect("family");
        assert!(
            group.samples.iter().any(|s| s
                .labels
                .to_pairs()
                .iter()
                .any(|(k, v)| k == "rule_group" && v == "bad \"group\"\nname\\")),
            "the value comes back unescaped"
        );
    }
}
