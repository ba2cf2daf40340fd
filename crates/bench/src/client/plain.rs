//! Plain `http://` requests on raw hyper HTTP/1.1 connections: a connection is taken from
//! the idle list (or opened) for one request and put back once its body has ended, so the
//! pool grows to the concurrency in use. Compared with reqwest's pool this skips URL
//! handling, the pool's bookkeeping and body wrappers per request; `https://` goes
//! through reqwest.

use std::sync::Mutex;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HOST, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::measure::{ErrorClass, Failure};

type Conn = SendRequest<Full<Bytes>>;

/// Connections to one `http://` endpoint.
#[derive(Debug)]
pub(crate) struct Plain {
    /// `host:port` to connect to.
    authority: String,
    /// The request target (path and query).
    path: Uri,
    /// Headers of every request, `host` included.
    headers: HeaderMap,
    /// Kept-alive connections not in use.
    idle: Mutex<Vec<Conn>>,
}

/// A connection lent to one request: [`Plain::put_back`] returns it once the body ended.
pub(crate) struct Lease(Conn);

impl Plain {
    /// The pool for `endpoint` when its scheme is `http`; `headers` go on every request.
    pub(crate) fn new(endpoint: &reqwest::Url, mut headers: HeaderMap) -> Option<Plain> {
        if endpoint.scheme() != "http" {
            return None;
        }
        let host = endpoint.host_str()?;
        let port = endpoint.port_or_known_default()?;
        // An IPv6 host comes bracketed.
        let authority = format!("{host}:{port}");
        let target = match endpoint.query() {
            Some(q) => format!("{}?{q}", endpoint.path()),
            None => endpoint.path().to_string(),
        };
        let host_value = match endpoint.port() {
            Some(_) => authority.clone(),
            None => host.to_string(),
        };
        headers.insert(HOST, HeaderValue::from_str(&host_value).ok()?);
        Some(Plain {
            authority,
            path: target.parse().ok()?,
            headers,
            idle: Mutex::new(Vec::new()),
        })
    }

    fn take_idle(&self) -> Option<Conn> {
        let mut idle = strata_core::sync::lock(&self.idle);
        while let Some(c) = idle.pop() {
            // Not ready yet is fine: the connection task may not have seen the body end.
            if !c.is_closed() {
                return Some(c);
            }
        }
        None
    }

    async fn connect(&self) -> Result<Conn, Failure> {
        let connect = |e: &dyn std::fmt::Display| Failure {
            class: ErrorClass::Connect,
            detail: format!("{}: {e}", self.authority),
        };
        let tcp = TcpStream::connect(&*self.authority)
            .await
            .map_err(|e| connect(&e))?;
        tcp.set_nodelay(true).map_err(|e| connect(&e))?;
        let (conn, driver) = http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| connect(&e))?;
        tokio::spawn(async move {
            // The connection's errors surface on its request or body.
            let _ = driver.await;
        });
        Ok(conn)
    }

    /// POSTs `body` with `x-request-id: request_id`; a kept-alive connection the server
    /// closed meanwhile is replaced by a new one, once.
    pub(crate) async fn post(
        &self,
        body: Vec<u8>,
        request_id: &str,
    ) -> Result<(Response<Incoming>, Lease), Failure> {
        let id = HeaderValue::from_str(request_id).map_err(|e| Failure {
            class: ErrorClass::Connect,
            detail: format!("request id `{request_id}`: {e}"),
        })?;
        let body = Bytes::from(body);
        let mut reused = self.take_idle();
        loop {
            let fresh = reused.is_none();
            let mut conn = match reused.take() {
                Some(c) => c,
                None => self.connect().await?,
            };
            if conn.ready().await.is_err() {
                if fresh {
                    return Err(Failure {
                        class: ErrorClass::Connect,
                        detail: format!("{}: the connection closed", self.authority),
                    });
                }
                continue;
            }
            let mut req = Request::new(Full::new(body.clone()));
            *req.method_mut() = Method::POST;
            *req.uri_mut() = self.path.clone();
            *req.headers_mut() = self.headers.clone();
            req.headers_mut().insert("x-request-id", id.clone());
            match conn.send_request(req).await {
                Ok(resp) => return Ok((resp, Lease(conn))),
                Err(_) if !fresh => {}
                Err(e) => {
                    return Err(Failure {
                        class: ErrorClass::Connect,
                        detail: super::error_chain(&e),
                    });
                }
            }
        }
    }

    /// Returns a connection whose response body has ended to the idle list.
    pub(crate) fn put_back(&self, lease: Lease) {
        if !lease.0.is_closed() {
            strata_core::sync::lock(&self.idle).push(lease.0);
        }
    }
}

/// The next data chunk of `body` (`None` at its end); trailers are skipped.
pub(crate) async fn chunk(body: &mut Incoming) -> Result<Option<Bytes>, hyper::Error> {
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            return Ok(Some(data));
        }
    }
    Ok(None)
}
