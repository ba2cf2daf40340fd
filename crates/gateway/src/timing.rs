//! When things happened to one request: received, sent upstream, upstream response
//! headers, first token, every token (as ITL gaps and batches), last token, end.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Most token-batch marks kept per request (for span events); later batches fold into
/// the last one.
pub const MAX_BATCHES: usize = 64;

/// Most per-token offsets kept per request (for the recent-requests timeline); later
/// tokens are counted, not timed.
pub const MAX_TOKEN_OFFSETS: usize = 256;

/// A request's clock readings.
#[derive(Debug, Clone)]
pub struct Timing {
    /// Request headers read.
    pub received: Instant,
    /// The same moment as Unix nanoseconds.
    pub received_unix_ns: u64,
    /// Request sent upstream.
    pub upstream_sent: Option<Instant>,
    /// Upstream response headers.
    pub headers: Option<Instant>,
    /// First token forwarded.
    pub first_token: Option<Instant>,
    /// Last token forwarded.
    pub last_token: Option<Instant>,
    /// Response finished (or abandoned).
    pub end: Option<Instant>,
    /// Token batches: (time, token events in that upstream read).
    pub batches: Vec<(Instant, u32)>,
    /// Largest gap between two tokens.
    pub max_itl: Duration,
    /// Each token's arrival in microseconds since `received` (saturating), the first
    /// [`MAX_TOKEN_OFFSETS`] only.
    pub token_offsets_us: Vec<u32>,
}

/// What a batch of tokens means for the histograms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenObs {
    /// Set on the first token: time to first token.
    pub ttft: Option<Duration>,
    /// Gap since the previous token (the batch's first token); later tokens of the same
    /// read arrived together (gap 0).
    pub gap: Option<Duration>,
}

impl Timing {
    /// Starts the clock now.
    pub fn start() -> Timing {
        let received_unix_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Timing {
            received: Instant::now(),
            received_unix_ns,
            upstream_sent: None,
            headers: None,
            first_token: None,
            last_token: None,
            end: None,
            batches: Vec::new(),
            max_itl: Duration::ZERO,
            token_offsets_us: Vec::new(),
        }
    }

    /// `t` as Unix nanoseconds.
    pub fn unix_ns(&self, t: Instant) -> u64 {
        self.received_unix_ns + t.saturating_duration_since(self.received).as_nanos() as u64
    }

    /// Records `n` (> 0) token events read at `now`.
    pub fn tokens(&mut self, now: Instant, n: u64) -> TokenObs {
        let mut obs = TokenObs::default();
        match self.last_token {
            None => {
                self.first_token = Some(now);
                obs.ttft = Some(now - self.received);
            }
            Some(prev) => {
                let gap = now - prev;
                self.max_itl = self.max_itl.max(gap);
                obs.gap = Some(gap);
            }
        }
        self.last_token = Some(now);
        let room = MAX_TOKEN_OFFSETS.saturating_sub(self.token_offsets_us.len());
        if room > 0 {
            let us = (now - self.received).as_micros().min(u32::MAX as u128) as u32;
            let k = n.min(room as u64) as usize;
            self.token_offsets_us.extend(std::iter::repeat_n(us, k));
        }
        let n = n.min(u32::MAX as u64) as u32;
        if self.batches.len() < MAX_BATCHES {
            self.batches.push((now, n));
        } else if let Some(last) = self.batches.last_mut() {
            *last = (now, last.1.saturating_add(n));
        }
        obs
    }

    /// Time to first token.
    pub fn ttft(&self) -> Option<Duration> {
        self.first_token.map(|t| t - self.received)
    }

    /// Received to end.
    pub fn e2e(&self) -> Option<Duration> {
        self.end.map(|t| t - self.received)
    }

    /// Time per output token after the first: (last − first) / (tokens − 1).
    pub fn tpot(&self, tokens: u64) -> Option<Duration> {
        match (self.first_token, self.last_token) {
            // Counts come from the upstream: never trust them to fit a u32.
            (Some(f), Some(l)) if tokens > 1 => Some((l - f).div_f64((tokens - 1) as f64)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttft_gaps_and_tpot() {
        let mut t = Timing::start();
        let r = t.received;
        let o = t.tokens(r + Duration::from_millis(100), 1);
        assert_eq!(o.ttft, Some(Duration::from_millis(100)));
        let o = t.tokens(r + Duration::from_millis(130), 2);
        assert_eq!(o.gap, Some(Duration::from_millis(30)));
        assert_eq!(t.tpot(3), Some(Duration::from_millis(15)));
        assert!(
            t.tpot(u64::MAX).is_some(),
            "absurd upstream counts do not panic"
        );
        assert!(t.tpot((1 << 32) + 1).is_some());
        for k in 0..100 {
            t.tokens(r + Duration::from_millis(200 + k), 1);
        }
        assert_eq!(t.batches.len(), MAX_BATCHES);
        assert_eq!(
            &t.token_offsets_us[..4],
            &[100_000, 130_000, 130_000, 200_000]
        );
        assert_eq!(t.batches.iter().map(|b| b.1 as u64).sum::<u64>(), 103);
        t.tokens(r + Duration::from_secs(1), 1000);
        assert_eq!(t.token_offsets_us.len(), MAX_TOKEN_OFFSETS);
        assert!(t.unix_ns(r + Duration::from_secs(1)) > t.received_unix_ns);
    }
}
