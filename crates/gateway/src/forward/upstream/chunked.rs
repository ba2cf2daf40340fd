//! `Transfer-Encoding: chunked` framing of an upstream response, decoded in place: the data
//! of each chunk is split off the read buffer as a `Bytes` handle (no copy), the size lines,
//! extensions and trailers are dropped.

use bytes::{Buf, Bytes, BytesMut};

/// Longest size line or trailer line accepted (hyper's limit is similar): a longer one is
/// a broken upstream, not a reason to buffer without end.
const MAX_LINE: usize = 4096;

/// Where the decoder is in the chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chunked {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data, this many bytes left.
    Data(u64),
    /// After a chunk's data, expecting its CRLF.
    DataEnd,
    /// After the last (zero-size) chunk: trailer lines until an empty one.
    Trailers,
    /// The body ended.
    Done,
}

/// What one decoding step produced.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Body bytes.
    Data(Bytes),
    /// More input is needed.
    NeedMore,
    /// The body ended.
    End,
}

impl Chunked {
    /// Decodes from `buf` until it yields data, needs more input or ends. Data is only a
    /// prefix of `buf`, split off without copying.
    pub fn step(&mut self, buf: &mut BytesMut) -> Result<Step, String> {
        loop {
            match *self {
                Chunked::Done => return Ok(Step::End),
                Chunked::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Step::NeedMore);
                    }
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                    let left = left - n as u64;
                    *self = if left == 0 {
                        Chunked::DataEnd
                    } else {
                        Chunked::Data(left)
                    };
                    return Ok(Step::Data(buf.split_to(n).freeze()));
                }
                _ => {
                    if !self.frame(buf)? {
                        return Ok(Step::NeedMore);
                    }
                }
            }
        }
    }

    /// Advances over framing already in `buf` without taking data: a body whose last chunk
    /// arrived with the data before it is known to have ended at once.
    pub fn settle(&mut self, buf: &mut BytesMut) -> Result<(), String> {
        while matches!(self, Chunked::DataEnd | Chunked::Size | Chunked::Trailers) {
            if !self.frame(buf)? {
                break;
            }
        }
        Ok(())
    }

    /// One framing transition (a CRLF after data, a size line, a trailer line); `false`
    /// when `buf` does not hold it whole yet.
    fn frame(&mut self, buf: &mut BytesMut) -> Result<bool, String> {
        if *self == Chunked::DataEnd {
            if buf.len() < 2 {
                return Ok(false);
            }
            if &buf[..2] != b"\r\n" {
                return Err("a chunk's data is not followed by CRLF".into());
            }
            buf.advance(2);
            *self = Chunked::Size;
            return Ok(true);
        }
        let Some(line) = take_line(buf)? else {
            return Ok(false);
        };
        *self = match *self {
            Chunked::Trailers if line.is_empty() => Chunked::Done,
            Chunked::Trailers => Chunked::Trailers,
            _ => match chunk_size(&line)? {
                0 => Chunked::Trailers,
                n => Chunked::Data(n),
            },
        };
        Ok(true)
    }
}

/// Takes one CRLF- (or LF-) terminated line off `buf`, without its terminator.
fn take_line(buf: &mut BytesMut) -> Result<Option<BytesMut>, String> {
    match memchr::memchr(b'\n', buf) {
        Some(i) if i <= MAX_LINE => {
            let mut line = buf.split_to(i + 1);
            line.truncate(i);
            if line.last() == Some(&b'\r') {
                line.truncate(i - 1);
            }
            Ok(Some(line))
        }
        Some(_) => Err(format!("a chunk line is longer than {MAX_LINE} bytes")),
        None if buf.len() > MAX_LINE => {
            Err(format!("a chunk line is longer than {MAX_LINE} bytes"))
        }
        None => Ok(None),
    }
}

/// The size of a chunk-size line (`1a;ext=x` is 26).
fn chunk_size(line: &[u8]) -> Result<u64, String> {
    let digits = line
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    if digits.is_empty() || digits.len() > 15 {
        return Err(format!(
            "bad chunk size line {:?}",
            String::from_utf8_lossy(line)
        ));
    }
    let mut n = 0u64;
    for &d in digits {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => {
                return Err(format!(
                    "bad chunk size line {:?}",
                    String::from_utf8_lossy(line)
                ));
            }
        };
        n = n * 16 + u64::from(v);
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `wire` fed in pieces of `piece` bytes; the data and whether it ended.
    fn decode(wire: &[u8], piece: usize) -> Result<(Vec<u8>, bool), String> {
        let mut state = Chunked::Size;
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for part in wire.chunks(piece.max(1)) {
            buf.extend_from_slice(part);
            loop {
                match state.step(&mut buf)? {
                    Step::Data(d) => out.extend_from_slice(&d),
                    Step::NeedMore => break,
                    Step::End => return Ok((out, true)),
                }
            }
        }
        Ok((out, false))
    }

    /// Chunked encoding of `data` cut into `sizes` (cycled), with an extension and a
    /// trailer now and then.
    fn encode(data: &[u8], sizes: &[usize]) -> Vec<u8> {
        let mut w = Vec::new();
        let mut rest = data;
        let mut i = 0;
        while !rest.is_empty() {
            let n = sizes[i % sizes.len()].clamp(1, rest.len());
            if i % 3 == 1 {
                w.extend_from_slice(format!("{n:X};name=value\r\n").as_bytes());
            } else {
                w.extend_from_slice(format!("{n:x}\r\n").as_bytes());
            }
            w.extend_from_slice(&rest[..n]);
            w.extend_from_slice(b"\r\n");
            rest = &rest[n..];
            i += 1;
        }
        w.extend_from_slice(b"0\r\nx-trailer: 1\r\n\r\n");
        w
    }

    #[test]
    fn decodes_any_cut_of_the_wire_to_the_same_bytes() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        for sizes in [&[1usize][..], &[7, 300], &[4096], &[5000]] {
            let wire = encode(&data, sizes);
            for piece in [1, 2, 3, 17, 512, wire.len()] {
                let (out, ended) = decode(&wire, piece).unwrap();
                assert!(ended, "sizes {sizes:?} piece {piece}");
                assert_eq!(out, data, "sizes {sizes:?} piece {piece}");
            }
        }
    }

    #[test]
    fn settles_the_last_chunk_that_came_with_the_data() {
        let mut state = Chunked::Size;
        let mut buf = BytesMut::from(&b"5\r\nhello\r\n0\r\n\r\n"[..]);
        assert_eq!(
            state.step(&mut buf).unwrap(),
            Step::Data(Bytes::from_static(b"hello"))
        );
        state.settle(&mut buf).unwrap();
        assert_eq!(state, Chunked::Done);
        assert!(buf.is_empty());
        // Without the terminator it waits.
        let mut state = Chunked::Size;
        let mut buf = BytesMut::from(&b"5\r\nhello\r\n0\r"[..]);
        state.step(&mut buf).unwrap();
        state.settle(&mut buf).unwrap();
        assert_eq!(state, Chunked::Size);
    }

    #[test]
    fn broken_framing_is_an_error_not_a_hang() {
        assert!(decode(b"zz\r\nhello\r\n0\r\n\r\n", 64).is_err());
        assert!(decode(b"5\r\nhelloXX0\r\n\r\n", 64).is_err());
        assert!(decode(b"\r\n", 64).is_err());
        assert!(decode(b"fffffffffffffffff\r\n", 64).is_err());
        let long = vec![b'1'; MAX_LINE + 10];
        assert!(decode(&long, 64).is_err());
        // Truncated: no error, but not ended either (the reader reports the early close).
        assert_eq!(decode(b"5\r\nhel", 64).unwrap(), (b"hel".to_vec(), false));
    }
}
