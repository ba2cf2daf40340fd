//! Functions over range vectors: rate and friends (with Prometheus' extrapolation), and
//! the `*_over_time` family.

use super::aggregate::quantile;
use super::kahan;

/// Prometheus' `extrapolatedRate` over the window `(start, end]`: `rate`, `increase`
/// (counters) and `delta` (gauges).
pub(crate) fn extrapolated(
    points: &[(i64, f64)],
    start: i64,
    end: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    let flags = (is_counter, is_rate, true);
    extrapolated_with(points, start, end, flags, &mut Quotients::default())
}

/// [`extrapolated`] with flags `(is_counter, is_rate, may_reset)`: `may_reset` false skips
/// the scan for counter resets (a range query's step table counts them as its window
/// slides); `quotients` carries the divisions of the previous window of the same series
/// (a step table slides one window along a series).
#[inline]
pub(crate) fn extrapolated_with(
    points: &[(i64, f64)],
    start: i64,
    end: i64,
    (is_counter, is_rate, may_reset): (bool, bool, bool),
    quotients: &mut Quotients,
) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let (first, last) = (points[0], points[points.len() - 1]);
    let mut result = last.1 - first.1;
    if is_counter && may_reset {
        let mut prev = first.1;
        for p in &points[1..] {
            if p.1 < prev {
                result += prev;
            }
            prev = p.1;
        }
    }
    extrapolate(
        (first, last, points.len()),
        result,
        (start, end),
        (is_counter, is_rate),
        quotients,
    )
}

/// What `rate` and `increase` need of a counter's window, gathered one sample at a time
/// (staleness markers left out, as a range vector leaves them out): a window of a month
/// is summed up as it is decoded instead of held as a list of points.
#[derive(Debug, Clone, Default)]
pub(crate) struct CounterWindow {
    first: (i64, f64),
    last: (i64, f64),
    count: usize,
    /// The value before each counter reset, in order.
    resets: Vec<f64>,
}

impl CounterWindow {
    /// Adds the next sample of the window (increasing timestamps).
    pub(crate) fn push(&mut self, t: i64, v: f64) {
        if self.count == 0 {
            self.first = (t, v);
        } else if v < self.last.1 {
            self.resets.push(self.last.1);
        }
        self.last = (t, v);
        self.count += 1;
    }

    /// True before the first sample.
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// `rate` (`is_rate`) or `increase` over `(start, end]`: the same arithmetic, in the
    /// same order, as [`extrapolated`] over the window's points.
    pub(crate) fn extrapolated(&self, start: i64, end: i64, is_rate: bool) -> Option<f64> {
        if self.count < 2 {
            return None;
        }
        let mut result = self.last.1 - self.first.1;
        for prev in &self.resets {
            result += prev;
        }
        let ends = (self.first, self.last, self.count);
        let flags = (true, is_rate);
        extrapolate(ends, result, (start, end), flags, &mut Quotients::default())
    }
}

/// One quotient remembered with its operands: dividing the same bits again gives the same
/// bits, so it is reused instead of recomputed (a division costs several times a compare).
#[derive(Debug, Clone, Copy)]
struct Quotient {
    n: u64,
    d: u64,
    q: f64,
}

impl Default for Quotient {
    fn default() -> Quotient {
        Quotient {
            n: 0.0f64.to_bits(),
            d: 1.0f64.to_bits(),
            q: 0.0 / 1.0,
        }
    }
}

impl Quotient {
    /// `n / d`, exactly as computed.
    #[inline]
    fn div(&mut self, n: f64, d: f64) -> f64 {
        if n.to_bits() != self.n || d.to_bits() != self.d {
            *self = Quotient {
                n: n.to_bits(),
                d: d.to_bits(),
                q: n / d,
            };
        }
        self.q
    }
}

/// The divisions of [`extrapolate`] with their last operands. Consecutive windows of a
/// range query over one regularly scraped series have the same distances to their edges,
/// the same span and the same count: most of these divisions repeat, bit for bit.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Quotients {
    to_start: Quotient,
    to_end: Quotient,
    sampled: Quotient,
    avg_between: Quotient,
    scale: Quotient,
    range: Quotient,
}

/// Prometheus' extrapolation of `result` (the window's raw difference, resets added back
/// for counters) from the window's first and last of its `n` points to its edges
/// `(start, end]`.
#[inline]
fn extrapolate(
    (first, last, n): ((i64, f64), (i64, f64), usize),
    mut result: f64,
    (start, end): (i64, i64),
    (is_counter, is_rate): (bool, bool),
    qs: &mut Quotients,
) -> Option<f64> {
    let mut to_start = qs.to_start.div((first.0 - start) as f64, 1000.0);
    let mut to_end = qs.to_end.div((end - last.0) as f64, 1000.0);
    let sampled = qs.sampled.div((last.0 - first.0) as f64, 1000.0);
    let avg_between = qs.avg_between.div(sampled, (n - 1) as f64);
    // Extrapolate to a window edge only when a sample is "close enough" to it, else by
    // half an average interval; then, for counters, never below zero (in this order, as
    // Prometheus 3).
    let threshold = avg_between * 1.1;
    if to_start >= threshold {
        to_start = avg_between / 2.0;
    }
    if is_counter && result > 0.0 && first.1 >= 0.0 {
        let to_zero = sampled * (first.1 / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg_between / 2.0;
    }
    let interval = sampled + to_start + to_end;
    result *= qs.scale.div(interval, sampled);
    if is_rate {
        result /= qs.range.div((end - start) as f64, 1000.0);
    }
    Some(result)
}

/// `irate` (`is_rate`) and `idelta`: the last two points.
pub(crate) fn instant_delta(points: &[(i64, f64)], is_rate: bool) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let (prev, last) = (points[points.len() - 2], points[points.len() - 1]);
    let mut result = if is_rate && last.1 < prev.1 {
        last.1
    } else {
        last.1 - prev.1
    };
    if is_rate {
        let dt = (last.0 - prev.0) as f64 / 1000.0;
        if dt == 0.0 {
            return None;
        }
        result /= dt;
    }
    Some(result)
}

/// Least-squares slope and intercept at `intercept_t` (ms), as Prometheus' `linearRegression`.
pub(crate) fn linear_regression(points: &[(i64, f64)], intercept_t: i64) -> (f64, f64) {
    let (mut n, mut sx, mut sy, mut sxy, mut sx2) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let init = points[0].1;
    let mut const_y = true;
    for &(t, v) in points {
        if const_y && v != init {
            const_y = false;
        }
        n += 1.0;
        let x = (t - intercept_t) as f64 / 1000.0;
        sx += x;
        sy += v;
        sxy += x * v;
        sx2 += x * x;
    }
    if const_y {
        return (0.0, init);
    }
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

/// The `*_over_time` aggregations that need only the values.
pub(crate) fn over_time(name: &str, points: &[(i64, f64)], param: f64) -> Option<f64> {
    let vals = points.iter().map(|p| p.1);
    let n = points.len() as f64;
    Some(match name {
        "avg_over_time" => kahan::mean(vals),
        "sum_over_time" => kahan::sum(vals),
        "count_over_time" => n,
        "last_over_time" => points.last()?.1,
        "first_over_time" => points.first()?.1,
        "ts_of_first_over_time" => points.first()?.0 as f64 / 1000.0,
        "ts_of_last_over_time" => points.last()?.0 as f64 / 1000.0,
        // The last extreme wins ties, as Prometheus' `compareOverTime`.
        "ts_of_max_over_time" => ts_of_extreme(points, |cur, best| cur >= best)?,
        "ts_of_min_over_time" => ts_of_extreme(points, |cur, best| cur <= best)?,
        "present_over_time" => 1.0,
        "min_over_time" => vals.fold(f64::NAN, |m, v| if v < m || m.is_nan() { v } else { m }),
        "max_over_time" => vals.fold(f64::NAN, |m, v| if v > m || m.is_nan() { v } else { m }),
        "stddev_over_time" => kahan::variance(vals).sqrt(),
        "stdvar_over_time" => kahan::variance(vals),
        "quantile_over_time" => quantile(param, vals.collect()),
        "mad_over_time" => {
            let values: Vec<f64> = vals.collect();
            // A NaN makes the median undefined: NaN, not a silently dropped sample.
            if values.iter().any(|v| v.is_nan()) {
                return Some(f64::NAN);
            }
            let median = quantile(0.5, values.clone());
            quantile(0.5, values.iter().map(|v| (v - median).abs()).collect())
        }
        "changes" => points
            .windows(2)
            .filter(|w| !(w[0].1 == w[1].1 || (w[0].1.is_nan() && w[1].1.is_nan())))
            .count() as f64,
        "resets" => points.windows(2).filter(|w| w[1].1 < w[0].1).count() as f64,
        _ => return None,
    })
}

/// Timestamp (s) of the point whose value `better` prefers, a NaN being replaced by anything.
fn ts_of_extreme(points: &[(i64, f64)], better: impl Fn(f64, f64) -> bool) -> Option<f64> {
    let (mut ts, mut best) = *points.first()?;
    for &(t, v) in points {
        if better(v, best) || best.is_nan() {
            (ts, best) = (t, v);
        }
    }
    Some(ts as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A window's divisions carried over from the previous window of the series (what a
    /// step table does) give the same bits as computing each window afresh, whether the
    /// spacing repeats (reused) or not (recomputed), resets and counters from zero included.
    #[test]
    fn carried_quotients_equal_fresh_ones() {
        // Mostly 5 s apart, with jitter, a gap, a reset and a start at zero.
        let mut t = 1_234;
        let points: Vec<(i64, f64)> = (0..400i64)
            .map(|i| {
                t += match i % 37 {
                    0 => 17_000,
                    5 | 6 => 4_999,
                    _ => 5_000,
                };
                let v = if i < 200 {
                    (i * i % 1_000) as f64
                } else {
                    (i - 200) as f64 * 3.5
                };
                (t, v)
            })
            .collect();
        let mut compared = 0;
        for (range, is_rate) in [(60_000, true), (300_000, false), (61_000, true)] {
            let mut carried = Quotients::default();
            let mut end = 100_000;
            while end < t {
                let start = end - range;
                let lo = points.partition_point(|p| p.0 <= start);
                let hi = points.partition_point(|p| p.0 <= end);
                let window = &points[lo..hi];
                let flags = (true, is_rate, true);
                let got = extrapolated_with(window, start, end, flags, &mut carried);
                let want = extrapolated(window, start, end, true, is_rate);
                assert_eq!(got.map(f64::to_bits), want.map(f64::to_bits), "{end}");
                compared += usize::from(want.is_some());
                end += 7_000;
            }
        }
        assert!(compared > 500, "{compared}");
    }
}
