//! Compensated (Kahan–Neumaier) summation, as Prometheus' `kahansum.Inc`: sums, means and
//! variances of many values, or of values with a large common offset, stay close to the
//! exact result instead of accumulating rounding error.

/// Adds `inc` to the running `sum` with compensation `c`; returns the new pair. The
/// result is `sum + c`.
pub(crate) fn inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// The compensated sum of `vals`.
pub(crate) fn sum(vals: impl Iterator<Item = f64>) -> f64 {
    let (s, c) = vals.fold((0.0, 0.0), |(s, c), v| inc(v, s, c));
    s + c
}

/// The mean of `vals` (NaN when empty): see [`Mean`].
pub(crate) fn mean(vals: impl Iterator<Item = f64>) -> f64 {
    let mut m = Mean::default();
    vals.for_each(|v| m.add(v));
    m.value()
}

/// A running mean, one value at a time: a compensated sum divided by the count while the
/// sum stays finite, then an incremental mean, as Prometheus' `avg` and `avg_over_time`
/// (aggregations fold many groups at once with it).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Mean {
    sum: f64,
    c: f64,
    mean: f64,
    count: f64,
    incremental: bool,
}

impl Mean {
    /// Adds `v`.
    pub(crate) fn add(&mut self, v: f64) {
        self.count += 1.0;
        // The first value starts the sum as is (an infinite first value stays infinite).
        if self.count == 1.0 {
            self.sum = v;
            return;
        }
        if !self.incremental {
            let (s, nc) = inc(v, self.sum, self.c);
            if !s.is_infinite() {
                (self.sum, self.c) = (s, nc);
                return;
            }
            // The sum would overflow: continue with the mean of what was summed so far.
            self.incremental = true;
            self.mean = self.sum / (self.count - 1.0);
            self.c /= self.count - 1.0;
        }
        let q = (self.count - 1.0) / self.count;
        (self.mean, self.c) = inc(v / self.count, q * self.mean, q * self.c);
    }

    /// The mean of the values added (NaN when none).
    pub(crate) fn value(&self) -> f64 {
        if self.count == 0.0 {
            f64::NAN
        } else if self.incremental {
            self.mean + self.c
        } else {
            self.sum / self.count + self.c / self.count
        }
    }
}

/// Population variance (Welford's method with compensated running mean and sum of
/// squares), as Prometheus' `stdvar_over_time`.
pub(crate) fn variance(vals: impl Iterator<Item = f64>) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for v in vals {
        count += 1.0;
        let delta = v - (mean + c_mean);
        (mean, c_mean) = inc(delta / count, mean, c_mean);
        (aux, c_aux) = inc(delta * (v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compensated_sums_beat_naive_ones_on_large_offsets() {
        // 1e16 + 1 + 1 + … - 1e16: the naive sum loses every 1.
        let vals: Vec<f64> = std::iter::once(1e16)
            .chain(std::iter::repeat_n(1.0, 1000))
            .chain(std::iter::once(-1e16))
            .collect();
        assert_eq!(vals.iter().sum::<f64>(), 0.0);
        assert_eq!(sum(vals.iter().copied()), 1000.0);
        assert_eq!(mean(vals.iter().copied()), 1000.0 / 1002.0);
        // Mean of values near f64::MAX overflows a plain sum; the incremental fallback does not.
        let m = mean([f64::MAX, f64::MAX, f64::MAX].into_iter());
        assert!(m.is_finite() && (m / f64::MAX - 1.0).abs() < 1e-15, "{m}");
        assert!(mean(std::iter::empty()).is_nan());
        assert_eq!(mean([f64::INFINITY, 0.0].into_iter()), f64::INFINITY);
        assert_eq!(
            mean([0.0, f64::NEG_INFINITY].into_iter()),
            f64::NEG_INFINITY
        );
        assert!(mean([f64::INFINITY, f64::NEG_INFINITY].into_iter()).is_nan());
    }

    /// Plain Welford, what the evaluator used before.
    fn welford(vals: &[f64]) -> f64 {
        let (mut n, mut mean, mut aux) = (0.0, 0.0, 0.0);
        for &v in vals {
            n += 1.0;
            let d = v - mean;
            mean += d / n;
            aux += d * (v - mean);
        }
        aux / n
    }

    #[test]
    fn variance_with_a_large_offset_is_close_to_exact() {
        let offset = 1e9;
        let vals: Vec<f64> = (0..1000)
            .map(|i| offset + f64::from(i % 10) / 10.0 + f64::from(i % 7) / 1000.0)
            .collect();
        // Subtracting the offset is exact here, so two passes over the small residues give
        // the exact variance of the stored values to within 1e-15.
        let small: Vec<f64> = vals.iter().map(|v| v - offset).collect();
        let m = small.iter().sum::<f64>() / 1000.0;
        let exact = small.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / 1000.0;
        let (ours, plain) = (variance(vals.iter().copied()), welford(&vals));
        assert!((ours - exact).abs() < 1e-9, "{ours} vs {exact}");
        assert!(
            (ours - exact).abs() * 2.0 < (plain - exact).abs(),
            "{ours} {plain} {exact}"
        );
        assert_eq!(variance([5.0].into_iter()), 0.0);
        assert!(variance([1.0, f64::NAN].into_iter()).is_nan());
    }
}
