//! Pressure stall information (PSI): how long tasks waited for CPU, memory or I/O, from the
//! node's `/proc/pressure/{cpu,memory,io}` or a cgroup's `*.pressure` file. The kernel's
//! format (Documentation/accounting/psi.rst):
//!
//! ```text
//! some avg10=0.00 avg60=0.00 avg300=0.00 total=0
//! full avg10=0.00 avg60=0.00 avg300=0.00 total=0
//! ```
//!
//! `total` is cumulative microseconds, exported as a counter (`rate()` of it is the stalled
//! share of time); the averages are the kernel's own smoothing and are not exported.

use std::path::{Path, PathBuf};

use crate::collector::{Collection, HostCollector};
use crate::gpu::FieldSet;
use crate::point::Point;

/// The `job` label of node-level series.
pub const NODE_JOB: &str = "node";

/// One PSI line.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Stall {
    /// Share of the last 10 s stalled, percent.
    pub avg10: f64,
    /// Total time stalled, microseconds.
    pub total_usec: u64,
}

/// A pressure file: `some` (at least one task stalled) and `full` (all non-idle tasks
/// stalled; absent for the node's CPU on older kernels).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Pressure {
    /// `some` line.
    pub some: Stall,
    /// `full` line, when the file has one.
    pub full: Option<Stall>,
}

/// Parses a pressure file.
pub fn parse(text: &str) -> Result<Pressure, String> {
    let mut some = None;
    let mut full = None;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut fields = line.split_whitespace();
        let scope = fields.next().unwrap_or("");
        let mut stall = Stall::default();
        let mut have_total = false;
        for field in fields {
            let Some((key, value)) = field.split_once('=') else {
                return Err(format!("{line:?}: expected key=value fields"));
            };
            match key {
                "avg10" => {
                    stall.avg10 = value.parse().map_err(|e| format!("{line:?}: avg10: {e}"))?
                }
                "total" => {
                    stall.total_usec =
                        value.parse().map_err(|e| format!("{line:?}: total: {e}"))?;
                    have_total = true;
                }
                _ => {}
            }
        }
        if !have_total {
            return Err(format!("{line:?}: no total="));
        }
        match scope {
            "some" => some = Some(stall),
            "full" => full = Some(stall),
            other => return Err(format!("{line:?}: unknown scope {other:?}")),
        }
    }
    Ok(Pressure {
        some: some.ok_or("no `some` line")?,
        full,
    })
}

/// The resources the node reports pressure for.
const RESOURCES: [&str; 3] = ["cpu", "memory", "io"];

/// Node PSI as `node:pressure_stall_seconds_total{resource, scope}`.
pub struct PsiCollector {
    dir: PathBuf,
    reported: std::collections::HashSet<String>,
    found: usize,
}

impl PsiCollector {
    /// Reads `<proc>/pressure/*`.
    pub fn new(proc_root: &Path) -> PsiCollector {
        PsiCollector {
            dir: proc_root.join("pressure"),
            reported: Default::default(),
            found: 0,
        }
    }
}

impl HostCollector for PsiCollector {
    fn job(&self) -> &'static str {
        NODE_JOB
    }

    fn status(&self) -> String {
        if self.found == 0 && self.dir.is_dir() {
            format!(
                "node pressure stall information from {}",
                self.dir.display()
            )
        } else if self.found == 0 {
            format!(
                "no pressure stall information at {} (kernel without CONFIG_PSI, or psi=0 on its command line)",
                self.dir.display()
            )
        } else {
            format!(
                "node pressure stall information: {} of cpu, memory, io",
                self.found
            )
        }
    }

    fn collect(&mut self, _fields: FieldSet, timestamp_ms: i64) -> Collection {
        let mut out = Collection::default();
        self.found = 0;
        for resource in RESOURCES {
            let path = self.dir.join(resource);
            let parsed = std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|t| parse(&t));
            let p = match parsed {
                Ok(p) => p,
                Err(e) => {
                    let msg = format!("{}: {e}", path.display());
                    if self.reported.insert(msg.clone()) {
                        out.errors.push(msg);
                    }
                    continue;
                }
            };
            self.found += 1;
            for (scope, stall) in [("some", Some(p.some)), ("full", p.full)] {
                let Some(stall) = stall else { continue };
                out.points.push(Point::new(
                    "node:pressure_stall_seconds_total",
                    vec![
                        ("resource".to_string(), resource.to_string()),
                        ("scope".to_string(), scope.to_string()),
                    ],
                    stall.total_usec as f64 / 1e6,
                    timestamp_ms,
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_some_and_full() {
        let p = parse(
            "some avg10=1.50 avg60=0.80 avg300=0.20 total=123456789\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=42\n",
        )
        .expect("parse");
        assert_eq!(p.some.avg10, 1.5);
        assert_eq!(p.some.total_usec, 123_456_789);
        assert_eq!(p.full.map(|f| f.total_usec), Some(42));
    }

    #[test]
    fn rejects_what_is_not_psi() {
        assert!(parse("").is_err());
        assert!(parse("some avg10=x total=1").is_err());
        assert!(parse("some avg10=1.0").is_err());
        assert!(parse("most avg10=1.0 total=3").is_err());
    }
}
