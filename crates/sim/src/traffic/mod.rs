//! Inbound load: a seeded Poisson arrival process with log-normal prompt and output
//! lengths, optionally with periodic bursts. Scenarios that need load of their own (and
//! every virtual-time run) draw their requests here.

use crate::rng::Rng;

/// Periodic traffic spikes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Burst {
    /// First spike starts at this time, s.
    pub first_s: f64,
    /// A spike starts every `every_s` seconds.
    pub every_s: f64,
    /// Each spike lasts this long, s.
    pub length_s: f64,
    /// Arrival rate multiplier during a spike.
    pub factor: f64,
}

/// The shape of a load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrafficSpec {
    /// Mean arrivals per second outside bursts.
    pub rate: f64,
    /// Median prompt length, tokens.
    pub prompt_median: f64,
    /// Log-normal shape of prompt lengths.
    pub prompt_sigma: f64,
    /// Longest prompt, tokens.
    pub prompt_max: u32,
    /// Median natural output length (where the model would stop), tokens.
    pub output_median: f64,
    /// Log-normal shape of output lengths.
    pub output_sigma: f64,
    /// The `max_tokens` clients send.
    pub max_tokens: u32,
    /// Spikes, if any.
    pub burst: Option<Burst>,
}

impl TrafficSpec {
    /// Arrival rate at time `t`.
    pub fn rate_at(&self, t: f64) -> f64 {
        match self.burst {
            Some(b) if t >= b.first_s && (t - b.first_s) % b.every_s < b.length_s => {
                self.rate * b.factor
            }
            _ => self.rate,
        }
    }

    fn peak_rate(&self) -> f64 {
        self.rate * self.burst.map_or(1.0, |b| b.factor.max(1.0))
    }

    /// A natural output length drawn from this load's distribution.
    pub fn draw_output(&self, rng: &mut Rng) -> u32 {
        rng.lognormal(self.output_median, self.output_sigma)
            .round()
            .clamp(1.0, 1e6) as u32
    }
}

/// One generated request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arrival {
    /// Arrival time, s.
    pub t: f64,
    /// Prompt tokens.
    pub prompt: u32,
    /// `max_tokens` sent.
    pub max_tokens: u32,
    /// Output length at which the model would stop.
    pub natural: u32,
}

/// A seeded arrival process.
#[derive(Debug, Clone)]
pub struct Traffic {
    spec: TrafficSpec,
    rng: Rng,
    next: Option<Arrival>,
    /// Share of requests whose natural length exceeds `max_tokens` (forced), if set.
    truncation: Option<f64>,
    context: u32,
}

impl Traffic {
    /// Arrivals from time `start` on. `truncation` forces that share of requests to end on
    /// `max_tokens` (`finish_reason="length"`); `context` bounds prompt + `max_tokens`.
    pub fn new(
        spec: TrafficSpec,
        seed: u64,
        start: f64,
        truncation: Option<f64>,
        context: u32,
    ) -> Traffic {
        let mut t = Traffic {
            spec,
            rng: Rng::fork(seed, 0x7472_6166 ^ start.to_bits()),
            next: None,
            truncation,
            context,
        };
        t.next = t.draw_after(start);
        t
    }

    /// The load's shape.
    pub fn spec(&self) -> &TrafficSpec {
        &self.spec
    }

    /// Time of the next arrival (`None` when the rate is zero).
    pub fn peek_time(&self) -> Option<f64> {
        self.next.map(|a| a.t)
    }

    /// The next arrival if it is due by `t`.
    pub fn pop_until(&mut self, t: f64) -> Option<Arrival> {
        let a = self.next.filter(|a| a.t <= t)?;
        self.next = self.draw_after(a.t);
        Some(a)
    }

    fn draw_after(&mut self, mut t: f64) -> Option<Arrival> {
        let peak = self.spec.peak_rate();
        if peak <= 0.0 {
            return None;
        }
        // Thinning: candidates at the peak rate, kept with probability rate(t) / peak.
        loop {
            t += self.rng.exp(1.0 / peak);
            if self.rng.f64() * peak <= self.spec.rate_at(t) {
                break;
            }
        }
        let s = &self.spec;
        let max_tokens = s.max_tokens.min(self.context.saturating_sub(1)).max(1);
        let prompt_cap = s
            .prompt_max
            .min(self.context.saturating_sub(max_tokens))
            .max(1);
        let prompt = (self.rng.lognormal(s.prompt_median, s.prompt_sigma).round() as u32)
            .clamp(1, prompt_cap);
        let mut natural = s.draw_output(&mut self.rng);
        if let Some(p) = self.truncation {
            natural = if self.rng.f64() < p {
                max_tokens + 1
            } else {
                natural.min(max_tokens.saturating_sub(1).max(1))
            };
        }
        Some(Arrival {
            t,
            prompt,
            max_tokens,
            natural,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TrafficSpec {
        TrafficSpec {
            rate: 10.0,
            prompt_median: 500.0,
            prompt_sigma: 0.5,
            prompt_max: 4000,
            output_median: 100.0,
            output_sigma: 0.5,
            max_tokens: 300,
            burst: None,
        }
    }

    fn count(t: &mut Traffic, until: f64) -> Vec<Arrival> {
        std::iter::from_fn(|| t.pop_until(until)).collect()
    }

    #[test]
    fn poisson_rate_lengths_and_determinism() {
        let mut a = Traffic::new(spec(), 3, 0.0, None, 8192);
        let got = count(&mut a, 100.0);
        assert!((900..1100).contains(&got.len()), "{}", got.len());
        assert!(got.iter().all(|x| x.prompt <= 4000 && x.max_tokens == 300));
        let mut b = Traffic::new(spec(), 3, 0.0, None, 8192);
        assert_eq!(got, count(&mut b, 100.0));
    }

    #[test]
    fn bursts_multiply_the_rate_and_truncation_is_controllable() {
        let s = TrafficSpec {
            burst: Some(Burst {
                first_s: 10.0,
                every_s: 100.0,
                length_s: 10.0,
                factor: 5.0,
            }),
            ..spec()
        };
        let mut t = Traffic::new(s, 1, 0.0, Some(0.3), 8192);
        let all = count(&mut t, 30.0);
        let before = all.iter().filter(|a| a.t < 10.0).count();
        let during = all.iter().filter(|a| (10.0..20.0).contains(&a.t)).count();
        assert!(during > 3 * before, "{before} {during}");
        let long = all.iter().filter(|a| a.natural > a.max_tokens).count();
        let share = long as f64 / all.len() as f64;
        assert!((0.2..0.4).contains(&share), "{share}");
    }
}
