//! Self-benchmark: the highest streamed request rate one client core sustains against the
//! zero-cost simulator while its timing error stays within 0.2 ms.
//!
//! The simulator runs on its own thread and current-thread runtime (one core); the client
//! runs on a current-thread runtime on this thread (one core). Each step keeps C requests
//! in flight for a few seconds; every request streams `TOKENS` tokens `ITL` apart.
//! Timing error at a step, against the simulator's absolute schedule: |ITL p50 − ITL| and
//! TTFT p50 − ITL (which also holds the simulator's own HTTP handling, so it is
//! conservative). The result is the highest step within 0.2 ms on both; the run stops
//! after two steps beyond it. Each step also prints the CPU share of the simulator's and
//! the client's threads (from `/proc/self/task/*/schedstat`) and the client's CPU time per
//! request, to tell which side a limit comes from.
//! Run: `cargo bench -p bench --bench throughput` (`BENCH_SECS` per step, default 3;
//! `BENCH_STEPS=400,600,800` replaces the concurrency steps; `BENCH_CORES=A,B` pins the simulator's thread to CPU A and the client's to CPU B), or
//! `crates/bench/benches/throughput.sh` for medians against a baseline commit.

use std::sync::Arc;
use std::time::Duration;

use bench::client::{Api, Client, ClientConfig};
use bench::report::StepReport;
use bench::run::{Driver, Limits};
use bench::shape::Shape;
use bench::workload::{LengthDist, Prompts, Workload};
use sim::server::{self, ZeroCost};

const TOKENS: u32 = 10;
const ITL: Duration = Duration::from_millis(10);

/// Pins the calling thread to `cpu` (Linux); a failure is reported, not fatal.
#[allow(unsafe_code)]
fn pin(cpu: Option<usize>) {
    let Some(cpu) = cpu else { return };
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes inside it, and
    // sched_setaffinity(0, ...) only reads it for the calling thread.
    let ok = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    };
    if !ok {
        eprintln!(
            "cannot pin to CPU {cpu}: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// The calling thread's kernel id (Linux).
#[allow(unsafe_code)]
fn tid() -> i32 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::gettid() }
}

/// CPU time thread `tid` of this process has run, from `/proc` (0 where unreadable).
fn cpu_time(tid: i32) -> Duration {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// Starts the simulator on its own thread; its address and thread id.
fn start_sim(cpu: Option<usize>) -> (std::net::SocketAddr, i32) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        pin(cpu);
        let sim_tid = tid();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("sim runtime");
        rt.block_on(async move {
            // Accepted sockets inherit TCP_NODELAY from the listener (Linux).
            let s = tokio::net::TcpSocket::new_v4().expect("socket");
            s.set_nodelay(true).expect("nodelay");
            s.bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
            let l = s.listen(4096).expect("listen");
            let z = ZeroCost {
                tokens: TOKENS,
                itl: ITL,
                model: "zc".into(),
            };
            let sim = server::start_zero_cost(z, l).await.expect("sim");
            tx.send((sim.engine_addr, sim_tid)).expect("send addr");
            std::future::pending::<()>().await;
        });
    });
    rx.recv().expect("sim address")
}

fn main() {
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let cores: Vec<usize> = std::env::var("BENCH_CORES")
        .unwrap_or_default()
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    let steps: Vec<u32> = match std::env::var("BENCH_STEPS") {
        Ok(s) => s.split(',').filter_map(|c| c.trim().parse().ok()).collect(),
        Err(_) => vec![1, 10, 25, 50, 100, 200, 300, 400, 500, 600, 800, 1000, 1200],
    };
    let (addr, sim_tid) = start_sim(cores.first().copied());
    pin(cores.get(1).copied());
    let client_tid = tid();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    rt.block_on(async move {
        let client = Client::new(&ClientConfig {
            url: format!("http://{addr}"),
            api: Api::OpenAiChat,
            model: Some("zc".into()),
            headers: Vec::new(),
            timeout: Duration::from_secs(30),
            ignore_eos: false,
        })
        .expect("client");
        let (_stop_tx, stop) = tokio::sync::watch::channel(false);
        let d = Driver {
            client: Arc::new(client),
            workload: Arc::new(Workload::new(
                Prompts::Synthetic(LengthDist::Fixed { n: 16 }),
                LengthDist::Fixed { n: TOKENS },
                1,
            )),
            seed: 1,
            id_prefix: "b".into(),
            stop,
        };
        let itl_ms = ITL.as_secs_f64() * 1e3;
        println!(
            "{TOKENS} tokens {itl_ms} ms apart per request, {secs} s per step, client on one core\n"
        );
        println!(
            "{:>6} {:>10} {:>10} {:>10} {:>10} {:>10} {:>9} {:>8} {:>8} {:>9}",
            "C",
            "req/s",
            "chunks/s",
            "ITL p50",
            "TTFT p50",
            "TTFT err",
            "failed",
            "sim CPU",
            "cli CPU",
            "cli µs/req"
        );
        let mut misses = 0;
        let mut best = None;
        let mut next = 0;
        for c in steps {
            let shape = Shape::Concurrency { n: c };
            d.step(
                shape,
                Limits {
                    requests: Some(u64::from(c)),
                    duration: None,
                },
                next,
                &mut |_| {},
            )
            .await;
            next += u64::from(c);
            let limits = Limits {
                requests: None,
                duration: Some(Duration::from_secs(secs)),
            };
            let (sim0, cli0) = (cpu_time(sim_tid), cpu_time(client_tid));
            let r = d.step(shape, limits, next, &mut |_| {}).await;
            let (sim_cpu, cli_cpu) = (
                cpu_time(sim_tid).saturating_sub(sim0),
                cpu_time(client_tid).saturating_sub(cli0),
            );
            next += r.outcomes.len() as u64 + r.cancelled;
            let rep = StepReport::new(&r, None);
            let ttft_err = rep.ttft_ms.p50 - itl_ms;
            let itl_err = rep.itl_ms.p50 - itl_ms;
            let wall = r.wall.as_secs_f64();
            println!(
                "{c:>6} {:>10.0} {:>10.0} {:>10.3} {:>10.3} {:>10.3} {:>9} {:>7.0}% {:>7.0}% {:>9.1}",
                rep.requests_per_s,
                rep.requests_per_s * f64::from(TOKENS),
                rep.itl_ms.p50,
                rep.ttft_ms.p50,
                ttft_err,
                rep.failed,
                100.0 * sim_cpu.as_secs_f64() / wall,
                100.0 * cli_cpu.as_secs_f64() / wall,
                1e6 * cli_cpu.as_secs_f64() / r.outcomes.len().max(1) as f64,
            );
            if itl_err.abs() <= 0.2 && ttft_err <= 0.2 && rep.failed == 0 {
                best = Some((c, rep.requests_per_s));
                misses = 0;
            } else if best.is_some() {
                misses += 1;
                if misses == 2 {
                    break;
                }
            }
        }
        match best {
            Some((c, rate)) => println!(
                "\nhighest rate within 0.2 ms: {rate:.0} streamed requests/s (concurrency {c})"
            ),
            None => println!("\nno step kept the timing error within 0.2 ms"),
        }
    });
}
