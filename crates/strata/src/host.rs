//! Facts about this machine the binary reads (libraries never read the environment).

/// This machine's hostname (`/proc/sys/kernel/hostname`, else `$HOSTNAME`, else "localhost").
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "localhost".to_string())
}
