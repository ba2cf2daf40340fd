//! The gateway's HTTP/1.1 client to the engines: a keep-alive pool of upstream
//! connections, the request written in one buffer, the response head parsed with
//! `httparse`, and a body that the client connection's own task reads off the upstream
//! socket.
//!
//! Written here rather than using hyper's client: hyper drives every upstream connection
//! as a task of its own and hands each chunk to the response body through a one-slot
//! channel, so each streamed token woke three tasks; profiled, that made the gateway's
//! user-space CPU per token twice nginx's with the same system calls.

mod chunked;
mod response;
mod wire;

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use http::uri::Authority;
use http::{HeaderMap, Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub use response::ResponseBody;

/// Most idle connections kept per upstream.
const MAX_IDLE_PER_UPSTREAM: usize = 1024;

/// A request ready to send: its bytes are kept so it can be sent a second time.
pub(crate) struct Request {
    method: Method,
    authority: Authority,
    bytes: Vec<u8>,
}

impl Request {
    /// Encodes the request (the `Host` header is the upstream's authority; the length is
    /// the body's).
    pub fn new(
        method: Method,
        authority: Authority,
        path_and_query: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Request {
        let bytes =
            wire::encode_request(&method, path_and_query, authority.as_str(), headers, body);
        Request {
            method,
            authority,
            bytes,
        }
    }
}

/// A response head and its body.
pub(crate) struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: ResponseBody,
}

/// Why a request got no response.
#[derive(Debug)]
pub(crate) enum Error {
    /// No connection could be opened.
    Connect(io::Error),
    /// The connection closed or reset before the response began.
    Closed(io::Error),
    /// The upstream answered something that is not an HTTP/1.1 response.
    Malformed(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Connect(e) | Error::Closed(e) => write!(f, "{e}"),
            Error::Malformed(m) => f.write_str(m),
        }
    }
}

/// An idle connection and when it went idle.
#[derive(Debug)]
struct Idle {
    conn: TcpStream,
    since: Instant,
}

/// Idle keep-alive connections per upstream.
#[derive(Debug)]
pub(crate) struct Pool {
    idle: Mutex<HashMap<Authority, Vec<Idle>>>,
    idle_timeout: Duration,
    connect_timeout: Duration,
}

impl Pool {
    /// A pool keeping idle connections for `idle_timeout` (below the engines' own
    /// keep-alive, so it does not hand out a connection the engine is closing).
    pub fn new(idle_timeout: Duration, connect_timeout: Duration) -> Arc<Pool> {
        Arc::new(Pool {
            idle: Mutex::new(HashMap::new()),
            idle_timeout,
            connect_timeout,
        })
    }

    /// Closes connections idle for longer than the timeout, every timeout, until the pool
    /// is dropped (an idle gateway does not keep sockets the engines have closed).
    pub fn spawn_reaper(pool: &Arc<Pool>) {
        let weak = Arc::downgrade(pool);
        let every = pool.idle_timeout.max(Duration::from_millis(100));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(pool) = weak.upgrade() else { return };
                let mut idle = strata_core::sync::lock(&pool.idle);
                for list in idle.values_mut() {
                    list.retain(|i| i.since.elapsed() < pool.idle_timeout);
                }
                idle.retain(|_, l| !l.is_empty());
            }
        });
    }

    /// Sends `req`, on a pooled connection when one is idle. A pooled connection the
    /// engine had already closed (llama.cpp closes after every stream while announcing
    /// keep-alive) fails before any response byte: the request is then sent once more on
    /// a fresh connection, and `retried` is called.
    pub async fn send(
        self: &Arc<Pool>,
        req: &Request,
        retried: impl FnOnce(&Error),
    ) -> Result<Response, Error> {
        if let Some(conn) = self.checkout(&req.authority) {
            match self.exchange(conn, req).await {
                Err(e @ Error::Closed(_)) => retried(&e),
                r => return r,
            }
        }
        let conn = self.connect(&req.authority).await?;
        self.exchange(conn, req).await
    }

    /// Writes the request and reads the response head.
    async fn exchange(
        self: &Arc<Pool>,
        mut conn: TcpStream,
        req: &Request,
    ) -> Result<Response, Error> {
        conn.write_all(&req.bytes).await.map_err(Error::Closed)?;
        let mut buf = BytesMut::with_capacity(4 << 10);
        loop {
            let n = conn.read_buf(&mut buf).await.map_err(Error::Closed)?;
            if n == 0 {
                return Err(if buf.is_empty() {
                    Error::Closed(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the connection closed with no response",
                    ))
                } else {
                    Error::Malformed(
                        "the connection closed in the middle of the response head".into(),
                    )
                });
            }
            if let Some(head) = wire::parse_head(&mut buf, &req.method).map_err(Error::Malformed)? {
                let body = ResponseBody::new(
                    conn,
                    buf,
                    head.framing,
                    head.reusable,
                    self.clone(),
                    req.authority.clone(),
                );
                return Ok(Response {
                    status: head.status,
                    headers: head.headers,
                    body,
                });
            }
            if buf.capacity() == buf.len() {
                buf.reserve(4 << 10);
            }
        }
    }

    /// Opens a connection (names are resolved; port 80 when the URL gives none).
    async fn connect(&self, authority: &Authority) -> Result<TcpStream, Error> {
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = authority.port_u16().unwrap_or(80);
        let conn = tokio::time::timeout(self.connect_timeout, TcpStream::connect((host, port)))
            .await
            .map_err(|_| {
                Error::Connect(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "no connection within {}",
                        crate::limits::human(self.connect_timeout)
                    ),
                ))
            })?
            .map_err(Error::Connect)?;
        conn.set_nodelay(true).map_err(Error::Connect)?;
        Ok(conn)
    }

    /// The newest idle connection that is still open.
    fn checkout(&self, key: &Authority) -> Option<TcpStream> {
        let mut idle = strata_core::sync::lock(&self.idle);
        let list = idle.get_mut(key)?;
        while let Some(i) = list.pop() {
            if i.since.elapsed() >= self.idle_timeout {
                // The rest went idle earlier still.
                list.clear();
                return None;
            }
            if still_open(&i.conn) {
                return Some(i.conn);
            }
        }
        None
    }

    /// Keeps a connection whose response ended cleanly.
    fn checkin(&self, key: Authority, conn: TcpStream) {
        let mut idle = strata_core::sync::lock(&self.idle);
        let list = idle.entry(key).or_default();
        if list.len() < MAX_IDLE_PER_UPSTREAM {
            list.push(Idle {
                conn,
                since: Instant::now(),
            });
        }
    }
}

/// Whether an idle connection is still open: the engine closed it if it became readable
/// (end of stream, or bytes nobody asked for).
fn still_open(conn: &TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(conn.try_read(&mut b), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}
