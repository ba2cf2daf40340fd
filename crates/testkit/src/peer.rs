//! Real peers (Prometheus, VictoriaMetrics, Alertmanager) for integration tests: found on
//! PATH, started on 127.0.0.1 with their data in a temp dir, killed on drop. A missing peer
//! skips the test, or fails it when `STRATA_REQUIRE_PEERS=1`.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running peer process; killed when dropped.
pub struct Peer {
    child: Child,
    /// `127.0.0.1:PORT` it listens on.
    pub addr: String,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Peer {
    /// Stops the process the way an operator would (SIGTERM), waits for it to exit, and
    /// kills it if it has not after 10 s.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `Some(binary)` when `name` is on PATH; `None` (skip) when it is not, unless
/// `STRATA_REQUIRE_PEERS=1`, which turns a missing peer into a failure.
pub fn find(name: &str, package: &str) -> Option<String> {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if found.is_none() {
        assert!(
            std::env::var("STRATA_REQUIRE_PEERS").as_deref() != Ok("1"),
            "STRATA_REQUIRE_PEERS=1 but `{name}` is not on PATH (apt-get install {package})"
        );
        eprintln!("skipping: `{name}` not on PATH (apt-get install {package})");
    }
    found
}

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// Starts `bin args…` and waits until `http://addr{ready_path}` answers 2xx.
pub fn start(bin: &str, args: &[String], addr: &str, ready_path: &str) -> Peer {
    let child = Command::new(bin)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
    let peer = Peer {
        child,
        addr: addr.to_string(),
    };
    let url = format!("http://{addr}{ready_path}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if http_ok(addr, ready_path) {
            return peer;
        }
        assert!(
            Instant::now() < deadline,
            "{bin} did not become ready at {url}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether `GET path` on `addr` answers with a 2xx status (plain HTTP/1.0, no client crate).
fn http_ok(addr: &str, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && head[9] == b'2'
}

/// Prometheus as a remote_write receiver, data in `dir`.
pub fn prometheus(bin: &str, dir: &std::path::Path, port: u16) -> Peer {
    let addr = format!("127.0.0.1:{port}");
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, "global: {}\n").expect("write prometheus.yml");
    let args = vec![
        format!("--config.file={}", config.display()),
        format!("--storage.tsdb.path={}", dir.join("data").display()),
        format!("--web.listen-address={addr}"),
        "--web.enable-remote-write-receiver".to_string(),
    ];
    start(bin, &args, &addr, "/-/ready")
}

/// Prometheus scraping `target` every second as job `job` (config and TSDB under `dir`,
/// named for the job), with `flags` added (`--enable-feature=exemplar-storage`, …).
pub fn scraping_prometheus(
    bin: &str,
    dir: &std::path::Path,
    job: &str,
    target: &str,
    flags: &[&str],
) -> Peer {
    let addr = format!("127.0.0.1:{}", free_port());
    let config = dir.join(format!("{job}.yml"));
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s}}\nscrape_configs:\n- job_name: {job}\n  static_configs:\n  - targets: ['{target}']\n"
        ),
    )
    .expect("write the scrape config");
    let mut args = vec![
        format!("--config.file={}", config.display()),
        format!(
            "--storage.tsdb.path={}",
            dir.join(format!("{job}-data")).display()
        ),
        format!("--web.listen-address={addr}"),
    ];
    args.extend(flags.iter().map(|f| f.to_string()));
    start(bin, &args, &addr, "/-/ready")
}

/// The JSON type of `v`, for comparing the shape of a peer's answer with Strata's.
pub fn json_kind(v: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// VictoriaMetrics with no query latency offset, data in `dir`.
pub fn victoria_metrics(bin: &str, dir: &std::path::Path, port: u16) -> Peer {
    let addr = format!("127.0.0.1:{port}");
    let args = vec![
        format!("-httpListenAddr={addr}"),
        format!("-storageDataPath={}", dir.display()),
        "-search.latencyOffset=0s".to_string(),
        // A batch whose 2xx was lost in the outage is sent again; identical samples must
        // count once.
        "-dedup.minScrapeInterval=1ms".to_string(),
    ];
    start(bin, &args, &addr, "/health")
}

/// Alertmanager without clustering, data in `dir`, with `config` as its YAML.
pub fn alertmanager(bin: &str, dir: &std::path::Path, port: u16, config: &str) -> Peer {
    let addr = format!("127.0.0.1:{port}");
    let file = dir.join("alertmanager.yml");
    std::fs::write(&file, config).expect("write alertmanager.yml");
    let args = vec![
        format!("--config.file={}", file.display()),
        format!("--storage.path={}", dir.display()),
        format!("--web.listen-address={addr}"),
        "--cluster.listen-address=".to_string(),
    ];
    start(bin, &args, &addr, "/-/ready")
}
