//! Facts about this node that no endpoint reports: which engine runs on which GPU (NVML
//! joined to `/proc`), and collectors that read the node's kernel and local services
//! (InfiniBand sysfs, the kubelet's pod-resources socket).

pub mod engine_gpu;
pub mod infiniband;
pub mod kubelet;
pub mod procfs;

pub use engine_gpu::{
    ENGINE_GPU_INFO, ENGINE_GPU_JOB, EngineEndpoint, EngineGpuCollector, EngineGpuLink,
    GpuProcessSource, GpuProcesses, link,
};
pub use procfs::ProcSnapshot;
