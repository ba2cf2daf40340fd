//! Aggregation operators (`sum`, `topk`, `quantile`, … with `by`/`without`).

use std::collections::HashMap;

use promql_parser::parser::token::{
    T_AVG, T_BOTTOMK, T_COUNT, T_COUNT_VALUES, T_GROUP, T_LIMITK, T_MAX, T_MIN, T_QUANTILE,
    T_STDDEV, T_STDVAR, T_SUM, T_TOPK, TokenId,
};
use promql_parser::parser::{AggregateExpr, LabelModifier};

use super::QueryError;
use super::eval::{Ctx, Sample, Val};
use super::kahan;
use super::value::format_float;
use crate::labels::{AddrMap, Labels, METRIC_NAME};

/// Prometheus' `quantile` over a set of values (linear interpolation between ranks).
pub(crate) fn quantile(q: f64, mut values: Vec<f64>) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    // NaN sorts as the smallest value, as Prometheus' `vectorByValueHeap`.
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.total_cmp(b),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

fn group_labels(l: &Labels, modifier: &Option<LabelModifier>) -> Labels {
    match modifier {
        None => Labels::default(),
        Some(LabelModifier::Include(by)) => l.filter(|n| by.labels.iter().any(|b| b == n)),
        Some(LabelModifier::Exclude(without)) => {
            l.filter(|n| n != METRIC_NAME && !without.labels.iter().any(|w| w == n))
        }
    }
}

/// Inputs to the by-address cache of a [`Grouping`] beyond which it starts over (subqueries
/// and step-by-step evaluation make new label sets at every step).
const GROUPING_CACHE_LIMIT: usize = 1 << 20;

/// The group keys of one aggregation, kept across the steps of a query: each input label
/// set is mapped to a group id once (by the address of its shared pairs, the same at every
/// step for series read from a step table) instead of rebuilding and hashing its key labels
/// at every step.
#[derive(Default)]
pub(crate) struct Grouping {
    /// Input label-set address → (that label set, kept so the address cannot be reused
    /// by another set while cached; group id).
    by_addr: AddrMap<(Labels, usize)>,
    ids: HashMap<Labels, usize>,
    pub(crate) keys: Vec<Labels>,
}

impl Grouping {
    pub(crate) fn id(&mut self, l: &Labels, modifier: &Option<LabelModifier>) -> usize {
        if let Some((_, id)) = self.by_addr.get(&l.addr()) {
            return *id;
        }
        let key = group_labels(l, modifier);
        let next = self.keys.len();
        let id = *self.ids.entry(key).or_insert_with_key(|k| {
            self.keys.push(k.clone());
            next
        });
        if self.by_addr.len() >= GROUPING_CACHE_LIMIT {
            self.by_addr.clear();
        }
        self.by_addr.insert(l.addr(), (l.clone(), id));
        id
    }
}

/// Whether operator `op` folds each group into one [`Acc`] as the samples come (`sum`,
/// `avg`, `count`, `group`, `min`, `max`): no per-group member lists.
pub(crate) fn folds(op: TokenId) -> bool {
    matches!(op, T_SUM | T_AVG | T_COUNT | T_GROUP | T_MIN | T_MAX)
}

/// One group's running fold for the operators of [`folds`]: the same arithmetic in the
/// same (input) order as folding the group's collected members, so the same result.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Acc {
    sum: f64,
    c: f64,
    n: f64,
    /// Minimum or maximum so far (NaN: none yet, or only NaN).
    m: f64,
    mean: kahan::Mean,
}

impl Default for Acc {
    fn default() -> Acc {
        Acc {
            sum: 0.0,
            c: 0.0,
            n: 0.0,
            m: f64::NAN,
            mean: kahan::Mean::default(),
        }
    }
}

impl Acc {
    /// True before the first value.
    pub(crate) fn is_empty(&self) -> bool {
        self.n == 0.0
    }

    /// Folds `v` in for operator `op`.
    pub(crate) fn add(&mut self, op: TokenId, v: f64) {
        match op {
            T_SUM => (self.sum, self.c) = kahan::inc(v, self.sum, self.c),
            T_AVG => self.mean.add(v),
            T_MIN if v < self.m || self.m.is_nan() => self.m = v,
            T_MAX if v > self.m || self.m.is_nan() => self.m = v,
            _ => {}
        }
        self.n += 1.0;
    }

    /// The group's value for operator `op`.
    pub(crate) fn value(&self, op: TokenId) -> f64 {
        match op {
            T_SUM => self.sum + self.c,
            T_AVG => self.mean.value(),
            T_COUNT => self.n,
            T_GROUP => 1.0,
            _ => self.m,
        }
    }
}

/// The operators of [`folds`] over one step's input, one [`Acc`] per group in first-seen
/// group order; `None` for the other operators.
fn streamed(
    op: TokenId,
    grouping: &mut Grouping,
    modifier: &Option<LabelModifier>,
    input: &[Sample],
    t: i64,
) -> Option<Vec<Sample>> {
    if !folds(op) {
        return None;
    }
    // Group id → position in `acc`.
    let mut slot: Vec<usize> = Vec::new();
    let mut acc: Vec<(usize, Acc)> = Vec::new();
    for s in input {
        let id = grouping.id(&s.labels, modifier);
        if slot.len() <= id {
            slot.resize(id + 1, usize::MAX);
        }
        let pos = &mut slot[id];
        if *pos == usize::MAX {
            *pos = acc.len();
            acc.push((id, Acc::default()));
        }
        acc[*pos].1.add(op, s.v);
    }
    Some(
        acc.into_iter()
            .map(|(id, a)| Sample {
                labels: grouping.keys.get(id).cloned().unwrap_or_default(),
                t,
                v: a.value(op),
            })
            .collect(),
    )
}

pub(crate) fn eval(ctx: &mut Ctx<'_>, a: &AggregateExpr, t: i64) -> Result<Val, QueryError> {
    let op = a.op.id();
    if !matches!(
        op,
        T_SUM
            | T_AVG
            | T_COUNT
            | T_COUNT_VALUES
            | T_GROUP
            | T_MIN
            | T_MAX
            | T_STDDEV
            | T_STDVAR
            | T_QUANTILE
            | T_TOPK
            | T_LIMITK
            | T_BOTTOMK
    ) {
        return Err(QueryError::bad(format!(
            "aggregation {} is not supported by Strata's evaluator yet",
            a.op
        )));
    }
    let mut param = 0.0;
    let mut label = String::new();
    if let Some(p) = &a.param {
        if op == T_COUNT_VALUES {
            label = ctx.string(p, t)?;
        } else {
            param = ctx.scalar(p, t)?;
        }
    }
    if let Some(out) = ctx.aggregate_by_table(a, t)? {
        return Ok(Val::Vector(out));
    }
    let input = ctx.vector(&a.expr, t)?;
    // Group the samples, keeping first-seen group order.
    let mut groups: Vec<(Labels, Vec<Sample>)> = Vec::new();
    if op == T_COUNT_VALUES {
        let mut index: HashMap<Labels, usize> = HashMap::new();
        for s in input {
            let key = group_labels(&s.labels, &a.modifier).with(&label, &format_float(s.v));
            let i = *index.entry(key.clone()).or_insert_with(|| {
                groups.push((key, Vec::new()));
                groups.len() - 1
            });
            groups[i].1.push(s);
        }
    } else {
        let grouping = ctx.groupings.entry(a as *const _ as usize).or_default();
        if let Some(out) = streamed(op, grouping, &a.modifier, &input, t) {
            return Ok(Val::Vector(out));
        }
        let ids: Vec<usize> = input
            .iter()
            .map(|s| grouping.id(&s.labels, &a.modifier))
            .collect();
        // Group id → position in `groups` at this step.
        let mut slot = vec![usize::MAX; grouping.keys.len()];
        for (s, id) in input.into_iter().zip(ids) {
            let Some(pos) = slot.get_mut(id) else {
                continue;
            };
            if *pos == usize::MAX {
                *pos = groups.len();
                groups.push((
                    grouping.keys.get(id).cloned().unwrap_or_default(),
                    Vec::new(),
                ));
            }
            if let Some(g) = groups.get_mut(*pos) {
                g.1.push(s);
            }
        }
    }
    if op == T_TOPK || op == T_BOTTOMK || op == T_LIMITK {
        if param.is_nan() || param.abs() > 1e15 {
            return Err(QueryError::bad(format!(
                "scalar value {param} overflows int64: use a smaller k"
            )));
        }
        let k = param as i64;
        let mut out = Vec::new();
        for (_, mut members) in groups {
            if k < 1 {
                continue;
            }
            // limitk keeps the first k of each group in input (label) order.
            if op == T_LIMITK {
                members.truncate(k as usize);
                out.extend(members.into_iter().map(|s| Sample { t, ..s }));
                continue;
            }
            members.sort_by(|x, y| {
                let ord = match (x.v.is_nan(), y.v.is_nan()) {
                    (true, true) => std::cmp::Ordering::Equal,
                    (true, false) => return std::cmp::Ordering::Greater,
                    (false, true) => return std::cmp::Ordering::Less,
                    _ => x.v.total_cmp(&y.v),
                };
                if op == T_TOPK { ord.reverse() } else { ord }
            });
            members.truncate(k as usize);
            out.extend(members.into_iter().map(|s| Sample { t, ..s }));
        }
        return Ok(Val::Vector(out));
    }
    let out = groups
        .into_iter()
        .map(|(labels, members)| {
            let vals = members.iter().map(|s| s.v);
            let n = members.len() as f64;
            let v = match op {
                T_SUM => kahan::sum(vals),
                T_AVG => kahan::mean(vals),
                T_COUNT | T_COUNT_VALUES => n,
                T_GROUP => 1.0,
                T_MIN => vals.fold(f64::NAN, |m, v| if v < m || m.is_nan() { v } else { m }),
                T_MAX => vals.fold(f64::NAN, |m, v| if v > m || m.is_nan() { v } else { m }),
                T_STDDEV => kahan::variance(vals).sqrt(),
                T_STDVAR => kahan::variance(vals),
                T_QUANTILE => quantile(param, vals.collect()),
                // Other operators were refused before grouping.
                _ => f64::NAN,
            };
            Sample { labels, t, v }
        })
        .collect();
    Ok(Val::Vector(out))
}
