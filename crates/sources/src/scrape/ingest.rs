//! Turning a parsed body into series and points: target labels attached, clashes renamed the
//! way Prometheus does (`exported_<name>`), and the GPU field set applied. A target sends the
//! same series scrape after scrape, so a scrape builds them (owned names and labels) only when
//! its body names other series than the last one ([`BodyKeys`]); otherwise it shares the last
//! scrape's list ([`SeriesSamples`]) and carries only values.

use std::sync::Arc;

use expo::{Exposition, Sample};

use crate::dialect::{Detected, Layer};
use crate::gpu::FieldSet;
use crate::point::{LabelSet, Point};

/// Labels the scraper attaches to every sample of a target (`job`, `instance`, extras).
pub fn target_labels(job: &str, instance: &str, extra: &[(String, String)]) -> LabelSet {
    let mut labels = vec![
        ("job".to_string(), job.to_string()),
        ("instance".to_string(), instance.to_string()),
    ];
    labels.extend(extra.iter().cloned());
    labels
}

/// One series as the store and queries see it: a metric name and its labels, sorted by name
/// (target labels attached).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Series {
    /// Metric name.
    pub name: String,
    /// Labels sorted by name, as [`Point::labels`].
    pub labels: LabelSet,
}

impl Series {
    /// The series of `sample` with `target`'s labels attached. A sample label that clashes
    /// with a target label is kept as `exported_<name>`, as Prometheus does without
    /// `honor_labels`.
    pub fn of(sample: &Sample<'_>, target: &LabelSet) -> Series {
        let mut labels: LabelSet = Vec::with_capacity(target.len() + 4);
        for (name, value) in sample.labels.iter() {
            let name = if target.iter().any(|(t, _)| t == name) {
                format!("exported_{name}")
            } else {
                name.to_string()
            };
            labels.push((name, value.into_owned()));
        }
        labels.extend(target.iter().cloned());
        labels.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Series {
            name: sample.name.to_string(),
            labels,
        }
    }

    /// The series and its labels of `point`.
    pub fn of_point(point: &Point) -> Series {
        Series {
            name: point.name.clone(),
            labels: point.labels.clone(),
        }
    }

    /// A point of this series.
    pub fn point(&self, value: f64, timestamp_ms: i64) -> Point {
        self.clone().into_point(value, timestamp_ms)
    }

    /// This series as a point (no copy).
    pub fn into_point(self, value: f64, timestamp_ms: i64) -> Point {
        Point {
            name: self.name,
            labels: self.labels,
            value,
            timestamp_ms,
        }
    }
}

/// One value of a series at one time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// The value; a staleness marker is [`expo::stale_nan`].
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
}

/// Samples as a list of series and one reading per series. The list is shared: a target's
/// scrapes hand the same `Arc` on while their series stay the same, so an unchanged target
/// costs no name or label allocation per sample.
#[derive(Debug, Clone, Default)]
pub struct SeriesSamples {
    /// The series, in order.
    pub series: Arc<[Series]>,
    /// One reading per entry of `series`, in the same order.
    pub readings: Vec<Reading>,
}

impl SeriesSamples {
    /// Each series with its reading, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&Series, Reading)> {
        self.series.iter().zip(self.readings.iter().copied())
    }

    /// The samples as owned points (for consumers that keep them: remote_write, `strata
    /// scrape`, tests).
    pub fn points(&self) -> impl Iterator<Item = Point> + '_ {
        self.iter().map(|(s, r)| s.point(r.value, r.timestamp_ms))
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.readings.len()
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.readings.is_empty()
    }
}

/// The series of a body as its text names them (each sample's name and raw label text), in
/// order: whether the next body names the same series is then a byte comparison, with no
/// allocation. Text that differs while naming the same series (`{a="b",}` and `{a="b"}`)
/// only counts as a change.
#[derive(Debug, Default)]
pub struct BodyKeys {
    /// Every sample's name and raw label text, one after the other.
    text: String,
    /// Per sample: where its name ends and where its label text ends in `text`.
    ends: Vec<(usize, usize)>,
}

impl BodyKeys {
    /// The keys of `exposition`'s samples.
    pub fn of(exposition: &Exposition<'_>) -> BodyKeys {
        let mut keys = BodyKeys::default();
        for s in exposition.samples() {
            keys.text.push_str(s.name);
            let name_end = keys.text.len();
            keys.text.push_str(s.labels.raw());
            keys.ends.push((name_end, keys.text.len()));
        }
        keys
    }

    /// True when `exposition` names exactly these series, in this order.
    pub fn matches(&self, exposition: &Exposition<'_>) -> bool {
        if exposition.sample_count() != self.ends.len() {
            return false;
        }
        let mut start = 0;
        exposition
            .samples()
            .zip(&self.ends)
            .all(|(s, &(name_end, end))| {
                let same = self.text.get(start..name_end) == Some(s.name)
                    && self.text.get(name_end..end) == Some(s.labels.raw());
                start = end;
                same
            })
    }
}

/// Converts a parsed exposition into points stamped `timestamp_ms` (unless a sample carries
/// its own timestamp), target labels attached as [`Series::of`] does.
pub fn to_points(exposition: &Exposition<'_>, target: &LabelSet, timestamp_ms: i64) -> Vec<Point> {
    exposition
        .samples()
        .map(|s| Series::of(s, target).into_point(s.value, s.timestamp_ms.unwrap_or(timestamp_ms)))
        .collect()
}

/// An exemplar a target exposed (OpenMetrics ` # {trace_id="..."} value ts`) with the sample
/// it was attached to: its series and scrape time.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapedExemplar {
    /// The sample's point, as [`to_points`] makes it (target labels attached).
    pub point: Point,
    /// The exemplar.
    pub exemplar: strata_core::Exemplar,
}

/// The exemplars of `exposition`, each with its sample's point as [`to_points`] makes it
/// (only the samples that carry one are turned into points).
pub fn exemplars_of(
    exposition: &Exposition<'_>,
    target: &LabelSet,
    timestamp_ms: i64,
) -> Vec<ScrapedExemplar> {
    exposition
        .samples()
        .filter_map(|s| {
            let e = s.exemplar.as_ref()?;
            Some(ScrapedExemplar {
                point: Series::of(s, target)
                    .into_point(s.value, s.timestamp_ms.unwrap_or(timestamp_ms)),
                exemplar: strata_core::Exemplar {
                    labels: e.labels.to_pairs(),
                    value: e.value,
                    timestamp: e.timestamp,
                },
            })
        })
        .collect()
}

/// The sample names a body of dialect `detected` keeps under `fields` (incident mode polls a
/// few GPU fields fast); `None` keeps everything (non-GPU bodies, [`FieldSet::Full`]).
pub fn field_filter(detected: Option<&Detected>, fields: FieldSet) -> Option<Vec<&'static str>> {
    if fields == FieldSet::Full {
        return None;
    }
    let table = detected?.table;
    if table.layer != Layer::Gpu {
        return None;
    }
    Some(
        table
            .maps
            .iter()
            .filter(|m| fields.includes(&m.canonical))
            .map(|m| m.native.as_str())
            .collect(),
    )
}

/// Whether `filter` (from [`field_filter`]) keeps samples named `name`.
pub fn keeps(filter: Option<&[&str]>, name: &str) -> bool {
    filter.is_none_or(|keep| keep.contains(&name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect;

    #[test]
    fn clashing_labels_become_exported_and_targets_labels_win() {
        let body = "m{instance=\"inner\",a=\"1\"} 2 1700000000000\nn 3\n";
        let exp = expo::parse(body, expo::Format::Prometheus);
        let pts = to_points(&exp, &target_labels("vllm", "h:8000", &[]), 42);
        assert_eq!(pts.len(), 2);
        assert_eq!(pts[0].label("instance"), Some("h:8000"));
        assert_eq!(pts[0].label("exported_instance"), Some("inner"));
        assert_eq!(
            pts[0].timestamp_ms, 1_700_000_000_000,
            "sample timestamp kept"
        );
        assert_eq!(pts[1].timestamp_ms, 42);
        assert_eq!(pts[1].label("job"), Some("vllm"));
        let names: Vec<_> = pts[0].labels.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["a", "exported_instance", "instance", "job"],
            "sorted"
        );
    }

    #[test]
    fn exemplars_keep_their_sample_series_and_labels() {
        let body = "# TYPE x histogram\nx_bucket{le=\"0.5\"} 3 # {trace_id=\"abc\"} 0.42 1700000000.123\nx_bucket{le=\"+Inf\"} 3\nx_sum 1\nx_count 3\n# EOF\n";
        let exp = expo::parse(body, expo::Format::OpenMetrics);
        let ex = exemplars_of(&exp, &target_labels("vllm", "h:8000", &[]), 42);
        assert_eq!(ex.len(), 1, "{ex:?}");
        assert_eq!(ex[0].point.name, "x_bucket");
        assert_eq!(ex[0].point.label("le"), Some("0.5"));
        assert_eq!(ex[0].point.label("job"), Some("vllm"));
        assert_eq!(ex[0].point.value, 3.0);
        assert_eq!(ex[0].point.timestamp_ms, 42);
        assert_eq!(
            ex[0].exemplar.labels,
            [("trace_id".to_string(), "abc".to_string())]
        );
        assert_eq!(ex[0].exemplar.value, 0.42);
        assert_eq!(ex[0].exemplar.timestamp, Some(1_700_000_000.123));
    }

    #[test]
    fn reduced_field_set_keeps_only_incident_gpu_fields() {
        let kept = |body: &str, fields: FieldSet| -> Vec<String> {
            let exp = expo::parse(body, expo::Format::Prometheus);
            let detected = dialect::detect(
                exp.families
                    .iter()
                    .flat_map(|f| f.samples.iter().map(|s| s.name)),
            );
            let filter = field_filter(detected.as_ref(), fields);
            exp.samples()
                .filter(|s| keeps(filter.as_deref(), s.name))
                .map(|s| s.name.to_string())
                .collect()
        };
        let gpu = "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE{gpu=\"0\"} 0.9\nDCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{gpu=\"0\"} 5\nDCGM_FI_DEV_GPU_UTIL{gpu=\"0\"} 100\n";
        assert_eq!(
            kept(gpu, FieldSet::Reduced),
            ["DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "DCGM_FI_DEV_GPU_UTIL"]
        );
        assert_eq!(kept(gpu, FieldSet::Full).len(), 3);
        let engine = "vllm:num_requests_running 1\n";
        assert_eq!(
            kept(engine, FieldSet::Reduced).len(),
            1,
            "engines are never reduced"
        );
    }

    #[test]
    fn body_keys_match_only_the_same_series_in_the_same_order() {
        let parse = |body: &'static str| expo::parse(body, expo::Format::Prometheus);
        let keys = BodyKeys::of(&parse("a{x=\"1\"} 1\nb 2\n"));
        assert!(
            keys.matches(&parse("a{x=\"1\"} 5\nb 7 1700000000000\n")),
            "values change"
        );
        assert!(!keys.matches(&parse("b 2\na{x=\"1\"} 1\n")), "order");
        assert!(!keys.matches(&parse("a{x=\"2\"} 1\nb 2\n")), "label value");
        assert!(!keys.matches(&parse("a{x=\"1\"} 1\n")), "one gone");
        assert!(
            !keys.matches(&parse("a{x=\"1\"} 1\nb 2\nc 3\n")),
            "one more"
        );
        assert!(BodyKeys::default().matches(&parse("")));
    }

    #[test]
    fn shared_samples_become_points_in_order() {
        let exp = expo::parse("a{x=\"1\"} 1\nb 2 7\n", expo::Format::Prometheus);
        let target = target_labels("j", "i:1", &[]);
        let series: Arc<[Series]> = exp.samples().map(|s| Series::of(s, &target)).collect();
        let samples = SeriesSamples {
            series,
            readings: vec![
                Reading {
                    value: 1.0,
                    timestamp_ms: 5,
                },
                Reading {
                    value: 2.0,
                    timestamp_ms: 7,
                },
            ],
        };
        let expected = {
            let mut p = to_points(&exp, &target, 5);
            p[1].timestamp_ms = 7;
            p
        };
        assert_eq!(samples.points().collect::<Vec<_>>(), expected);
        assert_eq!(samples.len(), 2);
    }
}
