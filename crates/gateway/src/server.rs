//! Accept loops: the proxy address (HTTP/1.1 keep-alive and h2c, header read timeout) and
//! the admin address (`/metrics`, `/health`).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::Shared;

fn builder(shared: &Shared) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(shared.cfg.limits.header_timeout)
        .keep_alive(true);
    b.http2().timer(TokioTimer::new());
    b
}

pub(crate) async fn serve_proxy(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let builder = builder(&shared);
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("gateway accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => break,
        };
        let _ = stream.set_nodelay(true);
        let gw = shared.clone();
        let svc = service_fn(move |req: Request<Incoming>| {
            let gw = gw.clone();
            async move { Ok::<_, Infallible>(crate::forward::handle(gw, req).await) }
        });
        let conn = builder.serve_connection(TokioIo::new(stream), svc);
        let conn = graceful.watch(conn.into_owned());
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    graceful.shutdown().await;
}

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
                Err(_) => continue,
            },
            _ = stopped(&mut stop) => break,
        };
        let gw = shared.clone();
        let svc = service_fn(move |req: Request<Incoming>| {
            let gw = gw.clone();
            async move { Ok::<_, Infallible>(admin(&gw, &req)) }
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), svc)
            .into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
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
