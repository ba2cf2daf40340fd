//! What `/proc` says about listening sockets and the process tree, read once into plain data
//! so the engine↔GPU join can be tested against a fake tree.

use std::collections::HashMap;
use std::path::Path;

/// `st` of a listening socket in `/proc/net/tcp{,6}`.
const TCP_LISTEN: &str = "0A";

/// One snapshot of `/proc`: who listens where, who holds which socket, who is whose parent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcSnapshot {
    /// Listening TCP port → socket inodes (IPv4 and IPv6).
    pub listening: HashMap<u16, Vec<u64>>,
    /// Socket inode → pids holding it open.
    pub socket_owners: HashMap<u64, Vec<u32>>,
    /// Pid → parent pid.
    pub parents: HashMap<u32, u32>,
    /// Processes whose fds could not be read (another user's, without privileges).
    pub unreadable: usize,
}

impl ProcSnapshot {
    /// Reads `root` (normally `/proc`): the listening sockets on `ports`, the pids holding
    /// them, and every process's parent. Missing files count as absent, never as errors:
    /// processes come and go while the tree is read.
    pub fn read(root: &Path, ports: &[u16]) -> std::io::Result<ProcSnapshot> {
        let mut snap = ProcSnapshot::default();
        for file in ["net/tcp", "net/tcp6"] {
            if let Ok(text) = std::fs::read_to_string(root.join(file)) {
                for (port, inode) in listening_sockets(&text) {
                    if ports.contains(&port) {
                        snap.listening.entry(port).or_default().push(inode);
                    }
                }
            }
        }
        let wanted: Vec<u64> = snap.listening.values().flatten().copied().collect();
        for entry in std::fs::read_dir(root)? {
            let Ok(entry) = entry else { continue };
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let dir = entry.path();
            if let Some(ppid) = std::fs::read_to_string(dir.join("stat"))
                .ok()
                .and_then(|s| parent_of(&s))
            {
                snap.parents.insert(pid, ppid);
            }
            if wanted.is_empty() {
                continue;
            }
            let Ok(fds) = std::fs::read_dir(dir.join("fd")) else {
                snap.unreadable += 1;
                continue;
            };
            for fd in fds.flatten() {
                let Ok(target) = std::fs::read_link(fd.path()) else {
                    continue;
                };
                if let Some(inode) = socket_inode(&target.to_string_lossy())
                    && wanted.contains(&inode)
                {
                    let owners = snap.socket_owners.entry(inode).or_default();
                    if !owners.contains(&pid) {
                        owners.push(pid);
                    }
                }
            }
        }
        Ok(snap)
    }

    /// The pids holding a socket that listens on `port`.
    pub fn listeners(&self, port: u16) -> Vec<u32> {
        let mut pids: Vec<u32> = self
            .listening
            .get(&port)
            .into_iter()
            .flatten()
            .filter_map(|inode| self.socket_owners.get(inode))
            .flatten()
            .copied()
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// True when `pid` is `ancestor` or one of its descendants.
    pub fn descends_from(&self, pid: u32, ancestor: u32) -> bool {
        let mut at = pid;
        // A bounded walk: a malformed tree (a cycle) must not hang the collector.
        for _ in 0..MAX_DEPTH {
            if at == ancestor {
                return true;
            }
            match self.parents.get(&at) {
                Some(&p) if p != at && p != 0 => at = p,
                _ => return false,
            }
        }
        false
    }

    /// The `k`-th ancestor of `pid` (1 = parent), unless it is init (pid 1) or unknown.
    pub fn ancestor(&self, pid: u32, k: usize) -> Option<u32> {
        let mut at = pid;
        for _ in 0..k {
            at = *self.parents.get(&at)?;
        }
        (at > 1).then_some(at)
    }
}

/// Longest parent chain followed.
const MAX_DEPTH: usize = 256;

/// `(port, inode)` of every listening socket in a `/proc/net/tcp{,6}` text.
pub fn listening_sockets(text: &str) -> Vec<(u16, u64)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != TCP_LISTEN {
                return None;
            }
            let port = u16::from_str_radix(f[1].rsplit(':').next()?, 16).ok()?;
            let inode = f[9].parse().ok()?;
            (inode != 0).then_some((port, inode))
        })
        .collect()
}

/// The inode of an fd link target `socket:[12345]`.
fn socket_inode(target: &str) -> Option<u64> {
    target
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The parent pid in a `/proc/<pid>/stat` text (the command name may hold spaces and
/// parentheses, so fields are counted after the last `)`).
fn parent_of(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F40 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 4343 1 0000000000000000 20 4 30 10 -1
   2: 00000000:7530 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 99 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn only_listening_sockets_are_kept() {
        assert_eq!(listening_sockets(TCP), vec![(8000, 4242), (30000, 99)]);
    }

    #[test]
    fn stat_with_odd_command_names() {
        assert_eq!(parent_of("12 (python3) S 7 12 12 0"), Some(7));
        assert_eq!(parent_of("12 (a) b (c)) R 99 12 12 0"), Some(99));
        assert_eq!(parent_of("garbage"), None);
    }

    #[test]
    fn socket_links() {
        assert_eq!(socket_inode("socket:[4242]"), Some(4242));
        assert_eq!(socket_inode("pipe:[4242]"), None);
        assert_eq!(socket_inode("/dev/null"), None);
    }

    #[test]
    fn cyclic_tree_does_not_hang() {
        let snap = ProcSnapshot {
            parents: HashMap::from([(5, 6), (6, 5)]),
            ..ProcSnapshot::default()
        };
        assert!(!snap.descends_from(5, 9));
        assert!(snap.descends_from(5, 6));
    }
}
