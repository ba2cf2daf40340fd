//! The data model shared by the parser and the writer.

use std::borrow::Cow;

use crate::labels::Labels;

/// Prometheus' staleness marker ("this series ended here"; never read as a value), under
/// the names the exposition code uses.
pub use strata_core::stale::{STALE_NAN_BITS, is_stale as is_stale_nan, marker as stale_nan};

/// A metric family's type, as declared by `# TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// Monotonic counter (`_total`, `_created`).
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Cumulative histogram (`_bucket{le}`, `_sum`, `_count`, `_created`).
    Histogram,
    /// OpenMetrics gauge histogram (`_bucket`, `_gsum`, `_gcount`).
    GaugeHistogram,
    /// Summary (`{quantile}`, `_sum`, `_count`, `_created`).
    Summary,
    /// OpenMetrics info (`_info`).
    Info,
    /// OpenMetrics state set.
    StateSet,
    /// `untyped` (0.0.4) or `unknown` (OpenMetrics), or no `# TYPE` line at all.
    Unknown,
}

impl MetricType {
    /// Parses the word after `# TYPE name`. Accepts both formats' spellings.
    pub fn from_word(word: &str) -> Option<MetricType> {
        Some(match word {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "gaugehistogram" => MetricType::GaugeHistogram,
            "summary" => MetricType::Summary,
            "info" => MetricType::Info,
            "stateset" => MetricType::StateSet,
            "untyped" | "unknown" => MetricType::Unknown,
            _ => return None,
        })
    }

    /// The suffixes a sample of this family may carry after the family name.
    pub fn suffixes(self) -> &'static [&'static str] {
        match self {
            MetricType::Counter => &["_total", "_created", ""],
            MetricType::Histogram => &["_bucket", "_sum", "_count", "_created"],
            MetricType::GaugeHistogram => &["_bucket", "_gsum", "_gcount"],
            MetricType::Summary => &["_sum", "_count", "_created", ""],
            MetricType::Info => &["_info"],
            MetricType::Gauge | MetricType::StateSet | MetricType::Unknown => &[""],
        }
    }
}

/// One sample line, borrowed from the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    /// Full sample name, suffix included (`vllm:e2e_request_latency_seconds_bucket`).
    pub name: &'a str,
    /// The label set, validated; values unescape on iteration.
    pub labels: Labels<'a>,
    /// The value; `NaN`, `+Inf` and `-Inf` included.
    pub value: f64,
    /// Timestamp in milliseconds since the epoch, if the line had one (OpenMetrics seconds
    /// are converted).
    pub timestamp_ms: Option<i64>,
    /// The OpenMetrics exemplar after ` # `, if any.
    pub exemplar: Option<Exemplar<'a>>,
    /// 1-based line number in the input, for error messages.
    pub line: u32,
}

/// An OpenMetrics exemplar: the trace that explains a bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar<'a> {
    /// Exemplar labels, usually `trace_id` (and `span_id`).
    pub labels: Labels<'a>,
    /// The observed value.
    pub value: f64,
    /// Seconds since the epoch, as OpenMetrics writes it.
    pub timestamp: Option<f64>,
}

/// A metric family with its metadata and samples, borrowed from the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Family<'a> {
    /// Family name as in `# TYPE` (for a sample without metadata: the sample name).
    pub name: &'a str,
    /// Declared type; [`MetricType::Unknown`] when none was declared.
    pub metric_type: MetricType,
    /// `# HELP` text, unescaped.
    pub help: Option<Cow<'a, str>>,
    /// `# UNIT` (OpenMetrics only).
    pub unit: Option<&'a str>,
    /// The samples of this family in input order.
    pub samples: Vec<Sample<'a>>,
}

/// A whole parsed exposition: the good families and every line that was skipped.
#[derive(Debug, Clone, Default)]
pub struct Exposition<'a> {
    /// Families in input order.
    pub families: Vec<Family<'a>>,
    /// One entry per skipped line.
    pub errors: Vec<crate::ParseError>,
    /// Whether `# EOF` was seen (mandatory in OpenMetrics).
    pub saw_eof: bool,
}

impl Exposition<'_> {
    /// Total number of samples across all families (what Prometheus calls
    /// `scrape_samples_scraped`).
    pub fn sample_count(&self) -> usize {
        self.families.iter().map(|f| f.samples.len()).sum()
    }

    /// All samples in input order.
    pub fn samples(&self) -> impl Iterator<Item = &Sample<'_>> {
        self.families.iter().flat_map(|f| f.samples.iter())
    }
}

/// An owned sample, for building expositions to write.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedSample {
    /// Full sample name, suffix included.
    pub name: String,
    /// Label pairs in the order they are written.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
    /// Milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
    /// Written only in OpenMetrics.
    pub exemplar: Option<OwnedExemplar>,
}

impl OwnedSample {
    /// A sample without timestamp or exemplar (the common case when building output).
    pub fn new(name: &str, labels: &[(&str, &str)], value: f64) -> OwnedSample {
        OwnedSample {
            name: name.to_string(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value,
            timestamp_ms: None,
            exemplar: None,
        }
    }
}

/// An owned exemplar (see [`Exemplar`]).
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedExemplar {
    /// Exemplar labels (`trace_id`, `span_id`).
    pub labels: Vec<(String, String)>,
    /// The observed value.
    pub value: f64,
    /// Seconds since the epoch.
    pub timestamp: Option<f64>,
}

/// An owned family, the writer's input.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedFamily {
    /// Family name (without `_total` for OpenMetrics counters; the writer handles both).
    pub name: String,
    /// Declared type.
    pub metric_type: MetricType,
    /// `# HELP` text.
    pub help: Option<String>,
    /// `# UNIT` (written in OpenMetrics only).
    pub unit: Option<String>,
    /// Samples in write order.
    pub samples: Vec<OwnedSample>,
}

impl Exemplar<'_> {
    /// An owned copy (labels unescaped), for re-exposing what was scraped.
    pub fn to_owned_exemplar(&self) -> OwnedExemplar {
        OwnedExemplar {
            labels: self.labels.to_pairs(),
            value: self.value,
            timestamp: self.timestamp,
        }
    }
}

impl Sample<'_> {
    /// An owned copy (labels unescaped), for re-exposing what was scraped.
    pub fn to_owned_sample(&self) -> OwnedSample {
        OwnedSample {
            name: self.name.to_string(),
            labels: self.labels.to_pairs(),
            value: self.value,
            timestamp_ms: self.timestamp_ms,
            exemplar: self.exemplar.as_ref().map(Exemplar::to_owned_exemplar),
        }
    }
}

impl Family<'_> {
    /// An owned copy that the [`crate::Writer`] can write: the bridge from a scrape to
    /// Strata's own `/metrics`.
    pub fn to_owned_family(&self) -> OwnedFamily {
        OwnedFamily {
            name: self.name.to_string(),
            metric_type: self.metric_type,
            help: self.help.as_ref().map(|h| h.to_string()),
            unit: self.unit.map(str::to_string),
            samples: self.samples.iter().map(Sample::to_owned_sample).collect(),
        }
    }
}

impl From<&Family<'_>> for OwnedFamily {
    fn from(f: &Family<'_>) -> OwnedFamily {
        f.to_owned_family()
    }
}

impl From<&Sample<'_>> for OwnedSample {
    fn from(s: &Sample<'_>) -> OwnedSample {
        s.to_owned_sample()
    }
}

impl Exposition<'_> {
    /// Owned copies of all families.
    pub fn to_owned_families(&self) -> Vec<OwnedFamily> {
        self.families.iter().map(Family::to_owned_family).collect()
    }
}

impl MetricType {
    /// The word `# TYPE` uses for this type in `format`. In 0.0.4, which lacks OpenMetrics'
    /// extra types, info and stateset are written as `gauge` and gaugehistogram as `histogram`
    /// (see [`crate::Writer`] for how their samples are laid out).
    pub fn word(self, format: crate::Format) -> &'static str {
        use crate::Format::*;
        match (self, format) {
            (MetricType::Counter, _) => "counter",
            (MetricType::Gauge, _) => "gauge",
            (MetricType::Histogram, _) => "histogram",
            (MetricType::Summary, _) => "summary",
            (MetricType::GaugeHistogram, OpenMetrics) => "gaugehistogram",
            (MetricType::Info, OpenMetrics) => "info",
            (MetricType::StateSet, OpenMetrics) => "stateset",
            (MetricType::GaugeHistogram, Prometheus) => "histogram",
            (MetricType::Info | MetricType::StateSet, Prometheus) => "gauge",
            (MetricType::Unknown, OpenMetrics) => "unknown",
            (MetricType::Unknown, Prometheus) => "untyped",
        }
    }
}
