//! Arrival times for a rate shape: gaps drawn from a gamma distribution with mean
//! 1/rate and shape `burstiness` (1 = exponential gaps = Poisson arrivals), as vLLM's
//! benchmark draws them.

use std::time::Duration;

use strata_core::rng::Rng;

/// A seeded source of gaps between arrivals.
#[derive(Debug, Clone)]
pub struct Arrivals {
    rng: Rng,
    rate: f64,
    shape: f64,
}

impl Arrivals {
    /// Gaps for `rate` requests per second with gamma shape `burstiness` (both > 0).
    pub fn new(rate: f64, burstiness: f64, seed: u64) -> Arrivals {
        Arrivals {
            rng: Rng::fork(seed, 0xa11),
            rate,
            shape: burstiness,
        }
    }

    /// The gap before the next arrival.
    pub fn next_gap(&mut self) -> Duration {
        let scale = 1.0 / (self.rate * self.shape);
        let g = gamma(&mut self.rng, self.shape) * scale;
        Duration::try_from_secs_f64(g).unwrap_or(Duration::ZERO)
    }
}

/// Gamma(shape, 1) by Marsaglia and Tsang; shapes below 1 by the boost
/// Gamma(k) = Gamma(k + 1) · U^(1/k).
fn gamma(rng: &mut Rng, k: f64) -> f64 {
    if k < 1.0 {
        let u = 1.0 - rng.f64();
        return gamma(rng, k + 1.0) * u.powf(1.0 / k);
    }
    let d = k - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = rng.normal();
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u = 1.0 - rng.f64();
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moments(rate: f64, b: f64) -> (f64, f64) {
        let mut a = Arrivals::new(rate, b, 9);
        let n = 40_000;
        let g: Vec<f64> = (0..n).map(|_| a.next_gap().as_secs_f64()).collect();
        let mean = g.iter().sum::<f64>() / n as f64;
        let var = g.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        (mean, var.sqrt() / mean)
    }

    #[test]
    fn mean_gap_is_one_over_rate_and_burstiness_sets_the_spread() {
        // Gamma(k): coefficient of variation 1/sqrt(k).
        for (b, cv) in [(1.0, 1.0), (0.25, 2.0), (4.0, 0.5)] {
            let (mean, got) = moments(50.0, b);
            assert!((mean - 0.02).abs() < 0.02 * 0.05, "b={b} mean={mean}");
            assert!((got - cv).abs() < cv * 0.07, "b={b} cv={got}");
        }
    }

    #[test]
    fn same_seed_same_arrivals() {
        let (mut a, mut b) = (Arrivals::new(10.0, 1.0, 3), Arrivals::new(10.0, 1.0, 3));
        for _ in 0..100 {
            assert_eq!(a.next_gap(), b.next_gap());
        }
    }
}
