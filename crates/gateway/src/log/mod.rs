//! Request logs: one JSON line per request (never prompts or completions) to stdout or a
//! size-rotated file, written by a thread behind a bounded queue (a slow disk drops lines,
//! counted, and never slows a request). Opt-in capture goes through [`scrub::Scrubber`]
//! into its own hourly files with their own retention ([`capture`]).

pub mod capture;
pub mod scrub;

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

use serde::Serialize;

use crate::config::LogOutput;
use crate::ids::hex;
use crate::metrics::Pipeline;
use crate::record::Record;

/// Lines the writer may fall behind by before lines are dropped.
const QUEUE_LINES: usize = 16 * 1024;

/// The request log's sending side.
#[derive(Debug)]
pub struct LogSink {
    tx: Option<SyncSender<String>>,
    thread: Option<JoinHandle<()>>,
    pipeline: Arc<Pipeline>,
}

impl LogSink {
    /// Starts the writer thread (a file is opened now, so a bad path fails at start).
    pub fn start(output: &LogOutput, pipeline: Arc<Pipeline>) -> Result<LogSink, String> {
        let out = match output {
            LogOutput::Off => {
                return Ok(LogSink {
                    tx: None,
                    thread: None,
                    pipeline,
                });
            }
            LogOutput::Stdout => Out::Stdout(BufWriter::new(std::io::stdout())),
            LogOutput::File {
                path,
                max_bytes,
                keep,
            } => {
                let (file, size) = open_append(path)?;
                Out::File {
                    w: BufWriter::new(file),
                    path: path.clone(),
                    size,
                    max: *max_bytes,
                    keep: *keep,
                }
            }
        };
        let (tx, rx) = sync_channel(QUEUE_LINES);
        let p = pipeline.clone();
        let thread = std::thread::Builder::new()
            .name("strata-gw-log".into())
            .spawn(move || write_loop(rx, out, p))
            .map_err(|e| format!("cannot start the log writer: {e}"))?;
        Ok(LogSink {
            tx: Some(tx),
            thread: Some(thread),
            pipeline,
        })
    }

    /// Queues one line; drops it (counted) when the writer is behind.
    pub fn write(&self, line: String) {
        if let Some(tx) = &self.tx
            && let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = tx.try_send(line)
        {
            self.pipeline
                .log_lines_dropped
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether lines go anywhere.
    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }
}

impl Drop for LogSink {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn open_append(path: &Path) -> Result<(File, u64), String> {
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open log file {}: {e}", path.display()))?;
    let size = f.metadata().map_or(0, |m| m.len());
    Ok((f, size))
}

enum Out {
    Stdout(BufWriter<std::io::Stdout>),
    File {
        w: BufWriter<File>,
        path: PathBuf,
        size: u64,
        max: u64,
        keep: usize,
    },
}

impl Out {
    fn line(&mut self, line: &str) -> std::io::Result<()> {
        match self {
            Out::Stdout(w) => {
                w.write_all(line.as_bytes())?;
                w.write_all(b"\n")
            }
            Out::File {
                w,
                path,
                size,
                max,
                keep,
            } => {
                let n = line.len() as u64 + 1;
                if *size > 0 && *size + n > *max {
                    w.flush()?;
                    rotate(path, *keep)?;
                    let (f, s) = open_append(path).map_err(std::io::Error::other)?;
                    *w = BufWriter::new(f);
                    *size = s;
                }
                w.write_all(line.as_bytes())?;
                w.write_all(b"\n")?;
                *size += n;
                Ok(())
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Out::Stdout(w) => w.flush(),
            Out::File { w, .. } => w.flush(),
        }
    }
}

/// `FILE` → `FILE.1` → … → `FILE.keep` (the oldest is removed).
fn rotate(path: &Path, keep: usize) -> std::io::Result<()> {
    let name = |k: usize| {
        let mut p = path.as_os_str().to_owned();
        p.push(format!(".{k}"));
        PathBuf::from(p)
    };
    if keep == 0 {
        return std::fs::remove_file(path);
    }
    let _ = std::fs::remove_file(name(keep));
    for k in (1..keep).rev() {
        let _ = std::fs::rename(name(k), name(k + 1));
    }
    std::fs::rename(path, name(1))
}

/// How long the writer lets lines gather after writing: a busy gateway wakes it once per
/// interval rather than once per request (each wake-up is a system call on the request's
/// path), a quiet one still writes each line as it comes.
const GATHER: std::time::Duration = std::time::Duration::from_millis(20);

fn write_loop(rx: Receiver<String>, mut out: Out, p: Arc<Pipeline>) {
    while let Ok(line) = rx.recv() {
        let mut res = out.line(&line);
        while res.is_ok() {
            match rx.try_recv() {
                Ok(l) => res = out.line(&l),
                Err(_) => break,
            }
        }
        if res.and_then(|_| out.flush()).is_err() {
            p.log_write_errors.fetch_add(1, Ordering::Relaxed);
        }
        std::thread::sleep(GATHER);
    }
    let _ = out.flush();
}

/// RFC 3339 UTC with milliseconds from Unix nanoseconds.
pub fn rfc3339(unix_ns: u64) -> String {
    let secs = unix_ns / 1_000_000_000;
    let ms = (unix_ns / 1_000_000) % 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = strata_core::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Milliseconds with microsecond precision.
fn ms(d: Option<std::time::Duration>) -> Option<f64> {
    d.map(|d| (d.as_secs_f64() * 1e6).round() / 1e3)
}

/// One request's log line, borrowed from its record: serialised straight to text, with no
/// per-field allocation (it is built on the request's path).
#[derive(Serialize)]
struct Line<'a> {
    ts: String,
    msg: &'static str,
    request_id: &'a str,
    tenant: &'a str,
    model: Option<&'a str>,
    upstream: Option<&'a str>,
    gpu_id: Gpu<'a>,
    method: &'a str,
    path: &'a str,
    stream: bool,
    status: u16,
    error_class: Option<&'static str>,
    error: Option<&'a str>,
    prompt_tokens: Option<u64>,
    generation_tokens: Option<u64>,
    ttft_ms: Option<f64>,
    e2e_ms: Option<f64>,
    itl_max_ms: Option<f64>,
    finish_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cost: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    currency: Option<&'a str>,
    trace_id: Hex<16>,
    span_id: Hex<8>,
    sampled: bool,
}

/// The upstream's GPUs: none, the one, or a comma-joined list.
struct Gpu<'a>(&'a [String]);

impl Serialize for Gpu<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            [] => s.serialize_none(),
            [one] => s.serialize_str(one),
            many => s.serialize_str(&many.join(",")),
        }
    }
}

/// An id as lower-case hex.
struct Hex<const N: usize>([u8; N]);

impl<const N: usize> Serialize for Hex<N> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex(&self.0))
    }
}

/// The log line of a finished request.
pub fn line(r: &Record, sampled: bool) -> String {
    let t = &r.timing;
    let timed = r.endpoint != crate::record::Endpoint::Other;
    let line = Line {
        ts: rfc3339(t.unix_ns(t.end.unwrap_or(t.received))),
        msg: "request",
        request_id: &r.request_id,
        tenant: &r.tenant,
        model: r.model.as_deref(),
        upstream: r.upstream.as_deref().map(|u| u.name.as_str()),
        gpu_id: Gpu(r.upstream.as_deref().map_or(&[], |u| u.gpus.as_slice())),
        method: r.method.as_str(),
        path: &r.path,
        stream: r.params.stream,
        status: r.status,
        error_class: r.error.as_ref().map(|(c, _)| c.as_str()),
        error: r.error.as_ref().map(|(_, e)| e.as_str()),
        prompt_tokens: r.summary.prompt_tokens,
        generation_tokens: timed.then(|| r.generation_tokens()),
        ttft_ms: ms(t.ttft()),
        e2e_ms: ms(t.e2e()),
        itl_max_ms: ms(t.first_token.map(|_| t.max_itl)),
        finish_reason: r.summary.finish_reason.as_deref(),
        cost: r.cost.as_ref().map(|c| c.amount),
        currency: r.cost.as_ref().map(|c| &*c.currency),
        trace_id: Hex(r.trace_id),
        span_id: Hex(r.server_span),
        sampled,
    };
    // Serialising plain fields into a String cannot fail.
    serde_json::to_string(&line).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339(1_795_338_877_123_000_000),
            "2026-11-22T09:14:37.123Z"
        );
        assert_eq!(rfc3339(951_782_400_000_000_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn file_output_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw.log");
        let p = Arc::new(Pipeline::default());
        let sink = LogSink::start(
            &LogOutput::File {
                path: path.clone(),
                max_bytes: 100,
                keep: 2,
            },
            p.clone(),
        )
        .unwrap();
        for i in 0..10 {
            sink.write(format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(30)));
        }
        drop(sink);
        assert!(path.exists() && dir.path().join("gw.log.1").exists());
        assert!(dir.path().join("gw.log.2").exists());
        assert!(!dir.path().join("gw.log.3").exists());
        let last = std::fs::read_to_string(&path).unwrap();
        assert!(last.contains("\"n\":9"), "{last}");
        assert_eq!(p.log_lines_dropped.load(Ordering::Relaxed), 0);
    }
}
