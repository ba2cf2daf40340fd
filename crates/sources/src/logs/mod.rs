//! Sources that read engine logs: NCCL's `NCCL_DEBUG` lines and PyTorch's NCCL process-group
//! errors, from files (followed across rotation), kubelet's pod log directory (CRI format) or
//! standard input, turned into bounded counters and a ring of recent events.

pub mod collector;
pub mod cri;
pub mod follow;
pub mod nccl;
pub mod ring;

pub use collector::{DEFAULT_KEPT_EVENTS, LogInput, NCCL_JOB, NcclCollector};
pub use ring::{EventLog, LoggedEvent};
