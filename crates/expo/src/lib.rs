//! Prometheus text exposition (0.0.4) and OpenMetrics 1.0: a zero-copy parser and a writer.
//!
//! This crate does no I/O. Everything Strata reads from an engine, an exporter or a file goes
//! through [`Parser`]; everything Strata serves on `/metrics` goes through [`Writer`].
//!
//! The parser borrows from its input: names, label sets and help texts are slices of the
//! scrape body, and label values are unescaped only when asked for ([`Labels::iter`]).
//! A bad line is reported as a [`ParseError`] carrying its line number and skipped; the
//! lines around it still parse.

mod format;
mod histogram;
mod labels;
mod model;
mod parser;
mod scan;
mod writer;

pub use format::Format;
pub use histogram::{LeStyle, histogram_samples};
pub use labels::{LabelIter, Labels};
pub use model::{
    Exemplar, Exposition, Family, MetricType, OwnedExemplar, OwnedFamily, OwnedSample,
    STALE_NAN_BITS, Sample, is_stale_nan, stale_nan,
};
pub use parser::{Event, ParseError, Parser, parse};
/// Name rules, shared with every crate through `strata-core`: builders of
/// [`OwnedFamily`]s from external input can check names here (the writer does not).
pub use strata_core::labels::{valid_metric_name as is_metric_name, valid_name as is_label_name};
pub use writer::Writer;
