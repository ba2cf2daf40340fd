//! Strata's own metrics (`GET /metrics`), by Prometheus conventions: scrape durations and
//! failures per job, store size and drops, queue lengths, remote_write and notification
//! counters, rule group evaluation time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the duration histograms, seconds.
const BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, v: f64) {
        for (c, le) in self.counts.iter_mut().zip(BUCKETS) {
            if v <= le {
                *c += 1;
            }
        }
        self.count += 1;
        self.sum += v;
    }

    fn write(&self, out: &mut String, name: &str, label: &str, value: &str) {
        for (c, le) in self.counts.iter().zip(BUCKETS) {
            let _ = writeln!(out, "{name}_bucket{{{label}=\"{value}\",le=\"{le}\"}} {c}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{label}=\"{value}\",le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(out, "{name}_sum{{{label}=\"{value}\"}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{label}=\"{value}\"}} {}", self.count);
    }
}

#[derive(Default)]
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
    pub notify: Option<rules::notify::NotifyStats>,
    /// Findings open now.
    pub findings_open: usize,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Escapes a label value for the text format.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

impl SelfMetrics {
    /// Records one scrape of `job`.
    pub(crate) fn scrape(&self, job: &str, took: Duration, failed: bool, samples: usize) {
        let mut s = lock(&self.scrapes);
        let e = s.entry(job.to_string()).or_default();
        e.duration.observe(took.as_secs_f64());
        e.failures += u64::from(failed);
        e.samples += samples as u64;
    }

    /// Records one evaluation of rule group `group`.
    pub(crate) fn rule_group(&self, group: &str, took: Duration) {
        lock(&self.groups)
            .entry(group.to_string())
            .or_default()
            .observe(took.as_secs_f64());
    }

    /// Records a config load (the first at startup, then each reload): whether it applied.
    pub(crate) fn config_loaded(&self, successful: bool) {
        let mut r = lock(&self.reload);
        r.successful = successful;
        if successful {
            r.success_unix_seconds = sources::now_ms() as f64 / 1000.0;
        }
    }

    /// The text exposition (Prometheus 0.0.4).
    pub(crate) fn render(&self, g: &Gauges) -> String {
        let mut out = String::new();
        family(
            &mut out,
            "strata_build_info",
            "gauge",
            "Strata's version; always 1.",
        );
        let _ = writeln!(
            out,
            "strata_build_info{{version=\"{}\",revision=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION"),
            crate::REVISION
        );
        {
            let s = lock(&self.scrapes);
            family(
                &mut out,
                "strata_scrape_duration_seconds",
                "histogram",
                "Time a scrape took, per job.",
            );
            for (job, v) in s.iter() {
                v.duration
                    .write(&mut out, "strata_scrape_duration_seconds", "job", &esc(job));
            }
            family(
                &mut out,
                "strata_scrape_failures_total",
                "counter",
                "Scrapes that failed (target down, timeout, bad body), per job.",
            );
            for (job, v) in s.iter() {
                let _ = writeln!(
                    out,
                    "strata_scrape_failures_total{{job=\"{}\"}} {}",
                    esc(job),
                    v.failures
                );
            }
            family(
                &mut out,
                "strata_scrape_samples_total",
                "counter",
                "Samples scraped, per job.",
            );
            for (job, v) in s.iter() {
                let _ = writeln!(
                    out,
                    "strata_scrape_samples_total{{job=\"{}\"}} {}",
                    esc(job),
                    v.samples
                );
            }
        }
        {
            let groups = lock(&self.groups);
            family(
                &mut out,
                "strata_rule_group_duration_seconds",
                "histogram",
                "Time one evaluation of a rule group took.",
            );
            for (name, h) in groups.iter() {
                h.write(
                    &mut out,
                    "strata_rule_group_duration_seconds",
                    "rule_group",
                    &esc(name),
                );
            }
        }
        let st = &g.store;
        let gauge = |out: &mut String, name: &str, help: &str, v: f64| {
            family(out, name, "gauge", help);
            let _ = writeln!(out, "{name} {v}");
        };
        gauge(
            &mut out,
            "strata_store_series",
            "Series in the store.",
            st.series as f64,
        );
        gauge(
            &mut out,
            "strata_store_samples",
            "Samples in the store.",
            st.samples as f64,
        );
        gauge(
            &mut out,
            "strata_store_bytes",
            "Encoded chunk bytes in the store.",
            st.bytes as f64,
        );
        family(
            &mut out,
            "strata_store_appended_samples_total",
            "counter",
            "Samples appended to the store.",
        );
        let _ = writeln!(
            out,
            "strata_store_appended_samples_total {}",
            st.appended_total
        );
        family(
            &mut out,
            "strata_store_dropped_samples_total",
            "counter",
            "Samples the store refused, by reason.",
        );
        let d = &st.drops;
        for (reason, v) in [
            ("out_of_order", d.out_of_order),
            ("forbidden_label", d.forbidden_label),
            ("series_limit", d.series_limit),
            ("metric_series_limit", d.metric_series_limit),
        ] {
            let _ = writeln!(
                out,
                "strata_store_dropped_samples_total{{reason=\"{reason}\"}} {v}"
            );
        }
        family(
            &mut out,
            "strata_store_dropped_chunks_total",
            "counter",
            "Chunks dropped by retention, by reason.",
        );
        let _ = writeln!(
            out,
            "strata_store_dropped_chunks_total{{reason=\"time\"}} {}",
            d.retention_time_chunks
        );
        let _ = writeln!(
            out,
            "strata_store_dropped_chunks_total{{reason=\"bytes\"}} {}",
            d.retention_bytes_chunks
        );
        {
            let r = lock(&self.reload);
            gauge(
                &mut out,
                "strata_config_last_reload_successful",
                "Whether the last configuration reload attempt was successful.",
                f64::from(u8::from(r.successful)),
            );
            gauge(
                &mut out,
                "strata_config_last_reload_success_timestamp_seconds",
                "Timestamp of the last successful configuration reload.",
                r.success_unix_seconds,
            );
        }
        gauge(
            &mut out,
            "strata_ingest_queue_length",
            "Scrape reports waiting to be written to the store.",
            g.ingest_queue as f64,
        );
        gauge(
            &mut out,
            "strata_findings_open",
            "Diagnoses firing now.",
            g.findings_open as f64,
        );
        if let Some(rw) = &g.remote_write {
            gauge(
                &mut out,
                "strata_remote_write_queue_samples",
                "Samples queued on disk for remote_write.",
                rw.queued_samples as f64,
            );
            gauge(
                &mut out,
                "strata_remote_write_queue_bytes",
                "Bytes queued on disk for remote_write.",
                rw.queued_bytes as f64,
            );
            family(
                &mut out,
                "strata_remote_write_samples_sent_total",
                "counter",
                "Samples the remote_write receiver accepted.",
            );
            let _ = writeln!(
                out,
                "strata_remote_write_samples_sent_total {}",
                rw.samples_sent
            );
            family(
                &mut out,
                "strata_remote_write_samples_dropped_total",
                "counter",
                "Samples remote_write gave up on, by reason.",
            );
            for (reason, v) in [
                ("queue_full", rw.dropped_queue_full),
                ("rejected", rw.dropped_rejected),
                ("io", rw.dropped_io),
            ] {
                let _ = writeln!(
                    out,
                    "strata_remote_write_samples_dropped_total{{reason=\"{reason}\"}} {v}"
                );
            }
            family(
                &mut out,
                "strata_remote_write_retries_total",
                "counter",
                "remote_write sends retried.",
            );
            let _ = writeln!(out, "strata_remote_write_retries_total {}", rw.retries);
        }
        if let Some(n) = &g.notify {
            family(
                &mut out,
                "strata_notifications_total",
                "counter",
                "Alert notifications, by outcome (sent, failed, dropped from a full queue, inhibited).",
            );
            for (result, v) in [
                ("sent", n.sent),
                ("failed", n.failed),
                ("dropped", n.dropped),
                ("inhibited", n.inhibited),
            ] {
                let _ = writeln!(out, "strata_notifications_total{{result=\"{result}\"}} {v}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_families_parse() {
        let m = SelfMetrics::default();
        m.scrape("engine", Duration::from_millis(3), false, 10);
        m.scrape("engine", Duration::from_millis(300), true, 0);
        m.rule_group("g", Duration::from_millis(20));
        let text = m.render(&Gauges {
            store: tsdb::StoreStats::default(),
            ingest_queue: 2,
            remote_write: None,
            notify: None,
            findings_open: 1,
        });
        assert!(
            text.contains("strata_scrape_duration_seconds_bucket{job=\"engine\",le=\"0.005\"} 1")
        );
        assert!(
            text.contains("strata_scrape_duration_seconds_bucket{job=\"engine\",le=\"0.5\"} 2")
        );
        assert!(text.contains("strata_scrape_failures_total{job=\"engine\"} 1"));
        assert!(text.contains("strata_rule_group_duration_seconds_count{rule_group=\"g\"} 1"));
        assert!(text.contains("strata_ingest_queue_length 2"));
        let parsed = expo::parse(&text, expo::Format::Prometheus);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    }
}
