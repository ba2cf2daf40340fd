//! Sources that read the node itself through `/proc` and `/sys`: the engine's process tree
//! and cgroup, and the node's pressure stall information.

pub mod cgroup;
pub mod process;
pub mod psi;

pub use process::{Engine, HostPaths, PROCESS_JOB, ProcessCollector, pid_listening_on};
pub use psi::{NODE_JOB, PsiCollector};
