//! HTTP/1.1 on the upstream connection: the request written as one buffer, the response
//! head parsed with `httparse` (hyper's own parser) and its body framing decided by
//! RFC 9112 §6.

use bytes::{Buf, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};

/// Largest response head accepted (hyper's default read buffer limit is larger, but engines
/// send a few hundred bytes).
pub(crate) const MAX_HEAD: usize = 64 << 10;

/// Most response headers accepted.
const MAX_HEADERS: usize = 128;

/// The request's bytes: head and body in one buffer, so it is sent with one write and can
/// be sent again unchanged when a pooled connection turns out closed.
pub(crate) fn encode_request(
    method: &Method,
    path_and_query: &str,
    authority: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Vec<u8> {
    let mut w = Vec::with_capacity(256 + body.len() + 32 * headers.len());
    w.extend_from_slice(method.as_str().as_bytes());
    w.push(b' ');
    w.extend_from_slice(path_and_query.as_bytes());
    w.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    w.extend_from_slice(authority.as_bytes());
    w.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        if name == header::HOST || name == header::CONTENT_LENGTH {
            continue;
        }
        w.extend_from_slice(name.as_str().as_bytes());
        w.extend_from_slice(b": ");
        w.extend_from_slice(value.as_bytes());
        w.extend_from_slice(b"\r\n");
    }
    let bodiless = matches!(*method, Method::GET | Method::HEAD | Method::DELETE)
        || *method == Method::OPTIONS;
    if !body.is_empty() || !bodiless {
        w.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    w.extend_from_slice(b"\r\n");
    w.extend_from_slice(body);
    w
}

/// How the response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body (`HEAD`, `204`, `304`).
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the upstream closes the connection.
    Close,
}

/// A parsed response head.
#[derive(Debug)]
pub(crate) struct Head {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub framing: Framing,
    /// Whether the connection can carry another request after this response's body.
    pub reusable: bool,
}

/// Parses a response head at the start of `buf` and takes it off; `Ok(None)` while the
/// head is incomplete. Interim `1xx` responses are skipped.
pub(crate) fn parse_head(buf: &mut BytesMut, method: &Method) -> Result<Option<Head>, String> {
    loop {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut slots);
        let len = match resp.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
                return Err(format!(
                    "the response head is larger than {} KiB",
                    MAX_HEAD >> 10
                ));
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(format!("malformed response head: {e}")),
        };
        let code = resp.code.unwrap_or_default();
        let status = StatusCode::from_u16(code)
            .map_err(|_| format!("malformed response head: status {code}"))?;
        let version = if resp.version == Some(0) {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        };
        let mut headers = HeaderMap::with_capacity(resp.headers.len());
        for h in resp.headers.iter() {
            let name = HeaderName::from_bytes(h.name.as_bytes())
                .map_err(|_| format!("malformed response header name {:?}", h.name))?;
            let value = HeaderValue::from_bytes(h.value)
                .map_err(|_| format!("malformed value of response header {:?}", h.name))?;
            headers.append(name, value);
        }
        buf.advance(len);
        if status.is_informational() {
            if status == StatusCode::SWITCHING_PROTOCOLS {
                return Err(
                    "the upstream switched protocols, which the gateway does not forward".into(),
                );
            }
            continue;
        }
        let framing = framing(method, status, &headers)?;
        let close = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("close"));
        let reusable = version == Version::HTTP_11 && !close && framing != Framing::Close;
        return Ok(Some(Head {
            status,
            headers,
            framing,
            reusable,
        }));
    }
}

/// The body's framing (RFC 9112 §6.3).
fn framing(method: &Method, status: StatusCode, headers: &HeaderMap) -> Result<Framing, String> {
    if *method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(Framing::Empty);
    }
    let codings: Vec<&str> = headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    if let Some(last) = codings.last() {
        return Ok(if last.eq_ignore_ascii_case("chunked") {
            Framing::Chunked
        } else {
            Framing::Close
        });
    }
    let mut length = None;
    for v in headers.get_all(header::CONTENT_LENGTH) {
        for part in v.to_str().unwrap_or_default().split(',') {
            let n: u64 = part
                .trim()
                .parse()
                .map_err(|_| format!("malformed Content-Length {v:?}"))?;
            if length.is_some_and(|l| l != n) {
                return Err("two different Content-Length values".into());
            }
            length = Some(n);
        }
    }
    Ok(length.map_or(Framing::Close, Framing::Length))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(wire: &str, method: Method) -> Result<Option<Head>, String> {
        let mut buf = BytesMut::from(wire.as_bytes());
        parse_head(&mut buf, &method)
    }

    #[test]
    fn writes_a_request_with_host_and_length() {
        let mut h = HeaderMap::new();
        h.insert("x-request-id", HeaderValue::from_static("abc"));
        h.insert(header::HOST, HeaderValue::from_static("client.example"));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("999"));
        let w = encode_request(&Method::POST, "/v1/chat?x=1", "127.0.0.1:8000", &h, b"{}");
        assert_eq!(
            String::from_utf8(w).unwrap(),
            "POST /v1/chat?x=1 HTTP/1.1\r\nhost: 127.0.0.1:8000\r\nx-request-id: abc\r\ncontent-length: 2\r\n\r\n{}"
        );
        let w = encode_request(&Method::GET, "/v1/models", "e:80", &HeaderMap::new(), b"");
        assert_eq!(
            String::from_utf8(w).unwrap(),
            "GET /v1/models HTTP/1.1\r\nhost: e:80\r\n\r\n"
        );
    }

    #[test]
    fn decides_framing_and_reuse() {
        let cases = [
            (
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
                Method::POST,
                Framing::Chunked,
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\n",
                Method::POST,
                Framing::Length(12),
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\n",
                Method::HEAD,
                Framing::Empty,
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\nconnection: keep-alive, close\r\ncontent-length: 1\r\n\r\n",
                Method::GET,
                Framing::Length(1),
                false,
            ),
            (
                "HTTP/1.0 200 OK\r\n\r\n",
                Method::GET,
                Framing::Close,
                false,
            ),
            (
                "HTTP/1.1 204 No Content\r\n\r\n",
                Method::POST,
                Framing::Empty,
                true,
            ),
            // Chunked wins over a length.
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n",
                Method::POST,
                Framing::Chunked,
                true,
            ),
        ];
        for (wire, method, framing, reusable) in cases {
            let h = parse(wire, method).unwrap().unwrap();
            assert_eq!((h.framing, h.reusable), (framing, reusable), "{wire:?}");
        }
    }

    #[test]
    fn skips_interim_responses_and_keeps_what_follows() {
        let mut buf = BytesMut::from(
            &b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"[..],
        );
        let h = parse_head(&mut buf, &Method::POST).unwrap().unwrap();
        assert_eq!(h.status, StatusCode::OK);
        assert_eq!(&buf[..], b"ok");
    }

    #[test]
    fn incomplete_waits_and_garbage_is_an_error() {
        assert!(
            parse("HTTP/1.1 200 OK\r\ncontent-le", Method::GET)
                .unwrap()
                .is_none()
        );
        assert!(parse("SSH-2.0-OpenSSH\r\n\r\n", Method::GET).is_err());
        assert!(parse("HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n", Method::GET).is_err());
        assert!(
            parse(
                "HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
                Method::GET
            )
            .is_err()
        );
        let huge = format!("HTTP/1.1 200 OK\r\nx: {}", "a".repeat(MAX_HEAD + 1));
        assert!(parse(&huge, Method::GET).is_err());
    }
}
