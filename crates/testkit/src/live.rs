//! Real `strata sim`, `strata up` and `strata demo` processes on free loopback ports, killed
//! on drop.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A child process killed (and reaped) on drop.
pub struct Kill(pub Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Where the `strata` binary of this build is: `CARGO_BIN_EXE_strata` when the runner sets
/// it (nextest does), else beside the test executable's `deps/` folder, as cargo lays out
/// `target/<profile>/`.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("CARGO_BIN_EXE_strata") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test executable lives in target/<profile>/deps");
    let bin = profile_dir.join("strata");
    assert!(
        bin.exists(),
        "{} does not exist: build it first (cargo build -p strata) or run the tests of crates/strata",
        bin.display()
    );
    bin
}

/// The `strata` binary, with no config from the environment.
pub fn strata() -> Command {
    let mut c = Command::new(binary());
    c.env_remove("STRATA_CONFIG");
    c
}

/// `strata sim` with `args` on free ports; its engine and DCGM exporter metrics URLs.
pub fn sim(args: &[&str]) -> (Kill, String, String) {
    let mut child = strata()
        .args([
            "sim",
            "--listen",
            "127.0.0.1:0",
            "--gpu-listen",
            "127.0.0.1:0",
        ])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start strata sim");
    let out = child.stdout.take().expect("stdout");
    let child = Kill(child);
    let (mut engine, mut gpu) = (None, None);
    let mut lines = BufReader::new(out).lines();
    while let Some(line) = lines.next() {
        let line = line.expect("utf-8");
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .map(|u| u.trim_end_matches('/').to_string());
        if line.starts_with("engine listening on") {
            engine = url.map(|u| format!("{u}/metrics"));
        } else if line.starts_with("gpu listening on") {
            gpu = url;
        }
        if let (Some(e), Some(g)) = (&engine, &gpu) {
            // Keep reading: a closed pipe would fail the simulator's later writes.
            std::thread::spawn(move || lines.for_each(drop));
            return (child, e.clone(), g.clone());
        }
    }
    panic!("strata sim did not say where it listens");
}

/// `strata up` with `args`, its data in `dir`; its API base (`http://127.0.0.1:PORT`) once
/// it answers with `up` series.
pub async fn up(args: &[&str], dir: &Path) -> (Kill, String) {
    let port = crate::free_port();
    let child = Kill(
        strata()
            .arg("up")
            .args(args)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start strata up"),
    );
    let base = format!("http://127.0.0.1:{port}");
    sources::scrape::install_crypto_provider();
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = client
            .get(format!("{base}/api/v1/query?query=up"))
            .send()
            .await
            && let Ok(b) = r.bytes().await
            && let Ok(v) = serde_json::from_slice::<Value>(&b)
            && v["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
        {
            return (child, base);
        }
        assert!(
            Instant::now() < deadline,
            "strata up never scraped anything"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `check` every 500 ms until it gives a value; fails the test naming `what` after
/// `within`.
pub async fn wait_until(
    what: &str,
    within: Duration,
    mut check: impl AsyncFnMut() -> Option<Value>,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The JSON answer to `req`.
pub async fn json(req: reqwest::RequestBuilder) -> Value {
    let body = req
        .send()
        .await
        .expect("request")
        .bytes()
        .await
        .expect("body");
    serde_json::from_slice(&body).expect("json")
}

/// Serves the vLLM 0.10.2 fixture at `/metrics` (404 elsewhere) on a loopback port from a
/// background thread; its metrics URL.
pub fn serve_sample() -> String {
    serve_sample_on(std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
}

/// Serves the vLLM 0.10.2 fixture at `/metrics` (404 elsewhere) on `listener` from a
/// background thread; its metrics URL.
pub fn serve_sample_on(listener: std::net::TcpListener) -> String {
    let addr = listener.local_addr().expect("addr");
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../expo/tests/samples/vllm-0.10.2.prom"
    );
    let body = std::fs::read_to_string(path).expect("sample");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let mut stream = reader.into_inner();
            // Only /metrics answers, as on a real engine: a scraper that asks for `/` must
            // show up as a 404.
            let path = request_line.split_whitespace().nth(1).unwrap_or_default();
            let _ = if path.split('?').next() == Some("/metrics") {
                write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
            } else {
                write!(
                    stream,
                    "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                )
            };
        }
    });
    format!("http://{addr}/metrics")
}

/// `strata demo` on loopback `port` with the tests' fast settings (simulators at 4×, rules
/// every 2 s), its data in `dir`, admin POSTs guarded by `token` when given, its log to
/// `stderr`; its API base (`http://127.0.0.1:PORT`). Callers wait for the data they need.
pub fn demo(dir: &Path, port: u16, token: Option<&Path>, stderr: Stdio) -> (Kill, String) {
    let mut cmd = strata();
    cmd.current_dir(dir)
        .args(["demo", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--data-dir", "data", "--rule-interval", "2s"])
        .args(["--sim-speed", "4"]);
    if let Some(t) = token {
        cmd.arg("--admin-token-file").arg(t);
    }
    let child = cmd
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("start strata demo");
    (Kill(child), format!("http://127.0.0.1:{port}"))
}
