//! Collectors that read this node's kernel and local services (sysfs, the kubelet socket).

pub mod infiniband;
pub mod kubelet;
