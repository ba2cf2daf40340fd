//! A real Prometheus for the store's differential tests and benchmarks: started from the
//! Debian package on 127.0.0.1, loaded over remote_write (the sink's own encoder) with
//! exactly the points the embedded store gets, queried over its HTTP API; and the test data
//! both are given.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One series to load: sorted labels (`__name__` included) and points.
pub struct Series {
    /// Sorted labels, `__name__` included.
    pub labels: Vec<(String, String)>,
    /// `(timestamp ms, value)`, oldest first.
    pub points: Vec<(i64, f64)>,
}

impl Series {
    /// A series named `name` with `labels` (any order) and `points`.
    pub fn new(name: &str, labels: &[(&str, &str)], points: Vec<(i64, f64)>) -> Series {
        let mut l: Vec<(String, String)> = labels
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        l.push(("__name__".into(), name.into()));
        l.sort();
        Series { labels: l, points }
    }

    /// The metric name and the other labels, the way `tsdb::SampleRef` takes them.
    pub fn name_and_labels(&self) -> (String, Vec<(String, String)>) {
        let name = self
            .labels
            .iter()
            .find(|(n, _)| n == "__name__")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let labels = self
            .labels
            .iter()
            .filter(|(n, _)| n != "__name__")
            .cloned()
            .collect();
        (name, labels)
    }
}

/// The seeded generator the test data is drawn from: the same data on every run.
pub use strata_core::rng::Rng;

/// Upper bounds of the classic histograms the test data carries, as `le` values.
pub const BUCKETS: [(&str, f64); 6] = [
    ("0.1", 0.1),
    ("0.25", 0.25),
    ("0.5", 0.5),
    ("1.0", 1.0),
    ("2.5", 2.5),
    ("+Inf", f64::INFINITY),
];

/// Points of one series.
pub type Points = Vec<(i64, f64)>;

/// A latency histogram scraped at each of `times`: `per_scrape` observations of
/// `rng² × 4 s` between scrapes. Returns the cumulative bucket series (in [`BUCKETS`] order),
/// the `_sum` series and the `_count` series.
pub fn histogram(
    rng: &mut Rng,
    times: impl Iterator<Item = i64>,
    per_scrape: usize,
) -> (Vec<Points>, Points, Points) {
    let mut counts = [0.0f64; BUCKETS.len()];
    let mut sum = 0.0;
    let mut buckets: Vec<Points> = vec![vec![]; BUCKETS.len()];
    let (mut sums, mut cnts) = (vec![], vec![]);
    for t in times {
        for _ in 0..per_scrape {
            let obs = rng.f64() * rng.f64() * 4.0;
            sum += obs;
            for (count, (_, le)) in counts.iter_mut().zip(BUCKETS) {
                if obs <= le {
                    *count += 1.0;
                }
            }
        }
        for (series, count) in buckets.iter_mut().zip(counts) {
            series.push((t, count));
        }
        sums.push((t, sum));
        cnts.push((t, counts[BUCKETS.len() - 1]));
    }
    (buckets, sums, cnts)
}

/// A running Prometheus; killed on drop.
pub struct Prometheus {
    child: Child,
    addr: String,
    dir: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Label set text in the same form as `tsdb::Labels`' Display.
pub fn labels_text(pairs: Vec<(String, String)>) -> String {
    tsdb::Labels::new(pairs).to_string()
}

impl Prometheus {
    /// Starts Prometheus, or returns `None` (skip) when it is not installed and
    /// `STRATA_REQUIRE_PEERS` is unset; with `STRATA_REQUIRE_PEERS=1` a missing binary fails.
    pub fn start() -> Option<Prometheus> {
        let bin = std::env::var("PROMETHEUS_BIN").unwrap_or_else(|_| "/usr/bin/prometheus".into());
        if !std::path::Path::new(&bin).exists() {
            if std::env::var("STRATA_REQUIRE_PEERS").is_ok_and(|v| v == "1") {
                panic!(
                    "{bin} is missing and STRATA_REQUIRE_PEERS=1: apt-get install -y --no-install-recommends prometheus"
                );
            }
            eprintln!("skipping: {bin} not installed (apt-get install prometheus)");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let dir = std::env::temp_dir().join(format!("tsdb-prom-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let config = dir.join("prometheus.yml");
        std::fs::write(&config, "global:\n  scrape_interval: 1h\n").expect("config");
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new(&bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--web.enable-remote-write-receiver")
            .arg("--web.enable-admin-api")
            .arg("--query.lookback-delta=5m")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus");
        let prom = Prometheus {
            child,
            addr,
            dir: TempDir(dir),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if prom
                .http("GET", "/-/ready", None)
                .is_ok_and(|(code, _)| code == 200)
            {
                return Some(prom);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("prometheus did not become ready on {}", prom.addr);
    }

    /// One HTTP/1.0 exchange (no chunked encoding to decode); returns status and body.
    pub fn http(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
    ) -> std::io::Result<(u16, Vec<u8>)> {
        let mut s = TcpStream::connect(&self.addr)?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {}\r\n", self.addr).into_bytes();
        if let Some((headers, b)) = body {
            req.extend_from_slice(format!("{headers}Content-Length: {}\r\n", b.len()).as_bytes());
            req.extend_from_slice(b"\r\n");
            req.extend_from_slice(b);
        } else {
            req.extend_from_slice(b"\r\n");
        }
        s.write_all(&req)?;
        let mut resp = Vec::new();
        s.read_to_end(&mut resp)?;
        let split = resp
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(resp.len());
        let head = String::from_utf8_lossy(&resp[..split]).to_string();
        let code = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        Ok((code, resp[(split + 4).min(resp.len())..].to_vec()))
    }

    /// Pushes the series with remote_write (batches of ~200 series).
    pub fn remote_write(&self, data: &[Series]) {
        for batch in data.chunks(200) {
            let points: Vec<strata_core::Point> = batch
                .iter()
                .flat_map(|s| {
                    let (name, labels) = s.name_and_labels();
                    s.points.iter().map(move |(t, v)| {
                        strata_core::Point::new(name.clone(), labels.clone(), *v, *t)
                    })
                })
                .collect();
            // The production encoder, so the peer gets exactly what a Strata sink sends.
            let body = sinks::remote_write::proto::encode_body(&points);
            let headers = "Content-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\nX-Prometheus-Remote-Write-Version: 0.1.0\r\n";
            let (code, resp) = self
                .http("POST", "/api/v1/write", Some((headers, &body)))
                .expect("remote write");
            assert!(
                code / 100 == 2,
                "remote_write answered {code}: {}",
                String::from_utf8_lossy(&resp)
            );
        }
    }

    /// Bytes of chunk data Prometheus holds: it snapshots its TSDB (head included, through
    /// the admin API) and sums the chunk files of the snapshot's blocks (chunk framing, the
    /// per-chunk length, encoding byte and CRC32, included).
    pub fn snapshot_chunk_bytes(&self) -> Result<u64, String> {
        let (code, body) = self
            .http("POST", "/api/v1/admin/tsdb/snapshot", Some(("", b"")))
            .map_err(|e| e.to_string())?;
        let json: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| format!("{code}: {e}"))?;
        let name = json["data"]["name"]
            .as_str()
            .ok_or_else(|| format!("snapshot answered {code}: {json}"))?;
        let snap = self.dir.0.join("data").join("snapshots").join(name);
        let mut total = 0;
        for block in std::fs::read_dir(&snap).map_err(|e| e.to_string())? {
            let chunks = block.map_err(|e| e.to_string())?.path().join("chunks");
            for f in std::fs::read_dir(&chunks).map_err(|e| e.to_string())? {
                total += f
                    .and_then(|f| f.metadata())
                    .map_err(|e| e.to_string())?
                    .len();
            }
        }
        Ok(total)
    }

    /// Runs a query over HTTP and returns the response body's length without decoding it
    /// (what a benchmark should time); an error unless the body reports success.
    pub fn query_raw(&self, path: &str, params: &[(&str, String)]) -> Result<usize, String> {
        let (code, body) = self.get_raw(path, params)?;
        if code != 200 || !body.starts_with(br#"{"status":"success""#) {
            return Err(format!("{code}: {}", String::from_utf8_lossy(&body)));
        }
        Ok(body.len())
    }

    /// A GET of `path` with URL-encoded `params`: status and body.
    fn get_raw(&self, path: &str, params: &[(&str, String)]) -> Result<(u16, Vec<u8>), String> {
        let qs: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        self.http("GET", &format!("{path}?{}", qs.join("&")), None)
            .map_err(|e| e.to_string())
    }

    fn get(
        &self,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<BTreeMap<String, Vec<(i64, f64)>>, String> {
        let (code, body) = self.get_raw(path, params)?;
        let json: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| format!("{code}: {e}"))?;
        if json["status"] != "success" {
            return Err(json["error"].as_str().unwrap_or("error").to_string());
        }
        Ok(normalise(&json["data"]))
    }

    /// Instant query at `t` ms.
    pub fn query(&self, q: &str, t: i64) -> Result<BTreeMap<String, Vec<(i64, f64)>>, String> {
        self.get(
            "/api/v1/query",
            &[("query", q.to_string()), ("time", secs(t))],
        )
    }

    /// Range query.
    pub fn query_range(
        &self,
        q: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<BTreeMap<String, Vec<(i64, f64)>>, String> {
        self.get(
            "/api/v1/query_range",
            &[
                ("query", q.to_string()),
                ("start", secs(start)),
                ("end", secs(end)),
                ("step", secs(step)),
            ],
        )
    }
}

/// Milliseconds as the seconds string the HTTP API takes.
pub fn secs(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn point(p: &serde_json::Value) -> (i64, f64) {
    let t = (p[0].as_f64().unwrap_or(0.0) * 1000.0).round() as i64;
    let v = match p[1].as_str().unwrap_or("NaN") {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        s => s.parse().unwrap_or(f64::NAN),
    };
    (t, v)
}

fn normalise(data: &serde_json::Value) -> BTreeMap<String, Vec<(i64, f64)>> {
    let mut out = BTreeMap::new();
    let metric = |r: &serde_json::Value| {
        let pairs = r["metric"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        labels_text(pairs)
    };
    match data["resultType"].as_str() {
        Some("scalar") => {
            out.insert("scalar".to_string(), vec![point(&data["result"])]);
        }
        Some("vector") => data["result"]
            .as_array()
            .into_iter()
            .flatten()
            .for_each(|r| {
                out.insert(metric(r), vec![point(&r["value"])]);
            }),
        Some("matrix") => data["result"]
            .as_array()
            .into_iter()
            .flatten()
            .for_each(|r| {
                out.insert(
                    metric(r),
                    r["values"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(point)
                        .collect(),
                );
            }),
        _ => {}
    }
    out
}
