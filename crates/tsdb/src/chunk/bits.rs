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
