//! `strata top`: a terminal UI of a running Strata's live state (engines, GPUs, findings,
//! alerts) for a shell over SSH, refreshed every `--interval`; `--once` prints one
//! plain-text snapshot.

mod app;
mod detail;
mod fetch;
mod keys;
mod model;
mod render;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use ratatui::crossterm::event::{self, Event};

use app::App;
use fetch::Source;

/// `strata top --help`'s key and example text.
pub const AFTER_HELP: &str = "\
Keys: ↑ ↓ j k PgUp PgDn Home End: select a row · Tab: the next pane · 1 2 3: Engines, GPUs,
Findings · Enter: the detail of the selected row (Esc or q closes it) · /: filter rows (Esc
clears) · s: sort by the next column · r: reverse · ?: every key · q or Ctrl-C: quit.

Examples:
  strata top                                  the Strata on 127.0.0.1:9464 (strata up / demo)
  strata top --url http://host:9464 --interval 5s
  strata top --once                           one plain-text snapshot, for scripts

Exit status: 0 on quit, 1 when Strata cannot be reached at start, 2 for usage errors.";

/// What `strata top` is asked to do (the binary fills it from its flags).
#[derive(Debug, Clone)]
pub struct Options {
    /// A running Strata (`strata up` or `strata demo`): its HTTP API.
    pub url: reqwest::Url,
    /// How often to refresh.
    pub interval: Duration,
    /// Print one plain-text snapshot of every view and exit (no terminal needed).
    pub once: bool,
    /// Width of the `--once` text.
    pub width: u16,
}

/// Reads Strata once (exit 1 with the fix when it cannot), then shows the UI or the snapshot.
pub fn run(args: Options) -> Result<ExitCode, Box<dyn std::error::Error>> {
    // A refresh never waits longer than the interval, nor less than a second.
    let source = Source::new(args.url.clone(), args.interval.max(Duration::from_secs(1)))?;
    let first = match source.fetch() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    let app = App::new(
        args.url.as_str(),
        args.interval,
        first,
        strata_core::now_ms(),
    );
    if args.once {
        print!("{}", render::plain(&app, strata_core::now_ms(), args.width));
        return Ok(ExitCode::SUCCESS);
    }
    if !std::io::stdout().is_terminal() {
        return Err(
            "strata top needs a terminal; use `strata top --once` for a plain-text snapshot".into(),
        );
    }
    interactive(app, source)?;
    Ok(ExitCode::SUCCESS)
}

/// The UI loop: keys are read here; refreshes come from a thread so a slow Strata never
/// blocks a key.
fn interactive(mut app: App, source: Source) -> std::io::Result<()> {
    let (tx, rx) = mpsc::channel();
    let interval = app.interval;
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(interval);
            // The UI has quit when nobody receives.
            if tx.send(source.fetch()).is_err() {
                break;
            }
        }
    });
    let mut terminal = ratatui::try_init()?;
    let result = (|| {
        loop {
            terminal.draw(|f| render::draw(f, &app, strata_core::now_ms()))?;
            if event::poll(Duration::from_millis(250))?
                && let Event::Key(key) = event::read()?
                && !app.key(key, strata_core::now_ms())
            {
                return Ok(());
            }
            while let Ok(r) = rx.try_recv() {
                app.update(r, strata_core::now_ms());
            }
        }
    })();
    ratatui::restore();
    result
}
