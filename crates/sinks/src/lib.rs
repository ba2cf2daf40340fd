//! Strata's sinks: where samples go besides the local store.
//!
//! - [`remote_write`]: Prometheus remote_write 1.0 (protobuf + snappy) with batching, retries
//!   with backoff, and a bounded on-disk queue so a receiver outage within the bound loses
//!   nothing;
//! - [`notify`]: alert notifications to Alertmanager (API v2) and JSON webhooks, with the
//!   packs' inhibitions, retries and a bounded queue.

pub mod notify;
pub mod remote_write;
