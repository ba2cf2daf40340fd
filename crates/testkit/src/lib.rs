//! What Strata's tests share, in one place instead of files included by path:
//!
//! - [`peer`]: real Prometheus, VictoriaMetrics and Alertmanager processes found on PATH,
//!   started on loopback with their data in a temp dir, killed on drop; a missing peer skips
//!   the test, or fails it under `STRATA_REQUIRE_PEERS=1`;
//! - [`sdk`]: the real OpenAI Python SDK as a client;
//! - [`llama`]: a real llama.cpp `llama-server` on a tiny generated model;
//! - [`live`]: real `strata sim` / `strata up` / `strata demo` processes on free ports;
//! - [`db`]: the store-backed `Query`/`Append` the rule tests evaluate against;
//! - [`prometheus`]: a real Prometheus loaded with the same points as the embedded store,
//!   for differential tests and benchmarks of the store and PromQL;
//! - [`free_port`]: a loopback port free right now.
//!
//! Test code only (`publish = false`): panics with a message are how it reports failure.

pub mod db;
pub mod live;
pub mod llama;
pub mod peer;
pub mod prometheus;
pub mod sdk;

pub use peer::free_port;
