//! Checksummed records, shared by the write-ahead log and snapshots:
//! `[u32 LE payload length][u32 LE CRC32 of length and payload][payload]`, plus the compact
//! field encoding inside payloads (LEB128 varints, length-prefixed strings).
//! The varints are a dozen lines, written here rather than pulling in a crate.

/// Bytes of framing before each payload.
pub(crate) const HEADER: usize = 8;

/// Largest payload accepted when reading; a longer length field is treated as corruption.
const MAX_PAYLOAD: usize = 1 << 30;

fn checksum(len: [u8; 4], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len);
    h.update(payload);
    h.finalize()
}

/// Appends one framed record holding `payload`.
pub(crate) fn frame(out: &mut Vec<u8>, payload: &[u8]) {
    let len = (payload.len() as u32).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&checksum(len, payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// The record starting at `at`: `Ok(None)` at the end of `buf`, `Ok(Some((payload, next)))`
/// for a record that verifies, `Err(why)` for a torn or corrupt one.
pub(crate) fn read_at(buf: &[u8], at: usize) -> Result<Option<(&[u8], usize)>, &'static str> {
    let rest = &buf[at.min(buf.len())..];
    if rest.is_empty() {
        return Ok(None);
    }
    if rest.len() < HEADER {
        return Err("torn record header");
    }
    let len: [u8; 4] = [rest[0], rest[1], rest[2], rest[3]];
    let sum = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
    let n = u32::from_le_bytes(len) as usize;
    if n > MAX_PAYLOAD {
        return Err("record length out of range");
    }
    let Some(payload) = rest.get(HEADER..HEADER + n) else {
        return Err("torn record (file ends inside it)");
    };
    if checksum(len, payload) != sum {
        return Err("record checksum mismatch");
    }
    Ok(Some((payload, at + HEADER + n)))
}

/// The first offset after `from` where a record that verifies starts (to skip a corrupt one
/// whose length field cannot be trusted).
pub(crate) fn resync(buf: &[u8], from: usize) -> Option<usize> {
    (from + 1..buf.len()).find(|at| matches!(read_at(buf, *at), Ok(Some(_))))
}

/// Builds a payload.
#[derive(Default)]
pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    pub(crate) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }

    pub(crate) fn uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    /// Zig-zag varint: small magnitudes of either sign stay short.
    pub(crate) fn varint(&mut self, v: i64) {
        self.uvarint(((v << 1) ^ (v >> 63)) as u64);
    }

    pub(crate) fn f64(&mut self, v: f64) {
        self.0.extend_from_slice(&v.to_bits().to_le_bytes());
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.uvarint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    pub(crate) fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
}

/// Reads a payload; every method fails with a reason instead of panicking on short input.
pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.0.len() {
            return Err("truncated field".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn uvarint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }

    pub(crate) fn varint(&mut self) -> Result<i64, String> {
        let u = self.uvarint()?;
        Ok((u >> 1) as i64 ^ -((u & 1) as i64))
    }

    /// A varint that must fit `usize` (counts, lengths).
    pub(crate) fn len(&mut self) -> Result<usize, String> {
        usize::try_from(self.uvarint()?).map_err(|_| "length out of range".to_string())
    }

    pub(crate) fn u32(&mut self) -> Result<u32, String> {
        u32::try_from(self.uvarint()?).map_err(|_| "id out of range".to_string())
    }

    pub(crate) fn f64(&mut self) -> Result<f64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_bits(u64::from_le_bytes(a)))
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.len()?;
        self.take(n)
    }

    pub(crate) fn str(&mut self) -> Result<String, String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| "string is not UTF-8".into())
    }

    /// Label pairs written by [`Writer::labels`].
    pub(crate) fn labels(&mut self) -> Result<Vec<(String, String)>, String> {
        let n = self.len()?;
        let mut pairs = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            pairs.push((self.str()?, self.str()?));
        }
        Ok(pairs)
    }
}

impl Writer {
    /// A label set: count, then name and value of each pair.
    pub(crate) fn labels(&mut self, labels: &crate::labels::Labels) {
        self.uvarint(labels.len() as u64);
        for (n, v) in labels.iter() {
            self.str(n);
            self.str(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_records_detect_damage() {
        let mut w = Writer::default();
        for v in [0i64, -1, 1, 63, -64, i64::MAX, i64::MIN, 1_700_000_000_000] {
            w.varint(v);
        }
        w.uvarint(u64::MAX);
        let mut buf = Vec::new();
        frame(&mut buf, &w.0);
        frame(&mut buf, b"second");
        let (p, next) = read_at(&buf, 0).expect("valid").expect("record");
        let mut r = Reader(p);
        for v in [0i64, -1, 1, 63, -64, i64::MAX, i64::MIN, 1_700_000_000_000] {
            assert_eq!(r.varint(), Ok(v));
        }
        assert_eq!(r.uvarint(), Ok(u64::MAX));
        assert!(r.u8().is_err());
        let mut bad = buf.clone();
        bad[2] ^= 0x01; // the first record's length field
        assert!(read_at(&bad, 0).is_err());
        assert_eq!(resync(&bad, 0), Some(next));
        assert!(read_at(&buf[..buf.len() - 1], next).is_err());
    }
}
