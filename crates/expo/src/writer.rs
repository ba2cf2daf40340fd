//! Writer (placeholder signatures).
use crate::{Format, OwnedFamily};

/// Writes families in one format.
pub struct Writer {
    format: Format,
    out: String,
}

impl Writer {
    /// A writer for `format`.
    pub fn new(format: Format) -> Writer {
        Writer { format, out: String::new() }
    }
    /// Appends one family.
    pub fn write_family(&mut self, family: &OwnedFamily) {
        let _ = (family, self.format, &mut self.out);
        todo!()
    }
    /// The finished body (`# EOF` appended for OpenMetrics).
    pub fn finish(self) -> String {
        self.out
    }
}
