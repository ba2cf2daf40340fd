//! The real-time servers: the engine's HTTP API and `/metrics` on one port, the DCGM
//! exporter's `/metrics` on another, and the zero-cost server for overhead benchmarks.
//!
//! One task owns the engine's step loop: it plans a step, sleeps until the step's end on
//! the (optionally sped-up) wall clock, completes it and hands each produced token to the
//! request that owns it. Handlers submit requests and read `/metrics` under the same lock.

mod errors;
mod openai;
mod sse;
pub mod text;
mod tgi;
mod zero_cost;

use axum::serve::ListenerExt;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;

pub use errors::ApiError;
pub use zero_cost::ZeroCost;

use crate::clock::Clock;
use crate::config::{EngineKind, SimConfig};
use crate::engine::Engine;
use crate::scenario::Scenario;
use crate::scheduler::{Emitted, FinishReason};

/// One output token as a request's stream sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Tok {
    /// 0-based index.
    pub index: u32,
    /// Set on the last token.
    pub finished: Option<FinishReason>,
    /// Simulated time it was produced.
    pub t: f64,
}

/// State shared by the step loop and the handlers.
pub(crate) struct Shared {
    engine: Mutex<Engine>,
    sinks: Mutex<HashMap<u64, mpsc::UnboundedSender<Tok>>>,
    wake: Notify,
    pub clock: Clock,
    pub kind: EngineKind,
    pub model: String,
    pub seed: u64,
    pub context: u32,
    pub created: u64,
    next_request: AtomicU64,
}

/// An accepted request: its engine id and the stream of its tokens.
pub(crate) struct Accepted {
    pub id: u64,
    pub arrival: f64,
    pub tokens: mpsc::UnboundedReceiver<Tok>,
    pub buffer_period: Option<f64>,
    /// The response is a refusal.
    pub refusal: bool,
}

impl Shared {
    fn engine(&self) -> MutexGuard<'_, Engine> {
        strata_core::sync::lock(&self.engine)
    }

    /// Queues a request and returns the stream of its tokens.
    pub fn submit(&self, prompt: u32, max_tokens: u32) -> Result<Accepted, ApiError> {
        let arrival = self.clock.now();
        let (tx, rx) = mpsc::unbounded_channel();
        let mut e = self.engine();
        let id = e
            .submit(arrival, prompt, max_tokens, None)
            .map_err(|_| ApiError::Overloaded)?;
        let buffer_period = e.buffer_period();
        let refusal = e.refusal(id, arrival);
        strata_core::sync::lock(&self.sinks).insert(id, tx);
        drop(e);
        self.wake.notify_one();
        Ok(Accepted {
            id,
            arrival,
            tokens: rx,
            buffer_period,
            refusal,
        })
    }

    /// Counts a request refused by validation.
    pub fn invalid(&self) {
        self.engine().record_invalid();
    }

    /// A fresh hex id for responses without `x-request-id`.
    pub fn request_hex(&self) -> String {
        let n = self.next_request.fetch_add(1, Ordering::Relaxed);
        format!(
            "{:016x}{:016x}",
            self.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ self.created,
            n
        )
    }

    fn dispatch(&self, e: &mut Engine, events: &[Emitted]) {
        let mut sinks = strata_core::sync::lock(&self.sinks);
        let t = e.now();
        for ev in events {
            let Some(tx) = sinks.get(&ev.id) else {
                continue;
            };
            let tok = Tok {
                index: ev.index,
                finished: ev.finished,
                t,
            };
            if tx.send(tok).is_err() {
                sinks.remove(&ev.id);
                e.abort(ev.id);
            } else if ev.finished.is_some() {
                sinks.remove(&ev.id);
            }
        }
    }
}

/// A running simulator: where it listens, and how to stop it.
pub struct Running {
    /// The engine API and `/metrics`.
    pub engine_addr: SocketAddr,
    /// The DCGM exporter `/metrics`, if served.
    pub gpu_addr: Option<SocketAddr>,
    /// The GPUs the engine runs on (its topology), for the engine↔GPU links.
    pub gpus: Vec<crate::gpu::GpuIdentity>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops serving and waits for the tasks (open streams are cut).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            t.abort();
            let _ = t.await;
        }
    }
}

/// Starts the simulator: `engine` serves the engine API, `gpu` (if any) the DCGM
/// exporter. `speed` is simulated seconds per real second.
pub async fn start(
    cfg: &SimConfig,
    speed: f64,
    engine: TcpListener,
    gpu: Option<TcpListener>,
) -> std::io::Result<Running> {
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let shared = Arc::new(Shared {
        engine: Mutex::new(Engine::new(cfg)),
        sinks: Mutex::new(HashMap::new()),
        wake: Notify::new(),
        clock: Clock::real(speed),
        kind: cfg.engine,
        model: cfg.model_name().to_string(),
        seed: cfg.seed,
        context: cfg.context(),
        created,
        next_request: AtomicU64::new(1),
    });
    let (stop, stop_rx) = watch::channel(false);
    let engine_addr = engine.local_addr()?;
    let gpus = shared
        .engine()
        .gpus()
        .iter()
        .map(|g| g.id.clone())
        .collect();
    let mut tasks = vec![tokio::spawn(step_loop(shared.clone(), stop_rx.clone()))];
    tasks.push(serve(
        engine,
        engine_router(shared.clone()),
        stop_rx.clone(),
    ));
    let gpu_addr = match gpu {
        Some(l) => {
            let addr = l.local_addr()?;
            let r = Router::new()
                .route("/metrics", get(gpu_metrics))
                .with_state(shared.clone());
            tasks.push(serve(l, r, stop_rx.clone()));
            Some(addr)
        }
        None => None,
    };
    Ok(Running {
        engine_addr,
        gpu_addr,
        gpus,
        stop,
        tasks,
    })
}

/// A listener on `addr` with [`strata_core::net::LISTEN_BACKLOG`] (what `strata sim` serves
/// on): the accept queue must hold a load generator's burst of new connections.
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    strata_core::net::listen(addr, strata_core::net::LISTEN_BACKLOG)
}

/// Starts the zero-cost server on `listener`.
pub async fn start_zero_cost(z: ZeroCost, listener: TcpListener) -> std::io::Result<Running> {
    let (stop, stop_rx) = watch::channel(false);
    let engine_addr = listener.local_addr()?;
    let task = serve(listener, zero_cost::router(z), stop_rx);
    Ok(Running {
        engine_addr,
        gpu_addr: None,
        gpus: Vec::new(),
        stop,
        tasks: vec![task],
    })
}

fn serve(l: TcpListener, r: Router, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        // Streams are many small writes: without TCP_NODELAY the first token waits for the
        // client's delayed ACK (~40 ms), which would look like engine TTFT.
        let l = l.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!("cannot set TCP_NODELAY: {e}");
            }
        });
        if let Err(e) = axum::serve(l, r).with_graceful_shutdown(shutdown).await {
            tracing::warn!("sim server stopped: {e}");
        }
    })
}

async fn step_loop(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut events = Vec::new();
    loop {
        let now = shared.clock.now();
        let (end, next_arrival) = {
            let mut e = shared.engine();
            e.pump_arrivals(now);
            (e.plan(now), e.next_arrival())
        };
        match end {
            Some(end) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(shared.clock.instant_of(end).into()) => {}
                    _ = stop.changed() => return,
                }
                events.clear();
                let mut e = shared.engine();
                e.complete(&mut events);
                shared.dispatch(&mut e, &events);
            }
            None => {
                let wait = async {
                    match next_arrival {
                        Some(t) => {
                            tokio::time::sleep_until(shared.clock.instant_of(t).into()).await
                        }
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = shared.wake.notified() => {}
                    _ = wait => {}
                    _ = stop.changed() => return,
                }
            }
        }
    }
}

fn engine_router(shared: Arc<Shared>) -> Router {
    let kind = shared.kind;
    let mut r = Router::new()
        .route("/v1/chat/completions", post(openai::chat))
        .route("/v1/completions", post(openai::completions))
        .route("/v1/models", get(models))
        .route("/health", get(health))
        .route("/metrics", get(engine_metrics))
        .route("/sim/scenario", get(get_scenario).post(set_scenario))
        .route("/sim/topology", get(topology));
    if kind == EngineKind::Tgi {
        r = r
            .route("/generate", post(tgi::generate))
            .route("/generate_stream", post(tgi::generate_stream))
            .route("/info", get(tgi::info));
    }
    let r = r.with_state(shared);
    // llama.cpp ignores x-request-id; the other engines echo it.
    if kind == EngineKind::Llamacpp {
        r
    } else {
        r.layer(middleware::from_fn(echo_request_id))
    }
}

async fn echo_request_id(req: Request, next: Next) -> Response {
    let id = req.headers().get("x-request-id").cloned();
    let mut resp = next.run(req).await;
    if let Some(id) = id {
        resp.headers_mut().insert("x-request-id", id);
    }
    resp
}

const PROM_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

fn text(body: String, content_type: &'static str) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

async fn engine_metrics(State(s): State<Arc<Shared>>) -> Response {
    let now = s.clock.now();
    let body = {
        let mut e = s.engine();
        e.pump_arrivals(now);
        e.render_engine(now)
    };
    s.wake.notify_one();
    text(body, PROM_TEXT)
}

async fn gpu_metrics(State(s): State<Arc<Shared>>) -> Response {
    let now = s.clock.now();
    let body = s.engine().render_gpus(now);
    text(body, PROM_TEXT)
}

async fn health(State(s): State<Arc<Shared>>) -> Response {
    match s.kind {
        EngineKind::Llamacpp => errors::json_response(200, r#"{"status":"ok"}"#.to_string()),
        _ => StatusCode::OK.into_response(),
    }
}

async fn models(State(s): State<Arc<Shared>>) -> Response {
    let m = &s.model;
    let body = match s.kind {
        EngineKind::Vllm | EngineKind::Sglang => json!({"object": "list", "data": [{
            "id": m, "object": "model", "created": s.created,
            "owned_by": s.kind.name(), "root": m, "parent": null, "max_model_len": s.context,
        }]}),
        EngineKind::Tgi => json!({"object": "list", "data": [{
            "id": m, "object": "model", "created": 0, "owned_by": m,
        }]}),
        EngineKind::Llamacpp => json!({"object": "list", "data": [{
            "id": m, "object": "model", "created": s.created, "owned_by": "llamacpp",
            "meta": {"n_ctx_train": s.context},
        }]}),
    };
    errors::json_response(200, body.to_string())
}

async fn get_scenario(State(s): State<Arc<Shared>>) -> Response {
    let current = s.engine().scenario();
    let all: Vec<_> = Scenario::ALL.iter().map(|s| s.name()).collect();
    errors::json_response(
        200,
        json!({"scenario": current.name(), "scenarios": all}).to_string(),
    )
}

async fn set_scenario(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let v: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return errors::json_response(
                400,
                json!({"error": format!("body must be JSON: {e}")}).to_string(),
            );
        }
    };
    let Some(name) = v.get("scenario").and_then(|n| n.as_str()) else {
        return errors::json_response(
            400,
            json!({"error": "missing field `scenario`"}).to_string(),
        );
    };
    match name.parse::<Scenario>() {
        Ok(sc) => {
            let now = s.clock.now();
            s.engine().set_scenario(sc, now);
            s.wake.notify_one();
            errors::json_response(200, json!({"scenario": sc.name()}).to_string())
        }
        Err(e) => errors::json_response(400, json!({"error": e}).to_string()),
    }
}

async fn topology(State(s): State<Arc<Shared>>) -> Response {
    let e = s.engine();
    let cfg = e.config();
    let gpus: Vec<_> = e
        .gpus()
        .iter()
        .map(|g| json!({"gpu": g.id.index, "uuid": g.id.uuid, "pci_bus_id": g.id.pci_bus_id, "device": g.id.device}))
        .collect();
    let body = json!({
        "engine": cfg.engine.name(), "model": cfg.model_name(), "pod": cfg.pod,
        "hostname": cfg.hostname, "tensor_parallel": gpus.len(), "gpus": gpus,
    });
    errors::json_response(200, body.to_string())
}
