//! InfiniBand / RoCE port counters from sysfs, laid out as the kernel documents them
//! (`Documentation/ABI/stable/sysfs-class-infiniband`):
//!
//! ```text
//! /sys/class/infiniband/<device>/ports/<port>/state            "4: ACTIVE"
//! /sys/class/infiniband/<device>/ports/<port>/phys_state       "5: LinkUp"
//! /sys/class/infiniband/<device>/ports/<port>/rate             "400 Gb/sec (4X NDR)"
//! /sys/class/infiniband/<device>/ports/<port>/link_layer       "InfiniBand" | "Ethernet" (RoCE)
//! /sys/class/infiniband/<device>/ports/<port>/counters/<name>  one decimal integer
//! /sys/class/infiniband/<device>/ports/<port>/hw_counters/<name>
//! ```
//!
//! Series (labels `device`, `port`; the scraper adds `job="infiniband"` and `instance`):
//!
//! | series | type | from |
//! |---|---|---|
//! | `fabric:ib_transmit_bytes_total`, `fabric:ib_receive_bytes_total` | counter | `port_xmit_data`, `port_rcv_data` (4-byte words: × 4) |
//! | `fabric:ib_transmit_packets_total`, `fabric:ib_receive_packets_total` | counter | `port_xmit_packets`, `port_rcv_packets` |
//! | `fabric:ib_link_downed_total` | counter | `link_downed` (link flaps) |
//! | `fabric:ib_port_errors_total{counter}` | counter | [`ERROR_COUNTERS`] and [`HW_ERROR_COUNTERS`] |
//! | `fabric:ib_congestion_total{counter}` | counter | RoCE ECN/CNP [`CONGESTION_COUNTERS`] |
//! | `fabric:ib_port_state` | gauge | `state` number (4 = ACTIVE) |
//! | `fabric:ib_port_phys_state` | gauge | `phys_state` number (5 = LinkUp) |
//! | `fabric:ib_port_rate_bytes_per_second` | gauge | `rate` (Gb/s × 10⁹ / 8) |
//! | `fabric:ib_port_info{link_layer}` | gauge, 1 | `link_layer` |
//!
//! Counters are passed through as read: a reset (driver reload, `perfquery -R`) shows as a
//! drop that PromQL's `rate`/`increase` already treat as a reset. A port that disappears
//! (device unbound, hot-unplugged HCA) simply stops producing series — the scraper marks them
//! stale — and is reported once.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use crate::collector::{Collection, HostCollector};
use crate::gpu::FieldSet;
use crate::point::{LabelSet, Point};

/// The `job` label of InfiniBand series.
pub const INFINIBAND_JOB: &str = "infiniband";

/// Where the kernel exposes RDMA devices.
pub const SYSFS_INFINIBAND: &str = "/sys/class/infiniband";

/// `counters/` files counted as port errors (`fabric:ib_port_errors_total{counter}`).
pub const ERROR_COUNTERS: [&str; 8] = [
    "symbol_error",
    "link_error_recovery",
    "port_rcv_errors",
    "port_rcv_remote_physical_errors",
    "port_xmit_discards",
    "excessive_buffer_overrun_errors",
    "local_link_integrity_errors",
    "port_rcv_constraint_errors",
];

/// `hw_counters/` files (mlx5 and others) counted as port errors.
pub const HW_ERROR_COUNTERS: [&str; 6] = [
    "out_of_buffer",
    "out_of_sequence",
    "packet_seq_err",
    "rnr_nak_retry_err",
    "local_ack_timeout_err",
    "implied_nak_seq_err",
];

/// `hw_counters/` files of RoCE congestion control (`fabric:ib_congestion_total{counter}`).
pub const CONGESTION_COUNTERS: [&str; 3] = [
    "np_cnp_sent",
    "rp_cnp_handled",
    "np_ecn_marked_roce_packets",
];

/// One port's readings, as read from sysfs (plain data: the mapping to points is separate).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PortReading {
    /// RDMA device name, e.g. `mlx5_0`.
    pub device: String,
    /// Port number, e.g. `1`.
    pub port: String,
    /// `state` number (1 DOWN, 2 INIT, 3 ARMED, 4 ACTIVE, 5 ACTIVE_DEFER).
    pub state: Option<u32>,
    /// `phys_state` number (2 Polling, 3 Disabled, 5 LinkUp, 7 LinkErrorRecovery, ...).
    pub phys_state: Option<u32>,
    /// Link speed, Gb/s.
    pub rate_gbps: Option<f64>,
    /// `InfiniBand` or `Ethernet` (RoCE).
    pub link_layer: Option<String>,
    /// `(file name, value)` of every counter read, from `counters/` then `hw_counters/`.
    pub counters: Vec<(String, u64)>,
}

/// Reads every port under `root` (normally [`SYSFS_INFINIBAND`]). Unreadable or malformed
/// files are skipped and named in the returned errors; a missing `root` is no ports.
pub fn read_ports(root: &Path) -> (Vec<PortReading>, Vec<String>) {
    let mut errors = Vec::new();
    let mut out = Vec::new();
    for device in sorted_dir(root) {
        let ports_dir = root.join(&device).join("ports");
        for port in sorted_dir(&ports_dir) {
            let dir = ports_dir.join(&port);
            let mut r = PortReading {
                device: device.clone(),
                port: port.clone(),
                ..PortReading::default()
            };
            let where_ = format!("{device} port {port}");
            r.state = read_attr(&dir.join("state"), &where_, &mut errors)
                .and_then(|s| leading_number(&s));
            r.phys_state = read_attr(&dir.join("phys_state"), &where_, &mut errors)
                .and_then(|s| leading_number(&s));
            r.rate_gbps =
                read_attr(&dir.join("rate"), &where_, &mut errors).and_then(|s| parse_rate(&s));
            r.link_layer = read_attr(&dir.join("link_layer"), &where_, &mut errors);
            for sub in ["counters", "hw_counters"] {
                for name in sorted_dir(&dir.join(sub)) {
                    if !wanted(sub, &name) {
                        continue;
                    }
                    let path = dir.join(sub).join(&name);
                    let Some(text) = read_attr(&path, &where_, &mut errors) else {
                        continue;
                    };
                    match text.parse::<u64>() {
                        Ok(v) => r.counters.push((name, v)),
                        Err(_) => {
                            errors.push(format!("{where_} {sub}/{name}: not a counter: {text:?}"))
                        }
                    }
                }
            }
            out.push(r);
        }
    }
    (out, errors)
}

/// Whether a counter file is one Strata maps.
fn wanted(sub: &str, name: &str) -> bool {
    match sub {
        "counters" => {
            matches!(
                name,
                "port_xmit_data"
                    | "port_rcv_data"
                    | "port_xmit_packets"
                    | "port_rcv_packets"
                    | "link_downed"
            ) || ERROR_COUNTERS.contains(&name)
        }
        _ => HW_ERROR_COUNTERS.contains(&name) || CONGESTION_COUNTERS.contains(&name),
    }
}

/// The entries of a directory, sorted; nothing when it cannot be read.
fn sorted_dir(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort_unstable();
    names
}

/// Reads one attribute file, trimmed. A missing file is silently absent (not every driver has
/// every file); any other failure (some drivers answer EINVAL on read) is reported.
fn read_attr(path: &Path, where_: &str, errors: &mut Vec<String>) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(s) => Some(s.trim().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            let file = path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            errors.push(format!("{where_} {file}: {e}"));
            None
        }
    }
}

/// `"4: ACTIVE"` → 4.
fn leading_number(s: &str) -> Option<u32> {
    s.split(':').next()?.trim().parse().ok()
}

/// `"400 Gb/sec (4X NDR)"` → 400.0; `"2.5 Gb/sec (1X SDR)"` → 2.5.
fn parse_rate(s: &str) -> Option<f64> {
    let (num, rest) = s.split_once(' ')?;
    rest.starts_with("Gb/sec").then_some(())?;
    num.parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
}

/// Converts one port's readings to points stamped `ts`.
pub fn to_points(r: &PortReading, ts: i64) -> Vec<Point> {
    let base: LabelSet = vec![
        ("device".to_string(), r.device.clone()),
        ("port".to_string(), r.port.clone()),
    ];
    let with = |key: &str, value: &str| -> LabelSet {
        let mut l = base.clone();
        l.push((key.to_string(), value.to_string()));
        l.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        l
    };
    let mut out = Vec::new();
    if let Some(s) = r.state {
        out.push(Point::new(
            "fabric:ib_port_state",
            base.clone(),
            f64::from(s),
            ts,
        ));
    }
    if let Some(s) = r.phys_state {
        out.push(Point::new(
            "fabric:ib_port_phys_state",
            base.clone(),
            f64::from(s),
            ts,
        ));
    }
    if let Some(g) = r.rate_gbps {
        out.push(Point::new(
            "fabric:ib_port_rate_bytes_per_second",
            base.clone(),
            g * 1e9 / 8.0,
            ts,
        ));
    }
    if let Some(ll) = &r.link_layer {
        out.push(Point::new(
            "fabric:ib_port_info",
            with("link_layer", ll),
            1.0,
            ts,
        ));
    }
    for (name, v) in &r.counters {
        let v = *v as f64;
        let (series, labels, value) = match name.as_str() {
            // Octets divided by 4 (lanes), per the ABI document.
            "port_xmit_data" => ("fabric:ib_transmit_bytes_total", base.clone(), v * 4.0),
            "port_rcv_data" => ("fabric:ib_receive_bytes_total", base.clone(), v * 4.0),
            "port_xmit_packets" => ("fabric:ib_transmit_packets_total", base.clone(), v),
            "port_rcv_packets" => ("fabric:ib_receive_packets_total", base.clone(), v),
            "link_downed" => ("fabric:ib_link_downed_total", base.clone(), v),
            n if CONGESTION_COUNTERS.contains(&n) => {
                ("fabric:ib_congestion_total", with("counter", n), v)
            }
            n => ("fabric:ib_port_errors_total", with("counter", n), v),
        };
        out.push(Point::new(series, labels, value, ts));
    }
    out
}

/// Polls the InfiniBand/RoCE ports of this node.
#[derive(Debug)]
pub struct InfinibandCollector {
    root: PathBuf,
    /// `device/port` seen on the last collection, to report ports that disappear.
    seen: BTreeSet<String>,
    /// Errors already reported (each once).
    reported: HashSet<String>,
}

impl InfinibandCollector {
    /// A collector over `root` (normally [`SYSFS_INFINIBAND`]; tests pass a fake tree).
    pub fn new(root: impl Into<PathBuf>) -> InfinibandCollector {
        InfinibandCollector {
            root: root.into(),
            seen: BTreeSet::new(),
            reported: HashSet::new(),
        }
    }

    /// Whether `root` holds at least one RDMA port (what autodetection checks).
    pub fn has_ports(root: &Path) -> bool {
        sorted_dir(root)
            .iter()
            .any(|d| !sorted_dir(&root.join(d).join("ports")).is_empty())
    }
}

impl HostCollector for InfinibandCollector {
    fn job(&self) -> &'static str {
        INFINIBAND_JOB
    }

    fn status(&self) -> String {
        let (ports, _) = read_ports(&self.root);
        if ports.is_empty() {
            return format!(
                "InfiniBand/RoCE: no RDMA port under {} (fabric not visible from this node)",
                self.root.display()
            );
        }
        let list: Vec<String> = ports
            .iter()
            .map(|p| {
                format!(
                    "{}/{} {} {}",
                    p.device,
                    p.port,
                    p.link_layer.as_deref().unwrap_or("?"),
                    match p.state {
                        Some(4) => "ACTIVE",
                        Some(_) => "not active",
                        None => "state unknown",
                    }
                )
            })
            .collect();
        format!(
            "InfiniBand/RoCE: {} port(s): {}",
            ports.len(),
            list.join(", ")
        )
    }

    fn collect(&mut self, _fields: FieldSet, timestamp_ms: i64) -> Collection {
        let (ports, read_errors) = read_ports(&self.root);
        let mut errors: Vec<String> = read_errors
            .into_iter()
            .filter(|e| self.reported.insert(e.clone()))
            .collect();
        let now: BTreeSet<String> = ports
            .iter()
            .map(|p| format!("{}/{}", p.device, p.port))
            .collect();
        for gone in self.seen.difference(&now) {
            errors.push(format!(
                "InfiniBand port {gone} disappeared; its series go stale"
            ));
        }
        self.seen = now;
        let points = ports
            .iter()
            .flat_map(|p| to_points(p, timestamp_ms))
            .collect();
        Collection { points, errors }
    }
}
