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

use serde_json::{Map, Value, json};

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

fn ms(d: Option<std::time::Duration>) -> Value {
    d.map_or(Value::Null, |d| {
        json!((d.as_secs_f64() * 1e6).round() / 1e3)
    })
}

/// The log line of a finished request.
pub fn line(r: &Record, sampled: bool) -> String {
    let t = &r.timing;
    let gpu = match r.upstream.as_deref().map(|u| u.gpus.as_slice()) {
        None | Some([]) => Value::Null,
        Some([one]) => json!(one),
        Some(many) => json!(many.join(",")),
    };
    let mut m = Map::with_capacity(24);
    m.insert(
        "ts".into(),
        json!(rfc3339(t.unix_ns(t.end.unwrap_or(t.received)))),
    );
    m.insert("msg".into(), json!("request"));
    m.insert("request_id".into(), json!(r.request_id));
    m.insert("tenant".into(), json!(r.tenant));
    m.insert("model".into(), json!(r.model));
    m.insert(
        "upstream".into(),
        json!(r.upstream.as_deref().map(|u| &u.name)),
    );
    m.insert("gpu_id".into(), gpu);
    m.insert("method".into(), json!(r.method.as_str()));
    m.insert("path".into(), json!(r.path));
    m.insert("stream".into(), json!(r.params.stream));
    m.insert("status".into(), json!(r.status));
    m.insert(
        "error_class".into(),
        json!(r.error.as_ref().map(|(c, _)| c.as_str())),
    );
    m.insert("error".into(), json!(r.error.as_ref().map(|(_, e)| e)));
    m.insert("prompt_tokens".into(), json!(r.summary.prompt_tokens));
    let timed = r.endpoint != crate::record::Endpoint::Other;
    m.insert(
        "generation_tokens".into(),
        if timed {
            json!(r.generation_tokens())
        } else {
            Value::Null
        },
    );
    m.insert("ttft_ms".into(), ms(t.ttft()));
    m.insert("e2e_ms".into(), ms(t.e2e()));
    m.insert("itl_max_ms".into(), ms(t.first_token.map(|_| t.max_itl)));
    m.insert("finish_reason".into(), json!(r.summary.finish_reason));
    if let Some(c) = &r.cost {
        m.insert("cost".into(), json!(c.amount));
        m.insert("currency".into(), json!(&*c.currency));
    }
    m.insert("trace_id".into(), json!(hex(&r.trace_id)));
    m.insert("span_id".into(), json!(hex(&r.server_span)));
    m.insert("sampled".into(), json!(sampled));
    Value::Object(m).to_string()
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
