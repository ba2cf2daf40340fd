//! Strata's engine and GPU simulator: `strata sim`.
//!
//! It speaks vLLM, TGI, SGLang or llama.cpp on the wire (OpenAI-compatible streaming,
//! TGI's `/generate_stream`, each engine's error shapes and `/metrics`), runs a
//! continuous-batching scheduler over a paged KV cache with a calibrated step-cost model,
//! and serves the GPUs it runs on in the DCGM exporter's format. Scenarios break it in the
//! ways the seeds' patterns and alerts describe.
//!
//! - [`engine::Engine`]: scheduler + cost model + GPUs + metrics, driven with explicit
//!   time (no clock inside).
//! - [`server`]: the real-time HTTP servers (engine port and GPU port) and the zero-cost
//!   server for overhead benchmarks.
//! - [`virtual_time::VirtualRun`]: minutes of scrapes in milliseconds, deterministic.
//!
//! The crate reads no files and no environment; the binary wires it (`strata sim`).

pub mod clock;
pub mod config;
pub mod engine;
pub mod gpu;
pub mod metrics;
/// The seeded generator the scenarios draw from (shared with the load generator).
pub use strata_core::rng;
pub mod scenario;
pub mod scheduler;
pub mod server;
pub mod traffic;
pub mod virtual_time;

pub use config::{DcgmVersion, EngineKind, EngineVersion, SimConfig, VllmMetrics};
pub use engine::{Engine, RequestRecord};
pub use scenario::Scenario;
pub use scheduler::{FinishReason, Profile};
pub use virtual_time::{Scrape, VirtualRun};
