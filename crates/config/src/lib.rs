//! `strata.toml`: the one configuration file. Every key is documented in
//! `strata.example.toml`; unknown keys are errors, and every error names the file, the line,
//! the column and the fix.

pub mod cost;
mod error;
pub mod gateway;
mod schema;
pub mod slo;
mod targets;
pub mod up;

pub use error::ConfigError;
pub use schema::{Config, HostConfig, LogsConfig, NvmlMode};
pub use targets::target_specs;

use std::path::{Path, PathBuf};

/// The documented example, compiled in (`strata config example` prints it).
pub const EXAMPLE: &str = include_str!("../../../strata.example.toml");

/// Where the config comes from: `--config`, else `$STRATA_CONFIG`, else `./strata.toml` if
/// it exists, else none (built-in defaults).
pub fn locate(flag: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = flag {
        return Some(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("STRATA_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let local = PathBuf::from("strata.toml");
    local.exists().then_some(local)
}

/// Reads and validates a config file; the text is returned for locating later errors.
pub fn load(path: &Path) -> Result<(Config, String), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok((parse(path, &text)?, text))
}

/// Parses and validates config text; `path` is used in messages only.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let config: Config = toml::from_str(text).map_err(|e| {
        ConfigError::at(
            path,
            text,
            e.span(),
            e.message().to_string(),
            hint_for(e.message()),
        )
    })?;
    config.validate(path, text)?;
    Ok(config)
}

fn hint_for(message: &str) -> String {
    if message.starts_with("unknown field") {
        "check the spelling against strata.example.toml (`strata config example`)".to_string()
    } else if message.contains("duration") {
        "write durations like \"250ms\", \"5s\" or \"1m\"".to_string()
    } else {
        "see strata.example.toml (`strata config example`) for the expected form".to_string()
    }
}

/// Asserts that each `(text, at, what)` config fails to parse with an error that starts at
/// `at` (`file:line:col`), says `what` and names the fix: every config module's error table.
#[cfg(test)]
pub(crate) fn assert_located_errors(cases: &[(&str, &str, &str)]) {
    for (text, at, what) in cases {
        let e = parse(Path::new("s.toml"), text)
            .expect_err(text)
            .to_string();
        assert!(e.starts_with(at), "{text}\n=> {e}");
        assert!(e.contains(what), "{text}\n=> {e}");
        assert!(e.contains("\n  fix: "), "{text}\n=> {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sources::scrape::TargetKind;
    use std::time::Duration;

    #[test]
    fn example_parses_and_covers_every_section() {
        let c = parse(Path::new("strata.example.toml"), EXAMPLE).expect("example must be valid");
        assert!(
            c.targets.len() >= 3,
            "the example shows engine, GPU and TLS targets"
        );
        let gpu = c
            .profiles(TargetKind::Gpu, Path::new("x"), EXAMPLE)
            .expect("profiles");
        assert_eq!(gpu.incident.interval, Duration::from_millis(250));
        assert_eq!(gpu.incident.fields, sources::gpu::FieldSet::Reduced);
    }

    #[test]
    fn unknown_key_names_line_column_and_fix() {
        let text = "[scrape]\nmax_body_bytes = 10\n\n[scrape.engine.steady]\nintervall = \"5s\"\n";
        let e = parse(Path::new("s.toml"), text)
            .expect_err("typo must fail")
            .to_string();
        assert!(
            e.starts_with("s.toml:5:1: unknown field `intervall`"),
            "{e}"
        );
        assert!(e.contains("fix: check the spelling"), "{e}");
    }

    #[test]
    fn bad_values_are_located() {
        let cases = [
            (
                "[[target]]\nname = \"a\"\nurl = \"not a url\"\n",
                "s.toml:3:7",
                "url",
            ),
            (
                "[scrape.gpu.steady]\ninterval = \"5 parsecs\"\n",
                "s.toml:2:12",
                "duration",
            ),
            (
                "[scrape.gpu.steady]\ninterval = \"1s\"\ntimeout = \"2s\"\n",
                "s.toml:3:11",
                "timeout",
            ),
            (
                "[[target]]\nname = \"a\"\nurl = \"http://h/metrics\"\n[[target]]\nname = \"a\"\nurl = \"http://g/metrics\"\n",
                "s.toml:5:8",
                "twice",
            ),
            (
                "[[target]]\nname = \"a\"\nurl = \"http://h/m\"\nkind = \"cpu\"\n",
                "s.toml:4:8",
                "unknown variant",
            ),
            (
                "[[target]]\nname = \"a\"\nurl = \"http://h/m\"\nlabels = { request_id = \"x\" }\n",
                "s.toml:4:25",
                "per-request",
            ),
            (
                "[[target]]\nname = \"a\"\nurl = \"http://h/m\"\nbearer_token_file = \"/nonexistent/tok\"\n",
                "s.toml:4:21",
                "cannot read",
            ),
        ];
        assert_located_errors(&cases);
    }

    #[test]
    fn empty_config_means_defaults() {
        let c = parse(Path::new("s.toml"), "").expect("empty is fine");
        assert!(c.targets.is_empty());
        let engine = c
            .profiles(TargetKind::Engine, Path::new("x"), "")
            .expect("profiles");
        let gpu = c
            .profiles(TargetKind::Gpu, Path::new("x"), "")
            .expect("profiles");
        assert_eq!(engine.steady.interval, Duration::from_secs(10));
        assert_eq!(gpu.steady.interval, Duration::from_secs(5));
        assert_eq!(gpu.incident.interval, Duration::from_millis(250));
    }
}
