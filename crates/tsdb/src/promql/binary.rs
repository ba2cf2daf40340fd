//! Binary operators: arithmetic, comparisons (with `bool`), set operators and vector
//! matching (`on`/`ignoring`, `group_left`/`group_right`).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use promql_parser::parser::token::{
    T_ADD, T_ATAN2, T_DIV, T_EQLC, T_GTE, T_GTR, T_LAND, T_LOR, T_LSS, T_LTE, T_LUNLESS, T_MOD,
    T_MUL, T_NEQ, T_POW, T_SUB, TokenId,
};
use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};

use super::QueryError;
use super::eval::{Ctx, Sample, Val};
use crate::labels::{Labels, METRIC_NAME};

fn is_comparison(op: TokenId) -> bool {
    matches!(op, T_EQLC | T_NEQ | T_GTR | T_LSS | T_GTE | T_LTE)
}

/// Applies `op`; for comparisons returns `(lhs, kept)` as Prometheus' `vectorElemBinop`.
fn apply(op: TokenId, l: f64, r: f64) -> Result<(f64, bool), QueryError> {
    Ok(match op {
        T_ADD => (l + r, true),
        T_SUB => (l - r, true),
        T_MUL => (l * r, true),
        T_DIV => (l / r, true),
        T_POW => (l.powf(r), true),
        T_MOD => (l % r, true),
        T_ATAN2 => (l.atan2(r), true),
        T_EQLC => (l, l == r),
        T_NEQ => (l, l != r),
        T_GTR => (l, l > r),
        T_LSS => (l, l < r),
        T_GTE => (l, l >= r),
        T_LTE => (l, l <= r),
        _ => {
            return Err(QueryError::bad(format!(
                "binary operator (token {op}) is not supported here"
            )));
        }
    })
}

pub(crate) fn eval(ctx: &mut Ctx<'_>, b: &BinaryExpr, t: i64) -> Result<Val, QueryError> {
    let op = b.op.id();
    let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
    let lhs = ctx.eval(&b.lhs, t)?;
    let rhs = ctx.eval(&b.rhs, t)?;
    match (lhs, rhs) {
        (Val::Scalar(l), Val::Scalar(r)) => {
            let (v, keep) = apply(op, l, r)?;
            Ok(Val::Scalar(if is_comparison(op) {
                f64::from(u8::from(keep))
            } else {
                v
            }))
        }
        (Val::Vector(v), Val::Scalar(s)) => vector_scalar(op, v, s, false, return_bool, t),
        (Val::Scalar(s), Val::Vector(v)) => vector_scalar(op, v, s, true, return_bool, t),
        (Val::Vector(l), Val::Vector(r)) => match op {
            T_LAND | T_LOR | T_LUNLESS => Ok(Val::Vector(set_op(op, l, r, b))),
            _ => vector_vector(op, l, r, b, return_bool, t),
        },
        (l, r) => Err(QueryError::bad(format!(
            "binary operator needs scalars or instant vectors, got {} and {}",
            l.type_name(),
            r.type_name()
        ))),
    }
}

fn vector_scalar(
    op: TokenId,
    v: Vec<Sample>,
    s: f64,
    swap: bool,
    return_bool: bool,
    t: i64,
) -> Result<Val, QueryError> {
    let mut out = Vec::with_capacity(v.len());
    for e in v {
        let (l, r) = if swap { (s, e.v) } else { (e.v, s) };
        let (mut value, keep) = apply(op, l, r)?;
        if is_comparison(op) && swap {
            value = e.v;
        }
        if return_bool {
            value = f64::from(u8::from(keep));
        } else if !keep {
            continue;
        }
        let labels = if !is_comparison(op) || return_bool {
            e.labels.without_name()
        } else {
            e.labels
        };
        out.push(Sample {
            labels,
            t,
            v: value,
        });
    }
    Ok(Val::Vector(out))
}

/// The matching signature of a sample under `on(...)`/`ignoring(...)` (default: all labels
/// but the metric name).
fn signature(l: &Labels, matching: Option<&LabelModifier>) -> Labels {
    match matching {
        Some(LabelModifier::Include(on)) => l.filter(|n| on.labels.iter().any(|o| o == n)),
        Some(LabelModifier::Exclude(ign)) => {
            l.filter(|n| n != METRIC_NAME && !ign.labels.iter().any(|o| o == n))
        }
        None => l.without_name(),
    }
}

fn set_op(op: TokenId, l: Vec<Sample>, r: Vec<Sample>, b: &BinaryExpr) -> Vec<Sample> {
    let matching = b.modifier.as_ref().and_then(|m| m.matching.as_ref());
    let rsigs: HashSet<Labels> = r.iter().map(|s| signature(&s.labels, matching)).collect();
    match op {
        T_LAND => l
            .into_iter()
            .filter(|s| rsigs.contains(&signature(&s.labels, matching)))
            .collect(),
        T_LUNLESS => l
            .into_iter()
            .filter(|s| !rsigs.contains(&signature(&s.labels, matching)))
            .collect(),
        _ => {
            let lsigs: HashSet<Labels> = l.iter().map(|s| signature(&s.labels, matching)).collect();
            let mut out = l;
            out.extend(
                r.into_iter()
                    .filter(|s| !lsigs.contains(&signature(&s.labels, matching))),
            );
            out
        }
    }
}

fn vector_vector(
    op: TokenId,
    l: Vec<Sample>,
    r: Vec<Sample>,
    b: &BinaryExpr,
    return_bool: bool,
    t: i64,
) -> Result<Val, QueryError> {
    let (card, matching) = match &b.modifier {
        Some(m) => (m.card.clone(), m.matching.as_ref()),
        None => (VectorMatchCardinality::OneToOne, None),
    };
    let (include, swapped) = match &card {
        VectorMatchCardinality::ManyToOne(ls) => (ls.labels.clone(), false),
        VectorMatchCardinality::OneToMany(ls) => (ls.labels.clone(), true),
        _ => (Vec::new(), false),
    };
    let one_to_one = matches!(card, VectorMatchCardinality::OneToOne);
    // The "many" side drives; the "one" side is looked up by signature.
    let (many, one) = if swapped { (r, l) } else { (l, r) };
    let mut one_by_sig: HashMap<Labels, &Sample> = HashMap::new();
    for s in &one {
        if one_by_sig
            .insert(signature(&s.labels, matching), s)
            .is_some()
        {
            let side = if swapped { "left" } else { "right" };
            return Err(QueryError::exec(format!(
                "found duplicate series for the match group {} on the {side} hand-side of the operation: many-to-many matching not allowed: matching labels must be unique on one side",
                signature(&s.labels, matching)
            )));
        }
    }
    // `fill(v)`, `fill_left(v)`, `fill_right(v)`: a missing operand takes the fill value
    // (labelled with the match signature) instead of dropping the match group.
    let fill = b
        .modifier
        .as_ref()
        .map(|m| m.fill_values.clone())
        .unwrap_or_default();
    // As Prometheus (and its tests), also under group_right: the right fill stands in
    // for a missing "one" side, the left fill for a missing "many" side.
    let (fill_one, fill_many) = (fill.rhs, fill.lhs);
    // (many side, one side, match signature) of every operation to perform.
    let mut pairs: Vec<(Sample, Cow<'_, Sample>, Labels)> = Vec::new();
    let mut matched_one: HashSet<Labels> = HashSet::new();
    for m in many {
        let sig = signature(&m.labels, matching);
        let o = match (one_by_sig.get(&sig), fill_one) {
            (Some(o), _) => Cow::Borrowed(*o),
            (None, Some(v)) => Cow::Owned(Sample {
                labels: sig.clone(),
                t,
                v,
            }),
            (None, None) => continue,
        };
        if fill_many.is_some() {
            matched_one.insert(sig.clone());
        }
        pairs.push((m, o, sig));
    }
    if let Some(v) = fill_many {
        for o in &one {
            let sig = signature(&o.labels, matching);
            if !matched_one.contains(&sig) {
                let m = Sample {
                    labels: sig.clone(),
                    t,
                    v,
                };
                pairs.push((m, Cow::Borrowed(o), sig));
            }
        }
    }
    let drop_name = !is_comparison(op) || return_bool;
    let mut matched_sigs: HashSet<Labels> = HashSet::new();
    let mut produced: HashSet<Labels> = HashSet::new();
    let mut out = Vec::new();
    for (m, o, sig) in pairs {
        if one_to_one && !matched_sigs.insert(sig.clone()) {
            return Err(QueryError::exec(format!(
                "multiple matches for labels {sig}: many-to-one matching must be explicit (group_left/group_right)"
            )));
        }
        let (lv, rv) = if swapped { (o.v, m.v) } else { (m.v, o.v) };
        let (mut value, keep) = apply(op, lv, rv)?;
        if return_bool {
            value = f64::from(u8::from(keep));
        } else if !keep {
            continue;
        }
        let mut labels = if drop_name {
            m.labels.without_name()
        } else {
            m.labels.clone()
        };
        if one_to_one {
            labels = match matching {
                Some(LabelModifier::Include(on)) => {
                    labels.filter(|n| on.labels.iter().any(|x| x == n))
                }
                Some(LabelModifier::Exclude(ign)) => {
                    labels.filter(|n| !ign.labels.iter().any(|x| x == n))
                }
                None => labels,
            };
        }
        for name in &include {
            labels = labels.with(name, o.labels.get(name).unwrap_or(""));
        }
        if !one_to_one && !produced.insert(labels.clone()) {
            return Err(QueryError::exec(format!(
                "multiple matches for labels {labels}: grouping labels must ensure unique matches"
            )));
        }
        out.push(Sample {
            labels,
            t,
            v: value,
        });
    }
    Ok(Val::Vector(out))
}
