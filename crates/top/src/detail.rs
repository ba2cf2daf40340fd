//! The detail of one selected row (Enter): a finding's summary, action, affected engines,
//! the alerts it explains and its evidence values in their units; an alert's labels,
//! annotations and start; an engine's or GPU's every column.

use super::model::{
    Alert, Evidence, Finding, Pane, Row, Snapshot, Table, Tone, age, clock, secs, short_model,
};

/// A detail, made when opened (it does not follow later refreshes).
#[derive(Debug, Clone, PartialEq)]
pub struct Detail {
    /// Its title.
    pub title: String,
    /// Its lines, each with its colour.
    pub lines: Vec<(Tone, String)>,
}

/// `v` in `unit`: `percent` is a 0–1 ratio shown as %, bytes in binary multiples.
pub fn value(v: f64, unit: &str) -> String {
    let bytes = |v: f64| {
        let mut v = v;
        let mut i = 0;
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
        while v.abs() >= 1024.0 && i + 1 < units.len() {
            v /= 1024.0;
            i += 1;
        }
        if i == 0 {
            format!("{v:.0} B")
        } else {
            format!("{v:.1} {}", units[i])
        }
    };
    let plain = |v: f64| {
        if (v == v.trunc() && v.abs() < 1e15) || v.abs() >= 100.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.2}")
        }
    };
    match unit {
        "percent" => format!("{:.0}%", v * 100.0),
        "seconds" => secs(v),
        "count" => plain(v),
        "per_second" => format!("{}/s", plain(v)),
        "bytes" => bytes(v),
        "bytes_per_second" => format!("{}/s", bytes(v)),
        "ratio" => format!("{v:.2}"),
        _ => plain(v),
    }
}

/// The lines of one piece of evidence: its title and threshold, then per series its value
/// now, before onset (the first point) and its range.
fn evidence_lines(s: &Snapshot, e: &Evidence, lines: &mut Vec<(Tone, String)>) {
    let threshold = e
        .threshold
        .map(|t| format!(" (threshold {})", value(t, &e.unit)))
        .unwrap_or_default();
    lines.push((Tone::Plain, format!("  {}{threshold}", e.title)));
    if e.series.is_empty() {
        lines.push((Tone::Dim, "    no values".into()));
    }
    for series in &e.series {
        let who = match series.labels.get("instance") {
            Some(i) => s.name_of(i).to_string(),
            None => series
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
        };
        let values: Vec<f64> = series.points.iter().map(|p| p.1).collect();
        let text = match (values.first(), values.last()) {
            (Some(first), Some(last)) => {
                let min = values.iter().copied().fold(f64::INFINITY, f64::min);
                let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                format!(
                    "now {}, at the window's start {}, range {} to {}",
                    value(*last, &e.unit),
                    value(*first, &e.unit),
                    value(min, &e.unit),
                    value(max, &e.unit)
                )
            }
            _ => "no values".into(),
        };
        let who = if who.is_empty() {
            String::new()
        } else {
            format!("{who}: ")
        };
        lines.push((Tone::Plain, format!("    {who}{text}")));
    }
}

fn finding(s: &Snapshot, f: &Finding, now_ms: i64) -> Detail {
    let tone = Tone::of(&f.severity);
    let mut lines = vec![
        (
            tone,
            format!(
                "{} · open {} (since {} UTC)",
                f.severity,
                age(now_ms - f.started_ms),
                clock(f.started_ms)
            ),
        ),
        (Tone::Plain, String::new()),
    ];
    let mut para = |head: &str, text: &str| {
        if !text.is_empty() {
            lines.push((Tone::Plain, format!("{head}: {text}")));
        }
    };
    para("Summary", &f.summary);
    para("Action", &f.action);
    lines.push((Tone::Plain, String::new()));
    lines.push((Tone::Plain, "Affected:".into()));
    if f.engines.is_empty() {
        lines.push((Tone::Plain, format!("  {}", s.affected(f))));
    }
    for e in &f.engines {
        let name = if e.name.is_empty() {
            s.name_of(&e.instance)
        } else {
            &e.name
        };
        let mut about: Vec<String> = Vec::new();
        if !e.model.is_empty() {
            about.push(short_model(&e.model).to_string());
        }
        if !e.node.is_empty() {
            about.push(format!("on {}", e.node));
        }
        if name != e.instance {
            about.push(format!("at {}", e.instance));
        }
        lines.push((Tone::Plain, format!("  {name} {}", about.join(" "))));
    }
    if !f.symptoms.is_empty() {
        lines.push((Tone::Plain, String::new()));
        lines.push((Tone::Plain, "Explains these alerts:".into()));
        for a in &f.symptoms {
            lines.push((
                Tone::of(&a.severity),
                format!("  {} [{}] {}", a.alert, a.severity, a.summary),
            ));
        }
    }
    if !f.evidence.is_empty() {
        lines.push((Tone::Plain, String::new()));
        lines.push((Tone::Plain, "Evidence:".into()));
        for e in &f.evidence {
            evidence_lines(s, e, &mut lines);
        }
    }
    Detail {
        title: format!("Finding {}", f.name),
        lines,
    }
}

fn alert(a: &Alert, now_ms: i64) -> Detail {
    let since = match a.active_ms {
        Some(t) => format!("active {} (since {} UTC)", age(now_ms - t), clock(t)),
        None => "active since an unknown time".into(),
    };
    let mut lines = vec![
        (Tone::of(&a.severity), format!("{} · {since}", a.severity)),
        (Tone::Plain, String::new()),
        (Tone::Plain, "Labels:".into()),
    ];
    lines.extend(
        a.labels
            .iter()
            .map(|(k, v)| (Tone::Plain, format!("  {k}={v}"))),
    );
    lines.push((Tone::Plain, String::new()));
    lines.push((Tone::Plain, "Annotations:".into()));
    lines.extend(
        a.annotations
            .iter()
            .map(|(k, v)| (Tone::Plain, format!("  {k}: {v}"))),
    );
    Detail {
        title: format!("Alert {}", a.name),
        lines,
    }
}

/// An engine's or GPU's row, one `COLUMN: value` line each (dropped columns included).
fn row(s: &Snapshot, pane: Pane, t: &Table, r: &Row) -> Detail {
    let mut lines: Vec<(Tone, String)> = (t.columns.iter().zip(&r.cells))
        .map(|(c, cell)| (Tone::Plain, format!("{:<9} {}", c.header, cell.text)))
        .collect();
    let title = match (pane, s.engines.get(r.item), s.gpus.get(r.item)) {
        (Pane::Engines, Some(e), _) => {
            lines.push((Tone::Plain, format!("{:<9} {}", "ADDRESS", e.instance)));
            lines.push((Tone::Plain, format!("{:<9} {}", "SERVES", e.model)));
            format!("Engine {}", s.name_of(&e.instance))
        }
        (Pane::Gpus, _, Some(g)) => format!("GPU {} on {}", g.gpu, g.node),
        _ => "Row".into(),
    };
    Detail { title, lines }
}

impl Detail {
    /// The detail of `row` of `pane`'s table `t`.
    pub fn of(s: &Snapshot, pane: Pane, t: &Table, r: &Row, now_ms: i64) -> Detail {
        match pane {
            Pane::Findings => s
                .findings
                .get(r.item)
                .map_or_else(|| row(s, pane, t, r), |f| finding(s, f, now_ms)),
            Pane::Alerts => s
                .alerts
                .get(r.item)
                .map_or_else(|| row(s, pane, t, r), |a| alert(a, now_ms)),
            Pane::Engines | Pane::Gpus => row(s, pane, t, r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_carry_their_units() {
        assert_eq!(value(0.973, "percent"), "97%");
        assert_eq!(value(0.178, "seconds"), "178ms");
        assert_eq!(value(12.0, "count"), "12");
        assert_eq!(value(3.25, "per_second"), "3.25/s");
        assert_eq!(value(3.0 * 1024.0 * 1024.0 * 1024.0, "bytes"), "3.0 GiB");
        assert_eq!(value(512.0, "bytes_per_second"), "512 B/s");
        assert_eq!(value(0.5, "ratio"), "0.50");
        assert_eq!(value(1.5, ""), "1.50");
    }
}
