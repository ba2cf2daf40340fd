//! The load generator against the simulator on loopback: zero-cost ground truth for TTFT
//! and ITL, every API's stream, error classes, rate shapes and Ctrl-C.

use std::sync::Arc;
use std::time::Duration;

use bench::client::{Api, Client, ClientConfig};
use bench::measure::{ErrorClass, Outcome};
use bench::report::{StepReport, quantile};
use bench::run::{Driver, Limits};
use bench::shape::Shape;
use bench::workload::{LengthDist, Prompts, Workload};
use sim::server::{self, Running, ZeroCost};
use sim::{EngineKind, SimConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A loopback listener whose accepted sockets inherit TCP_NODELAY (Linux), as engines'
/// servers (uvicorn, TGI's axum) set it; without it a chunk written right after the
/// response head waits for the client's delayed ACK (≈ 40 ms).
fn nodelay_listener() -> TcpListener {
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.set_nodelay(true).unwrap();
    s.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    s.listen(1024).unwrap()
}

async fn zero_cost(tokens: u32, itl: Duration) -> Running {
    let z = ZeroCost {
        tokens,
        itl,
        model: "zc".into(),
    };
    server::start_zero_cost(z, nodelay_listener())
        .await
        .unwrap()
}

async fn engine(kind: EngineKind, speed: f64) -> Running {
    let mut cfg = SimConfig::new(kind);
    cfg.load = false;
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    server::start(&cfg, speed, l, None).await.unwrap()
}

fn config(r: &Running, api: Api, model: Option<&str>) -> ClientConfig {
    config_at(r.engine_addr, api, model)
}

fn config_at(addr: std::net::SocketAddr, api: Api, model: Option<&str>) -> ClientConfig {
    ClientConfig {
        url: format!("http://{addr}"),
        api,
        model: model.map(str::to_string),
        headers: vec![("x-tenant-id".into(), "team-a".into())],
        timeout: Duration::from_secs(20),
        ignore_eos: false,
    }
}

fn driver(client: Client, out: u32) -> (Driver, watch::Sender<bool>) {
    let (tx, stop) = watch::channel(false);
    let workload = Workload::new(
        Prompts::Synthetic(LengthDist::Fixed { n: 16 }),
        LengthDist::Fixed { n: out },
        1,
    );
    let d = Driver {
        client: Arc::new(client),
        workload: Arc::new(workload),
        seed: 1,
        id_prefix: "t".into(),
        stop,
    };
    (d, tx)
}

fn requests(n: u64) -> Limits {
    Limits {
        requests: Some(n),
        duration: None,
    }
}

/// The zero-cost simulator on its own thread and runtime (as a separate process would
/// be), so that its work does not delay the client's reads. Stops when `stop` is dropped.
fn zero_cost_thread(
    tokens: u32,
    itl: Duration,
) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let sim = zero_cost(tokens, itl).await;
            addr_tx.send(sim.engine_addr).unwrap();
            let _ = stopped.await;
            sim.shutdown().await;
        });
    });
    (addr_rx.recv().unwrap(), stop)
}

/// TTFT p50 (ms) that a minimal client measures against the simulator at `addr` now: four
/// threads on blocking sockets, each timing 4 streamed requests on one connection from
/// writing the request to the read that returns the first token. It holds what the
/// simulator's own HTTP handling and the machine's thread wake-ups add to the schedule.
fn minimal_client_ttft_p50(addr: std::net::SocketAddr, path: &str) -> f64 {
    use std::io::{Read, Write};
    let body =
        r#"{"model":"zc","prompt":"hi","messages":[{"role":"user","content":"hi"}],"stream":true}"#;
    let req = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let req = req.clone();
            std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.set_nodelay(true).unwrap();
                let mut buf = vec![0u8; 65536];
                let mut ttfts = Vec::new();
                for _ in 0..4 {
                    let t0 = std::time::Instant::now();
                    s.write_all(req.as_bytes()).unwrap();
                    let (mut seen, mut first) = (Vec::new(), None);
                    // Until the end of the chunked body: `[DONE]` then the last chunk.
                    while !(seen.ends_with(b"0\r\n\r\n")
                        && memchr::memmem::find(&seen, b"[DONE]").is_some())
                    {
                        let k = s.read(&mut buf).unwrap();
                        assert!(k > 0, "the simulator closed the connection");
                        seen.extend_from_slice(&buf[..k]);
                        if first.is_none() && memchr::memmem::find(&seen, b" tok\"").is_some() {
                            first = Some(t0.elapsed().as_secs_f64() * 1e3);
                        }
                    }
                    ttfts.push(first.unwrap());
                }
                ttfts
            })
        })
        .collect();
    let mut all: Vec<f64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort_unstable_by(f64::total_cmp);
    quantile(&all, 0.5)
}

/// The client's own TTFT error allowed at p50: 0.2 ms in an optimised build
/// (`scripts/test.sh` runs this test in release). A debug build's unoptimised HTTP stack
/// (hyper, reqwest, tokio at opt-level 0) sends each request 0.5–2.5 ms later on a busy
/// machine; there the bound only catches gross errors (a delayed ACK is 40 ms).
const TTFT_ERROR_MS: f64 = if cfg!(debug_assertions) { 5.0 } else { 0.2 };

#[tokio::test(flavor = "current_thread")]
async fn ttft_and_itl_match_the_zero_cost_ground_truth_within_0_2_ms() {
    // Zero-cost mode sends token k at (k+1)·ITL after the request arrives, within
    // microseconds of that schedule: every gap is exactly one ITL, and the TTFT is one
    // ITL plus what the simulator's HTTP handling and the thread wake-ups of a busy
    // machine add, which a minimal blocking client measures alongside.
    let itl = Duration::from_millis(20);
    let truth = itl.as_secs_f64() * 1e3;
    let (addr, _sim) = zero_cost_thread(10, itl);
    for api in [Api::OpenAiChat, Api::OpenAiCompletions] {
        let mut cfg = config_at(addr, api, Some("zc"));
        cfg.headers.clear();
        let (d, _stop) = driver(Client::new(&cfg).unwrap(), 10);
        // Warm-up opens pooled connections, as `--warmup` does; then Poisson arrivals, so
        // that requests rarely start in the same instant and queue behind each other.
        let four = Shape::Concurrency { n: 4 };
        d.step(four, requests(8), 0, &mut |_| {}).await;
        // Three interleaved rounds of the load generator and the minimal client: a busy
        // machine can slow either one for a moment, so their medians are compared.
        let (mut ttfts, mut references) = (Vec::new(), Vec::new());
        let mut last = None;
        for _ in 0..3 {
            let poisson = Shape::Rate {
                rate: 40.0,
                burstiness: 1.0,
                max_concurrency: None,
            };
            let r = d.step(poisson, requests(60), 8, &mut |_| {}).await;
            let reference =
                tokio::task::spawn_blocking(move || minimal_client_ttft_p50(addr, api.path()))
                    .await
                    .unwrap();
            let rep = StepReport::new(&r, None);
            assert_eq!(
                (rep.completed, rep.failed),
                (60, 0),
                "{api:?}: {:?}",
                rep.errors
            );
            assert_eq!(rep.tokens_from_usage, 60, "{api:?}");
            assert_eq!((rep.output_tokens.p50, rep.itl_ms.n), (10.0, 60 * 9));
            let (ttft, itl_p50, tpot) = (rep.ttft_ms.p50, rep.itl_ms.p50, rep.tpot_ms.p50);
            eprintln!(
                "{api:?}: TTFT p50 {ttft:.3} ms (minimal client {reference:.3}), ITL p50 {itl_p50:.3} ms, TPOT p50 {tpot:.3} ms (schedule {truth} ms)"
            );
            assert!((itl_p50 - truth).abs() <= 0.2, "{api:?} ITL p50 {itl_p50}");
            assert!((tpot - truth).abs() <= 0.2, "{api:?} TPOT p50 {tpot}");
            assert!(
                (truth..truth + 10.0).contains(&reference),
                "minimal client TTFT p50 {reference}"
            );
            ttfts.push(ttft);
            references.push(reference);
            last = Some(r);
        }
        let median = |mut v: Vec<f64>| {
            v.sort_unstable_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (ttft, reference) = (median(ttfts.clone()), median(references.clone()));
        assert!(
            (ttft - reference).abs() <= TTFT_ERROR_MS,
            "{api:?} TTFT p50 median {ttft} of {ttfts:?}, minimal client {reference} of {references:?}"
        );
        let r = last.unwrap();
        let mut ids: Vec<&str> = r.outcomes.iter().map(|o| o.request_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 60, "request ids are unique");
    }
}

#[tokio::test]
async fn tgi_stream_and_model_discovery_on_realistic_engines() {
    let tgi = engine(EngineKind::Tgi, 50.0).await;
    let (d, _stop) = driver(Client::new(&config(&tgi, Api::Tgi, None)).unwrap(), 7);
    let r = d
        .step(Shape::Concurrency { n: 3 }, requests(6), 0, &mut |_| {})
        .await;
    let rep = StepReport::new(&r, None);
    assert_eq!((rep.completed, rep.failed), (6, 0), "{:?}", rep.errors);
    assert_eq!((rep.output_tokens.max, rep.tokens_from_usage), (7.0, 6));
    assert!(rep.ttft_ms.p50 > 0.0 && rep.itl_ms.n == 6 * 6);
    tgi.shutdown().await;

    let vllm = engine(EngineKind::Vllm, 50.0).await;
    let mut c = Client::new(&config(&vllm, Api::OpenAiChat, None)).unwrap();
    c.resolve_model().await.unwrap();
    assert_eq!(
        c.model(),
        Some(SimConfig::new(EngineKind::Vllm).model_name())
    );
    let (d, _stop) = driver(c, 5);
    let r = d
        .step(Shape::Concurrency { n: 2 }, requests(2), 0, &mut |_| {})
        .await;
    assert_eq!(StepReport::new(&r, None).completed, 2);
    vllm.shutdown().await;
}

#[tokio::test]
async fn failures_are_classed_and_kept_out_of_the_latencies() {
    let vllm = engine(EngineKind::Vllm, 50.0).await;
    let (d, _stop) = driver(
        Client::new(&config(&vllm, Api::OpenAiChat, Some("no-such-model"))).unwrap(),
        4,
    );
    let r = d
        .step(Shape::Concurrency { n: 2 }, requests(3), 0, &mut |_| {})
        .await;
    let rep = StepReport::new(&r, Some(&"chat".parse().unwrap()));
    assert_eq!((rep.completed, rep.failed, rep.ttft_ms.n), (0, 3, 0));
    let e = &rep.errors[&ErrorClass::ClientError];
    assert!(e.count == 3 && e.example.starts_with("HTTP 404"), "{e:?}");
    assert_eq!(rep.goodput.as_ref().map(|g| g.good), Some(0));
    vllm.shutdown().await;

    // A port nobody listens on.
    let free = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", free.local_addr().unwrap());
    drop(free);
    let mut cfg = config(
        &zero_cost(1, Duration::ZERO).await,
        Api::OpenAiChat,
        Some("m"),
    );
    cfg.url = url;
    let (d, _stop) = driver(Client::new(&cfg).unwrap(), 4);
    let r = d
        .step(Shape::Concurrency { n: 1 }, requests(2), 0, &mut |_| {})
        .await;
    let classes: Vec<ErrorClass> = r
        .outcomes
        .iter()
        .map(|o| o.result.as_ref().unwrap_err().class)
        .collect();
    assert_eq!(classes, [ErrorClass::Connect, ErrorClass::Connect]);
}

/// `strata bench --ramp`: the workers of a concurrency send their first requests spread
/// over the ramp (worker k of n at ramp × k / n), not all at once; without a ramp they all
/// start together. Each stream (20 tokens 40 ms apart) outlasts the ramp, so every worker
/// sends exactly one of the n requests.
#[tokio::test]
async fn concurrency_ramp_spreads_the_first_requests() {
    let sim = zero_cost(20, Duration::from_millis(40)).await;
    let (d, _stop) = driver(
        Client::new(&config(&sim, Api::OpenAiCompletions, Some("zc"))).unwrap(),
        20,
    );
    let (n, ramp) = (8u32, Duration::from_millis(400));
    let sent = |r: &bench::run::StepResult| {
        let mut at: Vec<Duration> = r.outcomes.iter().map(|o| o.sent_at).collect();
        at.sort();
        at
    };
    let r = d
        .step_ramped(
            Shape::Concurrency { n },
            requests(n.into()),
            ramp,
            0,
            &mut |_| {},
        )
        .await;
    let at = sent(&r);
    assert_eq!(at.len(), n as usize);
    for (k, t) in at.iter().enumerate() {
        let due = ramp * k as u32 / n;
        // Never early; late by at most a loaded machine's wake-up.
        assert!(
            *t >= due && *t < due + Duration::from_millis(40),
            "worker {k}: {t:?}, due {due:?}"
        );
    }
    let r = d
        .step(Shape::Concurrency { n }, requests(n.into()), 0, &mut |_| {})
        .await;
    let at = sent(&r);
    assert!(
        at[at.len() - 1] - at[0] < Duration::from_millis(40),
        "{at:?}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn rate_shape_spaces_arrivals_and_stop_cancels_what_is_in_flight() {
    let sim = zero_cost(2, Duration::from_millis(1)).await;
    let (d, _stop) = driver(
        Client::new(&config(&sim, Api::OpenAiChat, Some("zc"))).unwrap(),
        2,
    );
    let shape = Shape::Rate {
        rate: 200.0,
        burstiness: 1.0,
        max_concurrency: None,
    };
    let r = d.step(shape, requests(60), 0, &mut |_| {}).await;
    assert_eq!(StepReport::new(&r, None).completed, 60);
    // 59 exponential gaps of mean 5 ms: 295 ms ± 38 ms; 150 ms is four deviations away.
    let last = r.outcomes.iter().map(|o| o.sent_at).max().unwrap();
    assert!(last >= Duration::from_millis(150), "{last:?}");
    sim.shutdown().await;

    let slow = zero_cost(100, Duration::from_millis(50)).await;
    let (d, stop) = driver(
        Client::new(&config(&slow, Api::OpenAiChat, Some("zc"))).unwrap(),
        100,
    );
    let limits = Limits {
        requests: None,
        duration: Some(Duration::from_secs(60)),
    };
    let stopper = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.send(true).unwrap();
        stop
    });
    let mut seen: Vec<Outcome> = Vec::new();
    let t0 = std::time::Instant::now();
    let r = d
        .step(Shape::Concurrency { n: 3 }, limits, 0, &mut |o| {
            seen.push(o.clone())
        })
        .await;
    assert!(t0.elapsed() < Duration::from_secs(5), "stop is prompt");
    assert!(r.interrupted);
    assert_eq!((r.cancelled, r.outcomes.len(), seen.len()), (3, 0, 0));
    drop(stopper.await);
    slow.shutdown().await;
}

/// The most requests in flight at once, from each request's send time and E2E.
fn peak_in_flight(outcomes: &[Outcome]) -> usize {
    let spans: Vec<(Duration, Duration)> = outcomes
        .iter()
        .map(|o| (o.sent_at, o.sent_at + o.result.as_ref().unwrap().e2e))
        .collect();
    spans
        .iter()
        .map(|&(at, _)| spans.iter().filter(|&&(s, e)| s <= at && at < e).count())
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn max_concurrency_caps_requests_in_flight_in_rate_mode() {
    // Requests last 100 ms and arrive at 400/s: uncapped, about 40 overlap.
    let sim = zero_cost(2, Duration::from_millis(50)).await;
    let (d, _stop) = driver(
        Client::new(&config(&sim, Api::OpenAiChat, Some("zc"))).unwrap(),
        2,
    );
    let rate = |max_concurrency| Shape::Rate {
        rate: 400.0,
        burstiness: 1.0,
        max_concurrency,
    };
    let r = d.step(rate(None), requests(20), 0, &mut |_| {}).await;
    assert_eq!(StepReport::new(&r, None).completed, 20);
    let free = peak_in_flight(&r.outcomes);
    assert!(free > 6, "uncapped peak {free}");

    let t0 = std::time::Instant::now();
    let r = d.step(rate(Some(3)), requests(12), 20, &mut |_| {}).await;
    let rep = StepReport::new(&r, None);
    assert_eq!((rep.completed, rep.failed), (12, 0));
    assert_eq!(peak_in_flight(&r.outcomes), 3);
    // Four waves of three 100 ms requests; the clock of a waiting arrival starts when it
    // is sent, so no TTFT holds the wait.
    assert!(
        t0.elapsed() >= Duration::from_millis(390),
        "{:?}",
        t0.elapsed()
    );
    assert!(rep.ttft_ms.p50 < 90.0, "TTFT p50 {}", rep.ttft_ms.p50);
    assert_eq!(
        rep.shape.to_string(),
        "rate 400/s (Poisson), at most 3 in flight"
    );
    sim.shutdown().await;
}
