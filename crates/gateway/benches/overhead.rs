//! Gateway overhead benchmark: the same streaming load sent directly to the simulator's
//! zero-cost upstream, through `strata gateway`, through nginx (plain proxy, buffering
//! off) and through the LiteLLM proxy (one model routed to the same upstream), in one run,
//! at several concurrencies.
//!
//! Reported per (target, concurrency): TTFT p50/p99 and E2E p50/p99 as the client sees
//! them, the same minus direct ("added"), the proxy's CPU time per forwarded token
//! (utime+stime of its processes from /proc over the phase / tokens received), and its RSS
//! growth per in-flight stream (RSS with every stream open minus RSS before the phase,
//! divided by the concurrency).
//!
//! Run it with `crates/gateway/benches/overhead.sh` (builds the release binary, installs
//! nginx if missing, LiteLLM into a virtual environment if it can). Environment:
//! STRATA_BIN (the `strata` binary), NGINX (default `nginx`), LITELLM (the `litellm` proxy
//! command; unset or `off`: no LiteLLM rows), BENCH_LITELLM_MAX_C (LiteLLM runs only at
//! concurrencies up to it, default 64), BENCH_SECONDS (per phase, default 10),
//! BENCH_CONCURRENCY (default `1,64,256`), BENCH_TOKENS (default 64), BENCH_ITL_MS
//! (default 20), BENCH_GATEWAY_THREADS (`strata gateway --threads`, default 1),
//! BENCH_GATEWAY_LOG (`--log`, default a file in a temporary folder), BENCH_OUT (JSON
//! results file).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Whether something listens on `port` within `limit`.
fn listening_within(port: u16, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

fn wait_port(port: u16, what: &str) {
    assert!(
        listening_within(port, Duration::from_secs(20)),
        "{what} did not start on port {port}"
    );
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The process and its children (nginx workers).
fn family(pid: u32) -> Vec<u32> {
    let mut out = vec![pid];
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            let after = stat.rsplit_once(')').map_or("", |x| x.1);
            let ppid: u32 = after
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if ppid == pid {
                out.push(p);
            }
        }
    }
    out
}

/// CPU seconds of `pids`: (user, system).
fn cpu_seconds(pids: &[u32]) -> (f64, f64) {
    let hz = 100.0; // USER_HZ on Linux
    pids.iter()
        .map(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            let after = stat.rsplit_once(')').map_or("", |x| x.1);
            let f: Vec<&str> = after.split_whitespace().collect();
            // After the command: state(0) ppid(1) ... utime(11) stime(12).
            let ut: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0);
            let st: f64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
            (ut / hz, st / hz)
        })
        .fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1))
}

/// Resident set size in KiB of `pids`.
fn rss_kib(pids: &[u32]) -> f64 {
    pids.iter()
        .map(|p| {
            std::fs::read_to_string(format!("/proc/{p}/status"))
                .unwrap_or_default()
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
                .unwrap_or(0.0)
        })
        .sum()
}

#[derive(Debug, Default, Clone)]
struct Phase {
    ttft: Vec<f64>,
    e2e: Vec<f64>,
    tokens: u64,
    errors: u64,
    cpu_s: f64,
    /// Of which in user space.
    cpu_user_s: f64,
    rss_growth_kib: f64,
}

fn pct(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v[i]
}

/// `c` clients sending back-to-back streaming completions to `port` for `secs`.
async fn load(
    client: &Client<HttpConnector, Full<Bytes>>,
    port: u16,
    c: usize,
    secs: f64,
    tokens: u32,
    itl: Duration,
    pids: &[u32],
) -> Phase {
    let body = Bytes::from(format!(
        r#"{{"model":"bench","prompt":"hi","max_tokens":{tokens},"stream":true}}"#
    ));
    let uri: http::Uri = format!("http://127.0.0.1:{port}/v1/completions")
        .parse()
        .unwrap();
    let rss_before = rss_kib(pids);
    let cpu_before = cpu_seconds(pids);
    let open = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for i in 0..c {
        let (client, body, uri, open) = (client.clone(), body.clone(), uri.clone(), open.clone());
        // Starts spread over one token gap, so the upstream's tokens do not all fire at
        // the same instant (that would measure burst queueing, not the proxy).
        let stagger = itl.mul_f64(i as f64 / c as f64);
        tasks.push(tokio::spawn(async move {
            let mut p = Phase::default();
            tokio::time::sleep(stagger).await;
            while Instant::now() < end {
                let req = http::Request::post(uri.clone())
                    .header("content-type", "application/json")
                    .body(Full::new(body.clone()))
                    .unwrap();
                let t0 = Instant::now();
                let resp = match client.request(req).await {
                    Ok(r) if r.status() == 200 => r,
                    _ => {
                        p.errors += 1;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                open.fetch_add(1, Ordering::Relaxed);
                let mut b = resp.into_body();
                let mut first = None;
                let mut events = 0u64;
                let mut ok = true;
                while let Some(f) = b.frame().await {
                    let Ok(f) = f else {
                        ok = false;
                        break;
                    };
                    if let Ok(d) = f.into_data() {
                        if first.is_none() {
                            first = Some(t0.elapsed());
                        }
                        events += memchr::memmem::find_iter(&d, b"data: ").count() as u64;
                    }
                }
                open.fetch_sub(1, Ordering::Relaxed);
                if !ok || first.is_none() {
                    p.errors += 1;
                    continue;
                }
                p.ttft.push(first.unwrap().as_secs_f64());
                p.e2e.push(t0.elapsed().as_secs_f64());
                p.tokens += events.saturating_sub(1); // minus [DONE]
            }
            p
        }));
    }
    // RSS with every stream open: sampled mid-phase, when all c are in flight.
    let mut rss_mid = 0.0f64;
    let mid = Instant::now() + Duration::from_secs_f64(secs / 2.0);
    while Instant::now() < mid {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..20 {
        if open.load(Ordering::Relaxed) as usize >= c {
            rss_mid = rss_mid.max(rss_kib(pids));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let mut all = Phase::default();
    for t in tasks {
        let p = t.await.unwrap();
        all.ttft.extend(p.ttft);
        all.e2e.extend(p.e2e);
        all.tokens += p.tokens;
        all.errors += p.errors;
    }
    let cpu_after = cpu_seconds(pids);
    all.cpu_user_s = cpu_after.0 - cpu_before.0;
    all.cpu_s = all.cpu_user_s + cpu_after.1 - cpu_before.1;
    all.rss_growth_kib = (rss_mid - rss_before).max(0.0);
    all
}

fn has_taskset() -> bool {
    Command::new("taskset")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `program` on CPU 1 (the proxy's own core) when pinning; the load generator and the
/// upstream stay on CPU 0 (overhead.sh starts the benchmark under `taskset -c 0`).
fn pinned(program: &str, pin: bool) -> Command {
    if pin {
        let mut c = Command::new("taskset");
        c.args(["-c", "1", program]);
        c
    } else {
        Command::new(program)
    }
}

fn nginx_conf(dir: &Path, listen: u16, upstream: u16) -> PathBuf {
    for d in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    let d = dir.display();
    let conf = format!(
        r#"worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log {d}/access.log;
  client_body_temp_path {d}/client_body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  upstream engine {{ server 127.0.0.1:{upstream}; keepalive 512; }}
  server {{
    listen 127.0.0.1:{listen};
    location / {{
      proxy_pass http://engine;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
    }}
  }}
}}
"#
    );
    let p = dir.join("nginx.conf");
    std::fs::write(&p, conf).unwrap();
    p
}

/// LiteLLM's proxy configuration: one model, `bench` (the name the load asks for), sent to
/// the upstream's OpenAI-compatible text completions; no master key (no database, no
/// authentication: the load sends none, as to the other proxies).
fn litellm_conf(dir: &Path, upstream: u16) -> PathBuf {
    let conf = format!(
        r#"model_list:
  - model_name: bench
    litellm_params:
      model: text-completion-openai/bench
      api_base: http://127.0.0.1:{upstream}/v1
      api_key: none
litellm_settings:
  telemetry: false
general_settings:
  dangerously_permit_weak_or_unset_master_key: true
"#
    );
    let p = dir.join("litellm.yaml");
    std::fs::write(&p, conf).unwrap();
    p
}

/// Starts the LiteLLM proxy (`litellm` command) on `listen`, one worker, pinned like the
/// other proxies; `None`, with the reason printed, when it is not asked for or does not
/// come up within two minutes (a Python proxy imports for a while on a loaded machine).
fn start_litellm(dir: &Path, listen: u16, upstream: u16, pin: bool) -> Option<Proc> {
    let litellm = match std::env::var("LITELLM") {
        Ok(c) if !c.is_empty() && c != "off" => c,
        _ => {
            println!(
                "litellm: not measured: LITELLM is not set (overhead.sh sets it when `litellm[proxy]` installs)\n"
            );
            return None;
        }
    };
    let conf = litellm_conf(dir, upstream);
    let log = std::fs::File::create(dir.join("litellm.log")).ok()?;
    let child = pinned(&litellm, pin)
        .args(["--config", conf.to_str().unwrap()])
        .args(["--host", "127.0.0.1", "--port", &listen.to_string()])
        .args(["--num_workers", "1"])
        // No download of the model price list, no telemetry: the bench machine may be offline.
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .env("LITELLM_TELEMETRY", "False")
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn();
    let p = match child {
        Ok(c) => Proc(c),
        Err(e) => {
            println!("litellm: not measured: `{litellm}` did not start ({e})\n");
            return None;
        }
    };
    if listening_within(listen, Duration::from_secs(120)) {
        return Some(p);
    }
    let log = std::fs::read_to_string(dir.join("litellm.log")).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(5).collect();
    println!(
        "litellm: not measured: not listening on port {listen} after 120 s; its log ends:\n{}\n",
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
    None
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing useful: only run
    // when asked for.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("overhead: run with `cargo bench -p gateway --bench overhead` (see overhead.sh)");
        return;
    }
    let strata = std::env::var("STRATA_BIN").unwrap_or_else(|_| "target/release/strata".into());
    let nginx = std::env::var("NGINX").unwrap_or_else(|_| "nginx".into());
    let secs: f64 = env_or("BENCH_SECONDS", 10.0);
    let tokens: u32 = env_or("BENCH_TOKENS", 64);
    let itl_ms: u64 = env_or("BENCH_ITL_MS", 20);
    let dir = tempfile::tempdir().unwrap();
    let gw_threads: u16 = env_or("BENCH_GATEWAY_THREADS", 1);
    let itl = Duration::from_millis(itl_ms);
    let gw_log = std::env::var("BENCH_GATEWAY_LOG")
        .unwrap_or_else(|_| dir.path().join("gateway.log").display().to_string());
    let pin: bool = env_or("BENCH_PIN", 1u8) == 1 && has_taskset();
    let conc: Vec<usize> = std::env::var("BENCH_CONCURRENCY")
        .unwrap_or_else(|_| "1,64,256".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();

    let up_port = testkit::free_port();
    let sim = Proc(
        Command::new(&strata)
            .args(["sim", "--zero-cost", "--tokens", &tokens.to_string()])
            .args(["--itl", &format!("{itl_ms}ms")])
            .args(["--listen", &format!("127.0.0.1:{up_port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start strata sim (set STRATA_BIN)"),
    );
    wait_port(up_port, "strata sim --zero-cost");
    let (gw_port, admin_port) = (testkit::free_port(), testkit::free_port());
    let gw = Proc(
        pinned(&strata, pin)
            .args([
                "gateway",
                "--upstream",
                &format!("http://127.0.0.1:{up_port}"),
            ])
            .args(["--listen", &format!("127.0.0.1:{gw_port}")])
            .args(["--admin", &format!("127.0.0.1:{admin_port}")])
            .args(["--log", &gw_log])
            .args(["--threads", &gw_threads.to_string()])
            .env_remove("STRATA_CONFIG")
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start strata gateway"),
    );
    wait_port(gw_port, "strata gateway");
    let ng_port = testkit::free_port();
    let conf = nginx_conf(dir.path(), ng_port, up_port);
    let ng = pinned(&nginx, pin)
        .args([
            "-p",
            dir.path().to_str().unwrap(),
            "-c",
            conf.to_str().unwrap(),
        ])
        .args(["-e", dir.path().join("error.log").to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(Proc);
    let ng = match ng {
        Ok(p) => {
            wait_port(ng_port, "nginx");
            Some(p)
        }
        Err(e) => {
            eprintln!("nginx not started ({e}): install Debian's nginx; continuing without it");
            None
        }
    };
    let ll_port = testkit::free_port();
    let ll = start_litellm(dir.path(), ll_port, up_port, pin);
    let ll_max_c: usize = env_or("BENCH_LITELLM_MAX_C", 64);
    std::thread::sleep(Duration::from_millis(300));

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut conn = HttpConnector::new();
    conn.set_nodelay(true);
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(4096)
        .build(conn);

    let mut targets: Vec<(&str, u16, Vec<u32>)> = vec![
        ("direct", up_port, vec![]),
        ("strata", gw_port, family(gw.0.id())),
    ];
    if let Some(n) = &ng {
        targets.push(("nginx", ng_port, family(n.0.id())));
    }
    if let Some(l) = &ll {
        targets.push(("litellm", ll_port, family(l.0.id())));
    }
    let mut json = Vec::new();
    println!(
        "zero-cost upstream: {tokens} tokens at {itl_ms} ms, {secs} s per phase; proxies {}; strata --threads {gw_threads}, nginx 1 worker, litellm 1 worker; times in ms\n",
        if pin {
            "pinned to CPU 1, load and upstream on CPU 0"
        } else {
            "not pinned"
        }
    );
    println!(
        "| c | target | requests | TTFT p50 | TTFT p99 | E2E p50 | E2E p99 | added TTFT p50 | added TTFT p99 | added E2E p50 | added E2E p99 | CPU µs/token | of which user | RSS KiB/stream | errors |"
    );
    println!("|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for &c in &conc {
        let targets: Vec<&(&str, u16, Vec<u32>)> = targets
            .iter()
            .filter(|(name, ..)| {
                let skip = *name == "litellm" && c > ll_max_c;
                if skip {
                    println!("| {c} | litellm | skipped: c above BENCH_LITELLM_MAX_C={ll_max_c} (its phases run far longer than the others' there) |");
                }
                !skip
            })
            .collect();
        let mut base: Option<(f64, f64, f64, f64)> = None;
        for (name, port, pids) in &targets {
            // Warm the pools (the client's connections to the target, the proxy's upstream)
            // right before the phase: the gateway closes upstream connections idle for 4 s
            // (below the engines' own keep-alive), nginx keeps them 60 s, so warming every
            // target first would leave only the gateway reconnecting at its phase's start.
            rt.block_on(load(
                &client,
                *port,
                c,
                0.3 + tokens as f64 * itl_ms as f64 / 1000.0,
                tokens,
                itl,
                pids,
            ));
            let pids = if pids.is_empty() {
                vec![]
            } else {
                family(pids[0])
            };
            let mut p = rt.block_on(load(&client, *port, c, secs, tokens, itl, &pids));
            let n = p.e2e.len();
            let (t50, t99) = (pct(&mut p.ttft, 0.5) * 1e3, pct(&mut p.ttft, 0.99) * 1e3);
            let (e50, e99) = (pct(&mut p.e2e, 0.5) * 1e3, pct(&mut p.e2e, 0.99) * 1e3);
            let b = *base.get_or_insert((t50, t99, e50, e99));
            let proxied = !pids.is_empty();
            let per_token = |s: f64| {
                if proxied && p.tokens > 0 {
                    s * 1e6 / p.tokens as f64
                } else {
                    f64::NAN
                }
            };
            let (cpu_tok, user_tok) = (per_token(p.cpu_s), per_token(p.cpu_user_s));
            let rss = if proxied {
                p.rss_growth_kib / c as f64
            } else {
                f64::NAN
            };
            let f = |v: f64| {
                if v.is_nan() {
                    "–".to_string()
                } else {
                    format!("{v:.2}")
                }
            };
            let added = |v: f64, b: f64| {
                if proxied {
                    format!("{:+.3}", v - b)
                } else {
                    "–".into()
                }
            };
            println!(
                "| {c} | {name} | {n} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                f(t50),
                f(t99),
                f(e50),
                f(e99),
                added(t50, b.0),
                added(t99, b.1),
                added(e50, b.2),
                added(e99, b.3),
                f(cpu_tok),
                f(user_tok),
                f(rss),
                p.errors
            );
            json.push(serde_json::json!({
                "concurrency": c, "target": name, "requests": n, "tokens": p.tokens,
                "ttft_p50_ms": t50, "ttft_p99_ms": t99, "e2e_p50_ms": e50, "e2e_p99_ms": e99,
                "added_ttft_p50_ms": t50 - b.0, "added_ttft_p99_ms": t99 - b.1,
                "added_e2e_p50_ms": e50 - b.2, "added_e2e_p99_ms": e99 - b.3,
                "cpu_s": p.cpu_s, "cpu_user_s": p.cpu_user_s, "cpu_us_per_token": if cpu_tok.is_nan() { None } else { Some(cpu_tok) },
                "rss_kib_per_stream": if rss.is_nan() { None } else { Some(rss) },
                "errors": p.errors,
            }));
        }
    }
    if let Ok(out) = std::env::var("BENCH_OUT") {
        std::fs::write(&out, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    }
    drop((sim, gw, ng, ll));
}
