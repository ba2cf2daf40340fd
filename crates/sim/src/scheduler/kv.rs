//! The paged KV cache: a pool of fixed-size blocks (16 tokens each, as vLLM's default).
//!
//! Only counts are kept; which physical block holds what does not change any signal.

/// Tokens per KV block.
pub const BLOCK_SIZE: u32 = 16;

/// Blocks needed to hold `tokens` tokens.
pub fn blocks_for(tokens: u32) -> u32 {
    tokens.div_ceil(BLOCK_SIZE)
}

/// A pool of KV blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockPool {
    total: u32,
    free: u32,
}

impl BlockPool {
    /// A pool of `total` free blocks.
    pub fn new(total: u32) -> BlockPool {
        BlockPool { total, free: total }
    }

    /// All blocks.
    pub fn total(&self) -> u32 {
        self.total
    }

    /// Free blocks.
    pub fn free(&self) -> u32 {
        self.free
    }

    /// Used blocks.
    pub fn used(&self) -> u32 {
        self.total - self.free
    }

    /// Used share, 0..1 (`vllm:kv_cache_usage_perc`).
    pub fn usage(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.used() as f64 / self.total as f64
        }
    }

    /// Takes `n` blocks when that many are free.
    pub fn try_allocate(&mut self, n: u32) -> bool {
        if n <= self.free {
            self.free -= n;
            true
        } else {
            false
        }
    }

    /// Gives `n` blocks back.
    pub fn release(&mut self, n: u32) {
        self.free = (self.free + n).min(self.total);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation_is_bounded_and_blocks_round_up() {
        assert_eq!(
            (blocks_for(0), blocks_for(1), blocks_for(16), blocks_for(17)),
            (0, 1, 1, 2)
        );
        let mut p = BlockPool::new(10);
        assert!(p.try_allocate(7));
        assert!(!p.try_allocate(4));
        assert_eq!((p.used(), p.free()), (7, 3));
        assert!((p.usage() - 0.7).abs() < 1e-9);
        p.release(7);
        assert_eq!(p.free(), 10);
    }
}
