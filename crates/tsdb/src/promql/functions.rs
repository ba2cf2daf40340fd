//! Function calls: dispatch by name to instant-vector, range-vector and label functions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use promql_parser::parser::{Call, Expr};
use regex::Regex;
use strata_core::sync::lock;

use super::QueryError;
use super::eval::{Ctx, Sample, Val};
use super::over_time::{extrapolated, instant_delta, linear_regression, over_time};
use crate::labels::{AddrMap, Labels, METRIC_NAME};

pub(crate) fn call(ctx: &mut Ctx<'_>, c: &Call, t: i64) -> Result<Val, QueryError> {
    let args: Vec<&Expr> = c.args.args.iter().map(|a| &**a).collect();
    let arg = |i: usize| {
        args.get(i).copied().ok_or_else(|| {
            QueryError::bad(format!("{}() is missing argument {}", c.func.name, i + 1))
        })
    };
    let name = c.func.name;
    if let Some(f) = math_fn(name) {
        return Ok(Val::Vector(map_values(ctx.vector(arg(0)?, t)?, t, f)));
    }
    Ok(match name {
        "rate" | "increase" | "delta" | "irate" | "idelta" | "deriv" | "predict_linear" => {
            if let Some(v) = ctx.counter_by_windows(c, t)? {
                return Ok(Val::Vector(v));
            }
            let m = ctx.matrix(arg(0)?, t)?;
            let horizon = if name == "predict_linear" {
                ctx.scalar(arg(1)?, t)?
            } else {
                0.0
            };
            let out = m
                .series
                .iter()
                .filter_map(|s| {
                    Some(Sample {
                        labels: s.labels.without_name(),
                        t,
                        v: window_fn(name, &s.points, m.start, m.end, t, horizon)?,
                    })
                })
                .collect();
            Val::Vector(out)
        }
        "absent_over_time" => {
            let m = ctx.matrix(arg(0)?, t)?;
            absent(m.series.is_empty(), arg(0)?, t)
        }
        n if is_window_fn(n) || n == "quantile_over_time" => {
            let (param, range_arg) = if n == "quantile_over_time" {
                (ctx.scalar(arg(0)?, t)?, arg(1)?)
            } else {
                (0.0, arg(0)?)
            };
            let m = ctx.matrix(range_arg, t)?;
            let keep_name = keeps_name(n);
            Val::Vector(
                m.series
                    .iter()
                    .filter_map(|s| {
                        let v = window_fn(n, &s.points, m.start, m.end, t, param)?;
                        Some(Sample {
                            labels: if keep_name {
                                s.labels.clone()
                            } else {
                                s.labels.without_name()
                            },
                            t,
                            v,
                        })
                    })
                    .collect(),
            )
        }
        "clamp" | "clamp_min" | "clamp_max" => {
            let v = ctx.vector(arg(0)?, t)?;
            let (lo, hi) = match name {
                "clamp" => (ctx.scalar(arg(1)?, t)?, ctx.scalar(arg(2)?, t)?),
                "clamp_min" => (ctx.scalar(arg(1)?, t)?, f64::INFINITY),
                _ => (f64::NEG_INFINITY, ctx.scalar(arg(1)?, t)?),
            };
            if hi < lo {
                return Ok(Val::Vector(Vec::new()));
            }
            // Go's math.Max/Min: a NaN bound or value gives NaN.
            Val::Vector(map_values(v, t, |x| {
                if x.is_nan() || lo.is_nan() || hi.is_nan() {
                    f64::NAN
                } else {
                    x.min(hi).max(lo)
                }
            }))
        }
        "pi" => Val::Scalar(std::f64::consts::PI),
        "minute" | "hour" | "day_of_week" | "day_of_month" | "day_of_year" | "days_in_month"
        | "month" | "year" => {
            let part = |secs: i64| super::calendar::part(name, secs);
            match args.first() {
                // Without an argument: the evaluation time, whole seconds as Prometheus.
                None => Val::Vector(vec![Sample {
                    labels: Labels::default(),
                    t,
                    v: part(t / 1000),
                }]),
                Some(a) => {
                    let v = ctx.vector(a, t)?;
                    Val::Vector(map_values(v, t, |x| {
                        if x.is_finite() {
                            part(x as i64)
                        } else {
                            f64::NAN
                        }
                    }))
                }
            }
        }
        // Functions of native histograms ignore float samples, and the store holds only
        // floats (classic histograms are float series): Prometheus answers an empty vector.
        "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev"
        | "histogram_stdvar" => {
            ctx.vector(arg(0)?, t)?;
            Val::Vector(Vec::new())
        }
        "histogram_fraction" => {
            ctx.scalar(arg(0)?, t)?;
            ctx.scalar(arg(1)?, t)?;
            ctx.vector(arg(2)?, t)?;
            Val::Vector(Vec::new())
        }
        "round" => {
            let v = ctx.vector(arg(0)?, t)?;
            let to = if args.len() > 1 {
                ctx.scalar(arg(1)?, t)?
            } else {
                1.0
            };
            let inv = 1.0 / to;
            Val::Vector(map_values(v, t, |x| (x * inv + 0.5).floor() / inv))
        }
        "time" => Val::Scalar(t as f64 / 1000.0),
        "vector" => Val::Vector(vec![Sample {
            labels: Labels::default(),
            t,
            v: ctx.scalar(arg(0)?, t)?,
        }]),
        "scalar" => {
            let v = ctx.vector(arg(0)?, t)?;
            Val::Scalar(if v.len() == 1 { v[0].v } else { f64::NAN })
        }
        "timestamp" => {
            let v = ctx.vector(arg(0)?, t)?;
            Val::Vector(
                v.into_iter()
                    .map(|s| Sample {
                        labels: s.labels.without_name(),
                        t,
                        v: s.t as f64 / 1000.0,
                    })
                    .collect(),
            )
        }
        "sort" | "sort_desc" => {
            let mut v = ctx.vector(arg(0)?, t)?;
            let desc = name == "sort_desc";
            // NaN sorts last either way, as in Prometheus.
            v.sort_by(|a, b| match (a.v.is_nan(), b.v.is_nan()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                _ if desc => b.v.total_cmp(&a.v),
                _ => a.v.total_cmp(&b.v),
            });
            Val::Vector(v)
        }
        "sort_by_label" | "sort_by_label_desc" => {
            let mut v = ctx.vector(arg(0)?, t)?;
            let mut names = Vec::new();
            for a in args.iter().skip(1) {
                names.push(ctx.string(a, t)?);
            }
            v.sort_by(|a, b| {
                let by_names = names
                    .iter()
                    .map(|n| {
                        natural_cmp(a.labels.get(n).unwrap_or(""), b.labels.get(n).unwrap_or(""))
                    })
                    .find(|o| o.is_ne());
                let ord = by_names.unwrap_or_else(|| a.labels.cmp(&b.labels));
                if name == "sort_by_label_desc" {
                    ord.reverse()
                } else {
                    ord
                }
            });
            Val::Vector(v)
        }
        "absent" => {
            let v = ctx.vector(arg(0)?, t)?;
            absent(v.is_empty(), arg(0)?, t)
        }
        "histogram_quantile" => {
            let q = ctx.scalar(arg(0)?, t)?;
            let v = ctx.vector(arg(1)?, t)?;
            let histograms = ctx.histograms.entry(c as *const Call as usize);
            let out = histogram_quantile(q, v, t, histograms.or_default());
            // Buckets of two metrics with the same other labels give two results with the
            // same label set, which Prometheus refuses.
            super::eval::check_unique(&out)?;
            Val::Vector(out)
        }
        "label_replace" => {
            let v = ctx.vector(arg(0)?, t)?;
            let (dst, repl, src, re) = (
                ctx.string(arg(1)?, t)?,
                ctx.string(arg(2)?, t)?,
                ctx.string(arg(3)?, t)?,
                ctx.string(arg(4)?, t)?,
            );
            let regex = anchored(&re).map_err(|e| {
                QueryError::bad(format!(
                    "invalid regular expression in label_replace(): {re}: {e}"
                ))
            })?;
            check_label_name(&dst)?;
            Val::Vector(
                v.into_iter()
                    .map(|s| {
                        let value = s.labels.get(&src).unwrap_or("");
                        let labels = match regex.captures(value) {
                            Some(caps) => {
                                let mut out = String::new();
                                caps.expand(&repl, &mut out);
                                s.labels.with(&dst, &out)
                            }
                            None => s.labels,
                        };
                        Sample { labels, t, v: s.v }
                    })
                    .collect(),
            )
        }
        "label_join" => {
            let v = ctx.vector(arg(0)?, t)?;
            let (dst, sep) = (ctx.string(arg(1)?, t)?, ctx.string(arg(2)?, t)?);
            check_label_name(&dst)?;
            let mut srcs = Vec::new();
            for a in args.iter().skip(3) {
                srcs.push(ctx.string(a, t)?);
            }
            Val::Vector(
                v.into_iter()
                    .map(|s| {
                        let joined = srcs
                            .iter()
                            .map(|n| s.labels.get(n).unwrap_or(""))
                            .collect::<Vec<_>>()
                            .join(&sep);
                        Sample {
                            labels: s.labels.with(&dst, &joined),
                            t,
                            v: s.v,
                        }
                    })
                    .collect(),
            )
        }
        other => {
            return Err(QueryError::bad(format!(
                "function {other}() is not supported by Strata's evaluator yet"
            )));
        }
    })
}

/// `label_replace`'s pattern `re`, anchored at both ends, compiled once per pattern: rules
/// evaluate the same calls every interval, and compiling the pattern each time cost more
/// than applying it. Shared, not cloned: a clone of a `Regex` starts with empty matching
/// caches (its lazy DFA would be rebuilt at every evaluation).
fn anchored(re: &str) -> Result<Arc<Regex>, regex::Error> {
    /// Most patterns kept; past it the cache starts over (queries from the API can bring
    /// any number of one-off patterns).
    const MAX: usize = 1024;
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Regex>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(r) = lock(cache).get(re) {
        return Ok(r.clone());
    }
    let r = Arc::new(Regex::new(&format!("^(?:{re})$"))?);
    let mut cache = lock(cache);
    if cache.len() >= MAX {
        cache.clear();
    }
    cache.insert(re.to_string(), r.clone());
    Ok(r)
}

/// Range functions whose result keeps the metric name (they return a sample's own value).
pub(crate) fn keeps_name(name: &str) -> bool {
    name == "last_over_time" || name == "first_over_time"
}

/// True for the functions [`window_fn`] computes that take nothing but a range vector,
/// so their value at a step depends only on each series' window.
pub(crate) fn is_window_fn(name: &str) -> bool {
    matches!(
        name,
        "rate"
            | "increase"
            | "delta"
            | "irate"
            | "idelta"
            | "deriv"
            | "changes"
            | "resets"
            | "avg_over_time"
            | "sum_over_time"
            | "count_over_time"
            | "last_over_time"
            | "first_over_time"
            | "ts_of_first_over_time"
            | "ts_of_last_over_time"
            | "ts_of_max_over_time"
            | "ts_of_min_over_time"
            | "present_over_time"
            | "min_over_time"
            | "max_over_time"
            | "stddev_over_time"
            | "stdvar_over_time"
            | "mad_over_time"
    )
}

/// A range-vector function of one series' (non-empty) window `(start, end]` evaluated at
/// `t`; `param` is `predict_linear`'s horizon or `quantile_over_time`'s quantile.
pub(crate) fn window_fn(
    name: &str,
    points: &[(i64, f64)],
    start: i64,
    end: i64,
    t: i64,
    param: f64,
) -> Option<f64> {
    match name {
        "rate" => extrapolated(points, start, end, true, true),
        "increase" => extrapolated(points, start, end, true, false),
        "delta" => extrapolated(points, start, end, false, false),
        "irate" => instant_delta(points, true),
        "idelta" => instant_delta(points, false),
        "deriv" => (points.len() >= 2).then(|| linear_regression(points, points[0].0).0),
        "predict_linear" => (points.len() >= 2).then(|| {
            let (slope, intercept) = linear_regression(points, t);
            intercept + slope * param
        }),
        _ => over_time(name, points, param),
    }
}

fn check_label_name(name: &str) -> Result<(), QueryError> {
    let ok = !name.is_empty()
        && name
            .chars()
            .enumerate()
            .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(QueryError::bad(format!(
            "invalid destination label name {name:?}"
        )))
    }
}

/// Applies `f` to every value, dropping the metric name (what math functions do).
fn map_values(v: Vec<Sample>, t: i64, f: impl Fn(f64) -> f64) -> Vec<Sample> {
    v.into_iter()
        .map(|s| Sample {
            labels: s.labels.without_name(),
            t,
            v: f(s.v),
        })
        .collect()
}

fn math_fn(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sqrt" => f64::sqrt,
        "sgn" => |x: f64| {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                x
            }
        },
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        "asin" => f64::asin,
        "acos" => f64::acos,
        "atan" => f64::atan,
        "sinh" => f64::sinh,
        "cosh" => f64::cosh,
        "tanh" => f64::tanh,
        "asinh" => f64::asinh,
        "acosh" => f64::acosh,
        "atanh" => f64::atanh,
        "deg" => f64::to_degrees,
        "rad" => f64::to_radians,
        _ => return None,
    })
}

/// `absent()`/`absent_over_time()`: one sample valued 1 when the input is empty, labelled
/// with the equality matchers of the selector (labels matched twice are left out).
fn absent(empty: bool, arg: &Expr, t: i64) -> Val {
    if !empty {
        return Val::Vector(Vec::new());
    }
    let vs = match arg {
        Expr::VectorSelector(vs) => Some(vs),
        Expr::MatrixSelector(m) => Some(&m.vs),
        _ => None,
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    if let Some(vs) = vs {
        let ms = &vs.matchers.matchers;
        for m in ms.iter().filter(|m| {
            matches!(m.op, promql_parser::label::MatchOp::Equal) && m.name != METRIC_NAME
        }) {
            if ms.iter().filter(|o| o.name == m.name).count() == 1 {
                pairs.push((m.name.clone(), m.value.clone()));
            }
        }
    }
    Val::Vector(vec![Sample {
        labels: Labels::new(pairs),
        t,
        v: 1.0,
    }])
}

/// Input label sets a [`Histograms`] maps by address before it starts over (step-by-step
/// evaluation makes new label sets at every step).
const HISTOGRAMS_CACHE_LIMIT: usize = 1 << 20;

/// The histograms of one `histogram_quantile` call, kept across the steps of a query: each
/// input label set is mapped once (by the address of its shared pairs, as an aggregation's
/// grouping is) to its `le` bound and its histogram, instead of parsing `le`, building the
/// histogram's key and hashing it at every step; each histogram's result labels are built
/// once (and, being the same set at every step, are collected by address too).
#[derive(Default)]
pub(crate) struct Histograms {
    /// Input label-set address → (that label set, kept so that the address cannot be
    /// reused by another set while cached; its bound and histogram, `None` without a
    /// numeric `le`).
    by_addr: AddrMap<(Labels, Option<(f64, usize)>)>,
    /// Histogram key (every label but `le`, the name included) → histogram.
    ids: HashMap<Labels, usize>,
    /// Each histogram's result labels: its key without the name.
    labels: Vec<Labels>,
}

impl Histograms {
    /// The `le` bound of `l` and the histogram it belongs to.
    fn bucket(&mut self, l: &Labels) -> Option<(f64, usize)> {
        if let Some((_, b)) = self.by_addr.get(&l.addr()) {
            return *b;
        }
        let b = l.get("le").and_then(|le| le.parse::<f64>().ok()).map(|le| {
            let next = self.labels.len();
            let id = *self
                .ids
                .entry(l.filter(|n| n != "le"))
                .or_insert_with_key(|key| {
                    self.labels.push(key.without_name());
                    next
                });
            (le, id)
        });
        if self.by_addr.len() >= HISTOGRAMS_CACHE_LIMIT {
            self.by_addr.clear();
        }
        self.by_addr.insert(l.addr(), (l.clone(), b));
        b
    }
}

/// Classic-bucket `histogram_quantile`, as Prometheus' `bucketQuantile`: buckets are
/// grouped by all labels but `le` (the metric name included), results drop the name; the
/// histograms come out in the order their first bucket came in.
fn histogram_quantile(q: f64, v: Vec<Sample>, t: i64, histograms: &mut Histograms) -> Vec<Sample> {
    let mut order: Vec<usize> = Vec::new();
    let mut buckets: Vec<Vec<(f64, f64)>> = Vec::new();
    for s in v {
        let Some((le, id)) = histograms.bucket(&s.labels) else {
            continue;
        };
        if buckets.len() <= id {
            buckets.resize_with(id + 1, Vec::new);
        }
        if buckets[id].is_empty() {
            order.push(id);
        }
        buckets[id].push((le, s.v));
    }
    order
        .into_iter()
        .filter_map(|id| {
            Some(Sample {
                labels: histograms.labels.get(id)?.clone(),
                t,
                v: bucket_quantile(q, std::mem::take(buckets.get_mut(id)?)),
            })
        })
        .collect()
}

fn bucket_quantile(q: f64, mut buckets: Vec<(f64, f64)>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    if buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
        return f64::NAN;
    }
    // Merge buckets with the same bound, then force counts to be non-decreasing.
    buckets.dedup_by(|b, a| {
        let same = a.0 == b.0;
        if same {
            a.1 += b.1;
        }
        same
    });
    let mut max = f64::NEG_INFINITY;
    for b in &mut buckets {
        if b.1 > max {
            max = b.1;
        } else {
            b.1 = max;
        }
    }
    if buckets.len() < 2 {
        return f64::NAN;
    }
    let observations = buckets[buckets.len() - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let b = buckets[..buckets.len() - 1].partition_point(|b| b.1 < rank);
    if b == buckets.len() - 1 {
        return buckets[buckets.len() - 2].0;
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return buckets[0].0;
    }
    let (mut start, end, mut count) = (0.0, buckets[b].0, buckets[b].1);
    if b > 0 {
        start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    start + (end - start) * (rank / count)
}

#[cfg(test)]
pub(crate) fn bucket_quantile_for_test(q: f64, buckets: Vec<(f64, f64)>) -> f64 {
    bucket_quantile(q, buckets)
}

/// Natural order of label values (`a2` before `a10`), as the `natsort` package Prometheus'
/// `sort_by_label` uses: runs of digits compare as numbers, other runs as text.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn chunks(s: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[i - 1].is_ascii_digit() {
                out.push(&s[start..i]);
                start = i;
            }
        }
        out
    }
    let (ca, cb) = (chunks(a), chunks(b));
    for (x, y) in ca.iter().zip(&cb) {
        let ord = match (x.parse::<u128>(), y.parse::<u128>()) {
            (Ok(nx), Ok(ny)) => nx.cmp(&ny).then_with(|| x.cmp(y)),
            _ => x.cmp(y),
        };
        if ord.is_ne() {
            return ord;
        }
    }
    ca.len().cmp(&cb.len())
}
