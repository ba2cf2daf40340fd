//! The writer: renders [`OwnedFamily`]s as classic 0.0.4 text or OpenMetrics 1.0.
//!
//! Classic text (accepted by `promtool check metrics`):
//! * `# TYPE` then `# HELP` (escapes `\\`, `\n`); no `# UNIT`, no exemplars. TYPE comes first
//!   in both formats (promtool accepts either order) so that every written family opens with
//!   the line that starts a new family in [`crate::parse`]: with HELP first, a help-less family
//!   followed by a same-named one would read back with the help on the wrong family;
//! * a counter whose samples are all `name_total` is declared as `name_total`; an info family
//!   whose samples are `name_info` is declared as `name_info` with type `gauge`; stateset is
//!   written as `gauge`;
//! * `_created` samples (counter, histogram, summary) and a gauge histogram's `_gsum`/`_gcount`
//!   go to their own `gauge` families with the same help (as the Python client does); a gauge
//!   histogram's buckets are declared as a `histogram` (promtool rejects `_bucket`/`le` on
//!   gauges);
//! * timestamps are integer milliseconds.
//!
//! OpenMetrics: `# TYPE`, `# UNIT`, `# HELP` (escapes `\\`, `\n`, `\"`); a counter named
//! `x_total` whose samples are `x_total`/`x_created` is declared as `x` (likewise `x_info`
//! for info); exemplars after samples; timestamps in seconds; `# EOF` from [`Writer::finish`].
//!
//! Both: label values escape `\\`, `\"`, `\n`; values are `NaN`, `+Inf`, `-Inf`, integers
//! without a fraction, or the shortest text that parses back to the same `f64`. Staleness
//! markers ([`crate::is_stale_nan`]) are never written: such samples are skipped. Names and
//! label names are written as given (not validated).
use std::fmt::Write as _;

use crate::{Format, MetricType, OwnedFamily, OwnedSample, is_stale_nan};

/// Writes families in one format into a growing `String`.
///
/// Strata's `/metrics` endpoint and its recorders build [`OwnedFamily`]s and render them
/// here, so the two text formats are produced in one place.
#[derive(Debug, Clone)]
pub struct Writer {
    format: Format,
    out: String,
}

impl Writer {
    /// A writer for `format`.
    pub fn new(format: Format) -> Writer {
        Writer {
            format,
            out: String::new(),
        }
    }

    /// A writer for `format` with room for `bytes` of output.
    pub fn with_capacity(format: Format, bytes: usize) -> Writer {
        Writer {
            format,
            out: String::with_capacity(bytes),
        }
    }

    /// Renders `families` into one finished body (with `# EOF` for OpenMetrics).
    pub fn render(format: Format, families: &[OwnedFamily]) -> String {
        let mut w = Writer::new(format);
        for f in families {
            w.write_family(f);
        }
        w.finish()
    }

    /// Appends one family.
    pub fn write_family(&mut self, family: &OwnedFamily) {
        match self.format {
            Format::Prometheus => self.write_prometheus(family),
            Format::OpenMetrics => self.write_openmetrics(family),
        }
    }

    /// The finished body (`# EOF` appended for OpenMetrics).
    pub fn finish(mut self) -> String {
        if self.format == Format::OpenMetrics {
            self.out.push_str("# EOF\n");
        }
        self.out
    }

    fn write_openmetrics(&mut self, f: &OwnedFamily) {
        let name = om_family_name(f);
        self.header("TYPE", name, f.metric_type.word(Format::OpenMetrics));
        if let Some(unit) = &f.unit {
            self.header("UNIT", name, unit);
        }
        if let Some(help) = &f.help {
            self.help(name, help, true);
        }
        for s in &f.samples {
            self.sample(s, true);
        }
    }

    fn write_prometheus(&mut self, f: &OwnedFamily) {
        let base = match f.metric_type {
            MetricType::Counter => f.name.strip_suffix("_total").unwrap_or(&f.name),
            _ => f.name.as_str(),
        };
        let created = format!("{base}_created");
        let (gsum, gcount) = (format!("{}_gsum", f.name), format!("{}_gcount", f.name));
        let split = |s: &OwnedSample| match f.metric_type {
            MetricType::Counter | MetricType::Histogram | MetricType::Summary => s.name == created,
            MetricType::GaugeHistogram => s.name == gsum || s.name == gcount,
            _ => false,
        };
        let primary_name: String = match f.metric_type {
            MetricType::Counter if !f.name.ends_with("_total") => {
                let total = format!("{}_total", f.name);
                if has_all(f, |s| split(s) || s.name == total) {
                    total
                } else {
                    f.name.clone()
                }
            }
            MetricType::Info => {
                let info = format!("{}_info", f.name);
                if has_all(f, |s| s.name == info) {
                    info
                } else {
                    f.name.clone()
                }
            }
            _ => f.name.clone(),
        };
        self.header(
            "TYPE",
            &primary_name,
            f.metric_type.word(Format::Prometheus),
        );
        if let Some(help) = &f.help {
            self.help(&primary_name, help, false);
        }
        for s in f.samples.iter().filter(|s| !split(s)) {
            self.sample(s, false);
        }
        // Split-off series, each its own gauge family, in order of first appearance.
        let mut done: Vec<&str> = Vec::new();
        for s in f.samples.iter().filter(|s| split(s)) {
            if done.contains(&s.name.as_str()) {
                continue;
            }
            done.push(&s.name);
            self.header("TYPE", &s.name, "gauge");
            if let Some(help) = &f.help {
                self.help(&s.name, help, false);
            }
            for t in f.samples.iter().filter(|t| t.name == s.name) {
                self.sample(t, false);
            }
        }
    }

    fn header(&mut self, kw: &str, name: &str, rest: &str) {
        let o = &mut self.out;
        o.push_str("# ");
        o.push_str(kw);
        o.push(' ');
        o.push_str(name);
        o.push(' ');
        o.push_str(rest);
        o.push('\n');
    }

    fn help(&mut self, name: &str, help: &str, om: bool) {
        let o = &mut self.out;
        o.push_str("# HELP ");
        o.push_str(name);
        o.push(' ');
        for c in help.chars() {
            match c {
                '\\' => o.push_str("\\\\"),
                '\n' => o.push_str("\\n"),
                '"' if om => o.push_str("\\\""),
                c => o.push(c),
            }
        }
        o.push('\n');
    }

    fn sample(&mut self, s: &OwnedSample, om: bool) {
        if is_stale_nan(s.value) {
            return;
        }
        let o = &mut self.out;
        o.push_str(&s.name);
        write_labels(o, &s.labels);
        o.push(' ');
        write_f64(o, s.value);
        if let Some(ts) = s.timestamp_ms {
            o.push(' ');
            if om {
                write_ms_as_seconds(o, ts);
            } else {
                write_i64(o, ts);
            }
        }
        if om && let Some(ex) = &s.exemplar {
            o.push_str(" # {");
            write_label_pairs(o, &ex.labels);
            o.push_str("} ");
            write_f64(o, ex.value);
            if let Some(ts) = ex.timestamp {
                o.push(' ');
                write_f64(o, ts);
            }
        }
        o.push('\n');
    }
}

fn has_all(f: &OwnedFamily, pred: impl Fn(&OwnedSample) -> bool) -> bool {
    !f.samples.is_empty() && f.samples.iter().all(pred)
}

/// The name an OpenMetrics `# TYPE` line declares: `x_total` counters and `x_info` info
/// families are declared as `x` when their samples carry the suffix (not doubled). A family
/// without samples keeps its name: there is no sample to say which suffix is the family's,
/// and stripping one on every round trip would never reach a fixed point (`x_total_total`).
fn om_family_name(f: &OwnedFamily) -> &str {
    match f.metric_type {
        MetricType::Counter => match f.name.strip_suffix("_total") {
            Some(base)
                if has_all(f, |s| {
                    s.name == f.name || s.name.strip_suffix("_created").is_some_and(|b| b == base)
                }) =>
            {
                base
            }
            _ => &f.name,
        },
        MetricType::Info => match f.name.strip_suffix("_info") {
            Some(base) if has_all(f, |s| s.name == f.name) => base,
            _ => &f.name,
        },
        _ => &f.name,
    }
}

fn write_labels(o: &mut String, labels: &[(String, String)]) {
    if labels.is_empty() {
        return;
    }
    o.push('{');
    write_label_pairs(o, labels);
    o.push('}');
}

fn write_label_pairs(o: &mut String, labels: &[(String, String)]) {
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        o.push_str(k);
        o.push_str("=\"");
        escape_label_value(o, v);
        o.push('"');
    }
}

fn escape_label_value(o: &mut String, v: &str) {
    if !v.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        o.push_str(v);
        return;
    }
    for c in v.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
}

/// `NaN`, `+Inf`, `-Inf`, integers without fraction, else the shortest round-trip text.
pub(crate) fn write_f64(o: &mut String, v: f64) {
    if v.is_nan() {
        o.push_str("NaN");
    } else if v.is_infinite() {
        o.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v == 0.0 && v.is_sign_negative() {
        o.push_str("-0");
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        write_i64(o, v as i64);
    } else {
        // `Debug` is the shortest representation that round-trips, switching to exponent
        // notation for very large and very small magnitudes (`1e300`, `1.5e-7`).
        let _ = write!(o, "{v:?}");
    }
}

pub(crate) fn write_i64(o: &mut String, v: i64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut n = v.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        o.push('-');
    }
    for &b in &buf[i..] {
        o.push(b as char);
    }
}

/// Milliseconds as exact decimal seconds (`1700000000.123`, `-1.5`, `12`).
fn write_ms_as_seconds(o: &mut String, ms: i64) {
    let abs = ms.unsigned_abs();
    if ms < 0 {
        o.push('-');
    }
    let secs = abs / 1000;
    let frac = abs % 1000;
    let _ = write!(o, "{secs}");
    if frac != 0 {
        let mut digits = format!("{frac:03}");
        while digits.ends_with('0') {
            digits.pop();
        }
        o.push('.');
        o.push_str(&digits);
    }
}
