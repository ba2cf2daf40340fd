//! A process's cgroup v2: its CPU limit and throttling, memory use and limit, OOM kills and
//! memory pressure, read from the unified hierarchy as the kernel documents it
//! (Documentation/admin-guide/cgroup-v2.rst):
//!
//! - `/proc/<pid>/cgroup`: `0::/kubepods.slice/…/cri-containerd-….scope` (v2's single line);
//! - `cpu.stat`: `usage_usec`, `nr_periods`, `nr_throttled`, `throttled_usec`, … one
//!   `key value` per line;
//! - `cpu.max`: `<quota|max> <period>` in microseconds;
//! - `memory.current`, `memory.max` (`max` = unlimited);
//! - `memory.events`: `low`, `high`, `max`, `oom`, `oom_kill`, … one `key value` per line;
//! - `memory.pressure`: PSI lines ([`super::psi`]).

use std::io;
use std::path::{Path, PathBuf};

use super::psi;

/// The cgroup v2 directory of `pid` below `cgroup_root` (usually `/sys/fs/cgroup`, or its
/// `unified/` on a hybrid v1/v2 host), from `<proc_root>/<pid>/cgroup`. `None` when no v2
/// hierarchy is mounted there (a cgroup v1 host) or the process is gone.
pub fn cgroup_dir(proc_root: &Path, cgroup_root: &Path, pid: u32) -> Option<PathBuf> {
    let base = [cgroup_root.to_path_buf(), cgroup_root.join("unified")]
        .into_iter()
        .find(|b| b.join("cgroup.controllers").is_file())?;
    let text = std::fs::read_to_string(proc_root.join(pid.to_string()).join("cgroup")).ok()?;
    let rel = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(base.join(rel.trim().trim_start_matches('/')))
}

/// What one cgroup reports; a file the cgroup does not have (a controller not enabled)
/// leaves its fields `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CgroupStats {
    /// `cpu.stat` `nr_periods`: enforcement periods elapsed with the limit active.
    pub cpu_periods: Option<u64>,
    /// `cpu.stat` `nr_throttled`: periods in which the group ran out of quota.
    pub cpu_throttled_periods: Option<u64>,
    /// `cpu.stat` `throttled_usec`: time the group was held back.
    pub cpu_throttled_usec: Option<u64>,
    /// `cpu.max` quota / period, in cores; `None` when unlimited (`max`).
    pub cpu_limit_cores: Option<f64>,
    /// `memory.current`, bytes.
    pub memory_bytes: Option<u64>,
    /// `memory.max`, bytes; `None` when unlimited.
    pub memory_limit_bytes: Option<u64>,
    /// `memory.events` `oom_kill`: processes the OOM killer ended in this group.
    pub oom_kills: Option<u64>,
    /// `memory.pressure` `some` total, microseconds.
    pub memory_pressure_usec: Option<u64>,
}

/// `key value` lines (`cpu.stat`, `memory.events`) as a lookup.
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// Reads `name` in `dir`; a missing file is `Ok(None)` (controller not enabled).
fn read_opt(dir: &Path, name: &str) -> io::Result<Option<String>> {
    match std::fs::read_to_string(dir.join(name)) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("{}: {e}", dir.join(name).display()),
        )),
    }
}

/// `cpu.max`'s quota / period in cores; `None` for `max` or a malformed file.
pub fn cpu_limit_cores(text: &str) -> Option<f64> {
    let mut f = text.split_whitespace();
    let quota: f64 = f.next()?.parse().ok()?;
    let period: f64 = f.next().unwrap_or("100000").parse().ok()?;
    (period > 0.0).then(|| quota / period)
}

/// Reads the cgroup at `dir`.
pub fn read(dir: &Path) -> io::Result<CgroupStats> {
    if !dir.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "{}: no such cgroup (is /sys/fs/cgroup the cgroup v2 hierarchy?)",
                dir.display()
            ),
        ));
    }
    let mut s = CgroupStats::default();
    if let Some(t) = read_opt(dir, "cpu.stat")? {
        s.cpu_periods = keyed(&t, "nr_periods");
        s.cpu_throttled_periods = keyed(&t, "nr_throttled");
        s.cpu_throttled_usec = keyed(&t, "throttled_usec");
    }
    if let Some(t) = read_opt(dir, "cpu.max")? {
        s.cpu_limit_cores = cpu_limit_cores(&t);
    }
    if let Some(t) = read_opt(dir, "memory.current")? {
        s.memory_bytes = t.trim().parse().ok();
    }
    if let Some(t) = read_opt(dir, "memory.max")? {
        s.memory_limit_bytes = t.trim().parse().ok();
    }
    if let Some(t) = read_opt(dir, "memory.events")? {
        s.oom_kills = keyed(&t, "oom_kill");
    }
    if let Some(t) = read_opt(dir, "memory.pressure")? {
        s.memory_pressure_usec = psi::parse(&t).ok().map(|p| p.some.total_usec);
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_max_in_cores() {
        assert_eq!(cpu_limit_cores("200000 100000\n"), Some(2.0));
        assert_eq!(cpu_limit_cores("50000 100000"), Some(0.5));
        assert_eq!(cpu_limit_cores("max 100000"), None);
        assert_eq!(cpu_limit_cores(""), None);
    }

    #[test]
    fn keyed_lines() {
        let t = "usage_usec 100\nnr_periods 7\nnr_throttled 3\n";
        assert_eq!(keyed(t, "nr_periods"), Some(7));
        assert_eq!(keyed(t, "nr_throttled"), Some(3));
        assert_eq!(keyed(t, "throttled_usec"), None);
    }
}
