//! Bit-level writer and reader for the Gorilla chunk encoding.

/// Appends bits most-significant first into a byte vector.
#[derive(Debug, Clone, Default)]
pub(crate) struct BitWriter {
    pub(crate) bytes: Vec<u8>,
    /// Number of bits written.
    pub(crate) len: usize,
}

impl BitWriter {
    /// Writes the low `n` bits of `value` (n ≤ 64), most significant first.
    pub(crate) fn write(&mut self, value: u64, n: u32) {
        let mut remaining = n;
        while remaining > 0 {
            let used = (self.len % 8) as u32;
            if used == 0 {
                self.bytes.push(0);
            }
            let free = 8 - used;
            let take = free.min(remaining);
            let shift = remaining - take;
            let chunk = ((value >> shift) & ((1u64 << take) - 1)) as u8;
            if let Some(last) = self.bytes.last_mut() {
                *last |= chunk << (free - take);
            }
            self.len += take as usize;
            remaining -= take;
        }
    }

    /// Writes one bit.
    pub(crate) fn bit(&mut self, on: bool) {
        self.write(u64::from(on), 1);
    }
}

/// Reads bits written by [`BitWriter`]; every read is bounds-checked so a corrupt chunk
/// ends iteration instead of panicking.
pub(crate) struct BitReader<'a> {
    bytes: &'a [u8],
    pos: usize,
    len: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(bytes: &'a [u8], len: usize) -> BitReader<'a> {
        BitReader {
            bytes,
            pos: 0,
            len: len.min(bytes.len() * 8),
        }
    }

    /// Reads `n` bits (n ≤ 64) or `None` past the end.
    pub(crate) fn read(&mut self, n: u32) -> Option<u64> {
        if self.pos + n as usize > self.len {
            return None;
        }
        // Fast path: the bits lie within one 8-byte big-endian load.
        let used = (self.pos % 8) as u32;
        if n > 0
            && n + used <= 64
            && let Some(word) = self.bytes.get(self.pos / 8..self.pos / 8 + 8)
        {
            let mut be = [0u8; 8];
            be.copy_from_slice(word);
            self.pos += n as usize;
            return Some((u64::from_be_bytes(be) << used) >> (64 - n));
        }
        let mut out = 0u64;
        let mut remaining = n;
        while remaining > 0 {
            let byte = self.bytes[self.pos / 8];
            let used = (self.pos % 8) as u32;
            let avail = 8 - used;
            let take = avail.min(remaining);
            let bits = (u64::from(byte) >> (avail - take)) & ((1u64 << take) - 1);
            out = if take == 64 {
                bits
            } else {
                (out << take) | bits
            };
            self.pos += take as usize;
            remaining -= take;
        }
        Some(out)
    }

    pub(crate) fn bit(&mut self) -> Option<bool> {
        self.read(1).map(|b| b == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any sequence of writes reads back the same, near the end of the buffer (the
        /// byte-at-a-time path) as well as inside it (the 8-byte load).
        #[test]
        fn reads_return_what_was_written(fields in proptest::collection::vec((any::<u64>(), 0u32..=64), 0..200)) {
            let mut w = BitWriter::default();
            for &(v, n) in &fields {
                w.write(if n == 64 { v } else { v & ((1u64 << n) - 1) }, n);
            }
            let mut r = BitReader::new(&w.bytes, w.len);
            for &(v, n) in &fields {
                let want = if n == 64 { v } else { v & ((1u64 << n) - 1) };
                prop_assert_eq!(r.read(n), Some(want));
            }
            prop_assert_eq!(r.read(1), None);
        }
    }
}
