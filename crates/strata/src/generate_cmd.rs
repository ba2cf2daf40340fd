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
    /// Where the generated agents (DaemonSet, systemd unit) remote-write [default: the
    /// DaemonSet ships to vmagent's Service; the systemd unit gets a placeholder to replace].
    #[arg(long, value_name = "URL")]
    pub remote_write: Option<reqwest::Url>,
    /// The fleet's query API (VictoriaMetrics, Prometheus) where the brain writes `ALERTS`:
    /// the generated agents read the alerts about their node there and switch to 250 ms GPU
    /// scraping while one fires (`strata agent --incident-from`) [default: none; incident
    /// mode on the agents only through POST /api/v1/incident].
    #[arg(long, value_name = "URL")]
    pub backend: Option<reqwest::Url>,
}

/// Runs `strata generate` with a spinner on stderr (when it is a terminal): building and
/// checking the rule tests takes tens of seconds.
pub fn run(
    config: Option<&std::path::Path>,
    args: &GenerateArgs,
) -> Result<std::process::ExitCode, Box<dyn std::error::Error>> {
    use std::io::IsTerminal;
    let spinner = if std::io::stderr().is_terminal() {
        let s = indicatif::ProgressBar::new_spinner();
        s.set_message(format!(
            "generating {:?} into {} (rule tests take a while)",
            args.what,
            args.out.display()
        ));
        s.enable_steady_tick(std::time::Duration::from_millis(120));
        s
    } else {
        indicatif::ProgressBar::hidden()
    };
    let result = generate::run(
        config,
        args.what,
        &args.out,
        &args.runbook_base,
        args.remote_write.as_ref().map(reqwest::Url::as_str),
        args.backend.as_ref().map(reqwest::Url::as_str),
    );
    spinner.finish_and_clear();
    result.map_err(Into::into)
}
