//! Opt-in capture of prompts and completions. Off by default. Text is scrubbed on the
//! capture thread (never on the request path) and written to `capture-YYYYMMDDHH.jsonl`
//! files in their own folder; files older than the retention are deleted every hour and at
//! start.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use serde_json::json;

use super::rfc3339;
use super::scrub::Scrubber;
use crate::config::CaptureConfig;
use crate::metrics::Pipeline;

/// One captured exchange, before scrubbing.
#[derive(Debug)]
pub struct Item {
    /// Unix ns of the end of the request.
    pub unix_ns: u64,
    /// `x-request-id`.
    pub request_id: String,
    /// Hex trace id.
    pub trace_id: String,
    /// Tenant.
    pub tenant: String,
    /// Model.
    pub model: Option<String>,
    /// Request body text (cut to the limit).
    pub prompt: String,
    /// Response text (cut to the limit).
    pub completion: String,
}

/// The capture channel's sending side.
#[derive(Debug)]
pub struct Capture {
    tx: Option<SyncSender<Item>>,
    thread: Option<JoinHandle<()>>,
    pipeline: Arc<Pipeline>,
    /// Bytes kept of prompt and completion.
    pub max_bytes: usize,
}

impl Capture {
    /// Creates the folder, checks the patterns, starts the writer thread.
    pub fn start(cfg: &CaptureConfig, pipeline: Arc<Pipeline>) -> Result<Capture, String> {
        let scrubber = Scrubber::new(&cfg.extra_patterns)?;
        std::fs::create_dir_all(&cfg.dir)
            .map_err(|e| format!("cannot create capture dir {}: {e}", cfg.dir.display()))?;
        let (tx, rx) = sync_channel(1024);
        let (dir, retention, p) = (cfg.dir.clone(), cfg.retention, pipeline.clone());
        let thread = std::thread::Builder::new()
            .name("strata-gw-capture".into())
            .spawn(move || run(rx, dir, retention, scrubber, p))
            .map_err(|e| format!("cannot start the capture writer: {e}"))?;
        Ok(Capture {
            tx: Some(tx),
            thread: Some(thread),
            pipeline,
            max_bytes: cfg.max_bytes,
        })
    }

    /// Queues one exchange; drops it (counted) when the writer is behind.
    pub fn submit(&self, item: Item) {
        if let Some(tx) = &self.tx
            && tx.try_send(item).is_err()
        {
            self.pipeline
                .captures_dropped
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn hour_name(unix_ns: u64) -> String {
    let s = rfc3339(unix_ns);
    // 2026-11-22T23:05:00.000Z → 2026112223
    let digits: String = s[..13].chars().filter(char::is_ascii_digit).collect();
    format!("capture-{digits}.jsonl")
}

/// Deletes capture files last written longer than `retention` ago.
pub fn purge(dir: &std::path::Path, retention: Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if !(name.starts_with("capture-") && name.ends_with(".jsonl")) {
            continue;
        }
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age > retention);
        if old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn run(
    rx: Receiver<Item>,
    dir: PathBuf,
    retention: Duration,
    scrubber: Scrubber,
    p: Arc<Pipeline>,
) {
    purge(&dir, retention);
    let mut current: Option<(String, BufWriter<File>)> = None;
    while let Ok(item) = rx.recv() {
        let name = hour_name(item.unix_ns);
        if current.as_ref().is_none_or(|(n, _)| *n != name) {
            if let Some((_, mut w)) = current.take() {
                let _ = w.flush();
            }
            purge(&dir, retention);
            match OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(&name))
            {
                Ok(f) => current = Some((name, BufWriter::new(f))),
                Err(e) => {
                    tracing::warn!("cannot open capture file {name}: {e}");
                    p.captures_dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            }
        }
        let line = json!({
            "ts": rfc3339(item.unix_ns),
            "request_id": item.request_id,
            "trace_id": item.trace_id,
            "tenant": item.tenant,
            "model": item.model,
            "prompt": scrubber.scrub(&item.prompt),
            "completion": scrubber.scrub(&item.completion),
        })
        .to_string();
        if let Some((_, w)) = &mut current
            && writeln!(w, "{line}").and_then(|_| w.flush()).is_err()
        {
            p.captures_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captured_text_is_scrubbed_and_old_files_purged() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("capture-2000010100.jsonl");
        std::fs::write(&old, "{}\n").unwrap();
        let f = File::options().write(true).open(&old).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(7200))
            .unwrap();
        let cfg = CaptureConfig {
            dir: dir.path().to_path_buf(),
            retention: Duration::from_secs(3600),
            extra_patterns: vec![],
            max_bytes: 1000,
        };
        let c = Capture::start(&cfg, Arc::new(Pipeline::default())).unwrap();
        c.submit(Item {
            unix_ns: 1_795_338_877_000_000_000,
            request_id: "r1".into(),
            trace_id: "t".into(),
            tenant: "acme".into(),
            model: Some("m".into()),
            prompt: "write to bob@example.com".into(),
            completion: "card 4111 1111 1111 1111".into(),
        });
        drop(c);
        assert!(!old.exists(), "files past retention are deleted");
        let text = std::fs::read_to_string(dir.path().join("capture-2026112209.jsonl")).unwrap();
        assert!(
            text.contains("write to [EMAIL]") && text.contains("card [CARD]"),
            "{text}"
        );
        assert!(!text.contains("bob@"));
    }
}
