//! Collectors that read the node itself — a driver library, files under `/sys` and `/proc`,
//! log files, local sockets — instead of an HTTP endpoint. Each one is polled by the scraper
//! like any target ([`crate::scrape::HostTarget`]) and reported the same way, so `strata
//! scrape`, staleness, `up` and reloads treat NVML, InfiniBand counters or NCCL logs alike.

use crate::gpu::FieldSet;
use crate::point::Point;

/// One collection: the points read and the failures met on the way.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Collection {
    /// The points, all stamped with the collection's timestamp (canonical names, no target
    /// labels: the scraper adds `job` and `instance`).
    pub points: Vec<Point>,
    /// Failures worth telling the operator, e.g. `gpu 0 memory temperature: NotSupported`.
    /// A collector reports each one once, not on every poll.
    pub errors: Vec<String>,
}

/// A source on the node. Collections run on a blocking thread, so blocking I/O is fine.
pub trait HostCollector: Send + 'static {
    /// The `job` label of its series (`nvml`, `infiniband`, `nccl`, `process`, ...).
    fn job(&self) -> &'static str;
    /// One line for `strata scrape` and the UI: what it reads and what it found, or why it
    /// sees nothing (e.g. "not in Kubernetes") — never an error for an absent layer.
    fn status(&self) -> String;
    /// Collects once at `timestamp_ms`. `fields` is the profile's GPU field set; collectors
    /// without a reduced set ignore it.
    fn collect(&mut self, fields: FieldSet, timestamp_ms: i64) -> Collection;
}
