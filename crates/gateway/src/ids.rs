//! Request and trace identity: `x-request-id` (kept if sent, generated if not) and the W3C
//! `traceparent` (continued if valid, started if not).

use std::collections::hash_map::RandomState;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use http::HeaderMap;

/// A 16-byte trace id.
pub type TraceId = [u8; 16];
/// An 8-byte span id.
pub type SpanId = [u8; 8];

/// Random ids: SplitMix64 over a counter, keyed by the process' random hash seed.
pub struct IdGen {
    key: u64,
    counter: AtomicU64,
}

impl Default for IdGen {
    fn default() -> Self {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(std::process::id() as u64);
        IdGen {
            key: h.finish(),
            counter: AtomicU64::new(0),
        }
    }
}

impl IdGen {
    /// The next random 64 bits.
    pub fn next_u64(&self) -> u64 {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut z = self.key ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A non-zero trace id.
    pub fn trace_id(&self) -> TraceId {
        let mut t = [0u8; 16];
        t[..8].copy_from_slice(&self.next_u64().to_be_bytes());
        t[8..].copy_from_slice(&(self.next_u64() | 1).to_be_bytes());
        t
    }

    /// A non-zero span id.
    pub fn span_id(&self) -> SpanId {
        (self.next_u64() | 1).to_be_bytes()
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != N * 2 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[i * 2..i * 2 + 2], 16).ok()?;
    }
    Some(out)
}

/// A parsed `traceparent`: trace id, parent span id and flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parent {
    /// The trace.
    pub trace_id: TraceId,
    /// The caller's span.
    pub span_id: SpanId,
    /// Trace flags (bit 0: sampled by the caller).
    pub flags: u8,
}

/// Parses a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`; future versions are read
/// by their first four fields, as the spec asks). All-zero ids and version `ff` are refused.
pub fn parse_traceparent(v: &str) -> Option<Parent> {
    let v = v.trim();
    let mut parts = v.split('-');
    let version = parts.next()?;
    let trace = parts.next()?;
    let span = parts.next()?;
    let flags = parts.next()?;
    let version: [u8; 1] = unhex(version)?;
    if version[0] == 0xff || (version[0] == 0 && parts.next().is_some()) {
        return None;
    }
    let flags = flags.get(..2)?;
    let trace_id: TraceId = unhex(trace)?;
    let span_id: SpanId = unhex(span)?;
    let flags: [u8; 1] = unhex(flags)?;
    if trace_id == [0; 16] || span_id == [0; 8] {
        return None;
    }
    Some(Parent {
        trace_id,
        span_id,
        flags: flags[0],
    })
}

/// A `traceparent` value (version 00).
pub fn traceparent(trace_id: &TraceId, span_id: &SpanId, flags: u8) -> String {
    format!("00-{}-{}-{flags:02x}", hex(trace_id), hex(span_id))
}

/// The client's `x-request-id` when it is usable (1..=128 visible ASCII characters), else
/// a fresh 32-hex-digit id. The flag says whether it was generated.
pub fn request_id(headers: &HeaderMap, ids: &IdGen) -> (String, bool) {
    if let Some(v) = headers.get("x-request-id")
        && let Ok(s) = v.to_str()
        && !s.is_empty()
        && s.len() <= 128
        && s.bytes().all(|b| b.is_ascii_graphic())
    {
        return (s.to_string(), false);
    }
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&ids.next_u64().to_be_bytes());
    id[8..].copy_from_slice(&ids.next_u64().to_be_bytes());
    (hex(&id), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_and_refuses_bad_input() {
        let p = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .expect("valid");
        assert_eq!(hex(&p.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(p.flags, 1);
        assert_eq!(
            traceparent(&p.trace_id, &p.span_id, 1),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad}");
        }
        // A future version may carry more fields.
        assert!(
            parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x")
                .is_some()
        );
    }

    #[test]
    fn ids_are_distinct_and_request_ids_kept_when_sane() {
        let g = IdGen::default();
        let a = g.trace_id();
        let b = g.trace_id();
        assert_ne!(a, b);
        let mut h = HeaderMap::new();
        h.insert("x-request-id", "abc-123".parse().unwrap());
        assert_eq!(request_id(&h, &g), ("abc-123".to_string(), false));
        h.insert("x-request-id", "has space".parse().unwrap());
        let (id, generated) = request_id(&h, &g);
        assert!(generated && id.len() == 32);
    }
}
