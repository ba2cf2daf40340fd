//! OTLP export of kept traces: a bounded queue in front of one export task. A request
//! never waits on it: when the queue is full (endpoint slow or dead) the trace is dropped
//! and counted; a failed or timed-out export is dropped and counted too (no retry queue
//! to grow without bound).
//!
//! HTTP/protobuf goes through reqwest (TLS works); gRPC is sent over h2c with hyper, framed
//! by hand (5-byte prefix, `grpc-status` read from headers or trailers).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use prost::Message;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::proto::{
    ExportTraceServiceRequest, ExportTraceServiceResponse, InstrumentationScope, Resource,
    ResourceSpans, ScopeSpans, Span, kv_str,
};
use crate::config::{OtlpProtocol, TracingConfig};
use crate::metrics::Pipeline;

/// Most spans sent in one export call.
const MAX_BATCH_SPANS: usize = 1024;
const GRPC_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// The sending side of the export queue.
#[derive(Debug)]
pub struct Exporter {
    tx: std::sync::Mutex<Option<mpsc::Sender<Vec<Span>>>>,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
    enabled: bool,
    pipeline: Arc<Pipeline>,
}

enum Transport {
    Http {
        client: reqwest::Client,
        url: reqwest::Url,
    },
    Grpc {
        client: Box<Client<HttpConnector, Full<Bytes>>>,
        uri: http::Uri,
    },
}

impl Exporter {
    /// Starts the export task (on the current tokio runtime) when an endpoint is set; with
    /// none, [`Exporter::submit`] does nothing.
    pub fn start(cfg: &TracingConfig, pipeline: Arc<Pipeline>) -> Result<Exporter, String> {
        let Some(endpoint) = &cfg.endpoint else {
            return Ok(Exporter {
                tx: std::sync::Mutex::new(None),
                task: std::sync::Mutex::new(None),
                enabled: false,
                pipeline,
            });
        };
        let transport = match cfg.protocol {
            OtlpProtocol::HttpProtobuf => {
                let _ = rustls::crypto::ring::default_provider().install_default();
                let url: reqwest::Url = endpoint
                    .parse()
                    .map_err(|e| format!("OTLP endpoint {endpoint:?}: {e}"))?;
                let client = reqwest::Client::builder()
                    .timeout(cfg.export_timeout)
                    .build()
                    .map_err(|e| format!("OTLP HTTP client: {e}"))?;
                Transport::Http { client, url }
            }
            OtlpProtocol::Grpc => {
                let base = endpoint.trim_end_matches('/');
                if !base.starts_with("http://") {
                    return Err(format!(
                        "OTLP gRPC endpoint {endpoint:?}: only plaintext http://host:port (h2c) is supported; use the HTTP/protobuf protocol for https"
                    ));
                }
                let uri: http::Uri = format!("{base}{GRPC_PATH}")
                    .parse()
                    .map_err(|e| format!("OTLP endpoint {endpoint:?}: {e}"))?;
                let mut conn = HttpConnector::new();
                conn.set_nodelay(true);
                conn.set_connect_timeout(Some(cfg.export_timeout));
                let client = Box::new(
                    Client::builder(TokioExecutor::new())
                        .http2_only(true)
                        .build(conn),
                );
                Transport::Grpc { client, uri }
            }
        };
        let (tx, rx) = mpsc::channel(cfg.queue_traces.max(1));
        let resource = Resource {
            attributes: vec![
                kv_str("service.name", cfg.service_name.clone()),
                kv_str("service.version", env!("CARGO_PKG_VERSION")),
                kv_str("telemetry.sdk.name", "strata-gateway"),
            ],
        };
        let task = tokio::spawn(run(
            rx,
            transport,
            resource,
            cfg.export_timeout,
            pipeline.clone(),
        ));
        Ok(Exporter {
            tx: std::sync::Mutex::new(Some(tx)),
            task: std::sync::Mutex::new(Some(task)),
            enabled: true,
            pipeline,
        })
    }

    /// Queues one trace's spans; never waits. A full queue drops them (counted).
    pub fn submit(&self, spans: Vec<Span>) {
        let n = spans.len() as u64;
        let sent = match &*strata_core::sync::lock(&self.tx) {
            Some(tx) => tx.try_send(spans).is_ok(),
            None => false,
        };
        if !sent && self.enabled {
            self.pipeline
                .spans_dropped_queue
                .fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Whether spans go anywhere.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Closes the queue and waits up to `timeout` for what is queued to be sent; later
    /// spans are dropped (counted).
    pub async fn shutdown(&self, timeout: Duration) {
        drop(strata_core::sync::lock(&self.tx).take());
        let task = strata_core::sync::lock(&self.task).take();
        if let Some(mut t) = task
            && tokio::time::timeout(timeout, &mut t).await.is_err()
        {
            t.abort();
        }
    }
}

async fn run(
    mut rx: mpsc::Receiver<Vec<Span>>,
    transport: Transport,
    resource: Resource,
    timeout: Duration,
    pipeline: Arc<Pipeline>,
) {
    while let Some(first) = rx.recv().await {
        let mut spans = first;
        while spans.len() < MAX_BATCH_SPANS {
            match rx.try_recv() {
                Ok(more) => spans.extend(more),
                Err(_) => break,
            }
        }
        let n = spans.len() as u64;
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(resource.clone()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "strata.gateway".to_string(),
                        version: env!("CARGO_PKG_VERSION").to_string(),
                    }),
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        let sent = tokio::time::timeout(timeout, send(&transport, &req)).await;
        match sent {
            Ok(Ok(rejected)) => {
                let rejected = rejected.min(n);
                pipeline
                    .spans_exported
                    .fetch_add(n - rejected, Ordering::Relaxed);
                pipeline
                    .spans_dropped_export
                    .fetch_add(rejected, Ordering::Relaxed);
            }
            Ok(Err(e)) => {
                tracing::warn!("OTLP export of {n} spans failed: {e}");
                pipeline
                    .spans_dropped_export
                    .fetch_add(n, Ordering::Relaxed);
            }
            Err(_) => {
                tracing::warn!("OTLP export of {n} spans timed out after {timeout:?}");
                pipeline
                    .spans_dropped_export
                    .fetch_add(n, Ordering::Relaxed);
            }
        }
    }
}

/// Sends one request; the number of spans the receiver rejected.
async fn send(t: &Transport, req: &ExportTraceServiceRequest) -> Result<u64, String> {
    let body = req.encode_to_vec();
    match t {
        Transport::Http { client, url } => {
            let resp = client
                .post(url.clone())
                .header("content-type", "application/x-protobuf")
                .body(body)
                .send()
                .await
                .map_err(|e| format!("{url}: {e}"))?;
            let status = resp.status();
            let bytes = resp.bytes().await.map_err(|e| format!("{url}: {e}"))?;
            if !status.is_success() {
                let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).to_string();
                return Err(format!("{url}: HTTP {status}: {text}"));
            }
            Ok(rejected(&bytes))
        }
        Transport::Grpc { client, uri } => {
            let mut framed = BytesMut::with_capacity(body.len() + 5);
            framed.put_u8(0);
            framed.put_u32(body.len() as u32);
            framed.put_slice(&body);
            let request = http::Request::post(uri.clone())
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(Full::new(framed.freeze()))
                .map_err(|e| e.to_string())?;
            let resp = client
                .request(request)
                .await
                .map_err(|e| format!("{uri}: {e}"))?;
            let (parts, body) = resp.into_parts();
            if parts.status != http::StatusCode::OK {
                return Err(format!("{uri}: HTTP {}", parts.status));
            }
            let collected = body.collect().await.map_err(|e| format!("{uri}: {e}"))?;
            let trailers = collected.trailers().cloned();
            let status = parts
                .headers
                .get("grpc-status")
                .or_else(|| trailers.as_ref().and_then(|t| t.get("grpc-status")))
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            if status.as_deref() != Some("0") {
                let msg = parts
                    .headers
                    .get("grpc-message")
                    .or_else(|| trailers.as_ref().and_then(|t| t.get("grpc-message")))
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                return Err(format!(
                    "{uri}: grpc-status {} {msg}",
                    status.as_deref().unwrap_or("missing")
                ));
            }
            let bytes = collected.to_bytes();
            Ok(if bytes.len() > 5 {
                rejected(&bytes[5..])
            } else {
                0
            })
        }
    }
}

fn rejected(body: &[u8]) -> u64 {
    ExportTraceServiceResponse::decode(body)
        .ok()
        .and_then(|r| r.partial_success)
        .map_or(0, |p| p.rejected_spans.max(0) as u64)
}
