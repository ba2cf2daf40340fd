//! Strata's embedded time-series store and PromQL evaluator.
//!
//! [`Store`] keeps a bounded history of every series Strata scrapes (Gorilla-compressed
//! chunks, retention by time and bytes, a cardinality guard, snapshots, an optional
//! write-ahead log); [`promql::Engine`] evaluates the same rule and dashboard queries
//! Prometheus would, over that store, with Prometheus 3.x semantics (range windows are
//! left-open: `(t - range, t]`). The crate reads no config files or environment; callers pass
//! plain structs ([`StoreConfig`], [`WalOptions`], [`promql::EngineConfig`]).
//!
//! Users: the rule engine, the Prometheus HTTP API and `strata up`.
//!
//! # Storing and reading samples
//!
//! ```
//! use std::sync::Arc;
//! use tsdb::promql::{Engine, EngineConfig, Value};
//! use tsdb::{Metadata, SampleRef, Store, StoreConfig};
//!
//! let (store, _warning) = Store::open(StoreConfig::default());
//! let labels = vec![("model".to_string(), "llama".to_string())];
//! for (t_ms, value) in [(0, 0.0), (15_000, 30.0), (30_000, 60.0)] {
//!     let report = store.append("vllm-0", [SampleRef { name: "tokens_total", labels: &labels, t_ms, value }]);
//!     assert_eq!(report.appended, 1);
//! }
//! // Older or equal timestamps are refused and counted, never stored.
//! let late = store.append("vllm-0", [SampleRef { name: "tokens_total", labels: &labels, t_ms: 15_000, value: 1.0 }]);
//! assert_eq!(late.out_of_order, 1);
//! store.set_metadata("tokens_total", Metadata { kind: "counter".into(), help: "Tokens.".into(), unit: String::new() });
//!
//! let engine = Engine::new(Arc::new(store), EngineConfig::default());
//! let Ok(Value::Vector(v)) = engine.instant("max_over_time(tokens_total[1m])", 30_000) else { panic!() };
//! assert_eq!(v[0].v, 60.0);
//! ```
//!
//! Series carrying `request_id`, `user_id` or `session_id` (and any label in
//! [`StoreConfig::forbidden_labels`]) are refused, as are series beyond `max_series` or
//! `max_series_per_metric`; each refusal is reported in [`AppendReport::refused`] with the
//! metric, the source and a reason that names the fix, and counted in [`DropCounts`].
//!
//! # Surviving restarts
//!
//! [`Store::open_durable`] keeps the store in a data directory: a write-ahead log of every
//! append (flushed every [`WalOptions::flush_interval`], 1 s by default) plus a checkpoint
//! written by [`Store::snapshot`]. Call `snapshot()` every few minutes (it also deletes the
//! log segments it covers) and `snapshot()` then [`Store::close`] at shutdown. A store without
//! a directory ([`Store::open`]) can still snapshot to [`StoreConfig::snapshot_path`].
//!
//! # Concurrency
//!
//! `Store` is `Send + Sync`; share it as `Arc<Store>`. Appends are serialised among
//! themselves; queries never hold a lock while decoding, so a long range query does not
//! delay scrapes (see the `append_under_query` bench).

pub mod chunk;
pub mod exemplars;
mod labels;
pub mod promql;
mod spread;
mod store;

pub use labels::{Labels, METRIC_NAME};
pub use store::{
    ALWAYS_FORBIDDEN, AppendReport, DropCounts, Metadata, OpenError, OpenReport, RefusedSeries,
    STALE_NAN_BITS, SampleRef, SeriesRefs, Store, StoreConfig, StoreStats, WalOptions, WalStats,
    is_stale,
};
