//! Shared helpers: the simulator and scripted fake upstreams on loopback, a gateway in
//! front of them, SSE parsing, metric and log readers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gateway::{GatewayConfig, LogOutput, UpstreamConfig};
use serde_json::Value;
use sim::server::{self, Running as Sim};
use sim::{EngineKind, SimConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// A simulator with no load of its own, `speed` × real time.
pub async fn sim(engine: EngineKind, speed: f64, f: impl FnOnce(&mut SimConfig)) -> Sim {
    let mut cfg = SimConfig::new(engine);
    cfg.load = false;
    f(&mut cfg);
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    server::start(&cfg, speed, l, None).await.unwrap()
}

/// A gateway config with one upstream per `(name, addr, engine)`, logging to `log`.
pub fn config(upstreams: &[(&str, String, &str)], log: &Path) -> GatewayConfig {
    let ups = upstreams
        .iter()
        .map(|(n, url, engine)| UpstreamConfig {
            engine: engine.to_string(),
            gpus: vec![format!("GPU-{n}")],
            ..UpstreamConfig::new(n, url)
        })
        .collect();
    let mut c = GatewayConfig::new("127.0.0.1:0".parse().unwrap(), ups);
    c.admin = Some("127.0.0.1:0".parse().unwrap());
    c.log.output = LogOutput::File {
        path: log.to_path_buf(),
        max_bytes: 1 << 30,
        keep: 1,
    };
    c
}

pub async fn gateway(cfg: GatewayConfig) -> gateway::Running {
    gateway::start(cfg).await.expect("gateway starts")
}

pub fn url(addr: std::net::SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

/// JSON payloads of an SSE body and whether `[DONE]` ended it.
pub fn events(body: &str) -> (Vec<Value>, bool) {
    let mut out = Vec::new();
    let mut done = false;
    for ev in body.split("\n\n").filter(|e| !e.trim().is_empty()) {
        let data = ev
            .strip_prefix("data: ")
            .or_else(|| ev.strip_prefix("data:"))
            .unwrap_or_else(|| panic!("not an SSE data line: {ev:?}"));
        if data == "[DONE]" {
            done = true;
        } else {
            out.push(serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data}")));
        }
    }
    (out, done)
}

/// The log lines written so far (waits up to 5 s for at least `n`).
pub async fn log_lines(path: &Path, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("log lines are JSON"))
            .collect();
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The admin `/metrics` body in classic text or OpenMetrics.
pub async fn metrics(gw: &gateway::Running, openmetrics: bool) -> String {
    let accept = if openmetrics {
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    } else {
        "text/plain;version=0.0.4"
    };
    client()
        .get(url(gw.admin_addr.unwrap(), "/metrics"))
        .header("accept", accept)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the sample line starting with `prefix` (`name{labels}`).
pub fn sample(body: &str, prefix: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l[prefix.len()..].split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// One step of a scripted upstream's response.
#[derive(Debug, Clone)]
pub enum Step {
    /// Write these bytes.
    Write(Vec<u8>),
    /// Wait.
    Sleep(Duration),
    /// Close the connection now.
    Close,
}

/// What a fake upstream saw: each request's head and body.
pub struct Fake {
    pub addr: std::net::SocketAddr,
    pub requests: mpsc::UnboundedReceiver<(String, Vec<u8>)>,
    /// Fires when the gateway closed a connection while the script was still writing.
    pub cancelled: mpsc::UnboundedReceiver<()>,
}

/// A raw HTTP/1.1 upstream that answers every request with `script`.
pub async fn fake(script: Vec<Step>) -> Fake {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, requests) = mpsc::unbounded_channel();
    let (ctx, cancelled) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let (tx, ctx, script) = (tx.clone(), ctx.clone(), script.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut tmp = [0u8; 4096];
                let head_end = loop {
                    let Ok(n) = s.read(&mut tmp).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&tmp[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                while buf.len() < head_end + len {
                    let Ok(n) = s.read(&mut tmp).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&tmp[..n]);
                }
                let _ = tx.send((head, buf[head_end..head_end + len].to_vec()));
                for step in script {
                    match step {
                        Step::Write(b) => {
                            if s.write_all(&b).await.is_err() || s.flush().await.is_err() {
                                let _ = ctx.send(());
                                return;
                            }
                        }
                        Step::Sleep(d) => {
                            // Watch for the peer closing while waiting.
                            let mut probe = [0u8; 1];
                            tokio::select! {
                                _ = tokio::time::sleep(d) => {}
                                r = s.read(&mut probe) => {
                                    if matches!(r, Ok(0) | Err(_)) {
                                        let _ = ctx.send(());
                                        return;
                                    }
                                }
                            }
                        }
                        Step::Close => return,
                    }
                }
            });
        }
    });
    Fake {
        addr,
        requests,
        cancelled,
    }
}

/// A chunked SSE response head.
pub fn sse_head() -> Step {
    Step::Write(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
            .to_vec(),
    )
}

/// One HTTP chunk carrying `data`.
pub fn chunk(data: &str) -> Step {
    Step::Write(format!("{:x}\r\n{data}\r\n", data.len()).into_bytes())
}

/// The end of a chunked body.
pub fn last_chunk() -> Step {
    Step::Write(b"0\r\n\r\n".to_vec())
}

pub fn temp_log() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("requests.log");
    (d, p)
}
