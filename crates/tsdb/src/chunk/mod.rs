//! Gorilla-style compressed chunks: delta-of-delta timestamps and XOR'd float values, the
//! same scheme as Prometheus' XOR chunks (about 1–2 bytes per sample on scraped data). When a
//! chunk is closed ([`Chunk::seal`]) and its values are exact decimals, it is re-encoded as
//! integer mantissas bit-packed against their minimum (`packed`), which is several times
//! smaller for the ratios, counters and whole-number gauges engines and GPUs report.
//!
//! A chunk holds at most [`MAX_SAMPLES`] samples with strictly increasing timestamps. Encoding
//! is append-only; decoding is an iterator that stops (rather than panicking) on a truncated
//! or corrupt chunk.

mod bits;
mod packed;

use bits::{BitReader, BitWriter};

/// Samples per chunk before it is closed (Prometheus uses 120 too).
pub const MAX_SAMPLES: u16 = 120;

/// Bucket layout for timestamp delta-of-deltas: (prefix bits, prefix length, value bits).
const DOD_BUCKETS: [(u64, u32, u32); 3] = [(0b10, 2, 14), (0b110, 3, 17), (0b1110, 4, 20)];

/// An append-only chunk being written (a series' head) or a closed one.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// The Gorilla bit stream, or the packed one once sealed as `packed`.
    w: BitWriter,
    packed: bool,
    count: u16,
    min_t: i64,
    max_t: i64,
    t_delta: i64,
    v_bits: u64,
    leading: u8,
    trailing: u8,
}

impl Default for Chunk {
    fn default() -> Self {
        Chunk {
            w: BitWriter::default(),
            packed: false,
            count: 0,
            min_t: 0,
            max_t: 0,
            t_delta: 0,
            v_bits: 0,
            leading: 0xff,
            trailing: 0,
        }
    }
}

impl Chunk {
    /// Appends a sample. The caller guarantees `t` is greater than [`Chunk::max_t`] for a
    /// non-empty chunk (the store rejects out-of-order samples before they get here) and
    /// that the chunk is not sealed.
    pub fn push(&mut self, t: i64, v: f64) {
        debug_assert!(!self.packed, "push into a sealed chunk");
        let bits = v.to_bits();
        match self.count {
            0 => {
                self.w.write(t as u64, 64);
                self.w.write(bits, 64);
                self.min_t = t;
            }
            1 => {
                let delta = t.wrapping_sub(self.max_t);
                self.write_dod(delta);
                self.t_delta = delta;
                self.write_value(bits);
            }
            _ => {
                let delta = t.wrapping_sub(self.max_t);
                self.write_dod(delta.wrapping_sub(self.t_delta));
                self.t_delta = delta;
                self.write_value(bits);
            }
        }
        self.max_t = t;
        self.v_bits = bits;
        self.count += 1;
    }

    fn write_dod(&mut self, dod: i64) {
        if dod == 0 {
            self.w.bit(false);
            return;
        }
        for (prefix, plen, nbits) in DOD_BUCKETS {
            let half = 1i64 << (nbits - 1);
            if (-half + 1..=half).contains(&dod) {
                self.w.write(prefix, plen);
                self.w.write((dod as u64) & ((1u64 << nbits) - 1), nbits);
                return;
            }
        }
        self.w.write(0b1111, 4);
        self.w.write(dod as u64, 64);
    }

    fn write_value(&mut self, bits: u64) {
        let xor = bits ^ self.v_bits;
        if xor == 0 {
            self.w.bit(false);
            return;
        }
        self.w.bit(true);
        let leading = (xor.leading_zeros() as u8).min(31);
        let trailing = xor.trailing_zeros() as u8;
        if self.leading != 0xff && leading >= self.leading && trailing >= self.trailing {
            self.w.bit(false);
            let sig = 64 - u32::from(self.leading) - u32::from(self.trailing);
            self.w.write(xor >> self.trailing, sig);
            return;
        }
        self.leading = leading;
        self.trailing = trailing;
        self.w.bit(true);
        self.w.write(u64::from(leading), 5);
        let sig = 64 - u32::from(leading) - u32::from(trailing);
        // 64 significant bits do not fit in 6 bits; 0 stands for 64 (as in Prometheus).
        self.w.write(u64::from(sig) & 0x3f, 6);
        self.w.write(xor >> trailing, sig);
    }

    /// Number of samples in the chunk.
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    /// True before the first sample.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// True once the chunk holds [`MAX_SAMPLES`] samples and should be closed.
    pub fn is_full(&self) -> bool {
        self.count >= MAX_SAMPLES
    }

    /// Timestamp of the first sample (meaningless for an empty chunk).
    pub fn min_t(&self) -> i64 {
        self.min_t
    }

    /// Timestamp of the last sample (meaningless for an empty chunk).
    pub fn max_t(&self) -> i64 {
        self.max_t
    }

    /// The last sample, without decoding (the encoder keeps its value); `None` when empty.
    pub fn last(&self) -> Option<(i64, f64)> {
        (!self.is_empty()).then(|| (self.max_t, f64::from_bits(self.v_bits)))
    }

    /// True once [`Chunk::seal`] packed it: it takes no more samples.
    pub fn is_packed(&self) -> bool {
        self.packed
    }

    /// Encoded size in bytes (what retention by bytes counts).
    pub fn bytes(&self) -> usize {
        self.w.bytes.len()
    }

    /// Closes the chunk: re-encodes it packed when its values are exact decimals and that
    /// is smaller, and releases spare capacity. Appending afterwards is not allowed.
    pub fn seal(&mut self) {
        if !self.packed && self.count > 0 {
            let samples: Vec<(i64, f64)> = self.iter().collect();
            if let Some(w) = packed::encode(&samples).filter(|w| w.bytes.len() < self.bytes()) {
                self.w = w;
                self.packed = true;
            }
        }
        self.w.bytes.shrink_to_fit();
    }

    /// The encoded form: sample count, bit length and bytes (what snapshots store). A sealed,
    /// packed chunk reports a bit length of 0, which no Gorilla chunk with samples has (its
    /// first sample alone is 128 bits): readers tell the two forms apart by it, and a reader
    /// that knows only Gorilla rejects a packed chunk instead of misreading it.
    pub fn encoded(&self) -> (u16, usize, &[u8]) {
        let bits = if self.packed { 0 } else { self.w.len };
        (self.count, bits, &self.w.bytes)
    }

    /// Rebuilds a chunk from its encoded form by decoding it and checking every timestamp
    /// (Gorilla chunks are re-encoded), so a corrupt input can never produce a chunk whose
    /// iterator disagrees with its header. Full chunks come back sealed.
    pub fn from_encoded(count: u16, bit_len: usize, bytes: &[u8]) -> Option<Chunk> {
        if bit_len == 0 && count > 0 {
            let samples = packed::decode(bytes, usize::from(count))?;
            let ordered = samples.windows(2).all(|p| p[0].0 < p[1].0);
            let (&(min_t, _), &(max_t, last_v)) = (samples.first()?, samples.last()?);
            return ordered.then(|| Chunk {
                w: BitWriter {
                    bytes: bytes.to_vec(),
                    len: bytes.len() * 8,
                },
                packed: true,
                count,
                min_t,
                max_t,
                // What `last` reads without decoding.
                v_bits: last_v.to_bits(),
                ..Chunk::default()
            });
        }
        let mut chunk = Chunk::default();
        for (t, v) in GorillaIter::new(bytes, bit_len, count) {
            if !chunk.is_empty() && t <= chunk.max_t {
                return None;
            }
            chunk.push(t, v);
        }
        if chunk.count != count {
            return None;
        }
        if chunk.is_full() {
            chunk.seal();
        }
        Some(chunk)
    }

    /// Iterates the samples in time order.
    pub fn iter(&self) -> Iter<'_> {
        if self.packed {
            // Checked when sealed or loaded: decoding cannot fail here; if it did, the
            // chunk reads as empty rather than wrong.
            let samples =
                packed::decode(&self.w.bytes, usize::from(self.count)).unwrap_or_default();
            Iter::Packed(samples.into_iter())
        } else {
            Iter::Gorilla(GorillaIter::new(&self.w.bytes, self.w.len, self.count))
        }
    }

    /// Appends the samples with `mint <= t <= maxt` to `out`, in time order; a packed
    /// chunk decodes straight into it (a range read's bulk path, no iterator).
    pub fn read_into(&self, mint: i64, maxt: i64, out: &mut Vec<(i64, f64)>) {
        if self.is_empty() || self.max_t < mint || self.min_t > maxt {
            return;
        }
        if !self.packed {
            out.extend(self.iter().filter(|(t, _)| *t >= mint && *t <= maxt));
            return;
        }
        let base = out.len();
        // Checked when sealed or loaded, as in `iter`: a failure reads as no samples.
        if packed::decode_into(&self.w.bytes, self.len(), out).is_none() || base == out.len() {
            return;
        }
        if self.min_t < mint || self.max_t > maxt {
            let read = out.get(base..).unwrap_or_default();
            let (a, b) = (
                read.partition_point(|p| p.0 < mint),
                read.partition_point(|p| p.0 <= maxt),
            );
            out.truncate(base + b);
            out.drain(base..base + a);
        }
    }
}

/// Decoding iterator over a chunk's `(timestamp ms, value)` samples.
pub enum Iter<'a> {
    /// An open chunk or a closed one that did not pack: decoded as it goes.
    Gorilla(GorillaIter<'a>),
    /// A packed chunk, decoded at once.
    Packed(std::vec::IntoIter<(i64, f64)>),
}

impl Iterator for Iter<'_> {
    type Item = (i64, f64);

    fn next(&mut self) -> Option<(i64, f64)> {
        match self {
            Iter::Gorilla(g) => g.next(),
            Iter::Packed(p) => p.next(),
        }
    }
}

/// Streaming decoder of a Gorilla chunk.
pub struct GorillaIter<'a> {
    r: BitReader<'a>,
    left: u16,
    n: u16,
    t: i64,
    t_delta: i64,
    v_bits: u64,
    leading: u32,
    trailing: u32,
}

impl<'a> GorillaIter<'a> {
    /// Decodes `count` samples from the first `bit_len` bits of `bytes`.
    fn new(bytes: &'a [u8], bit_len: usize, count: u16) -> GorillaIter<'a> {
        GorillaIter {
            r: BitReader::new(bytes, bit_len),
            left: count,
            n: 0,
            t: 0,
            t_delta: 0,
            v_bits: 0,
            leading: 0,
            trailing: 0,
        }
    }

    fn read_dod(&mut self) -> Option<i64> {
        // Prefixes: 0, 10, 110, 1110 select the buckets; 1111 a full 64-bit value.
        if !self.r.bit()? {
            return Some(0);
        }
        for (_, _, nbits) in DOD_BUCKETS {
            if !self.r.bit()? {
                let shift = 64 - nbits;
                return Some(((self.r.read(nbits)? << shift) as i64) >> shift);
            }
        }
        Some(self.r.read(64)? as i64)
    }

    fn read_value(&mut self) -> Option<u64> {
        if !self.r.bit()? {
            return Some(self.v_bits);
        }
        if self.r.bit()? {
            self.leading = self.r.read(5)? as u32;
            let mut sig = self.r.read(6)? as u32;
            if sig == 0 {
                sig = 64;
            }
            self.trailing = 64u32.checked_sub(self.leading + sig)?;
        }
        let sig = 64 - self.leading - self.trailing;
        let xor = self.r.read(sig)? << self.trailing;
        Some(self.v_bits ^ xor)
    }
}

impl Iterator for GorillaIter<'_> {
    type Item = (i64, f64);

    fn next(&mut self) -> Option<(i64, f64)> {
        if self.left == 0 {
            return None;
        }
        match self.n {
            0 => {
                self.t = self.r.read(64)? as i64;
                self.v_bits = self.r.read(64)?;
            }
            _ => {
                let dod = self.read_dod()?;
                self.t_delta = if self.n == 1 {
                    dod
                } else {
                    self.t_delta.wrapping_add(dod)
                };
                self.t = self.t.wrapping_add(self.t_delta);
                self.v_bits = self.read_value()?;
            }
        }
        self.n += 1;
        self.left -= 1;
        Some((self.t, f64::from_bits(self.v_bits)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn same(a: f64, b: f64) -> bool {
        a.to_bits() == b.to_bits()
    }

    fn round_trip(samples: &[(i64, f64)]) {
        let mut c = Chunk::default();
        for &(t, v) in samples {
            c.push(t, v);
        }
        let back: Vec<_> = c.iter().collect();
        assert_eq!(back.len(), samples.len());
        for (a, b) in back.iter().zip(samples) {
            assert_eq!(a.0, b.0);
            assert!(same(a.1, b.1), "{} vs {}", a.1, b.1);
        }
        let last = |c: &Chunk| c.last().map(|(t, v)| (t, v.to_bits()));
        let decoded_last = back.last().map(|(t, v)| (*t, v.to_bits()));
        assert_eq!(last(&c), decoded_last, "last() without decoding");
        let (n, bits, bytes) = c.encoded();
        let rebuilt = Chunk::from_encoded(n, bits, bytes).expect("re-decodes");
        assert_eq!(rebuilt.iter().count(), samples.len());
        assert_eq!(last(&rebuilt), decoded_last, "last() of a restored chunk");
        // Sealed (packed where the values allow) and restored from its encoded form: the
        // same samples and the same last one.
        let mut sealed = c.clone();
        sealed.seal();
        let (n, bits, bytes) = sealed.encoded();
        let restored = Chunk::from_encoded(n, bits, bytes).expect("sealed re-decodes");
        for chunk in [&sealed, &restored] {
            let again: Vec<_> = chunk.iter().map(|(t, v)| (t, v.to_bits())).collect();
            let want: Vec<_> = back.iter().map(|(t, v)| (*t, v.to_bits())).collect();
            assert_eq!(again, want);
            assert_eq!(last(chunk), decoded_last, "last() of a sealed chunk");
        }
        // Range reads append exactly the samples inside the bounds, after what `out` held.
        let ts: Vec<i64> = samples.iter().map(|s| s.0).collect();
        let at = |k: usize| {
            ts.get(k.min(ts.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0)
        };
        let n = ts.len();
        for (mint, maxt) in [
            (i64::MIN, i64::MAX),
            (at(0), at(n)),
            (at(n / 2), at(n / 2)),
            (at(0).saturating_add(1), at(n).saturating_sub(1)),
            (at(n / 3), at(2 * n / 3)),
            (at(n).saturating_add(1), i64::MAX),
        ] {
            for chunk in [&c, &sealed, &restored] {
                let mut out = vec![(7, 7.0)];
                chunk.read_into(mint, maxt, &mut out);
                let got: Vec<_> = out.iter().map(|(t, v)| (*t, v.to_bits())).collect();
                let want: Vec<_> = std::iter::once((7, 7.0f64.to_bits()))
                    .chain(
                        back.iter()
                            .filter(|(t, _)| (mint..=maxt).contains(t))
                            .map(|(t, v)| (*t, v.to_bits())),
                    )
                    .collect();
                assert_eq!(got, want, "read_into({mint}, {maxt})");
            }
        }
    }

    #[test]
    fn decimal_chunks_seal_packed_and_restore_with_their_last_sample() {
        let samples: Vec<(i64, f64)> = (0..120)
            .map(|i| (i * 5000, (i % 7 + 1) as f64 / 4.0))
            .collect();
        round_trip(&samples);
        let mut c = Chunk::default();
        samples.iter().for_each(|(t, v)| c.push(*t, *v));
        let gorilla = c.bytes();
        c.seal();
        assert_eq!(c.encoded().1, 0, "packed chunks are marked by bit length 0");
        assert!(c.bytes() < gorilla, "{} vs {gorilla}", c.bytes());
    }

    #[test]
    fn special_values_round_trip() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        round_trip(&[
            (-5_000, f64::NAN),
            (0, stale),
            (1, f64::INFINITY),
            (i64::MAX / 2, f64::NEG_INFINITY),
            (i64::MAX / 2 + 1, -0.0),
            (i64::MAX - 1, f64::MIN_POSITIVE),
        ]);
    }

    #[test]
    fn regular_scrapes_compress_well() {
        let mut c = Chunk::default();
        for i in 0..120 {
            c.push(1_700_000_000_000 + i * 5000, (i / 10) as f64);
        }
        assert!(
            c.bytes() < 80,
            "{} bytes for 120 regular samples",
            c.bytes()
        );
    }

    #[test]
    fn corrupt_encoding_is_rejected_not_panicking() {
        let mut c = Chunk::default();
        for i in 0..50 {
            c.push(i * 1000, i as f64 * 1.5);
        }
        let (n, bits, bytes) = c.encoded();
        assert!(Chunk::from_encoded(n, bits / 2, bytes).is_none());
        assert!(Chunk::from_encoded(n + 5, bits, bytes).is_none());
    }

    proptest! {
        #[test]
        fn arbitrary_samples_round_trip(
            start in any::<i64>().prop_map(|t| t / 4),
            steps in prop::collection::vec((1i64..i64::MAX / 1024, any::<u64>()), 1..120),
        ) {
            let mut t = start;
            let mut samples = vec![];
            for (dt, bits) in steps {
                samples.push((t, f64::from_bits(bits)));
                t = match t.checked_add(dt) { Some(n) => n, None => break };
            }
            round_trip(&samples);
        }
    }
}
