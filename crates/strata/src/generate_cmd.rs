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
    /// Where the generated agents (DaemonSet, systemd unit) remote-write [default: the
    /// DaemonSet ships to vmagent's Service; the systemd unit gets a placeholder to replace].
    #[arg(long, value_name = "URL")]
    pub remote_write: Option<reqwest::Url>,
}
