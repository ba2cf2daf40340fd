//! Strata's sources: everything that produces samples.
//!
//! - [`scrape`]: the async scraper for engine and exporter `/metrics` endpoints.
//! - [`dialect`]: which engine a body comes from, and the tables that map its names onto
//!   the canonical `llm:*` / `gpu:*` vocabulary.
//! - [`gpu`]: GPU sources (DCGM exporter conventions, direct NVML).
//! - [`host`]: node collectors: engine ↔ GPU, the engine's process and cgroup, node pressure
//!   stall information, InfiniBand/RoCE ports, kubelet pod ↔ GPU.
//! - [`logs`]: NCCL failures read from engine logs.
//! - [`collector`]: the interface of sources that read the node itself (NVML, `/sys`, `/proc`,
//!   logs), polled as [`scrape::HostTarget`]s.

pub mod collector;
pub mod dialect;
pub mod gpu;
pub mod host;
pub mod logs;
pub mod point;
pub mod scrape;

pub use point::{LabelSet, Point, now_ms};
