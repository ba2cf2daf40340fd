//! Facts about this node that no endpoint reports, read from its kernel and local services:
//! which engine runs on which GPU (NVML joined to `/proc`), the engine's process tree and
//! cgroup, the node's pressure stall information, InfiniBand sysfs counters and the kubelet's
//! pod-resources socket.

pub mod cgroup;
pub mod engine_gpu;
pub mod infiniband;
pub mod kubelet;
pub mod process;
pub mod procfs;
pub mod psi;

pub use engine_gpu::{
    ENGINE_GPU_INFO, ENGINE_GPU_JOB, EngineEndpoint, EngineGpuCollector, EngineGpuLink,
    GpuProcessSource, GpuProcesses, is_local, link,
};
pub use process::{Engine, HostPaths, PROCESS_JOB, ProcessCollector, pid_listening_on};
pub use procfs::ProcSnapshot;
pub use psi::{NODE_JOB, PsiCollector};
