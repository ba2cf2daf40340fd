//! Borrowed label sets: the raw text between `{` and `}`, validated once by the parser and
//! unescaped lazily on iteration.

use std::borrow::Cow;

use crate::scan::{is_label_cont, is_label_start, skip_ws};

/// A validated label set borrowed from the input (the text between `{` and `}`).
///
/// It exists so that the parser never allocates per sample: the set is kept as one slice of
/// the scrape body, checked once for syntax, and values are unescaped only when somebody
/// iterates. Because the slice was validated, iteration never fails.
///
/// Equality compares the label pairs (name and unescaped value) in order, so `{a="b",}` equals
/// `{a="b"}`; identical raw text short-circuits.
#[derive(Debug, Clone, Copy, Default)]
pub struct Labels<'a> {
    raw: &'a str,
}

impl<'a> Labels<'a> {
    /// Wraps text the parser already validated with [`scan_labels`]. Empty sets must be
    /// passed as `""` so that [`Labels::is_empty`] stays a length check.
    pub(crate) fn from_validated(raw: &'a str) -> Labels<'a> {
        Labels { raw }
    }

    /// Validates `raw` (the text between the braces, e.g. `a="b",c="d"`) and wraps it.
    ///
    /// This exists for callers that hold a label block from elsewhere (a config file, a test)
    /// and want the same lazy, borrowed view the parser produces.
    pub fn parse(raw: &'a str) -> Result<Labels<'a>, &'static str> {
        let mut line = String::with_capacity(raw.len() + 1);
        line.push_str(raw);
        line.push('}');
        let (close, pairs) = scan_labels(line.as_bytes(), 0)?;
        if close + 1 != line.len() {
            return Err("text after the closing '}' of the label set");
        }
        Ok(Labels {
            raw: if pairs == 0 { "" } else { raw },
        })
    }

    /// Iterates `(name, unescaped value)` pairs in input order.
    pub fn iter(&self) -> LabelIter<'a> {
        LabelIter { rest: self.raw }
    }

    /// The value of label `name` (the first one, should the input repeat it).
    pub fn get(&self, name: &str) -> Option<Cow<'a, str>> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// True when there are no labels.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Number of label pairs (counts by scanning; no allocation).
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// The raw, still escaped text between the braces (without them). Useful as a cheap
    /// series key: two samples with byte-identical label text are the same series.
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// Owned `(name, value)` pairs, values unescaped.
    pub fn to_pairs(&self) -> Vec<(String, String)> {
        self.iter()
            .map(|(n, v)| (n.to_string(), v.into_owned()))
            .collect()
    }
}

impl PartialEq for Labels<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw || self.iter().eq(other.iter())
    }
}

impl<'a> IntoIterator for Labels<'a> {
    type Item = (&'a str, Cow<'a, str>);
    type IntoIter = LabelIter<'a>;
    fn into_iter(self) -> LabelIter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &Labels<'a> {
    type Item = (&'a str, Cow<'a, str>);
    type IntoIter = LabelIter<'a>;
    fn into_iter(self) -> LabelIter<'a> {
        self.iter()
    }
}

/// Iterator over a [`Labels`], yielding `(name, value)` with the value unescaped (borrowed
/// when it holds no escape).
#[derive(Debug, Clone)]
pub struct LabelIter<'a> {
    rest: &'a str,
}

impl<'a> Iterator for LabelIter<'a> {
    type Item = (&'a str, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        let s = self.rest;
        let b = s.as_bytes();
        let n = b.len();
        let mut i = 0;
        while i < n && matches!(b[i], b' ' | b'\t' | b',') {
            i += 1;
        }
        if i >= n || !is_label_start(b[i]) {
            self.rest = "";
            return None;
        }
        let name_start = i;
        i += 1;
        while i < n && is_label_cont(b[i]) {
            i += 1;
        }
        let name = s.get(name_start..i)?;
        i = skip_ws(b, i);
        if i >= n || b[i] != b'=' {
            self.rest = "";
            return None;
        }
        i = skip_ws(b, i + 1);
        if i >= n || b[i] != b'"' {
            self.rest = "";
            return None;
        }
        i += 1;
        let value_start = i;
        let mut escaped = false;
        while i < n {
            match b[i] {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    i += 2;
                }
                _ => i += 1,
            }
        }
        let end = i.min(n);
        let raw_value = s.get(value_start..end)?;
        self.rest = s.get((end + 1).min(n)..).unwrap_or("");
        let value = if escaped {
            Cow::Owned(unescape_label_value(raw_value))
        } else {
            Cow::Borrowed(raw_value)
        };
        Some((name, value))
    }
}

/// Unescapes `\\`, `\"` and `\n`; any other backslash is kept as written.
pub(crate) fn unescape_label_value(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some('n') => out.push('\n'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Validates a label block starting at `i` (just after `{`). Returns the index of the
/// closing `}` and the number of pairs. Whitespace is allowed around names, `=` and `,`, and
/// a trailing comma is accepted; label values may only use the escapes `\\`, `\"`, `\n`.
pub(crate) fn scan_labels(b: &[u8], mut i: usize) -> Result<(usize, usize), &'static str> {
    let n = b.len();
    let mut pairs = 0usize;
    loop {
        i = skip_ws(b, i);
        if i >= n {
            return Err("unterminated label set (missing '}')");
        }
        let c = b[i];
        if c == b'}' {
            return Ok((i, pairs));
        }
        if !is_label_start(c) {
            return Err("invalid label name");
        }
        i += 1;
        while i < n && is_label_cont(b[i]) {
            i += 1;
        }
        i = skip_ws(b, i);
        if i >= n || b[i] != b'=' {
            return Err("expected '=' after label name");
        }
        i = skip_ws(b, i + 1);
        if i >= n || b[i] != b'"' {
            return Err("expected '\"' to open the label value");
        }
        i += 1;
        loop {
            // SIMD search for the closing quote or an escape.
            let Some(k) = b
                .get(i..)
                .and_then(|rest| memchr::memchr2(b'"', b'\\', rest))
            else {
                return Err("unterminated label value");
            };
            i += k;
            if b[i] == b'"' {
                i += 1;
                break;
            }
            match b.get(i + 1) {
                Some(b'\\' | b'"' | b'n') => i += 2,
                _ => return Err("invalid escape in label value (only \\\\, \\\" and \\n)"),
            }
        }
        pairs += 1;
        i = skip_ws(b, i);
        if i < n && b[i] == b',' {
            i += 1;
            continue;
        }
        if i < n && b[i] == b'}' {
            return Ok((i, pairs));
        }
        return Err("expected ',' or '}' after label value");
    }
}
