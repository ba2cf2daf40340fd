//! Accept loops: the proxy address (HTTP/1.1 keep-alive and h2c) and the admin address
//! (`/metrics`, `/health`). Every connection must send a request head within the header
//! timeout (also between keep-alive requests); past `max_connections` open connections a
//! new one is answered `503` and closed, so idle clients cannot exhaust file descriptors.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::Shared;
use crate::errors::openai_error_json;
use crate::metrics::Metrics;

/// Interval and timeout of h2c keep-alive pings.
const H2_PING: Duration = Duration::from_secs(20);

fn builder(shared: &Shared) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(shared.cfg.limits.header_timeout)
        .keep_alive(true);
    // Pings find dead h2c peers (h2 has no header-read timer of its own).
    b.http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(H2_PING))
        .keep_alive_timeout(H2_PING);
    b
}

pub(crate) async fn serve_proxy(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let builder = builder(&shared);
    let graceful = crate::graceful::Shutdown::new();
    let rejecting = Arc::new(Semaphore::new(MAX_REJECTING));
    let metrics = shared.metrics.clone();
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("gateway accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => break,
        };
        let max = shared.cfg.limits.max_connections;
        let open = usize::try_from(metrics.connections_open.load(Ordering::Relaxed)).unwrap_or(0);
        if open >= max {
            metrics.connections_rejected.fetch_add(1, Ordering::Relaxed);
            // Bounded: past MAX_REJECTING answers in progress, the socket is just closed.
            if let Ok(permit) = rejecting.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    reject(stream, max).await;
                    drop(permit);
                });
            }
            continue;
        }
        let _ = stream.set_nodelay(true);
        let open = Open::new(metrics.clone());
        let started = Arc::new(AtomicBool::new(false));
        let (gw, seen) = (shared.clone(), started.clone());
        let svc = service_fn(move |req: Request<Incoming>| {
            seen.store(true, Ordering::Relaxed);
            let gw = gw.clone();
            async move { Ok::<_, Infallible>(crate::forward::handle(gw, req).await) }
        });
        let conn = builder.serve_connection(TokioIo::new(stream), svc);
        let conn = graceful.watch(conn.into_owned());
        let timeout = shared.cfg.limits.header_timeout;
        tokio::spawn(async move {
            first_request_within(conn, timeout, &started, &open.0).await;
            drop(open);
        });
    }
    graceful.shutdown().await;
}

/// Answers in progress to connections over the cap; more are closed without an answer.
const MAX_REJECTING: usize = 64;

/// One open client connection, counted in `strata_gateway_connections_open`.
struct Open(Arc<Metrics>);

impl Open {
    fn new(m: Arc<Metrics>) -> Open {
        m.connections_open.fetch_add(1, Ordering::Relaxed);
        Open(m)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves a connection, closing it when no request arrived within `timeout` of its start.
/// hyper's own header-read timer covers the rest (a head that stalls, and keep-alive idle
/// time after each response), but it starts only once the protocol is known, and telling
/// HTTP/1.1 from h2c waits for the client's first bytes: without this, a client that never
/// sends a byte holds its connection (and a file descriptor) forever. Once a request has
/// started, the timer is dropped: the connection is then polled on every forwarded token,
/// and polling a timer beside it each time cost measurable CPU per token.
async fn first_request_within<F: Future>(
    conn: F,
    timeout: Duration,
    started: &AtomicBool,
    metrics: &Metrics,
) {
    let mut conn = std::pin::pin!(conn);
    let mut timer = std::pin::pin!(tokio::time::sleep(timeout));
    let first = std::future::poll_fn(|cx| {
        if conn.as_mut().poll(cx).is_ready() {
            return Poll::Ready(First::Ended);
        }
        if started.load(Ordering::Relaxed) {
            return Poll::Ready(First::Started);
        }
        timer.as_mut().poll(cx).map(|()| First::TimedOut)
    })
    .await;
    match first {
        First::Ended => {}
        First::Started => {
            conn.await;
        }
        First::TimedOut => {
            metrics
                .connections_timed_out
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// How a connection's wait for its first request ended.
enum First {
    /// The connection ended first.
    Ended,
    /// A request started: the connection is served from then on.
    Started,
    /// No request within the header timeout: the connection is closed.
    TimedOut,
}

/// Answers a connection over the cap with a `503` naming the limit, then closes it.
async fn reject(mut stream: TcpStream, max: usize) {
    let body = openai_error_json(
        &format!(
            "the gateway has {max} client connections open, its limit: retry later, or raise [gateway.limits] max_connections"
        ),
        "api_connection_error",
        503,
    );
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\nretry-after: 1\r\n\r\n",
        body.len()
    );
    let answer = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&body).await?;
        stream.shutdown().await?;
        // Read what the client sent, so closing does not reset the connection before the
        // client read the answer.
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    };
    let _ = tokio::time::timeout(REJECT_TIME, answer).await;
}

/// Longest time spent answering one connection over the cap.
const REJECT_TIME: Duration = Duration::from_secs(1);

pub(crate) async fn serve_admin(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let builder = builder(&shared);
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => break,
        };
        let started = Arc::new(AtomicBool::new(false));
        let (gw, seen) = (shared.clone(), started.clone());
        let svc = service_fn(move |req: Request<Incoming>| {
            seen.store(true, Ordering::Relaxed);
            let gw = gw.clone();
            async move { Ok::<_, Infallible>(admin(&gw, &req)) }
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), svc)
            .into_owned();
        let timeout = shared.cfg.limits.header_timeout;
        let metrics = shared.metrics.clone();
        tokio::spawn(async move {
            first_request_within(conn, timeout, &started, &metrics).await;
        });
    }
}

fn admin(gw: &Shared, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let (status, ctype, body) = match req.uri().path() {
        "/metrics" => {
            let accept = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok());
            let format = expo::Format::negotiate(accept);
            (
                StatusCode::OK,
                format.content_type(),
                gw.metrics.render(format),
            )
        }
        "/health" | "/healthz" => {
            let ups: Vec<_> = gw
                .routes
                .upstreams()
                .iter()
                .map(|u| serde_json::json!({"name": u.name, "url": u.url, "in_flight": u.in_flight()}))
                .collect();
            (
                StatusCode::OK,
                "application/json",
                serde_json::json!({"status": "ok", "upstreams": ups}).to_string(),
            )
        }
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found: the admin address serves /metrics and /health; send API requests to the gateway's listen address\n".to_string(),
        ),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(ctype),
    );
    r
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
