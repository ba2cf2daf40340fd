//! The engine's process tree and its cgroup: CPU, resident memory, threads and open files of
//! the engine and every process it started (vLLM's and SGLang's workers are children), and
//! the cgroup's CPU throttling, memory and OOM kills ([`super::cgroup`]).
//!
//! Read from `/proc` as proc(5) documents it: `/proc/<pid>/stat` (utime, stime,
//! num_threads, ppid — after the parenthesised command name, which may hold spaces),
//! `/proc/<pid>/status` (`VmRSS:`), `/proc/<pid>/fd/` (one entry per open file), and
//! `/proc/net/tcp{,6}` to find the process listening on the engine's port.
//!
//! Series (`job="process"`, one set per engine, label `engine_instance`):
//!
//! | series | from |
//! |---|---|
//! | `proc:cpu_seconds_total` | Σ (utime + stime) / USER_HZ over the tree |
//! | `proc:resident_memory_bytes` | Σ `VmRSS` |
//! | `proc:threads` | Σ `num_threads` |
//! | `proc:open_fds` | Σ entries of `fd/` |
//! | `proc:processes` | processes in the tree |
//! | `proc:cgroup_cpu_periods_total`, `proc:cgroup_cpu_throttled_periods_total` | `cpu.stat` |
//! | `proc:cgroup_cpu_throttled_seconds_total` | `cpu.stat` `throttled_usec` / 10⁶ |
//! | `proc:cgroup_cpu_limit_cores` | `cpu.max` (absent when unlimited) |
//! | `proc:cgroup_memory_bytes`, `proc:cgroup_memory_limit_bytes` | `memory.current`, `memory.max` |
//! | `proc:cgroup_oom_kills_total` | `memory.events` `oom_kill` |
//! | `proc:cgroup_memory_pressure_seconds_total` | `memory.pressure` `some` total / 10⁶ |

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};

use super::cgroup;
use crate::collector::{Collection, HostCollector};
use crate::gpu::FieldSet;
use crate::point::Point;

/// The `job` label of engine process series.
pub const PROCESS_JOB: &str = "process";

/// Clock ticks per second of `/proc/<pid>/stat` times. The kernel reports them in USER_HZ,
/// which is 100 on every architecture Linux exposes to user space (x86, arm64, ppc64, s390).
pub const USER_HZ: f64 = 100.0;

/// Where the kernel's trees are mounted (tests point them at fixtures).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPaths {
    /// procfs, normally `/proc`.
    pub proc: PathBuf,
    /// The cgroup v2 hierarchy, normally `/sys/fs/cgroup`.
    pub cgroup: PathBuf,
}

impl Default for HostPaths {
    fn default() -> HostPaths {
        HostPaths {
            proc: PathBuf::from("/proc"),
            cgroup: PathBuf::from("/sys/fs/cgroup"),
        }
    }
}

/// The socket inodes listening on TCP `port` in a `/proc/net/tcp` or `tcp6` table.
fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    const LISTEN: &str = "0A";
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let local = f.get(1)?;
            let (_, hex_port) = local.rsplit_once(':')?;
            let p = u16::from_str_radix(hex_port, 16).ok()?;
            (p == port && *f.get(3)? == LISTEN).then(|| f.get(9)?.parse().ok())?
        })
        .filter(|&inode| inode != 0)
        .collect()
}

/// The process listening on TCP `port` (this network namespace's `/proc/net/tcp` and
/// `tcp6`), found by matching the socket inode against every `/proc/<pid>/fd/*` link.
/// When several processes hold the socket (a fork), the lowest pid (the parent) wins.
/// `None` when nothing listens there or the owning process cannot be read (another user's
/// process without CAP_SYS_PTRACE).
pub fn pid_listening_on(proc_root: &Path, port: u16) -> Option<u32> {
    let mut inodes = HashSet::new();
    for table in ["net/tcp", "net/tcp6"] {
        if let Ok(t) = std::fs::read_to_string(proc_root.join(table)) {
            inodes.extend(listening_inodes(&t, port));
        }
    }
    if inodes.is_empty() {
        return None;
    }
    let mut owners: Vec<u32> = Vec::new();
    for pid in pids(proc_root) {
        let Ok(fds) = std::fs::read_dir(proc_root.join(pid.to_string()).join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|target| {
                let t = target.to_string_lossy();
                t.strip_prefix("socket:[")
                    .and_then(|r| r.strip_suffix(']'))
                    .and_then(|n| n.parse::<u64>().ok())
                    .is_some_and(|n| inodes.contains(&n))
            })
        });
        if holds {
            owners.push(pid);
        }
    }
    owners.into_iter().min()
}

/// Every numeric entry of `proc_root`.
fn pids(proc_root: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir(proc_root) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// The fields of `/proc/<pid>/stat` Strata uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Parent process id (field 4).
    pub ppid: u32,
    /// User-mode CPU time, clock ticks (field 14).
    pub utime: u64,
    /// Kernel-mode CPU time, clock ticks (field 15).
    pub stime: u64,
    /// Threads (field 20).
    pub threads: u64,
}

/// Parses `/proc/<pid>/stat`; the command name (field 2) may hold spaces and parentheses,
/// so fields are counted from its last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let after = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // f[0] is field 3 (state).
    Some(Stat {
        ppid: f.get(1)?.parse().ok()?,
        utime: f.get(11)?.parse().ok()?,
        stime: f.get(12)?.parse().ok()?,
        threads: f.get(17)?.parse().ok()?,
    })
}

/// `VmRSS` of `/proc/<pid>/status`, bytes (kernel threads have none).
pub fn parse_rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// What the engine's process tree uses.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TreeUsage {
    /// Processes in the tree (the root included).
    pub processes: u64,
    /// CPU time, seconds.
    pub cpu_seconds: f64,
    /// Resident memory, bytes.
    pub rss_bytes: u64,
    /// Threads.
    pub threads: u64,
    /// Open file descriptors (those readable: another user's need CAP_SYS_PTRACE).
    pub open_fds: u64,
}

/// The usage of `root` and all its descendants.
pub fn tree_usage(proc_root: &Path, root: u32) -> io::Result<TreeUsage> {
    let read_stat = |pid: u32| -> Option<Stat> {
        parse_stat(&std::fs::read_to_string(proc_root.join(pid.to_string()).join("stat")).ok()?)
    };
    let root_stat = read_stat(root).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "process {root} is gone or unreadable ({}/{root}/stat)",
                proc_root.display()
            ),
        )
    })?;
    let mut stats: HashMap<u32, Stat> = HashMap::new();
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for pid in pids(proc_root) {
        if let Some(s) = read_stat(pid) {
            children.entry(s.ppid).or_default().push(pid);
            stats.insert(pid, s);
        }
    }
    stats.insert(root, root_stat);
    let mut usage = TreeUsage::default();
    let mut todo = vec![root];
    let mut seen = HashSet::new();
    while let Some(pid) = todo.pop() {
        if !seen.insert(pid) {
            continue;
        }
        let Some(s) = stats.get(&pid) else { continue };
        let dir = proc_root.join(pid.to_string());
        usage.processes += 1;
        usage.cpu_seconds += (s.utime + s.stime) as f64 / USER_HZ;
        usage.threads += s.threads;
        usage.rss_bytes += std::fs::read_to_string(dir.join("status"))
            .ok()
            .and_then(|t| parse_rss_bytes(&t))
            .unwrap_or(0);
        usage.open_fds += std::fs::read_dir(dir.join("fd")).map_or(0, |d| d.count() as u64);
        todo.extend(children.get(&pid).into_iter().flatten().copied());
    }
    Ok(usage)
}

/// How to find the engine's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// The process listening on this TCP port (looked up again when it goes away).
    Port(u16),
    /// A fixed process id.
    Pid(u32),
}

/// The engine's process tree and cgroup as `proc:*` series.
pub struct ProcessCollector {
    paths: HostPaths,
    engine: Engine,
    instance: String,
    pid: Option<u32>,
    last: String,
    reported: HashSet<String>,
}

impl ProcessCollector {
    /// Watches `engine`; its series carry `engine_instance = instance` (the engine target's
    /// `host:port`, so they join the engine's `llm:*` series).
    pub fn new(paths: HostPaths, engine: Engine, instance: String) -> ProcessCollector {
        ProcessCollector {
            paths,
            engine,
            instance,
            pid: None,
            last: "not read yet".to_string(),
            reported: HashSet::new(),
        }
    }

    fn report(&mut self, errors: &mut Vec<String>, msg: String) {
        if self.reported.insert(msg.clone()) {
            errors.push(msg);
        }
    }
}

impl HostCollector for ProcessCollector {
    fn job(&self) -> &'static str {
        PROCESS_JOB
    }

    fn status(&self) -> String {
        format!("engine {}: {}", self.instance, self.last)
    }

    fn collect(&mut self, _fields: FieldSet, timestamp_ms: i64) -> Collection {
        let mut out = Collection::default();
        let proc_root = self.paths.proc.clone();
        let mut usage = None;
        for attempt in 0..2 {
            if self.pid.is_none() {
                self.pid = match self.engine {
                    Engine::Pid(p) => Some(p),
                    Engine::Port(port) => pid_listening_on(&proc_root, port),
                };
            }
            let Some(pid) = self.pid else { break };
            match tree_usage(&proc_root, pid) {
                Ok(u) => {
                    usage = Some((pid, u));
                    break;
                }
                // The engine restarted: look its pid up again, once.
                Err(_) if attempt == 0 && matches!(self.engine, Engine::Port(_)) => {
                    self.pid = None;
                }
                Err(e) => {
                    self.report(&mut out.errors, e.to_string());
                    break;
                }
            }
        }
        let Some((pid, u)) = usage else {
            self.last = match self.engine {
                Engine::Port(p) => format!(
                    "no readable process listens on port {p} (engine down, in another network namespace, or run Strata as the engine's user)"
                ),
                Engine::Pid(p) => format!("process {p} is gone"),
            };
            return out;
        };
        let labels = vec![("engine_instance".to_string(), self.instance.clone())];
        let mut push = |name: &str, value: Option<f64>| {
            if let Some(v) = value {
                out.points
                    .push(Point::new(name, labels.clone(), v, timestamp_ms));
            }
        };
        push("proc:cpu_seconds_total", Some(u.cpu_seconds));
        push("proc:resident_memory_bytes", Some(u.rss_bytes as f64));
        push("proc:threads", Some(u.threads as f64));
        push("proc:open_fds", Some(u.open_fds as f64));
        push("proc:processes", Some(u.processes as f64));
        let cg = cgroup::cgroup_dir(&proc_root, &self.paths.cgroup, pid)
            .ok_or_else(|| {
                format!("process {pid}: no cgroup v2 hierarchy or entry (a cgroup v1 host: no CPU throttling or OOM series)")
            })
            .and_then(|dir| cgroup::read(&dir).map_err(|e| e.to_string()));
        let secs = |usec: Option<u64>| usec.map(|u| u as f64 / 1e6);
        let num = |v: Option<u64>| v.map(|v| v as f64);
        let cg_note = match cg {
            Ok(s) => {
                push("proc:cgroup_cpu_periods_total", num(s.cpu_periods));
                push(
                    "proc:cgroup_cpu_throttled_periods_total",
                    num(s.cpu_throttled_periods),
                );
                push(
                    "proc:cgroup_cpu_throttled_seconds_total",
                    secs(s.cpu_throttled_usec),
                );
                push("proc:cgroup_cpu_limit_cores", s.cpu_limit_cores);
                push("proc:cgroup_memory_bytes", num(s.memory_bytes));
                push("proc:cgroup_memory_limit_bytes", num(s.memory_limit_bytes));
                push("proc:cgroup_oom_kills_total", num(s.oom_kills));
                push(
                    "proc:cgroup_memory_pressure_seconds_total",
                    secs(s.memory_pressure_usec),
                );
                match (s.cpu_limit_cores, s.cpu_periods) {
                    (Some(c), _) => format!("cgroup CPU limit {c} cores"),
                    (None, Some(_)) => "cgroup without CPU limit".to_string(),
                    (None, None) => "cgroup CPU controller not enabled".to_string(),
                }
            }
            Err(e) => {
                self.report(&mut out.errors, e);
                "cgroup not readable".to_string()
            }
        };
        self.last = format!(
            "pid {pid}, {} process(es), {} threads, {:.0} MiB resident; {cg_note}",
            u.processes,
            u.threads,
            u.rss_bytes as f64 / (1024.0 * 1024.0)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_and_parentheses_in_the_name() {
        let s = parse_stat("4242 (python3 (vllm) x) S 1 4242 4242 0 -1 4194560 123 0 0 0 1500 250 0 0 20 0 57 0 1000 123456789 4567 18446744073709551615 1 1 0 0 0 0 0 16781312 16386 0 0 0 17 3 0 0 0 0 0").expect("stat");
        assert_eq!(
            s,
            Stat {
                ppid: 1,
                utime: 1500,
                stime: 250,
                threads: 57
            }
        );
        assert!(parse_stat("12 (x) S").is_none());
    }

    #[test]
    fn listening_sockets_by_port() {
        let t = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 777 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:1F40 0100007F:A1B2 01 00000000:00000000 00:00000000 00000000  1000        0 778 1 0000000000000000 20 4 30 10 -1\n";
        assert_eq!(listening_inodes(t, 8000), [777]);
        assert!(listening_inodes(t, 8080).is_empty());
    }
}
