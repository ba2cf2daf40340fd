//! Strata's embedded time-series store and PromQL evaluator.
//!
//! [`Store`] keeps a bounded history of every series Strata scrapes (Gorilla-compressed
//! chunks, retention by time and bytes, a cardinality guard, snapshots); [`promql::Engine`]
//! evaluates the same rule and dashboard queries Prometheus would, over that store, with
//! Prometheus 3.x semantics (range windows are left-open: `(t - range, t]`).
//! The crate reads no config files or environment; callers pass plain structs.

pub mod chunk;
mod labels;
pub mod promql;
mod store;
mod sync;

pub use labels::{Labels, METRIC_NAME};
pub use store::{
    ALWAYS_FORBIDDEN, AppendReport, DropCounts, Metadata, OpenError, OpenReport, RefusedSeries,
    STALE_NAN_BITS, SampleRef, Store, StoreConfig, StoreStats, WalOptions, WalStats, is_stale,
};
