//! Config errors that point at the file, line and column, and say how to fix them.

use std::ops::Range;
use std::path::{Path, PathBuf};

/// A config file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read the config file: {reason}\n  fix: pass an existing file with --config or STRATA_CONFIG (`strata config example > strata.toml` writes a documented one)", path = path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        reason: String,
    },
    /// A syntax, type, unknown-key or validation error at a position.
    #[error("{path}:{line}:{column}: {message}\n  fix: {fix}", path = path.display())]
    At {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column (characters).
        column: usize,
        /// What is wrong.
        message: String,
        /// How to fix it.
        fix: String,
    },
}

impl ConfigError {
    /// An error at byte `span` of `text` (the start of the file when no span is known).
    pub fn at(
        path: &Path,
        text: &str,
        span: Option<Range<usize>>,
        message: String,
        fix: String,
    ) -> ConfigError {
        let offset = span.map_or(0, |s| s.start.min(text.len()));
        let before = text.get(..offset).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ConfigError::At {
            path: path.to_path_buf(),
            line,
            column,
            message: message.trim_end().to_string(),
            fix,
        }
    }
}
