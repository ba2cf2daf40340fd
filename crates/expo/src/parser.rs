//! Parser (placeholder signatures).
use std::borrow::Cow;

use crate::{Exposition, Format, MetricType, Sample};

/// One parsed line.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<'a> {
    /// `# HELP family text`
    Help { family: &'a str, text: Cow<'a, str> },
    /// `# TYPE family type`
    Type { family: &'a str, metric_type: MetricType },
    /// `# UNIT family unit`
    Unit { family: &'a str, unit: &'a str },
    /// A sample line.
    Sample(Sample<'a>),
    /// `# EOF`
    Eof,
}

/// A skipped line.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}
impl std::error::Error for ParseError {}

/// Streaming parser.
pub struct Parser<'a> {
    input: &'a str,
    format: Format,
}

impl<'a> Parser<'a> {
    /// A parser over `input`.
    pub fn new(input: &'a str, format: Format) -> Parser<'a> {
        Parser { input, format }
    }
}

impl<'a> Iterator for Parser<'a> {
    type Item = Result<Event<'a>, ParseError>;
    fn next(&mut self) -> Option<Self::Item> {
        let _ = (self.input, self.format);
        todo!()
    }
}

/// Parses a whole body.
pub fn parse(input: &str, format: Format) -> Exposition<'_> {
    let _ = (input, format);
    todo!()
}
