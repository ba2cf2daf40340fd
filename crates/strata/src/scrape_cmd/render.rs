//! Human-readable tables of outcomes: one block per source, one line per canonical series,
//! values in operator units, and the engine's reason for every signal it does not expose.

use std::fmt::Write;

use sources::LabelSet;
use sources::dialect::{
    CanonicalSeries, CanonicalView, Layer, SeriesValue, SignalStatus, canonical,
};

use super::outcome::Outcome;

/// Labels that identify a target or a GPU; shown once in a header, not on every line.
const IDENTITY_LABELS: [&str; 12] = [
    "job",
    "instance",
    "engine",
    "gpu_uuid",
    "pci_bus_id",
    "device",
    "modelName",
    "Hostname",
    "DCGM_FI_DRIVER_VERSION",
    "container",
    "namespace",
    "pod",
];

/// Renders every outcome as text.
pub fn text(outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    for o in outcomes {
        block(&mut out, o);
    }
    out
}

fn block(out: &mut String, o: &Outcome) {
    let mut head = format!("== {}", o.source);
    if let Some(v) = &o.view {
        head.push_str(&format!(" · {}", v.title));
        if !v.version.is_empty() {
            head.push_str(&format!(" {}", v.version));
        }
    }
    if let Some(e) = &o.engine {
        head.push_str(&format!(" · engine {e}"));
    }
    if o.error.is_none() {
        head.push_str(&format!(" · {} samples", o.samples));
    }
    if !o.parse_errors.is_empty() {
        head.push_str(&format!(" · {} line(s) skipped", o.parse_errors.len()));
    }
    let _ = writeln!(out, "{head}");
    if let Some(e) = &o.error {
        let _ = writeln!(out, "   error: {e}");
    }
    if let Some(n) = &o.note {
        let _ = writeln!(out, "   {n}");
    }
    for l in &o.links {
        let _ = writeln!(out, "   {l}");
    }
    for e in o.parse_errors.iter().take(5) {
        let _ = writeln!(out, "   skipped {e}");
    }
    if o.parse_errors.len() > 5 {
        let _ = writeln!(
            out,
            "   … and {} more skipped line(s)",
            o.parse_errors.len() - 5
        );
    }
    if let Some(v) = &o.view {
        view(out, v);
    }
    out.push('\n');
}

fn view(out: &mut String, v: &CanonicalView) {
    let layer = v
        .signals
        .first()
        .and_then(|(n, _)| canonical().signal(n))
        .map(|s| s.layer);
    if layer == Some(Layer::Gpu) {
        gpu_identities(out, v);
    }
    let _ = writeln!(out, "   {:<36} {:<34} series", "signal", "value");
    for (name, status) in &v.signals {
        match status {
            SignalStatus::Exposed { native, series } => {
                for (i, s) in series.iter().enumerate() {
                    let signal = if i == 0 { name.as_str() } else { "" };
                    let from = if i == 0 {
                        format!("  ← {native}")
                    } else {
                        String::new()
                    };
                    let _ = writeln!(
                        out,
                        "   {:<36} {:<34} {}{}",
                        signal,
                        value(name, s),
                        shown_labels(&s.labels),
                        from
                    );
                }
                for (_, caveat) in v.caveats.iter().filter(|(c, _)| c == name) {
                    let _ = writeln!(out, "   {:<36} ! {caveat}", "");
                }
            }
            SignalStatus::NotInScrape { looked_for } => {
                let _ = writeln!(
                    out,
                    "   {:<36} {:<34} not in this scrape (looked for {})",
                    name,
                    "—",
                    looked_for.join(", ")
                );
            }
            SignalStatus::NotExposed { why } => {
                let _ = writeln!(
                    out,
                    "   {:<36} {:<34} not exposed by {}: {why}",
                    name, "—", v.title
                );
            }
        }
    }
    for note in &v.notes {
        let _ = writeln!(out, "   note: {note}");
    }
}

fn gpu_identities(out: &mut String, v: &CanonicalView) {
    let mut seen: Vec<LabelSet> = Vec::new();
    for (_, status) in &v.signals {
        if let SignalStatus::Exposed { series, .. } = status {
            for s in series {
                let id: LabelSet = s
                    .labels
                    .iter()
                    .filter(|(k, _)| k != "job" && k != "instance")
                    .cloned()
                    .collect();
                if !seen.contains(&id) {
                    seen.push(id);
                }
            }
        }
    }
    for id in &seen {
        let get = |k: &str| {
            id.iter()
                .find(|(n, _)| n == k)
                .map_or("?", |(_, v)| v.as_str())
        };
        let mut line = format!(
            "   gpu {}: {} {} ({}, {}) on {}",
            get("gpu"),
            get("modelName"),
            get("gpu_uuid"),
            get("device"),
            get("pci_bus_id"),
            get("Hostname")
        );
        if let Some((_, mig)) = id.iter().find(|(k, _)| k == "GPU_I_PROFILE") {
            line.push_str(&format!(" · MIG slice {} ({mig})", get("GPU_I_ID")));
        }
        if let Some((_, pod)) = id.iter().find(|(k, _)| k == "pod") {
            line.push_str(&format!(" · pod {}/{pod}", get("namespace")));
        }
        let _ = writeln!(out, "{line}");
    }
}

fn shown_labels(labels: &LabelSet) -> String {
    labels
        .iter()
        .filter(|(k, _)| !IDENTITY_LABELS.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A value in the unit an operator reads.
pub fn value(signal: &str, s: &CanonicalSeries) -> String {
    let unit = canonical().signal(signal).map_or("", |c| c.unit.as_str());
    match s.value {
        SeriesValue::Scalar { value } => scalar(unit, value),
        SeriesValue::Histogram {
            count, p50, p99, ..
        } => {
            let q = |v: Option<f64>| v.map_or("–".to_string(), |v| scalar(unit, v));
            format!("n={} p50={} p99={}", number(count), q(p50), q(p99))
        }
    }
}

fn scalar(unit: &str, v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    match unit {
        "ratio" => format!("{:.1} %", v * 100.0),
        "bytes" if v >= (1u64 << 30) as f64 => format!("{:.2} GiB", v / (1u64 << 30) as f64),
        "bytes" => format!("{:.1} MiB", v / (1u64 << 20) as f64),
        "hertz" => format!("{:.0} MHz", v / 1e6),
        "watts" => format!("{v:.1} W"),
        "joules" if v < 1e3 => format!("{v:.0} J"),
        "joules" if v < 3.6e6 => format!("{:.1} kJ", v / 1e3),
        "joules" => format!("{:.2} kWh", v / 3.6e6),
        "celsius" => format!("{v:.0} °C"),
        "bytes_per_second" => format!("{:.1} MB/s", v / 1e6),
        "seconds" if v < 1.0 => format!("{:.1} ms", v * 1e3),
        "seconds" => format!("{v:.2} s"),
        "bitmask" => throttle(v),
        "fabric_state" => fabric_state(v),
        _ => number(v),
    }
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// The fabric manager's registration code (NVML's states, DCGM's statuses), named.
fn fabric_state(v: f64) -> String {
    let name = match v as i64 {
        0 => "not supported",
        1 => "not started",
        2 => "in progress",
        3 => "registered",
        4 => "failed",
        5 => "unrecognized",
        6 => "NVML too old",
        _ => "unknown",
    };
    format!("{v:.0} ({name})")
}

/// NVML clock-throttle reason bits, named.
fn throttle(v: f64) -> String {
    const NAMES: [(u64, &str); 9] = [
        (0x1, "idle"),
        (0x2, "app clocks"),
        (0x4, "sw power cap"),
        (0x8, "hw slowdown"),
        (0x10, "sync boost"),
        (0x20, "sw thermal"),
        (0x40, "hw thermal"),
        (0x80, "power brake"),
        (0x100, "display clocks"),
    ];
    let bits = v as u64;
    if bits == 0 {
        return "0x0 (none)".to_string();
    }
    let names: Vec<&str> = NAMES
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| *n)
        .collect();
    format!("{bits:#x} ({})", names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar_series(v: f64) -> CanonicalSeries {
        CanonicalSeries {
            labels: vec![],
            value: SeriesValue::Scalar { value: v },
        }
    }

    #[test]
    fn values_read_in_operator_units() {
        assert_eq!(
            value("gpu:tensor_active_ratio", &scalar_series(0.93)),
            "93.0 %"
        );
        assert_eq!(
            value("gpu:sm_clock_hz", &scalar_series(1.275e9)),
            "1275 MHz"
        );
        assert_eq!(
            value(
                "gpu:fb_used_bytes",
                &scalar_series(64.0 * (1u64 << 30) as f64)
            ),
            "64.00 GiB"
        );
        assert_eq!(
            value("gpu:throttle_reasons", &scalar_series(4.0)),
            "0x4 (sw power cap)"
        );
        assert_eq!(value("llm:requests_waiting", &scalar_series(12.0)), "12");
        assert_eq!(value("gpu:fabric_state", &scalar_series(4.0)), "4 (failed)");
        assert_eq!(
            value("gpu:energy_joules_total", &scalar_series(6700.0)),
            "6.7 kJ"
        );
        assert_eq!(
            value("gpu:energy_joules_total", &scalar_series(88.1e6)),
            "24.47 kWh"
        );
        let h = CanonicalSeries {
            labels: vec![],
            value: SeriesValue::Histogram {
                count: 10.0,
                sum: 1.0,
                p50: Some(0.08),
                p99: Some(2.5),
            },
        };
        assert_eq!(value("llm:ttft_seconds", &h), "n=10 p50=80.0 ms p99=2.50 s");
    }
}
