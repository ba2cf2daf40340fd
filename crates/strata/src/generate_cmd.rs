//! `strata generate`: the flags; the generators live in the `generate` crate.

use std::path::PathBuf;

use clap::Args;
use generate::What;

/// `strata generate`
#[derive(Debug, Args)]
#[command(after_help = generate::AFTER_HELP)]
pub struct GenerateArgs {
    /// What to generate (`all`: every target, each in its own folder under --out).
    #[arg(value_enum)]
    pub what: What,
    /// Folder to write into (created when missing; files of the same name are replaced).
    #[arg(long, value_name = "DIR", default_value = "strata-generated")]
    pub out: PathBuf,
    /// Prefix of every alert's `runbook_url` annotation (`<base><alertname>.md`); the default
    /// is the repository's folder as a relative link: set your published copy's URL.
    #[arg(long, value_name = "URL", default_value = generate::DEFAULT_RUNBOOK_BASE)]
    pub runbook_base: String,
}
