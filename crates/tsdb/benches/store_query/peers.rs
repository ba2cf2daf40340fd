//! The two HTTP stores the bench talks to besides Prometheus: VictoriaMetrics (Debian's
//! `victoria-metrics`, started here on 127.0.0.1 with its data in a temp dir) and Strata's
//! own Prometheus HTTP API (`node::api`, served in this process over the same store the
//! in-process timings read), plus the CPU-time reading both ingest figures use.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use testkit::prometheus::Series;

/// CPU seconds process `pid` has used. This process: its CPU clock
/// (`CLOCK_PROCESS_CPUTIME_ID`), which also counts threads that have exited (a range
/// query's worker threads end with it). A peer: the sum over its live threads of
/// `/proc/PID/task/TID/schedstat`'s time on CPU (nanoseconds; the peers' ingest and query
/// threads do not exit while measured).
pub fn cpu_secs(pid: &str) -> f64 {
    if pid == std::process::id().to_string() {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
        return t.tv_sec as f64 + t.tv_nsec as f64 / 1e9;
    }
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    let ns: u64 = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    ns as f64 / 1e9
}

/// The pid of the one process whose command line contains `needle` (a peer started by a
/// helper that does not hand out its `Child`).
pub fn pid_with_arg(needle: &str) -> Option<String> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let name = e.file_name().to_string_lossy().to_string();
        let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
        (name.bytes().all(|b| b.is_ascii_digit()) && String::from_utf8_lossy(&cmd).contains(needle))
            .then_some(name)
    })
}

/// Bytes of every file under `dir` (apparent sizes, not allocated blocks).
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

/// An HTTP query endpoint and the client that times it (keep-alive, as Grafana's is).
pub struct Http {
    rt: Arc<tokio::runtime::Runtime>,
    client: reqwest::Client,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Http {
    fn new(rt: Arc<tokio::runtime::Runtime>, base: String) -> Http {
        // reqwest is built without a default TLS provider (plain HTTP here, but building a
        // client needs one).
        sources::scrape::install_crypto_provider();
        Http {
            rt,
            client: reqwest::Client::new(),
            base,
        }
    }

    /// GET `path` with `params`; the whole body is read (not decoded) and its length
    /// returned, or an error unless the status is 200 and the body reports success.
    pub fn get(&self, path: &str, params: &[(&str, String)]) -> Result<Vec<u8>, String> {
        let url = reqwest::Url::parse_with_params(&format!("{}{path}", self.base), params)
            .map_err(|e| e.to_string())?;
        self.rt.block_on(async {
            let r = self
                .client
                .get(url)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let code = r.status();
            let body = r.bytes().await.map_err(|e| e.to_string())?;
            // Prometheus and VictoriaMetrics put the status first, Strata's serializer last.
            let ok = body.starts_with(br#"{"status":"success""#)
                || body.ends_with(br#""status":"success"}"#);
            if code != 200 || !ok {
                let text = String::from_utf8_lossy(&body[..body.len().min(300)]).to_string();
                return Err(format!("{code}: {text}"));
            }
            Ok(body.to_vec())
        })
    }

    /// POST `body` with `headers` to `path`; an error unless 2xx.
    fn post(&self, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Result<(), String> {
        self.rt.block_on(async {
            let mut req = self.client.post(format!("{}{path}", self.base)).body(body);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            let r = req.send().await.map_err(|e| e.to_string())?;
            let code = r.status();
            if !code.is_success() {
                let text = r.text().await.unwrap_or_default();
                return Err(format!("{path} answered {code}: {text}"));
            }
            Ok(())
        })
    }
}

/// A running VictoriaMetrics; killed and its data removed on drop.
pub struct Victoria {
    child: Child,
    dir: PathBuf,
    /// Its HTTP API.
    pub http: Http,
}

impl Drop for Victoria {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Victoria {
    /// Starts `victoria-metrics` (`VICTORIA_METRICS_BIN` or /usr/bin/victoria-metrics), or
    /// `None` when it is not installed. No latency offset (the newest samples are
    /// visible), no response cache (every repetition of a query is evaluated again), no
    /// deduplication, retention long enough for the data.
    pub fn start(rt: Arc<tokio::runtime::Runtime>) -> Option<Victoria> {
        let bin = std::env::var("VICTORIA_METRICS_BIN")
            .unwrap_or_else(|_| "/usr/bin/victoria-metrics".into());
        if !Path::new(&bin).exists() {
            eprintln!(
                "skipping VictoriaMetrics: {bin} not installed (apt-get install victoria-metrics)"
            );
            return None;
        }
        let port = testkit::peer::free_port();
        let dir = std::env::temp_dir().join(format!("tsdb-vm-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new(&bin)
            .arg(format!("-httpListenAddr={addr}"))
            .arg(format!("-storageDataPath={}", dir.display()))
            .arg("-retentionPeriod=10y")
            .arg("-search.latencyOffset=0s")
            .arg("-search.disableCache")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| eprintln!("cannot start {bin}: {e}"))
            .ok()?;
        let vm = Victoria {
            child,
            dir,
            http: Http::new(rt, format!("http://{addr}")),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let up = vm.http.rt.block_on(async {
                let r = vm
                    .http
                    .client
                    .get(format!("{}/health", vm.http.base))
                    .send();
                r.await.is_ok_and(|r| r.status() == 200)
            });
            if up {
                return Some(vm);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("VictoriaMetrics did not become ready on {addr}");
        None
    }

    /// Its pid, for [`cpu_secs`].
    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// Pushes the series with remote_write, batches of 200 series (the same encoder and
    /// batching the bench uses for Prometheus), then flushes what it buffered into parts.
    pub fn remote_write(&self, data: &[Series]) -> Result<(), String> {
        for batch in data.chunks(200) {
            let body = sinks::remote_write::proto::encode_body(&points(batch));
            let headers = [
                ("Content-Type", "application/x-protobuf"),
                ("Content-Encoding", "snappy"),
                ("X-Prometheus-Remote-Write-Version", "0.1.0"),
            ];
            self.http.post("/api/v1/write", &headers, body)?;
        }
        self.http.get_plain("/internal/force_flush")
    }

    /// Merges every partition into as few parts as it can and waits for that to finish
    /// (`/internal/force_merge` starts a background merge; `vm_active_force_merges` tells
    /// when it is done).
    pub fn force_merge(&self) -> Result<(), String> {
        self.http.get_plain("/internal/force_flush")?;
        self.http.get_plain("/internal/force_merge")?;
        let deadline = Instant::now() + Duration::from_secs(600);
        std::thread::sleep(Duration::from_millis(200));
        while Instant::now() < deadline {
            let metrics = self.http.text("/metrics")?;
            let active = metrics
                .lines()
                .find_map(|l| l.strip_prefix("vm_active_force_merges "))
                .map(str::trim);
            if active == Some("0") {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err("force merge did not finish in 10 min".into())
    }

    /// Bytes of the data parts (`data/`: timestamps, values, block index and metaindex of
    /// every part) and of the inverted index (`indexdb/`), apparent file sizes.
    pub fn disk_bytes(&self) -> (u64, u64) {
        (
            dir_bytes(&self.dir.join("data")),
            dir_bytes(&self.dir.join("indexdb")),
        )
    }
}

impl Http {
    /// GET `path` and its body as text, whatever it is; an error unless 2xx.
    fn text(&self, path: &str) -> Result<String, String> {
        self.rt.block_on(async {
            let r = self
                .client
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let code = r.status();
            let body = r.text().await.map_err(|e| e.to_string())?;
            if !code.is_success() {
                return Err(format!("{path} answered {code}: {body}"));
            }
            Ok(body)
        })
    }

    /// GET `path` for its effect; an error unless 2xx.
    fn get_plain(&self, path: &str) -> Result<(), String> {
        self.text(path).map(drop)
    }
}

/// The samples of `series` as the remote_write encoder takes them.
fn points(series: &[Series]) -> Vec<strata_core::Point> {
    series
        .iter()
        .flat_map(|s| {
            let (name, labels) = s.name_and_labels();
            s.points
                .iter()
                .map(move |(t, v)| strata_core::Point::new(name.clone(), labels.clone(), *v, *t))
        })
        .collect()
}

/// Strata's Prometheus HTTP API over `store`, as `strata up` serves it, on 127.0.0.1.
pub fn serve_strata(rt: Arc<tokio::runtime::Runtime>, store: Arc<tsdb::Store>) -> Option<Http> {
    let engine = Arc::new(tsdb::promql::Engine::new(
        store.clone(),
        tsdb::promql::EngineConfig::default(),
    ));
    let state = Arc::new(node::api::ApiState {
        engine,
        inflight: node::api::Inflight::new(16),
        query_timeout: Duration::from_secs(120),
        store,
        rules: None,
        backend: None,
    });
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .map_err(|e| eprintln!("cannot listen for Strata's API: {e}"))
        .ok()?;
    let addr = listener.local_addr().ok()?;
    rt.spawn(async move {
        let _ = axum::serve(listener, node::api::router(state)).await;
    });
    Some(Http::new(rt, format!("http://{addr}")))
}
