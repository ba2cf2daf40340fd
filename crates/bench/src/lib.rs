//! Strata's load generator: `strata bench`.
//!
//! It measures what a client feels from an LLM server: TTFT, every inter-token gap, TPOT,
//! E2E and output tokens per request, with the definitions the gateway uses
//! (`docs/latency-definitions.md`), and reports percentiles, throughput and goodput
//! against an SLO.
//!
//! - [`client`]: streaming HTTP per API (OpenAI chat, OpenAI completions, TGI), SSE on
//!   raw bytes.
//! - [`measure`]: per-request timing and error classes.
//! - [`shape`]: concurrency, Poisson/gamma arrivals, sweeps.
//! - [`workload`]: prompt and output length distributions, JSONL prompts.
//! - [`run`]: drives a shape through a client.
//! - [`report`]: percentiles, throughput, goodput; table and JSON.
//! - [`progress`]: the live progress bar.
//! - [`gateway`]: the same requests' TTFT as a Strata gateway timed them, side by side.
//!
//! The crate reads no files and no environment; the binary wires it (`strata bench`).

pub mod client;
pub mod gateway;
pub mod measure;
pub mod progress;
pub mod report;
pub mod run;
pub mod shape;
pub mod workload;
