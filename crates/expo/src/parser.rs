//! The streaming, zero-copy parser and [`parse`], which groups its events into families.
//!
//! Leniency (documented decisions, applied to both formats unless noted):
//! * blank lines, CRLF line ends, leading/trailing spaces and tabs are accepted;
//! * `#` lines other than `HELP`/`TYPE`/`UNIT`/`EOF` are comments and skipped (OpenMetrics
//!   forbids them; being strict here would only lose data);
//! * `# UNIT` is metadata in OpenMetrics and a plain comment in 0.0.4;
//! * an exemplar (` # {…} value [timestamp]`) after a sample is parsed in both formats, although
//!   0.0.4 does not define them (Prometheus's text parser rejects the line; we keep the sample);
//! * `# EOF` ends the body in both formats; the first non-blank line after it is reported once
//!   and parsing stops. Missing `# EOF` is an error only for OpenMetrics;
//! * timestamps are integer milliseconds in 0.0.4 and (fractional) seconds in OpenMetrics; a
//!   fractional timestamp in 0.0.4 is an error (its unit would be ambiguous);
//! * duplicate label names and OpenMetrics' naming rules (`_total` on counters, unit suffix
//!   on the name, exemplar length) are not checked.
use std::borrow::Cow;

use crate::labels::{Labels, scan_labels};
use crate::scan::{
    is_metric_cont, is_metric_start, parse_f64, parse_i64, parse_seconds_to_ms, skip_ws, token_end,
};
use crate::{Exemplar, Exposition, Family, Format, MetricType, Sample};

/// One parsed line.
///
/// The streaming unit of the parser: consumers that only need a few series (the scraper
/// picking `vllm:*` gauges) can filter events without building families.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<'a> {
    /// `# HELP family text` (text unescaped: `\\`, `\n`, `\"`).
    Help {
        /// Family name as written.
        family: &'a str,
        /// Help text, unescaped; borrowed when it holds no escape.
        text: Cow<'a, str>,
    },
    /// `# TYPE family type`
    Type {
        /// Family name as written.
        family: &'a str,
        /// The declared type.
        metric_type: MetricType,
    },
    /// `# UNIT family unit` (OpenMetrics only).
    Unit {
        /// Family name as written.
        family: &'a str,
        /// The unit word (may be empty).
        unit: &'a str,
    },
    /// A sample line.
    Sample(Sample<'a>),
    /// `# EOF`
    Eof,
}

/// A skipped line: why it was skipped and where, so that a scrape with one bad line still
/// yields the rest and the operator can find the culprit.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
    /// The start of the offending line (at most 80 bytes, cut at a character boundary), for
    /// logs; empty for errors not tied to a line's content (missing `# EOF`).
    pub excerpt: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)?;
        if !self.excerpt.is_empty() {
            write!(f, ": {:?}", self.excerpt)?;
        }
        Ok(())
    }
}
impl std::error::Error for ParseError {}

const EXCERPT_MAX: usize = 80;

fn excerpt(line: &str) -> String {
    if line.len() <= EXCERPT_MAX {
        return line.to_string();
    }
    let mut end = EXCERPT_MAX;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    AfterEof,
    Done,
}

/// Streaming parser: an iterator of [`Event`]s (or [`ParseError`]s for skipped lines) that
/// borrows everything from the input and allocates nothing per sample.
#[derive(Debug, Clone)]
pub struct Parser<'a> {
    input: &'a str,
    pos: usize,
    line: usize,
    format: Format,
    state: State,
}

impl<'a> Parser<'a> {
    /// A parser over `input`.
    pub fn new(input: &'a str, format: Format) -> Parser<'a> {
        Parser {
            input,
            pos: 0,
            line: 0,
            format,
            state: State::Running,
        }
    }

    /// The format this parser reads.
    pub fn format(&self) -> Format {
        self.format
    }

    fn error(&self, line: &str, message: &str) -> ParseError {
        ParseError {
            line: self.line,
            message: message.to_string(),
            excerpt: excerpt(line),
        }
    }

    fn parse_line(&mut self, line: &'a str) -> Result<Option<Event<'a>>, &'static str> {
        if line.as_bytes()[0] == b'#' {
            self.parse_comment(line)
        } else {
            self.parse_sample(line).map(|s| Some(Event::Sample(s)))
        }
    }

    fn parse_comment(&mut self, line: &'a str) -> Result<Option<Event<'a>>, &'static str> {
        let b = line.as_bytes();
        let i = skip_ws(b, 1);
        if i == 1 {
            return Ok(None); // "#foo": a comment
        }
        let kw_end = token_end(b, i);
        let kw = &b[i..kw_end];
        match kw {
            b"EOF" if kw_end == b.len() => {
                self.state = State::AfterEof;
                return Ok(Some(Event::Eof));
            }
            b"HELP" | b"TYPE" => {}
            b"UNIT" if self.format == Format::OpenMetrics => {}
            _ => return Ok(None),
        }
        let name_start = skip_ws(b, kw_end);
        if name_start >= b.len() {
            return Err("metadata line without a metric name");
        }
        if !is_metric_start(b[name_start]) {
            return Err("invalid metric name in metadata line");
        }
        let mut name_end = name_start + 1;
        while name_end < b.len() && is_metric_cont(b[name_end]) {
            name_end += 1;
        }
        if name_end < b.len() && b[name_end] != b' ' && b[name_end] != b'\t' {
            return Err("invalid metric name in metadata line");
        }
        let family = &line[name_start..name_end];
        let rest_start = skip_ws(b, name_end);
        let rest = &line[rest_start..];
        match kw {
            b"HELP" => Ok(Some(Event::Help {
                family,
                text: unescape_help(rest),
            })),
            b"TYPE" => match MetricType::from_word(rest) {
                Some(metric_type) => Ok(Some(Event::Type {
                    family,
                    metric_type,
                })),
                None => Err("unknown metric type in TYPE line"),
            },
            _ => {
                if rest.as_bytes().iter().any(|&c| c == b' ' || c == b'\t') {
                    return Err("UNIT must be a single word");
                }
                Ok(Some(Event::Unit { family, unit: rest }))
            }
        }
    }

    fn parse_sample(&self, line: &'a str) -> Result<Sample<'a>, &'static str> {
        let b = line.as_bytes();
        let n = b.len();
        if !is_metric_start(b[0]) {
            return Err("invalid metric name");
        }
        let mut i = 1;
        while i < n && is_metric_cont(b[i]) {
            i += 1;
        }
        let name = &line[..i];
        let mut labels = Labels::default();
        if i < n && b[i] == b'{' {
            let (close, pairs) = scan_labels(b, i + 1)?;
            if pairs > 0 {
                labels = Labels::from_validated(&line[i + 1..close]);
            }
            i = close + 1;
        }
        if i >= n {
            return Err("missing value");
        }
        if b[i] != b' ' && b[i] != b'\t' {
            return Err("invalid character in metric name or after labels");
        }
        i = skip_ws(b, i);
        let v_end = token_end(b, i);
        let value = parse_f64(&b[i..v_end]).ok_or("invalid value")?;
        i = skip_ws(b, v_end);
        let mut timestamp_ms = None;
        if i < n && b[i] != b'#' {
            let t_end = token_end(b, i);
            let tok = &b[i..t_end];
            timestamp_ms = Some(match self.format {
                Format::Prometheus => {
                    parse_i64(tok).ok_or("invalid timestamp (0.0.4 wants integer milliseconds)")?
                }
                Format::OpenMetrics => parse_seconds_to_ms(tok).ok_or("invalid timestamp")?,
            });
            i = skip_ws(b, t_end);
        }
        let mut exemplar = None;
        if i < n {
            if b[i] != b'#' {
                return Err("unexpected text after the timestamp");
            }
            exemplar = Some(parse_exemplar(line, i + 1)?);
        }
        Ok(Sample {
            name,
            labels,
            value,
            timestamp_ms,
            exemplar,
            line: u32::try_from(self.line).unwrap_or(u32::MAX),
        })
    }
}

/// Parses ` {labels} value [timestamp]` after the `#` of an exemplar.
fn parse_exemplar(line: &str, start: usize) -> Result<Exemplar<'_>, &'static str> {
    let b = line.as_bytes();
    let n = b.len();
    let mut i = skip_ws(b, start);
    if i == start || i >= n || b[i] != b'{' {
        return Err("expected ' {' to open an exemplar after '#'");
    }
    let (close, pairs) = scan_labels(b, i + 1)?;
    let labels = if pairs > 0 {
        Labels::from_validated(&line[i + 1..close])
    } else {
        Labels::default()
    };
    i = close + 1;
    let after = skip_ws(b, i);
    if after == i || after >= n {
        return Err("exemplar without a value");
    }
    let v_end = token_end(b, after);
    let value = parse_f64(&b[after..v_end]).ok_or("invalid exemplar value")?;
    i = skip_ws(b, v_end);
    let mut timestamp = None;
    if i < n {
        let t_end = token_end(b, i);
        let ts = parse_f64(&b[i..t_end]).ok_or("invalid exemplar timestamp")?;
        timestamp = Some(ts);
        i = skip_ws(b, t_end);
    }
    if i < n {
        return Err("unexpected text after the exemplar");
    }
    Ok(Exemplar {
        labels,
        value,
        timestamp,
    })
}

/// Unescapes HELP text: `\\`, `\n` and (OpenMetrics) `\"`; other backslashes stay.
fn unescape_help(raw: &str) -> Cow<'_, str> {
    if !raw.as_bytes().contains(&b'\\') {
        return Cow::Borrowed(raw);
    }
    Cow::Owned(crate::labels::unescape_label_value(raw))
}

#[inline]
fn find_newline(b: &[u8], from: usize) -> Option<usize> {
    memchr::memchr(b'\n', b.get(from..)?).map(|k| from + k)
}

impl<'a> Iterator for Parser<'a> {
    type Item = Result<Event<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        let input = self.input;
        let bytes = input.as_bytes();
        loop {
            if self.state == State::Done {
                return None;
            }
            if self.pos >= bytes.len() {
                let missing_eof =
                    self.format == Format::OpenMetrics && self.state == State::Running;
                self.state = State::Done;
                if missing_eof {
                    return Some(Err(ParseError {
                        line: self.line.max(1),
                        message: "missing '# EOF' at the end of an OpenMetrics body".to_string(),
                        excerpt: String::new(),
                    }));
                }
                return None;
            }
            let start = self.pos;
            let (end, next) = match find_newline(bytes, start) {
                Some(k) => (k, k + 1),
                None => (bytes.len(), bytes.len()),
            };
            self.pos = next;
            self.line += 1;
            // Trim spaces, tabs and '\r' at both ends (all ASCII: slicing stays on char
            // boundaries).
            let mut s = start;
            let mut e = end;
            while s < e && matches!(bytes[s], b' ' | b'\t') {
                s += 1;
            }
            while e > s && matches!(bytes[e - 1], b' ' | b'\t' | b'\r') {
                e -= 1;
            }
            if s == e {
                continue;
            }
            let line = &input[s..e];
            if self.state == State::AfterEof {
                self.state = State::Done;
                return Some(Err(self.error(line, "content after '# EOF'")));
            }
            match self.parse_line(line) {
                Ok(Some(ev)) => return Some(Ok(ev)),
                Ok(None) => continue,
                Err(msg) => return Some(Err(self.error(line, msg))),
            }
        }
    }
}

/// Parses a whole body into families.
///
/// A sample joins the family just before it when its name is the family name plus one of
/// the suffixes the family's type allows ([`MetricType::suffixes`]); otherwise it starts (or
/// extends, if the previous family has the same name) an untyped family named after itself.
/// `# HELP`/`# TYPE`/`# UNIT` lines attach to the previous family when it has the same name,
/// no samples yet and that field unset; otherwise they open a new family.
pub fn parse(input: &str, format: Format) -> Exposition<'_> {
    let mut exp = Exposition::default();
    // Whether the last family got its type from a TYPE line.
    let mut last_typed = false;
    let mut last_open_for_meta = false;
    for item in Parser::new(input, format) {
        let ev = match item {
            Ok(ev) => ev,
            Err(e) => {
                exp.errors.push(e);
                continue;
            }
        };
        match ev {
            Event::Sample(s) => {
                let joins = exp.families.last().is_some_and(|f| {
                    s.name.len() >= f.name.len()
                        && s.name.as_bytes()[..f.name.len()] == *f.name.as_bytes()
                        && f.metric_type.suffixes().contains(&&s.name[f.name.len()..])
                });
                if joins {
                    if let Some(f) = exp.families.last_mut() {
                        f.samples.push(s);
                    }
                } else {
                    exp.families.push(Family {
                        name: s.name,
                        metric_type: MetricType::Unknown,
                        help: None,
                        unit: None,
                        samples: vec![s],
                    });
                    last_typed = false;
                }
                last_open_for_meta = false;
            }
            Event::Eof => exp.saw_eof = true,
            Event::Help { family, text } => {
                let f = meta_family(&mut exp.families, family, last_open_for_meta, |f| {
                    f.help.is_none()
                });
                if f.1 {
                    last_typed = false;
                }
                f.0.help = Some(text);
                last_open_for_meta = true;
            }
            Event::Unit { family, unit } => {
                let f = meta_family(&mut exp.families, family, last_open_for_meta, |f| {
                    f.unit.is_none()
                });
                if f.1 {
                    last_typed = false;
                }
                f.0.unit = Some(unit);
                last_open_for_meta = true;
            }
            Event::Type {
                family,
                metric_type,
            } => {
                let typed = last_typed;
                let f = meta_family(&mut exp.families, family, last_open_for_meta, |_| !typed);
                f.0.metric_type = metric_type;
                last_typed = true;
                last_open_for_meta = true;
            }
        }
    }
    exp
}

/// The family a metadata line for `name` belongs to: the last one if it has that name, is
/// still open for metadata (no samples since its metadata) and `free` says the field is
/// unset; a new one otherwise. The bool says whether a new family was opened.
fn meta_family<'f, 'a>(
    families: &'f mut Vec<Family<'a>>,
    name: &'a str,
    open: bool,
    free: impl Fn(&Family<'a>) -> bool,
) -> (&'f mut Family<'a>, bool) {
    let reuse = open
        && families
            .last()
            .is_some_and(|f| f.name == name && f.samples.is_empty() && free(f));
    if !reuse {
        families.push(Family {
            name,
            metric_type: MetricType::Unknown,
            help: None,
            unit: None,
            samples: Vec::new(),
        });
    }
    let len = families.len();
    (&mut families[len - 1], !reuse)
}
