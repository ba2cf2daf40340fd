//! The upstream response body, read from the upstream socket by whoever polls it: the
//! client connection's task, so a streamed token passes through one task and no channel.
//! Each read lands in one buffer sized to the stream; body bytes leave it as `Bytes`
//! handles. A body read to its end hands its connection back to the pool.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http::uri::Authority;
use tokio::net::TcpStream;

use super::Pool;
use super::chunked::{Chunked, Step};
use super::wire::Framing;

/// First read size of a body; doubled (up to `MAX_READ`) while reads fill it, so a large
/// non-streamed body is read in few calls and a token stream keeps a small buffer.
const FIRST_READ: usize = 4 << 10;
const MAX_READ: usize = 64 << 10;

/// How the rest of the body is delimited.
#[derive(Debug)]
enum Decoder {
    Length(u64),
    Chunked(Chunked),
    Close,
    Done,
    /// Broken framing found while settling: reported by the next read.
    Failed(String),
}

/// An upstream response body being read.
#[derive(Debug)]
pub struct ResponseBody {
    conn: Option<TcpStream>,
    buf: BytesMut,
    decoder: Decoder,
    read_size: usize,
    reusable: bool,
    pool: Arc<Pool>,
    key: Authority,
}

impl ResponseBody {
    pub(super) fn new(
        conn: TcpStream,
        buf: BytesMut,
        framing: Framing,
        reusable: bool,
        pool: Arc<Pool>,
        key: Authority,
    ) -> ResponseBody {
        let decoder = match framing {
            Framing::Empty | Framing::Length(0) => Decoder::Done,
            Framing::Length(n) => Decoder::Length(n),
            Framing::Chunked => Decoder::Chunked(Chunked::Size),
            Framing::Close => Decoder::Close,
        };
        let mut body = ResponseBody {
            conn: Some(conn),
            buf,
            decoder,
            read_size: FIRST_READ,
            reusable,
            pool,
            key,
        };
        body.settle();
        body
    }

    /// The next piece of the body: `None` at its end, an error when the upstream broke it
    /// (closed early, reset, sent broken framing).
    pub fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        loop {
            let step = match &mut self.decoder {
                Decoder::Done => return Poll::Ready(None),
                Decoder::Failed(why) => {
                    let why = std::mem::take(why);
                    return Poll::Ready(Some(Err(self.broken(io::ErrorKind::InvalidData, why))));
                }
                Decoder::Length(left) => {
                    if self.buf.is_empty() {
                        Step::NeedMore
                    } else {
                        let n = usize::try_from(*left)
                            .unwrap_or(usize::MAX)
                            .min(self.buf.len());
                        *left -= n as u64;
                        Step::Data(self.buf.split_to(n).freeze())
                    }
                }
                Decoder::Chunked(c) => match c.step(&mut self.buf) {
                    Ok(s) => s,
                    Err(e) => {
                        return Poll::Ready(Some(Err(self.broken(io::ErrorKind::InvalidData, e))));
                    }
                },
                Decoder::Close if self.buf.is_empty() => Step::NeedMore,
                Decoder::Close => Step::Data(self.buf.split().freeze()),
            };
            match step {
                Step::Data(d) => {
                    self.settle();
                    return Poll::Ready(Some(Ok(d)));
                }
                Step::End => {
                    self.settle();
                    return Poll::Ready(None);
                }
                Step::NeedMore => {}
            }
            if ready!(self.poll_fill(cx))? == 0 {
                return Poll::Ready(match self.decoder {
                    Decoder::Close => {
                        self.decoder = Decoder::Done;
                        self.conn = None;
                        None
                    }
                    Decoder::Length(left) => Some(Err(self.broken(
                        io::ErrorKind::UnexpectedEof,
                        format!("the connection closed {left} bytes before the end of the body"),
                    ))),
                    _ => Some(Err(self.broken(
                        io::ErrorKind::UnexpectedEof,
                        "the connection closed before the last chunk".into(),
                    ))),
                });
            }
        }
    }

    /// Whether the body has ended (the last byte was read).
    pub fn is_end(&self) -> bool {
        matches!(self.decoder, Decoder::Done)
    }

    /// Bytes left, when known.
    pub fn remaining(&self) -> Option<u64> {
        match self.decoder {
            Decoder::Length(n) => Some(n),
            Decoder::Done => Some(0),
            _ => None,
        }
    }

    /// Reads more of the socket into the buffer; `0` at the upstream's end of stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some(conn) = &mut self.conn else {
            return Poll::Ready(Ok(0));
        };
        if self.buf.capacity() - self.buf.len() < self.read_size / 4 {
            self.buf.reserve(self.read_size);
        }
        let room = self.buf.capacity() - self.buf.len();
        // tokio's read, not `try_read_buf`: a read shorter than the room offered marks the
        // socket drained, which saves a read that would only say "would block" per token.
        match ready!(tokio_util::io::poll_read_buf(
            Pin::new(conn),
            cx,
            &mut self.buf
        )) {
            Ok(n) => {
                if n == room && self.read_size < MAX_READ {
                    self.read_size *= 2;
                }
                Poll::Ready(Ok(n))
            }
            Err(e) => {
                self.decoder = Decoder::Done;
                self.conn = None;
                Poll::Ready(Err(e))
            }
        }
    }

    /// Takes framing that is already buffered (a chunked body's last chunk, a length
    /// reached) so the end is known with the last data; at the end, the connection goes
    /// back to the pool when it can carry another request.
    fn settle(&mut self) {
        match &mut self.decoder {
            Decoder::Length(0) => self.decoder = Decoder::Done,
            Decoder::Chunked(c) => {
                if let Err(why) = c.settle(&mut self.buf) {
                    self.decoder = Decoder::Failed(why);
                    return;
                }
                if *c == Chunked::Done {
                    self.decoder = Decoder::Done;
                }
            }
            _ => {}
        }
        if matches!(self.decoder, Decoder::Done)
            && let Some(conn) = self.conn.take()
            && self.reusable
            && self.buf.is_empty()
        {
            self.pool.checkin(self.key.clone(), conn);
        }
    }

    /// The body cannot go on: the connection is dropped.
    fn broken(&mut self, kind: io::ErrorKind, why: String) -> io::Error {
        self.decoder = Decoder::Done;
        self.conn = None;
        io::Error::new(kind, why)
    }
}
