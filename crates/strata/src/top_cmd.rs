//! `strata top`: the flags; the terminal UI lives in the `top` crate.

use std::time::Duration;

use clap::Args;

/// `strata top`
#[derive(Debug, Args)]
#[command(after_help = top::AFTER_HELP)]
pub struct TopArgs {
    /// A running Strata (`strata up` or `strata demo`): its HTTP API.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:9464")]
    pub url: reqwest::Url,
    /// How often to refresh.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = crate::cli::parse_duration)]
    pub interval: Duration,
    /// Print one plain-text snapshot of every view and exit (no terminal needed).
    #[arg(long)]
    pub once: bool,
    /// Width of the `--once` text.
    #[arg(long, value_name = "COLUMNS", default_value_t = 160, requires = "once")]
    pub width: u16,
}

impl TopArgs {
    /// The UI's options.
    pub fn options(self) -> top::Options {
        top::Options {
            url: self.url,
            interval: self.interval,
            once: self.once,
            width: self.width,
        }
    }
}
