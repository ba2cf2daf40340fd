//! NVML collector (being written).
