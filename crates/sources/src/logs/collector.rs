//! The NCCL log collector: follows log files, a kubelet pod log directory or standard input,
//! counts NCCL failures by kind (`nccl:events_total`) and keeps the latest lines as evidence.
//!
//! Series (bounded labels only: the failure `kind` and where the lines came from, never a
//! per-line value; rank, device and host stay in the kept events):
//!
//! | series | labels |
//! |---|---|
//! | `nccl:events_total` | `kind` + `source` (a file, `-`) or `namespace`, `pod`, `container` |
//! | `nccl:log_lines_total` | the same, without `kind` |

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, TrySendError, sync_channel};

use super::cri::Joiner;
use super::follow::{Follower, Start};
use super::nccl::{Kind, Parser};
use super::ring::{EventLog, LoggedEvent};
use crate::collector::{Collection, HostCollector};
use crate::gpu::FieldSet;
use crate::point::{LabelSet, Point};

/// The `job` label of NCCL log series.
pub const NCCL_JOB: &str = "nccl";

/// Events kept as evidence by default.
pub const DEFAULT_KEPT_EVENTS: usize = 200;

/// At most this many files are followed under pod log roots; more are reported and skipped.
const MAX_FILES: usize = 1024;

/// Lines buffered from standard input between two collections; the reader waits when full
/// (the writer is slowed, nothing is lost).
const STDIN_BUFFER: usize = 65_536;

/// Where NCCL lines come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogInput {
    /// One file, followed across rotation.
    File(PathBuf),
    /// A kubelet pod log root (`/var/log/pods`): every
    /// `<namespace>_<pod>_<uid>/<container>/<n>.log` below it, CRI-framed.
    PodLogs(PathBuf),
    /// Standard input.
    Stdin,
}

impl LogInput {
    /// `-` is standard input, a directory a pod log root, anything else a file.
    pub fn from_spec(spec: &str) -> LogInput {
        let path = Path::new(spec);
        if spec == "-" {
            LogInput::Stdin
        } else if path.is_dir() {
            LogInput::PodLogs(path.to_path_buf())
        } else {
            LogInput::File(path.to_path_buf())
        }
    }
}

/// The labels of a container log file `<root>/<ns>_<pod>_<uid>/<container>/<n>.log`.
pub fn pod_labels(pod_dir: &str, container: &str) -> Option<LabelSet> {
    let (namespace, rest) = pod_dir.split_once('_')?;
    let (pod, _uid) = rest.rsplit_once('_')?;
    if namespace.is_empty() || pod.is_empty() {
        return None;
    }
    Some(vec![
        ("container".to_string(), container.to_string()),
        ("namespace".to_string(), namespace.to_string()),
        ("pod".to_string(), pod.to_string()),
    ])
}

struct Followed {
    follower: Follower,
    joiner: Joiner,
    labels: LabelSet,
}

#[derive(Default)]
struct Counts {
    lines: u64,
    kinds: BTreeMap<Kind, u64>,
}

/// Follows NCCL logs; see the module documentation.
pub struct NcclCollector {
    inputs: Vec<LogInput>,
    followed: BTreeMap<PathBuf, Followed>,
    stdin: Option<(Receiver<String>, Joiner)>,
    parser: Parser,
    counts: BTreeMap<LabelSet, Counts>,
    log: EventLog,
    start: Start,
    scanned: bool,
    reported: HashSet<String>,
    events: u64,
    missing_roots: Vec<PathBuf>,
}

impl NcclCollector {
    /// Follows `inputs`; files present at the first collection are read from `start`
    /// (`End` for a long-running follower, `Beginning` for a one-shot read), files that
    /// appear later from their beginning. Keeps the last `kept` events.
    pub fn new(inputs: Vec<LogInput>, start: Start, kept: usize) -> NcclCollector {
        let stdin = inputs.contains(&LogInput::Stdin).then(|| {
            (
                spawn_reader(std::io::BufReader::new(std::io::stdin())),
                Joiner::default(),
            )
        });
        NcclCollector {
            inputs,
            followed: BTreeMap::new(),
            stdin,
            parser: Parser::default(),
            counts: BTreeMap::new(),
            log: EventLog::new(kept),
            start,
            scanned: false,
            reported: HashSet::new(),
            events: 0,
            missing_roots: Vec::new(),
        }
    }

    /// Reads lines from `reader` (on a thread) in place of standard input.
    pub fn with_reader<R: BufRead + Send + 'static>(mut self, reader: R) -> NcclCollector {
        self.stdin = Some((spawn_reader(reader), Joiner::default()));
        if !self.inputs.contains(&LogInput::Stdin) {
            self.inputs.push(LogInput::Stdin);
        }
        self
    }

    /// The shared ring of the latest events, for the UI and findings.
    pub fn events(&self) -> EventLog {
        self.log.clone()
    }

    /// Finds the files to follow: configured files, and every container log under pod roots.
    fn discover(&mut self, errors: &mut Vec<String>) {
        let start = if self.scanned {
            Start::Beginning
        } else {
            self.start
        };
        self.scanned = true;
        let mut live: BTreeSet<PathBuf> = BTreeSet::new();
        self.missing_roots.clear();
        for input in &self.inputs {
            match input {
                LogInput::File(p) => {
                    live.insert(p.clone());
                    self.followed.entry(p.clone()).or_insert_with(|| Followed {
                        follower: Follower::new(p.clone(), start),
                        joiner: Joiner::default(),
                        labels: vec![("source".to_string(), p.display().to_string())],
                    });
                }
                LogInput::PodLogs(root) => {
                    let Ok(pods) = std::fs::read_dir(root) else {
                        self.missing_roots.push(root.clone());
                        continue;
                    };
                    for (path, labels) in container_logs(pods) {
                        if self.followed.len() >= MAX_FILES && !self.followed.contains_key(&path) {
                            let msg = format!(
                                "more than {MAX_FILES} container logs under {}: the rest are not followed (point [logs] nccl at the engine's pod directory instead)",
                                root.display()
                            );
                            if self.reported.insert(msg.clone()) {
                                errors.push(msg);
                            }
                            break;
                        }
                        live.insert(path.clone());
                        self.followed
                            .entry(path.clone())
                            .or_insert_with(|| Followed {
                                follower: Follower::new(path, start),
                                joiner: Joiner::default(),
                                labels,
                            });
                    }
                }
                LogInput::Stdin => {}
            }
        }
        // Files gone from pod roots (pod deleted): forget them, and their series.
        self.followed.retain(|path, _| live.contains(path));
        let mut kept: BTreeSet<&LabelSet> = self.followed.values().map(|f| &f.labels).collect();
        let stdin_labels = stdin_labels();
        if self.stdin.is_some() {
            kept.insert(&stdin_labels);
        }
        self.counts.retain(|labels, _| kept.contains(labels));
    }

    /// Counts one line read from `labels`' source.
    fn line(&mut self, labels: &LabelSet, line: String, timestamp_ms: i64) {
        let counts = self.counts.entry(labels.clone()).or_default();
        counts.lines += 1;
        if let Some(event) = self.parser.line(&line) {
            *counts.kinds.entry(event.kind).or_default() += 1;
            self.events += 1;
            self.log.push(LoggedEvent {
                timestamp_ms,
                labels: labels.clone(),
                event,
                line,
            });
        }
    }
}

fn stdin_labels() -> LabelSet {
    vec![("source".to_string(), "-".to_string())]
}

/// Every `<ns>_<pod>_<uid>/<container>/*.log` below a pod root, with its labels.
fn container_logs(pods: std::fs::ReadDir) -> Vec<(PathBuf, LabelSet)> {
    let mut out = Vec::new();
    for pod in pods.flatten() {
        let pod_name = pod.file_name().to_string_lossy().into_owned();
        let Ok(containers) = std::fs::read_dir(pod.path()) else {
            continue;
        };
        for container in containers.flatten() {
            let container_name = container.file_name().to_string_lossy().into_owned();
            let Some(labels) = pod_labels(&pod_name, &container_name) else {
                continue;
            };
            let Ok(files) = std::fs::read_dir(container.path()) else {
                continue;
            };
            for file in files.flatten() {
                let path = file.path();
                if path.extension().is_some_and(|e| e == "log") {
                    out.push((path, labels.clone()));
                }
            }
        }
    }
    out.sort();
    out
}

/// Reads lines from `reader` on a thread into a bounded channel.
fn spawn_reader<R: BufRead + Send + 'static>(reader: R) -> Receiver<String> {
    let (tx, rx) = sync_channel(STDIN_BUFFER);
    std::thread::spawn(move || {
        for line in reader.split(b'\n') {
            let Ok(bytes) = line else { return };
            let text = String::from_utf8_lossy(&bytes)
                .trim_end_matches('\r')
                .to_string();
            match tx.try_send(text) {
                Ok(()) => {}
                Err(TrySendError::Full(text)) => {
                    if tx.send(text).is_err() {
                        return;
                    }
                }
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
    });
    rx
}

impl HostCollector for NcclCollector {
    fn job(&self) -> &'static str {
        NCCL_JOB
    }

    fn status(&self) -> String {
        let mut parts = Vec::new();
        let files = self.followed.len();
        parts.push(format!("following {files} log file(s)"));
        if self.stdin.is_some() {
            parts.push("standard input".to_string());
        }
        for root in &self.missing_roots {
            parts.push(format!(
                "no pod logs at {} (not in Kubernetes)",
                root.display()
            ));
        }
        parts.push(format!("{} NCCL failure line(s) seen", self.events));
        parts.join("; ")
    }

    fn collect(&mut self, _fields: FieldSet, timestamp_ms: i64) -> Collection {
        let mut errors = Vec::new();
        self.discover(&mut errors);
        let mut read: Vec<(LabelSet, String)> = Vec::new();
        for (path, f) in &mut self.followed {
            let mut lines = Vec::new();
            if let Err(e) = f.follower.poll(&mut lines) {
                let msg = format!(
                    "{}: {e} (give Strata read access to the log, or drop it from [logs] nccl)",
                    path.display()
                );
                if self.reported.insert(msg.clone()) {
                    errors.push(msg);
                }
            }
            for raw in lines {
                if let Some(line) = f.joiner.push(&raw) {
                    read.push((f.labels.clone(), line));
                }
            }
        }
        if let Some((rx, joiner)) = &mut self.stdin {
            let labels = stdin_labels();
            while let Ok(raw) = rx.try_recv() {
                if let Some(line) = joiner.push(&raw) {
                    read.push((labels.clone(), line));
                }
            }
            // Standard input always has its series, even before the first line.
            self.counts.entry(labels).or_default();
        }
        for f in self.followed.values() {
            self.counts.entry(f.labels.clone()).or_default();
        }
        for (labels, line) in read {
            self.line(&labels, line, timestamp_ms);
        }
        let mut points = Vec::new();
        for (labels, counts) in &self.counts {
            points.push(Point::new(
                "nccl:log_lines_total",
                labels.clone(),
                counts.lines as f64,
                timestamp_ms,
            ));
            for kind in Kind::ALL {
                let mut l = labels.clone();
                l.push(("kind".to_string(), kind.as_str().to_string()));
                let n = counts.kinds.get(&kind).copied().unwrap_or(0);
                points.push(Point::new("nccl:events_total", l, n as f64, timestamp_ms));
            }
        }
        Collection { points, errors }
    }
}
