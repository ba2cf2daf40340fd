//! Facts about this node that no endpoint reports: which engine runs on which GPU.

pub mod engine_gpu;
pub mod procfs;

pub use engine_gpu::{
    ENGINE_GPU_INFO, ENGINE_GPU_JOB, EngineEndpoint, EngineGpuCollector, EngineGpuLink,
    GpuProcessSource, GpuProcesses, link,
};
pub use procfs::ProcSnapshot;
