//! A runner for Prometheus' `promqltest` script format (`load`, `clear`, `eval instant`,
//! `eval range`, expected series, `expect fail`/`ordered`/`string`/`range vector`), evaluating
//! over Strata's store and engine. Annotations (`expect warn`/`info`) are not produced by
//! Strata and are ignored; native histograms (`{{…}}`, `load_with_nhcb`) are reported as
//! unsupported rather than failed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tsdb::promql::{Engine, EngineConfig, QueryOptions, Value};
use tsdb::{STALE_NAN_BITS, SampleRef, Store, StoreConfig};

/// The outcome of one `eval` command.
#[derive(Debug)]
pub enum Outcome {
    Pass,
    Fail(String),
    Unsupported(String),
}

/// Per-file tallies and the failures, each with its line and reason.
#[derive(Debug, Default)]
pub struct Report {
    pub passed: usize,
    pub failed: Vec<(usize, String, String)>,
    pub unsupported: Vec<(usize, String, String)>,
}

/// A series as written in a test: metric name (may be empty) and other labels.
type Key = (String, Vec<(String, String)>);

/// A labels-and-values line: `name{a="b"} 1 2+3x4 _ stale`.
fn parse_series_line(line: &str) -> Result<(Key, &str), String> {
    let line = line.trim();
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let mut name = line[..name_end].to_string();
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices().peekable();
        let mut end = None;
        loop {
            while chars
                .next_if(|(_, c)| c.is_whitespace() || *c == ',')
                .is_some()
            {}
            let Some(&(i, c)) = chars.peek() else { break };
            if c == '}' {
                end = Some(i + 1);
                break;
            }
            let label = if c == '"' {
                chars.next();
                quoted(&mut chars)?
            } else {
                let mut s = String::new();
                while let Some((_, c)) = chars.next_if(|(_, c)| c.is_alphanumeric() || *c == '_') {
                    s.push(c);
                }
                s
            };
            while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
            if chars.next_if(|(_, c)| *c == '=').is_none() {
                // A quoted metric name on its own: {"my.metric", a="b"}.
                name = label;
                continue;
            }
            while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
            if chars.next_if(|(_, c)| *c == '"').is_none() {
                return Err(format!("label {label} needs a quoted value in {line:?}"));
            }
            let value = quoted(&mut chars)?;
            if label == "__name__" {
                name = value;
            } else {
                labels.push((label, value));
            }
        }
        let end = end.ok_or_else(|| format!("unclosed {{ in {line:?}"))?;
        rest = &body[end..];
    }
    labels.sort();
    Ok(((name, labels), rest.trim()))
}

/// The rest of a double-quoted Go string whose opening quote was consumed.
fn quoted(chars: &mut impl Iterator<Item = (usize, char)>) -> Result<String, String> {
    let mut out = String::new();
    while let Some((_, c)) = chars.next() {
        match c {
            '"' => return Ok(out),
            '\\' => match chars.next().map(|p| p.1) {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(c) => out.push(c),
                None => break,
            },
            c => out.push(c),
        }
    }
    Err("unterminated string".into())
}

/// A number as the tests write them (`1`, `-2.5e3`, `Inf`, `-Inf`, `NaN`); `0x5` is a
/// repetition there, not hex.
fn number(s: &str) -> Option<f64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = match body.to_ascii_lowercase().as_str() {
        "inf" | "infinity" => f64::INFINITY,
        "nan" => f64::NAN,
        "stale" => return None,
        b => b.parse().ok()?,
    };
    Some(if neg { -v } else { v })
}

/// A value sequence: `_`, `_xN`, `stale`, `v`, `vxN`, `a+bxN`, `a-bxN`; `None` is a gap.
fn parse_values(s: &str) -> Result<Vec<Option<f64>>, Outcome> {
    if s.contains("{{") {
        return Err(Outcome::Unsupported("native histogram samples".into()));
    }
    let mut out = Vec::new();
    for item in s.split_whitespace() {
        if item == "_" {
            out.push(None);
            continue;
        }
        if item == "stale" {
            out.push(Some(f64::from_bits(STALE_NAN_BITS)));
            continue;
        }
        if let Some(n) = item.strip_prefix("_x") {
            let n: usize = n.parse().map_err(|_| bad(item))?;
            out.extend(std::iter::repeat_n(None, n));
            continue;
        }
        if let Some(v) = number(item) {
            out.push(Some(v));
            continue;
        }
        let (expr, times) = item.rsplit_once('x').ok_or_else(|| bad(item))?;
        let times: usize = times.parse().map_err(|_| bad(item))?;
        // Split `a+b` / `a-b` at the operator that is neither a leading sign nor an exponent's.
        let bytes = expr.as_bytes();
        let op = (1..bytes.len())
            .find(|&i| matches!(bytes[i], b'+' | b'-') && !matches!(bytes[i - 1], b'e' | b'E'));
        let (start, step) = match op {
            Some(i) => {
                let step = number(&expr[i + 1..]).ok_or_else(|| bad(item))?;
                let start = number(&expr[..i]).ok_or_else(|| bad(item))?;
                (start, if bytes[i] == b'-' { -step } else { step })
            }
            None => (number(expr).ok_or_else(|| bad(item))?, 0.0),
        };
        // Go adds the step repeatedly, so accumulated rounding matches.
        let mut v = start;
        for _ in 0..=times {
            out.push(Some(v));
            v += step;
        }
    }
    Ok(out)
}

fn bad(item: &str) -> Outcome {
    Outcome::Fail(format!("cannot parse sequence item {item:?}"))
}

/// A Prometheus duration (`1m`, `1h30m`, `10s53ms`, `0`) in ms.
fn duration(s: &str) -> Option<i64> {
    let s = s.trim();
    if s == "0" {
        return Some(0);
    }
    let (mut total, mut num) = (0i64, String::new());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = if c == 'm' && chars.peek() == Some(&'s') {
            chars.next();
            1
        } else {
            match c {
                's' => 1_000,
                'm' => 60_000,
                'h' => 3_600_000,
                'd' => 86_400_000,
                'w' => 604_800_000,
                'y' => 31_536_000_000,
                _ => return None,
            }
        };
        total += num.parse::<i64>().ok()? * unit;
        num.clear();
    }
    num.is_empty().then_some(total)
}

/// Go's `almost.Equal` with the test epsilon: NaN equals NaN, relative error below 1e-6.
fn almost_equal(a: f64, b: f64) -> bool {
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let diff = (a - b).abs();
    let min_normal = f64::MIN_POSITIVE;
    let abs_sum = a.abs() + b.abs();
    if a == 0.0 || b == 0.0 || abs_sum < min_normal {
        return diff < 1e-6 * min_normal;
    }
    diff / abs_sum.min(f64::MAX) < 1e-6
}

/// One `eval` command, parsed.
struct Eval {
    line: usize,
    expr: String,
    /// (start, end, step) in ms; step 0 for an instant query.
    range: (i64, i64, i64),
    fail: bool,
    ordered: bool,
    scalar: Option<f64>,
    string: Option<String>,
    /// Expected series in order, with their values (gaps as `None`).
    series: Vec<(Key, Vec<Option<f64>>)>,
    /// Timestamps of an instant query's expected range vector (`expect range vector`).
    matrix: Option<(i64, i64, i64)>,
    unsupported: Option<String>,
}

fn parse_eval(lines: &[&str], i: &mut usize) -> Result<Eval, String> {
    let head = lines[*i].trim();
    let line = *i + 1;
    let (cmd, rest) = head.split_once(char::is_whitespace).unwrap_or((head, ""));
    let modifier = cmd.strip_prefix("eval").unwrap_or("");
    let rest = rest.trim();
    let mut ev = Eval {
        line,
        expr: String::new(),
        range: (0, 0, 0),
        fail: modifier == "_fail",
        ordered: modifier == "_ordered",
        scalar: None,
        string: None,
        series: Vec::new(),
        matrix: None,
        unsupported: None,
    };
    if let Some(r) = rest.strip_prefix("instant") {
        let r = r.trim();
        let (at, expr) = match r.strip_prefix("at ") {
            Some(r) => r.trim().split_once(char::is_whitespace).unwrap_or((r, "")),
            None => ("0s", r),
        };
        let t = duration(at).ok_or_else(|| format!("line {line}: bad time {at:?}"))?;
        ev.range = (t, t, 0);
        ev.expr = expr.trim().to_string();
    } else if let Some(r) = rest.strip_prefix("range from ") {
        let (from, r) = r.split_once(" to ").ok_or("range needs `to`")?;
        let (to, r) = r.trim().split_once(" step ").ok_or("range needs `step`")?;
        let (step, expr) = r.trim().split_once(char::is_whitespace).unwrap_or((r, ""));
        let d = |s: &str| duration(s).ok_or_else(|| format!("line {line}: bad duration {s:?}"));
        ev.range = (d(from)?, d(to)?, d(step)?);
        ev.expr = expr.trim().to_string();
    } else {
        return Err(format!("line {line}: unknown eval form {head:?}"));
    }
    *i += 1;
    while let Some(l) = lines.get(*i).map(|l| l.trim()) {
        if l.is_empty() {
            break;
        }
        *i += 1;
        if l.starts_with('#') {
            continue;
        }
        if let Some(e) = l.strip_prefix("expect ") {
            let e = e.trim();
            if e.starts_with("fail") {
                ev.fail = true;
            } else if e.starts_with("ordered") {
                ev.ordered = true;
            } else if let Some(s) = e.strip_prefix("string") {
                let s = s.trim();
                ev.string = Some(match s.strip_prefix('`') {
                    Some(raw) => raw.trim_end_matches('`').to_string(),
                    None => quoted(&mut s.char_indices().skip(1))?,
                });
            } else if let Some(r) = e.strip_prefix("range vector from ") {
                let (from, r) = r.split_once(" to ").ok_or("range vector needs `to`")?;
                let (to, step) = r.split_once(" step ").ok_or("range vector needs `step`")?;
                let d = |s: &str| duration(s).ok_or_else(|| format!("bad duration {s:?}"));
                ev.matrix = Some((d(from)?, d(to)?, d(step)?));
            }
            // warn / info / no_warn / no_info: Strata does not produce annotations.
            continue;
        }
        if l.starts_with("expected_fail_") {
            continue;
        }
        if let Some(v) = number(l) {
            ev.scalar = Some(v);
            continue;
        }
        let (key, values) = parse_series_line(l).map_err(|e| format!("line {}: {e}", *i))?;
        match parse_values(values) {
            Ok(v) => ev.series.push((key, v)),
            Err(Outcome::Unsupported(why)) => ev.unsupported = Some(why),
            Err(other) => return Err(format!("line {}: {other:?}", *i)),
        }
    }
    Ok(ev)
}

fn key_of(labels: &tsdb::Labels) -> Key {
    let mut name = String::new();
    let mut out = Vec::new();
    for (n, v) in labels.iter() {
        if n == "__name__" {
            name = v.to_string();
        } else {
            out.push((n.to_string(), v.to_string()));
        }
    }
    out.sort();
    (name, out)
}

fn show(k: &Key) -> String {
    let ls: Vec<String> = k.1.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
    format!("{}{{{}}}", k.0, ls.join(", "))
}

fn compare(ev: &Eval, got: Value) -> Result<(), String> {
    let (start, _, step) = ev.matrix.unwrap_or(ev.range);
    match got {
        Value::Scalar { v, .. } => match ev.scalar {
            Some(want) if almost_equal(want, v) => Ok(()),
            want => Err(format!("expected {want:?}, got scalar {v}")),
        },
        Value::String { v, .. } => match &ev.string {
            Some(want) if *want == v => Ok(()),
            want => Err(format!("expected {want:?}, got string {v:?}")),
        },
        Value::Vector(samples) => {
            if ev.scalar.is_some() {
                return Err("expected a scalar, got a vector".into());
            }
            let want: HashMap<&Key, (usize, &Vec<Option<f64>>)> = ev
                .series
                .iter()
                .enumerate()
                .map(|(i, (k, v))| (k, (i, v)))
                .collect();
            for (pos, s) in samples.iter().enumerate() {
                let k = key_of(&s.labels);
                let Some((i, vals)) = want.get(&k) else {
                    return Err(format!("unexpected series {} = {}", show(&k), s.v));
                };
                if ev.ordered && *i != pos {
                    return Err(format!("{} at position {pos}, expected {i}", show(&k)));
                }
                match vals.first().copied().flatten() {
                    Some(w) if almost_equal(w, s.v) => {}
                    w => return Err(format!("{}: expected {w:?}, got {}", show(&k), s.v)),
                }
            }
            if samples.len() != want.len() {
                return Err(format!(
                    "expected {} series, got {}",
                    want.len(),
                    samples.len()
                ));
            }
            Ok(())
        }
        Value::Matrix(series) => {
            if ev.scalar.is_some() {
                return Err("expected a scalar, got a matrix".into());
            }
            let want: HashMap<&Key, &Vec<Option<f64>>> =
                ev.series.iter().map(|(k, v)| (k, v)).collect();
            for s in &series {
                let k = key_of(&s.labels);
                let Some(vals) = want.get(&k) else {
                    return Err(format!("unexpected series {} {:?}", show(&k), s.points));
                };
                let expected: Vec<(i64, f64)> = vals
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| Some((start + i as i64 * step, (*v)?)))
                    .collect();
                let same = expected.len() == s.points.len()
                    && expected
                        .iter()
                        .zip(&s.points)
                        .all(|(e, g)| e.0 == g.0 && almost_equal(e.1, g.1));
                if !same {
                    return Err(format!(
                        "{}: expected {expected:?}, got {:?}",
                        show(&k),
                        s.points
                    ));
                }
            }
            if series.len() != want.len() {
                return Err(format!(
                    "expected {} series, got {}",
                    want.len(),
                    series.len()
                ));
            }
            Ok(())
        }
    }
}

/// A store that keeps everything a script loads (test data spans days from t=0).
fn new_store() -> Arc<Store> {
    Arc::new(
        Store::open(StoreConfig {
            retention: Duration::from_secs(10 * 365 * 86_400),
            ..StoreConfig::default()
        })
        .0,
    )
}

fn new_engine(store: &Arc<Store>) -> Engine {
    Engine::new(Arc::clone(store), EngineConfig::default())
}

/// Runs one script; `Err` when the script itself cannot be read.
pub fn run(script: &str) -> Result<Report, String> {
    // As Prometheus' getLines: trimmed, comment lines blank (so a comment ends a block).
    let lines: Vec<&str> = script
        .lines()
        .map(|l| {
            if l.trim().starts_with('#') {
                ""
            } else {
                l.trim()
            }
        })
        .collect();
    let mut report = Report::default();
    let mut store = new_store();
    // Samples the store refused while loading (duplicate timestamps, limits).
    let mut dropped: Vec<String> = Vec::new();
    let mut engine = new_engine(&store);
    // Metrics loaded as native histograms since the last `clear`; `nhcb` when classic
    // histograms were loaded as native ones (`load_with_nhcb`).
    let mut native: Vec<String> = Vec::new();
    let mut nhcb = false;
    let opts = QueryOptions {
        timeout: Some(Duration::from_secs(20)),
        cancel: None,
    };
    let mut i = 0;
    while let Some(l) = lines.get(i).map(|l| l.trim()) {
        if l.is_empty() || l.starts_with('#') {
            i += 1;
            continue;
        }
        let word = l.split_whitespace().next().unwrap_or("");
        if word == "clear" {
            store = new_store();
            dropped.clear();
            engine = new_engine(&store);
            native.clear();
            nhcb = false;
            i += 1;
        } else if word.starts_with("load") {
            nhcb |= word == "load_with_nhcb";
            let gap = l
                .split_whitespace()
                .nth(1)
                .and_then(duration)
                .ok_or_else(|| format!("line {}: bad load {l:?}", i + 1))?;
            i += 1;
            while let Some(l) = lines.get(i).map(|l| l.trim()) {
                if l.is_empty() {
                    break;
                }
                i += 1;
                if l.starts_with('#') {
                    continue;
                }
                let ((name, labels), values) = parse_series_line(l)?;
                let values = match parse_values(values) {
                    Ok(v) => v,
                    Err(_) => {
                        native.push(name);
                        continue;
                    }
                };
                let r = store.append(
                    "promqltest",
                    values.iter().enumerate().filter_map(|(k, v)| {
                        Some(SampleRef {
                            name: &name,
                            labels: &labels,
                            t_ms: k as i64 * gap,
                            value: (*v)?,
                        })
                    }),
                );
                if r.out_of_order > 0 || !r.refused.is_empty() {
                    dropped.push(format!("{name}: {r:?}"));
                }
            }
        } else if word.starts_with("eval") {
            let ev = parse_eval(&lines, &mut i)?;
            // An eval may read native histograms when it names one of their metrics, matches
            // names by regex, or runs after classic histograms were loaded as native ones.
            let reads_native = native.iter().any(|n| ev.expr.contains(n.as_str()))
                || (!native.is_empty() && ev.expr.contains("__name__"))
                || nhcb;
            let outcome = match evaluate(&engine, &ev, reads_native, &opts) {
                Outcome::Fail(why) if !dropped.is_empty() => {
                    Outcome::Fail(format!("{why} (the store refused samples: {dropped:?})"))
                }
                o => o,
            };
            match outcome {
                Outcome::Pass => report.passed += 1,
                Outcome::Fail(why) => report.failed.push((ev.line, ev.expr, why)),
                Outcome::Unsupported(why) => report.unsupported.push((ev.line, ev.expr, why)),
            }
        } else {
            return Err(format!("line {}: unknown command {l:?}", i + 1));
        }
    }
    Ok(report)
}

fn evaluate(engine: &Engine, ev: &Eval, native: bool, opts: &QueryOptions) -> Outcome {
    if let Some(why) = &ev.unsupported {
        return Outcome::Unsupported(why.clone());
    }
    if let Err(e) = promql_parser::parser::parse(&ev.expr)
        && !ev.fail
    {
        return Outcome::Unsupported(format!("promql-parser: {}", e.lines().next().unwrap_or("")));
    }
    let (start, end, step) = ev.range;
    let got = if step == 0 {
        engine.instant_with(&ev.expr, start, opts)
    } else {
        engine.range_with(&ev.expr, start, end, step, opts)
    };
    let outcome = match (got, ev.fail) {
        (Err(_), true) => Outcome::Pass,
        (Ok(v), true) => Outcome::Fail(format!("expected an error, got {v:?}")),
        (Err(e), false) if e.message.contains("not supported") => Outcome::Unsupported(e.message),
        (Err(e), false) => Outcome::Fail(format!("error: {e}")),
        (Ok(v), false) => match compare(ev, v) {
            Ok(()) => Outcome::Pass,
            Err(why) => Outcome::Fail(why),
        },
    };
    match outcome {
        Outcome::Fail(why) if native => {
            Outcome::Unsupported(format!("reads native histograms; {why}"))
        }
        o => o,
    }
}
