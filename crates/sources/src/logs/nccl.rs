//! NCCL's debug lines, and PyTorch's NCCL process-group errors, as structured events.
//!
//! NCCL prints (`src/debug.cc`, `ncclDebugLogV`), one line per message:
//!
//! ```text
//! [<strftime timestamp>] <host>:<pid>:<tid> [<cudaDev>] <file>:<line> (<func>) NCCL WARN <message>
//! <host>:<pid>:<tid> [<cudaDev>] NCCL INFO <message>
//! ```
//!
//! The timestamp (`NCCL_DEBUG_TIMESTAMP_LEVELS`, WARN only by default, format
//! `NCCL_DEBUG_TIMESTAMP_FORMAT`), the `file:line` and the `(func)` depend on the NCCL
//! version and settings, so the parser anchors on ` NCCL WARN ` / ` NCCL INFO ` and reads the
//! `host:pid:tid [dev]` pair before it, whatever else surrounds it (engines prefix worker
//! output, e.g. vLLM's `(VllmWorker rank=1 pid=…)`).
//!
//! PyTorch's `ProcessGroupNCCL` reports failures without that prefix:
//! `[rank0]:[E1202 05:44:49.289443420 ProcessGroupNCCL.cpp:689] [Rank 0] Watchdog caught
//! collective operation timeout: WorkNCCL(SeqNum=2, OpType=ALLREDUCE, …) ran for 6082
//! milliseconds before timing out.` and `DistBackendError: NCCL error in: …, invalid usage
//! (…)`; those two statements are read (not the stack traces and restatements around them).
//!
//! INFO lines become events only when they describe a failure (NCCL downgrades some WARNs
//! to INFO; healthy INFO output mentions sockets and missing IB devices all the time); `Init COMPLETE` INFO lines teach which rank a `(host, pid, cudaDev)` is, so
//! later WARN lines of that process carry the rank.

use std::collections::HashMap;

/// The level of an NCCL line; PyTorch's process-group errors count as [`Level::Warn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// `NCCL WARN`: NCCL says something failed.
    Warn,
    /// `NCCL INFO`: informational, an event only when it names a failure.
    Info,
}

/// What kind of failure a line reports: the `kind` label of `nccl:events_total`, a closed
/// set so the series stay bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A collective ran past its timeout (PyTorch's watchdog, NCCL's own timeouts).
    Timeout,
    /// A bootstrap or socket connection failed or was closed.
    Socket,
    /// InfiniBand / RoCE / network plugin errors (`NET/IB`, `ibv_*`, completions with error).
    Network,
    /// A peer process died or the network dropped it (`ncclRemoteError`).
    RemoteError,
    /// `unhandled system error` (`ncclSystemError`): a system call, shared memory, a socket.
    SystemError,
    /// `unhandled cuda error` (`ncclUnhandledCudaError`): a CUDA call failed.
    CudaError,
    /// `invalid usage` / `invalid argument` / `Duplicate GPU detected`: the caller misused
    /// NCCL.
    InvalidUsage,
    /// `internal error`: an NCCL bug or an inconsistent state.
    InternalError,
    /// A WARN that matches none of the above.
    Other,
}

impl Kind {
    /// Every kind, in label order (counters start at 0 for each).
    pub const ALL: [Kind; 9] = [
        Kind::Timeout,
        Kind::Socket,
        Kind::Network,
        Kind::RemoteError,
        Kind::SystemError,
        Kind::CudaError,
        Kind::InvalidUsage,
        Kind::InternalError,
        Kind::Other,
    ];

    /// The `kind` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Timeout => "timeout",
            Kind::Socket => "socket",
            Kind::Network => "network",
            Kind::RemoteError => "remote_error",
            Kind::SystemError => "system_error",
            Kind::CudaError => "cuda_error",
            Kind::InvalidUsage => "invalid_usage",
            Kind::InternalError => "internal_error",
            Kind::Other => "other",
        }
    }
}

/// One failure read from a log line.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Event {
    /// WARN, or a failure-naming INFO.
    pub level: Level,
    /// The failure kind.
    pub kind: Kind,
    /// The host NCCL printed, when the line has one.
    pub host: Option<String>,
    /// The process id NCCL printed.
    pub pid: Option<u32>,
    /// The CUDA device index (`[N]`) NCCL printed.
    pub cuda_dev: Option<u32>,
    /// The rank: from the line (`[Rank 3]`, `rank=3`) or learnt from the process's
    /// `Init COMPLETE` line.
    pub rank: Option<u32>,
    /// The message after `NCCL WARN` (or the whole PyTorch line).
    pub message: String,
}

/// What one line says.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// A failure.
    Event(Event),
    /// A communicator finished initialising: `(host, pid, cudaDev)` is `rank`.
    Rank {
        /// NCCL's host.
        host: String,
        /// NCCL's process id.
        pid: u32,
        /// The CUDA device.
        cuda_dev: u32,
        /// The rank in that communicator.
        rank: u32,
    },
    /// Nothing of interest.
    Nothing,
}

/// The `host:pid:tid [dev]` prefix NCCL puts before its level.
struct Origin {
    host: String,
    pid: u32,
    cuda_dev: u32,
}

/// Reads `host:pid:tid [dev]` from the text before ` NCCL WARN|INFO `.
fn origin(prefix: &str) -> Option<Origin> {
    let tokens: Vec<&str> = prefix.split_whitespace().collect();
    let dev_at = tokens.iter().rposition(|t| {
        t.strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
    })?;
    let cuda_dev = tokens[dev_at].trim_matches(['[', ']']).parse().ok()?;
    let mut parts = tokens.get(dev_at.checked_sub(1)?)?.rsplitn(3, ':');
    let tid = parts.next()?;
    let pid = parts.next()?;
    let host = parts.next()?;
    tid.parse::<u32>().ok()?;
    Some(Origin {
        host: host.to_string(),
        pid: pid.parse().ok()?,
        cuda_dev,
    })
}

/// The number after `key` in `text` (`key` ends where the digits start).
fn number_after(text: &str, key: &str) -> Option<u32> {
    let at = text.find(key)? + key.len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// A rank the line itself names: PyTorch's `[Rank 3]` / `[rank3]`, vLLM's `rank=3`.
fn rank_in(line: &str) -> Option<u32> {
    number_after(line, "[Rank ")
        .or_else(|| number_after(line, "[rank"))
        .or_else(|| number_after(line, "rank="))
}

/// The failure kind a message names, `None` when it names none.
pub fn classify(message: &str) -> Option<Kind> {
    let m = message.to_ascii_lowercase();
    let any = |words: &[&str]| words.iter().any(|w| m.contains(w));
    if any(&[
        "collective operation timeout",
        "watchdog caught",
        "timeout at nccl work",
    ]) {
        return Some(Kind::Timeout);
    }
    if any(&[
        "net/ib",
        "ibv_",
        "infiniband",
        "net/plugin",
        "completion from peer",
    ]) {
        return Some(Kind::Network);
    }
    if any(&["remote process exited", "ncclremoteerror", "remote error"]) {
        return Some(Kind::RemoteError);
    }
    if any(&[
        "net/socket",
        "socket",
        "connection refused",
        "connection reset",
        "connection closed",
        "bootstrap",
    ]) {
        return Some(Kind::Socket);
    }
    if any(&["unhandled system error", "ncclsystemerror", "system error"]) {
        return Some(Kind::SystemError);
    }
    if any(&[
        "unhandled cuda error",
        "ncclunhandledcudaerror",
        "cuda failure",
        "cuda error",
    ]) {
        return Some(Kind::CudaError);
    }
    if any(&[
        "invalid usage",
        "ncclinvalidusage",
        "duplicate gpu",
        "invalid argument",
        "ncclinvalidargument",
    ]) {
        return Some(Kind::InvalidUsage);
    }
    if any(&["internal error", "ncclinternalerror"]) {
        return Some(Kind::InternalError);
    }
    if any(&["timed out", "timeout"]) {
        return Some(Kind::Timeout);
    }
    None
}

/// Words an INFO message must hold to be a failure (NCCL's healthy INFO output names
/// sockets, `NET/IB : No device found.` and `Failed to initialize NET plugin IB` while it
/// falls back to sockets, none of which is a failure).
const INFO_FAILURE_WORDS: [&str; 6] = [
    "error",
    "closed by",
    "refused",
    "reset by",
    "timed out",
    "abort",
];

/// PyTorch's process-group lines that state a failure: the watchdog's timeout (once: the
/// restatements when its thread dies are skipped) and `NCCL error` exceptions
/// (`DistBackendError: NCCL error in: …, invalid usage …`, `RuntimeError: NCCL error: …`).
fn pytorch(line: &str) -> Option<Kind> {
    if line.contains("Watchdog caught collective operation timeout") {
        return (!line.contains("terminated with exception")).then_some(Kind::Timeout);
    }
    let at = line.find("NCCL error")?;
    Some(classify(&line[at..]).unwrap_or(Kind::Other))
}

/// Reads one log line (CRI framing already removed).
pub fn parse(line: &str) -> Parsed {
    for (marker, level) in [(" NCCL WARN ", Level::Warn), (" NCCL INFO ", Level::Info)] {
        let Some(at) = line.find(marker) else {
            continue;
        };
        let message = line[at + marker.len()..].trim();
        let origin = origin(&line[..at]);
        let kind = match level {
            Level::Warn => classify(message).unwrap_or(Kind::Other),
            Level::Info => {
                if message.ends_with("Init COMPLETE")
                    && let (Some(o), Some(rank)) = (&origin, number_after(message, " rank "))
                {
                    return Parsed::Rank {
                        host: o.host.clone(),
                        pid: o.pid,
                        cuda_dev: o.cuda_dev,
                        rank,
                    };
                }
                let lower = message.to_ascii_lowercase();
                // Settings echo their names (`NCCL_IB_TIMEOUT set by environment to 22`).
                if lower.contains(" set by environment to ")
                    || !INFO_FAILURE_WORDS.iter().any(|w| lower.contains(w))
                {
                    return Parsed::Nothing;
                }
                match classify(message) {
                    Some(k) => k,
                    None => return Parsed::Nothing,
                }
            }
        };
        return Parsed::Event(Event {
            level,
            kind,
            host: origin.as_ref().map(|o| o.host.clone()),
            pid: origin.as_ref().map(|o| o.pid),
            cuda_dev: origin.as_ref().map(|o| o.cuda_dev),
            rank: rank_in(&line[..at]),
            message: message.to_string(),
        });
    }
    match pytorch(line) {
        Some(kind) => Parsed::Event(Event {
            level: Level::Warn,
            kind,
            host: None,
            pid: None,
            cuda_dev: None,
            rank: rank_in(line),
            message: line.trim().to_string(),
        }),
        None => Parsed::Nothing,
    }
}

/// At most this many `(host, pid, cudaDev)` → rank entries are remembered.
const MAX_RANKS: usize = 4096;

/// Reads lines one after another, remembering ranks from `Init COMPLETE` lines so that later
/// WARNs of the same process and device carry them.
#[derive(Debug, Default)]
pub struct Parser {
    ranks: HashMap<(String, u32, u32), u32>,
}

impl Parser {
    /// The event on `line`, if it reports a failure.
    pub fn line(&mut self, line: &str) -> Option<Event> {
        match parse(line) {
            Parsed::Event(mut e) => {
                if e.rank.is_none()
                    && let (Some(h), Some(p), Some(d)) = (&e.host, e.pid, e.cuda_dev)
                {
                    e.rank = self.ranks.get(&(h.clone(), p, d)).copied();
                }
                Some(e)
            }
            Parsed::Rank {
                host,
                pid,
                cuda_dev,
                rank,
            } => {
                if self.ranks.len() >= MAX_RANKS {
                    self.ranks.clear();
                }
                self.ranks.insert((host, pid, cuda_dev), rank);
                None
            }
            Parsed::Nothing => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(line: &str) -> Event {
        match parse(line) {
            Parsed::Event(e) => e,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn warn_with_timestamp_file_and_function() {
        let e = event(
            "[2025-03-04 10:11:12] gpu-node-1:4242:4301 [3] transport/net_ib.cc:1696 (ncclIbTest) NCCL WARN NET/IB : Got completion from peer 10.0.0.2<40531> with status=12 opcode=0 len=0 vendor err 129 (Recv) localGid ::ffff:10.0.0.1 remoteGidsfe80::",
        );
        assert_eq!(e.level, Level::Warn);
        assert_eq!(e.kind, Kind::Network);
        assert_eq!(e.host.as_deref(), Some("gpu-node-1"));
        assert_eq!((e.pid, e.cuda_dev), (Some(4242), Some(3)));
        assert!(e.message.starts_with("NET/IB : Got completion"));
    }

    #[test]
    fn old_style_warn_and_unclassified_warn() {
        let e = event("node7:100:200 [0] NCCL WARN Cuda failure 'out of memory'");
        assert_eq!((e.kind, e.cuda_dev), (Kind::CudaError, Some(0)));
        let e = event("node7:100:200 [1] misc/foo.cc:12 NCCL WARN something odd happened");
        assert_eq!(e.kind, Kind::Other);
    }

    #[test]
    fn info_lines_count_only_when_they_name_a_failure() {
        assert_eq!(
            parse("node7:100:200 [0] NCCL INFO Channel 00/02 :    0   1"),
            Parsed::Nothing
        );
        assert_eq!(
            parse("node7:100:200 [0] NCCL INFO NCCL_IB_TIMEOUT set by environment to 22."),
            Parsed::Nothing
        );
        let e = event(
            "node7:100:200 [0] NCCL INFO socketProgress: Connection closed by remote peer node8<51234>",
        );
        assert_eq!((e.level, e.kind), (Level::Info, Kind::Socket));
    }

    #[test]
    fn rank_is_learnt_from_init_complete() {
        let mut p = Parser::default();
        assert!(p.line("node7:100:200 [1] NCCL INFO comm 0x55d0c2a0 rank 5 nranks 8 cudaDev 1 nvmlDev 1 busId 2a000 commId 0x9d3c2b - Init COMPLETE").is_none());
        let e = p
            .line("node7:100:211 [1] enqueue.cc:1521 NCCL WARN Call to connect returned Connection refused, retrying")
            .expect("event");
        assert_eq!((e.kind, e.rank), (Kind::Socket, Some(5)));
        // Another process on the same device is not that rank.
        let e = p
            .line("node7:101:211 [1] NCCL WARN Call to connect returned Connection refused")
            .expect("event");
        assert_eq!(e.rank, None);
    }

    #[test]
    fn pytorch_watchdog_timeout_and_process_group_errors() {
        let e = event(
            "[rank3]:[E1120 10:05:01.123456 8841 torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp:616] [Rank 3] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=7, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=600000) ran for 600056 milliseconds before timing out.",
        );
        assert_eq!((e.kind, e.rank), (Kind::Timeout, Some(3)));
        let e = event(
            "torch.distributed.DistBackendError: NCCL error in: ../torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp:1970, unhandled system error (run with NCCL_DEBUG=INFO for details), NCCL version 2.21.5",
        );
        assert_eq!(e.kind, Kind::SystemError);
        let e =
            event("RuntimeError: NCCL error: invalid usage (run with NCCL_DEBUG=WARN for details)");
        assert_eq!(e.kind, Kind::InvalidUsage);
        let e = event(
            "RuntimeError: NCCL error: unhandled cuda error (run with NCCL_DEBUG=INFO for details)",
        );
        assert_eq!(e.kind, Kind::CudaError);
    }

    #[test]
    fn engine_prefixes_and_plain_lines() {
        let e = event(
            "(VllmWorker rank=1 pid=3312) gpu-a:3312:3390 [1] NCCL WARN NCCL_SOCKET_IFNAME set to eth9 but no interface found",
        );
        assert_eq!((e.rank, e.pid, e.kind), (Some(1), Some(3312), Kind::Socket));
        assert_eq!(
            parse("INFO 03-04 10:11:12 engine.py:300 Added request"),
            Parsed::Nothing
        );
        assert_eq!(parse(""), Parsed::Nothing);
        // A WARN without NCCL's prefix still counts, without an origin.
        let e = event("x NCCL WARN unhandled system error");
        assert_eq!(
            (e.kind, e.host, e.cuda_dev),
            (Kind::SystemError, None, None)
        );
    }
}
