//! The ordered, bounded shutdown of a running node. One total deadline; each step gets what
//! is left of it, is logged with its outcome, and one that misses the deadline is named in
//! the log and in the [`ShutdownReport`] — no step is ever skipped without a word.
//!
//! Order: the API stops accepting and in-flight requests get a short grace (then they are
//! cut: queries are cancelled first), background loops stop, scraping and rule evaluation
//! stop, queued scrape reports are written, the store is snapshotted (data durable before
//! streams drain), the embedded gateway's open streams drain, remote_write flushes.

use std::future::Future;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::Running;

/// How long in-flight API requests may run once shutdown begins.
const API_GRACE: Duration = Duration::from_secs(2);

/// The most open gateway streams get to finish.
const GATEWAY_DRAIN: Duration = Duration::from_secs(10);

/// How one shutdown step ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum StepOutcome {
    /// Finished within the deadline.
    Done {
        /// Seconds it took.
        seconds: f64,
        /// What it did, for the log (e.g. how many samples stay queued).
        detail: String,
    },
    /// Still running when its share of the deadline ran out: cut.
    MissedDeadline {
        /// Seconds it was given.
        seconds: f64,
        /// What was lost or left, for the log.
        detail: String,
    },
    /// Ended with an error.
    Failed {
        /// The error.
        error: String,
    },
}

/// One named step of a shutdown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// Which component.
    pub name: &'static str,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: StepOutcome,
}

/// Every step of one shutdown, in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ShutdownReport {
    /// The steps, in the order they ran.
    pub steps: Vec<Step>,
}

impl ShutdownReport {
    /// Whether every step finished within the deadline.
    pub fn clean(&self) -> bool {
        self.steps
            .iter()
            .all(|s| matches!(s.outcome, StepOutcome::Done { .. }))
    }

    /// The steps that missed the deadline or failed.
    pub fn missed(&self) -> Vec<&'static str> {
        self.steps
            .iter()
            .filter(|s| !matches!(s.outcome, StepOutcome::Done { .. }))
            .map(|s| s.name)
            .collect()
    }
}

/// Runs steps against one deadline and logs each.
struct Steps {
    end: Instant,
    report: ShutdownReport,
}

impl Steps {
    fn left(&self) -> Duration {
        self.end.saturating_duration_since(Instant::now())
    }

    fn record(&mut self, name: &'static str, outcome: StepOutcome) {
        match &outcome {
            StepOutcome::Done { seconds, detail } => {
                let detail = if detail.is_empty() {
                    String::new()
                } else {
                    format!(": {detail}")
                };
                eprintln!("strata up: shutdown: {name} done in {seconds:.2} s{detail}");
            }
            StepOutcome::MissedDeadline { seconds, detail } => eprintln!(
                "strata up: shutdown: {name} MISSED the deadline (cut after {seconds:.2} s): {detail}"
            ),
            StepOutcome::Failed { error } => {
                eprintln!("strata up: shutdown: {name} FAILED: {error}")
            }
        }
        self.report.steps.push(Step { name, outcome });
    }

    /// Runs `work` for at most `limit` (capped by what is left of the deadline).
    async fn run<F>(&mut self, name: &'static str, limit: Option<Duration>, missed: &str, work: F)
    where
        F: Future<Output = Result<String, String>>,
    {
        let budget = limit.map_or(self.left(), |l| l.min(self.left()));
        let started = Instant::now();
        let outcome = match tokio::time::timeout(budget, work).await {
            Ok(Ok(detail)) => StepOutcome::Done {
                seconds: started.elapsed().as_secs_f64(),
                detail,
            },
            Ok(Err(error)) => StepOutcome::Failed { error },
            Err(_) => StepOutcome::MissedDeadline {
                seconds: budget.as_secs_f64(),
                detail: missed.to_string(),
            },
        };
        self.record(name, outcome);
    }
}

/// Shuts `node` down within `total`.
pub(crate) async fn run(node: Running, total: Duration) -> ShutdownReport {
    let Running {
        shared,
        store,
        ingest,
        gateway,
        incident,
        control,
        api_stop,
        mut api_task,
        ingest_stop,
        ingest_task,
        background,
        inflight,
        rules_cancel,
        data_dir,
        ..
    } = node;
    eprintln!(
        "strata up: stopping (deadline {})",
        humantime::format_duration(total)
    );
    let mut steps = Steps {
        end: Instant::now() + total,
        report: ShutdownReport::default(),
    };

    // Queries first: a query in flight must not hold the shutdown (nor the rules).
    let canceled = inflight.cancel_all();
    rules_cancel.cancel();
    if canceled > 0 {
        eprintln!("strata up: shutdown: {canceled} API queries in flight cancelled");
    }
    api_stop.notify_one();
    steps
        .run(
            "API server",
            Some(API_GRACE),
            "in-flight requests were cancelled",
            async {
                match (&mut api_task).await {
                    Ok(r) => r.map(|()| String::new()),
                    Err(e) => Err(format!("API task: {e}")),
                }
            },
        )
        .await;
    api_task.abort();

    for (_, task) in &background {
        task.abort();
    }
    let names: Vec<&str> = background.iter().map(|(n, _)| *n).collect();
    steps
        .run("background loops", None, "still running", async {
            for (_, task) in background {
                let _ = task.await;
            }
            Ok(names.join(", "))
        })
        .await;
    drop(incident);

    steps
        .run("scraping", None, "target loops still running", async {
            shared.scraper.stop();
            Ok(String::new())
        })
        .await;
    steps
        .run(
            "rule evaluation",
            None,
            "a group evaluation was cut",
            async {
                shared.evaluator.stop().await;
                Ok(String::new())
            },
        )
        .await;

    ingest_stop.notify_one();
    steps
        .run(
            "queued scrape reports",
            None,
            "reports still queued were dropped",
            async {
                ingest_task
                    .await
                    .map(|()| String::new())
                    .map_err(|e| format!("ingest task: {e}"))
            },
        )
        .await;
    drop(control);

    let snapshot_path = data_dir.join("tsdb").join("snapshot");
    let s = store.clone();
    steps
        .run(
            "store snapshot",
            None,
            "the snapshot was not written: data since the last one is lost",
            async move {
                // The checkpoint, then the log behind it made durable.
                match tokio::task::spawn_blocking(move || s.snapshot().and_then(|()| s.flush()))
                    .await
                {
                    Ok(Ok(())) => Ok(format!("written to {}", snapshot_path.display())),
                    Ok(Err(e)) => Err(format!(
                        "cannot snapshot the store to {}: {e} (check --data-dir space and permissions)",
                        snapshot_path.display()
                    )),
                    Err(e) => Err(format!("snapshot task: {e}")),
                }
            },
        )
        .await;

    if let Some(g) = gateway {
        // Streams get most of what is left, remote_write keeps a share to flush.
        let drain = GATEWAY_DRAIN.min(steps.left().mul_f64(0.6));
        steps
            .run(
                "gateway streams",
                None,
                "open streams were cut",
                async move {
                    g.stop(drain).await;
                    Ok(String::new())
                },
            )
            .await;
    }

    if let Some(rw) = &ingest.remote {
        // Its sender may take up to a second beyond the drain to stop.
        let drain = steps.left().saturating_sub(Duration::from_millis(1500));
        steps
            .run(
                "remote_write",
                None,
                "samples stay queued on disk for the next start",
                async {
                    let stats = rw.shutdown(drain).await;
                    Ok(if stats.queued_samples > 0 {
                        format!(
                            "{} samples stay queued on disk for the next start",
                            stats.queued_samples
                        )
                    } else {
                        "queue flushed".to_string()
                    })
                },
            )
            .await;
    }
    steps.report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_step_past_its_share_of_the_deadline_is_named_not_skipped() {
        let mut steps = Steps {
            end: Instant::now() + Duration::from_millis(300),
            report: ShutdownReport::default(),
        };
        steps
            .run("quick", None, "unused", async { Ok("flushed".to_string()) })
            .await;
        steps
            .run("stuck", None, "cut short", async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok(String::new())
            })
            .await;
        steps
            .run("after the deadline", None, "nothing left", async {
                Ok(String::new())
            })
            .await;
        steps
            .run("broken", None, "unused", async {
                Err("disk full".to_string())
            })
            .await;
        let r = steps.report;
        let names: Vec<&str> = r.steps.iter().map(|s| s.name).collect();
        assert_eq!(names, ["quick", "stuck", "after the deadline", "broken"]);
        assert!(
            matches!(&r.steps[0].outcome, StepOutcome::Done { detail, .. } if detail == "flushed")
        );
        assert!(
            matches!(&r.steps[1].outcome, StepOutcome::MissedDeadline { detail, seconds } if detail == "cut short" && *seconds <= 0.31)
        );
        // With no time left a step that needs none still runs (tokio polls it first).
        assert!(matches!(&r.steps[2].outcome, StepOutcome::Done { .. }));
        assert!(
            matches!(&r.steps[3].outcome, StepOutcome::Failed { error } if error == "disk full")
        );
        assert!(!r.clean());
        assert_eq!(r.missed(), ["stuck", "broken"]);
    }
}
