//! Borrowed label sets (placeholder signatures; the parser work fills these in).

use std::borrow::Cow;

/// A validated label set borrowed from the input (the text between `{` and `}`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Labels<'a> {
    raw: &'a str,
}

impl<'a> Labels<'a> {
    /// Iterates `(name, unescaped value)` pairs in input order.
    pub fn iter(&self) -> LabelIter<'a> {
        LabelIter { rest: self.raw }
    }
    /// The value of label `name`.
    pub fn get(&self, name: &str) -> Option<Cow<'a, str>> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
    /// True when there are no labels.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }
}

/// Iterator over a [`Labels`].
pub struct LabelIter<'a> {
    rest: &'a str,
}

impl<'a> Iterator for LabelIter<'a> {
    type Item = (&'a str, Cow<'a, str>);
    fn next(&mut self) -> Option<Self::Item> {
        let _ = self.rest;
        todo!()
    }
}
