//! A live progress bar on standard error (hidden when it is not a terminal): requests
//! done, live completion rate, errors and the running p95 TTFT.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::measure::Outcome;
use crate::report::quantile;

/// How often the message (rate, errors, p95) is recomputed.
const REFRESH: Duration = Duration::from_millis(250);

/// The progress of one step.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
    ttfts: Vec<f64>,
    scratch: Vec<f64>,
    errors: u64,
    start: Instant,
    last: Instant,
}

impl Progress {
    /// A bar for `label`, with a length when the number of requests is known; `visible`
    /// false draws nothing (tests, `--quiet`).
    pub fn new(label: &str, total: Option<u64>, visible: bool) -> Progress {
        let bar = match total {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::new_spinner(),
        };
        let template = if total.is_some() {
            "{prefix} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}"
        } else {
            "{prefix} [{elapsed_precise}] {spinner} {pos} {msg}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        bar.set_draw_target(if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        bar.set_prefix(label.to_string());
        bar.enable_steady_tick(REFRESH);
        let now = Instant::now();
        Progress {
            bar,
            ttfts: Vec::new(),
            scratch: Vec::new(),
            errors: 0,
            start: now,
            last: now,
        }
    }

    /// Counts one finished request.
    pub fn observe(&mut self, o: &Outcome) {
        match &o.result {
            Ok(t) => self.ttfts.push(t.ttft.as_secs_f64() * 1e3),
            Err(_) => self.errors += 1,
        }
        self.bar.inc(1);
        let now = Instant::now();
        if now.duration_since(self.last) >= REFRESH {
            self.last = now;
            let msg = self.message(now);
            self.bar.set_message(msg);
        }
    }

    fn message(&mut self, now: Instant) -> String {
        let rate = self.bar.position() as f64 / now.duration_since(self.start).as_secs_f64();
        let p95 = if self.ttfts.is_empty() {
            "–".to_string()
        } else {
            self.scratch.clear();
            self.scratch.extend_from_slice(&self.ttfts);
            self.scratch.sort_unstable_by(f64::total_cmp);
            format!("{:.1} ms", quantile(&self.scratch, 0.95))
        };
        format!("{rate:.1} req/s, {} errors, TTFT p95 {p95}", self.errors)
    }

    /// Removes the bar.
    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}
