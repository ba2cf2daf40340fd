//! The evaluator core: one step at a time over data loaded once per query.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, UNIX_EPOCH};

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::{AtModifier, Expr, Offset, SubqueryExpr, VectorSelector};

use super::{EngineConfig, QueryError};
use crate::labels::{Labels, METRIC_NAME};
use crate::store::{Store, is_stale};

/// One element of an instant vector during evaluation; `t` is the sample's own timestamp
/// for a plain selector (what `timestamp()` returns) and the evaluation time otherwise.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub(crate) labels: Labels,
    pub(crate) t: i64,
    pub(crate) v: f64,
}

/// One series of a range vector: the points inside the window.
#[derive(Debug, Clone)]
pub(crate) struct RangeSeries {
    pub(crate) labels: Labels,
    pub(crate) points: Vec<(i64, f64)>,
}

/// A range vector plus its window `(start, end]`, which extrapolating functions need.
#[derive(Debug, Clone)]
pub(crate) struct Matrix {
    pub(crate) series: Vec<RangeSeries>,
    pub(crate) start: i64,
    pub(crate) end: i64,
}

/// An intermediate value.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    Scalar(f64),
    Str(String),
    Vector(Vec<Sample>),
    Matrix(Matrix),
}

impl Val {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Val::Scalar(_) => "scalar",
            Val::Str(_) => "string",
            Val::Vector(_) => "instant vector",
            Val::Matrix(_) => "range vector",
        }
    }
}

type Loaded = Arc<Vec<(Labels, Vec<(i64, f64)>)>>;

/// Per-query state: the data each selector needs, loaded once, and subquery results.
pub(crate) struct Ctx<'a> {
    cfg: &'a EngineConfig,
    start: i64,
    end: i64,
    data: HashMap<usize, Loaded>,
    subqueries: HashMap<(usize, i64), Vec<Sample>>,
    deadline: Instant,
}

pub(crate) fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        Some(Offset::Pos(d)) => ms(*d),
        Some(Offset::Neg(d)) => -ms(*d),
        None => 0,
    }
}

/// The matchers of a selector, metric name included (`or` alternatives are flattened by
/// the caller through [`selector_alternatives`]).
pub(crate) fn selector_matchers(vs: &VectorSelector) -> Vec<Matcher> {
    let mut out = vs.matchers.matchers.clone();
    if let Some(name) = &vs.name
        && !out.iter().any(|m| m.name == METRIC_NAME)
    {
        out.push(Matcher::new(MatchOp::Equal, METRIC_NAME, name));
    }
    out
}

/// Each `or`-separated alternative of a selector as its own matcher list.
fn selector_alternatives(vs: &VectorSelector) -> Vec<Vec<Matcher>> {
    if vs.matchers.or_matchers.is_empty() {
        return vec![selector_matchers(vs)];
    }
    vs.matchers
        .or_matchers
        .iter()
        .map(|alt| {
            let mut m = alt.clone();
            if let Some(name) = &vs.name {
                m.push(Matcher::new(MatchOp::Equal, METRIC_NAME, name));
            }
            m
        })
        .collect()
}

/// Errors when two elements of a result share a label set (Prometheus does the same).
pub(crate) fn check_unique(samples: &[Sample]) -> Result<(), QueryError> {
    if samples.len() < 2 {
        return Ok(());
    }
    let mut seen = std::collections::HashSet::with_capacity(samples.len());
    for s in samples {
        if !seen.insert(&s.labels) {
            return Err(QueryError::exec(format!(
                "vector cannot contain metrics with the same labelset: {} (add a by/without clause or label_replace to tell them apart)",
                s.labels
            )));
        }
    }
    Ok(())
}

impl<'a> Ctx<'a> {
    /// Loads, once, every sample each selector of `ast` can need for evaluations in `[start, end]`.
    pub(crate) fn new(
        store: &Store,
        cfg: &'a EngineConfig,
        start: i64,
        end: i64,
        ast: &Expr,
    ) -> Result<Ctx<'a>, QueryError> {
        let mut ctx = Ctx {
            cfg,
            start,
            end,
            data: HashMap::new(),
            subqueries: HashMap::new(),
            deadline: Instant::now() + cfg.timeout,
        };
        let mut needs: HashMap<usize, (&VectorSelector, i64, i64)> = HashMap::new();
        ctx.plan(ast, start, end, &mut needs);
        let mut loaded = 0usize;
        for (key, (vs, mint, maxt)) in needs {
            let mut series: Vec<(Labels, Vec<(i64, f64)>)> = Vec::new();
            for alt in selector_alternatives(vs) {
                series.extend(store.select(&alt, mint, maxt));
            }
            series.sort_by(|a, b| a.0.cmp(&b.0));
            series.dedup_by(|a, b| a.0 == b.0);
            loaded += series.iter().map(|s| s.1.len()).sum::<usize>();
            if loaded > cfg.max_samples {
                return Err(QueryError::exec(format!(
                    "query processing would load too many samples into memory (more than {}): narrow the selectors or the time range",
                    cfg.max_samples
                )));
            }
            ctx.data.insert(key, Arc::new(series));
        }
        Ok(ctx)
    }

    fn at_time(&self, at: &Option<AtModifier>) -> Option<i64> {
        match at {
            None => None,
            Some(AtModifier::Start) => Some(self.start),
            Some(AtModifier::End) => Some(self.end),
            Some(AtModifier::At(st)) => Some(match st.duration_since(UNIX_EPOCH) {
                Ok(d) => ms(d),
                Err(e) => -ms(e.duration()),
            }),
        }
    }

    /// Walks the tree recording, per selector, the time range it will read.
    fn plan<'e>(
        &self,
        e: &'e Expr,
        s: i64,
        t: i64,
        needs: &mut HashMap<usize, (&'e VectorSelector, i64, i64)>,
    ) {
        let mut need = |vs: &'e VectorSelector, back: i64| {
            let (s, t) = self.at_time(&vs.at).map_or((s, t), |a| (a, a));
            let off = offset_ms(&vs.offset);
            let (mint, maxt) = (s - off - back, t - off);
            let entry = needs
                .entry(vs as *const _ as usize)
                .or_insert((vs, mint, maxt));
            entry.1 = entry.1.min(mint);
            entry.2 = entry.2.max(maxt);
        };
        match e {
            Expr::VectorSelector(vs) => need(vs, ms(self.cfg.lookback)),
            Expr::MatrixSelector(m) => need(&m.vs, ms(m.range)),
            Expr::Subquery(sq) => {
                let (s, t) = self.at_time(&sq.at).map_or((s, t), |a| (a, a));
                let off = offset_ms(&sq.offset);
                self.plan(&sq.expr, s - off - ms(sq.range), t - off, needs);
            }
            Expr::Aggregate(a) => {
                self.plan(&a.expr, s, t, needs);
                if let Some(p) = &a.param {
                    self.plan(p, s, t, needs);
                }
            }
            Expr::Unary(u) => self.plan(&u.expr, s, t, needs),
            Expr::Binary(b) => {
                self.plan(&b.lhs, s, t, needs);
                self.plan(&b.rhs, s, t, needs);
            }
            Expr::Paren(p) => self.plan(&p.expr, s, t, needs),
            Expr::Call(c) => c.args.args.iter().for_each(|a| self.plan(a, s, t, needs)),
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
        }
    }

    fn check_deadline(&self) -> Result<(), QueryError> {
        if Instant::now() > self.deadline {
            return Err(QueryError {
                kind: super::ErrorKind::Timeout,
                message: format!(
                    "query timed out after {:?}: narrow the query or raise the timeout",
                    self.cfg.timeout
                ),
            });
        }
        Ok(())
    }

    /// Evaluates `e` at time `t` (ms).
    pub(crate) fn eval(&mut self, e: &Expr, t: i64) -> Result<Val, QueryError> {
        match e {
            Expr::NumberLiteral(n) => Ok(Val::Scalar(n.val)),
            Expr::StringLiteral(s) => Ok(Val::Str(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, t),
            Expr::Unary(u) => Ok(match self.eval(&u.expr, t)? {
                Val::Scalar(v) => Val::Scalar(-v),
                Val::Vector(vs) => Val::Vector(
                    vs.into_iter()
                        .map(|s| Sample {
                            labels: s.labels.without_name(),
                            t,
                            v: -s.v,
                        })
                        .collect(),
                ),
                other => {
                    return Err(QueryError::bad(format!(
                        "unary minus needs a scalar or instant vector, got {}",
                        other.type_name()
                    )));
                }
            }),
            Expr::VectorSelector(vs) => {
                self.check_deadline()?;
                Ok(Val::Vector(self.instant_selector(vs, t)))
            }
            Expr::MatrixSelector(m) => {
                self.check_deadline()?;
                let te = self.at_time(&m.vs.at).unwrap_or(t) - offset_ms(&m.vs.offset);
                Ok(Val::Matrix(self.range_selector(
                    &m.vs,
                    te - ms(m.range),
                    te,
                )))
            }
            Expr::Subquery(sq) => self.subquery(sq, t),
            Expr::Aggregate(a) => super::aggregate::eval(self, a, t),
            Expr::Binary(b) => super::binary::eval(self, b, t),
            Expr::Call(c) => super::functions::call(self, c, t),
            Expr::Extension(_) => Err(QueryError::bad("extension expressions are not supported")),
        }
    }

    fn loaded(&self, vs: &VectorSelector) -> Loaded {
        self.data
            .get(&(vs as *const _ as usize))
            .cloned()
            .unwrap_or_default()
    }

    fn instant_selector(&self, vs: &VectorSelector, t: i64) -> Vec<Sample> {
        let te = self.at_time(&vs.at).unwrap_or(t) - offset_ms(&vs.offset);
        let lookback = ms(self.cfg.lookback);
        let data = self.loaded(vs);
        data.iter()
            .filter_map(|(labels, pts)| {
                let i = pts.partition_point(|p| p.0 <= te);
                let (st, v) = *pts.get(i.checked_sub(1)?)?;
                (st > te - lookback && !is_stale(v)).then(|| Sample {
                    labels: labels.clone(),
                    t: st,
                    v,
                })
            })
            .collect()
    }

    /// Points of each series in the left-open window `(start, end]`, staleness markers removed.
    pub(crate) fn range_selector(&self, vs: &VectorSelector, start: i64, end: i64) -> Matrix {
        let data = self.loaded(vs);
        let series = data
            .iter()
            .filter_map(|(labels, pts)| {
                let a = pts.partition_point(|p| p.0 <= start);
                let b = pts.partition_point(|p| p.0 <= end);
                let points: Vec<(i64, f64)> = pts[a..b]
                    .iter()
                    .copied()
                    .filter(|p| !is_stale(p.1))
                    .collect();
                (!points.is_empty()).then(|| RangeSeries {
                    labels: labels.clone(),
                    points,
                })
            })
            .collect();
        Matrix { series, start, end }
    }

    fn subquery(&mut self, sq: &SubqueryExpr, t: i64) -> Result<Val, QueryError> {
        let te = self.at_time(&sq.at).unwrap_or(t) - offset_ms(&sq.offset);
        let step = sq.step.map(ms).unwrap_or(ms(self.cfg.subquery_step)).max(1);
        let start = te - ms(sq.range);
        // First step-aligned time inside the left-open window (start, te].
        let mut ts = start.div_euclid(step) * step;
        if ts <= start {
            ts += step;
        }
        let key = &*sq.expr as *const Expr as usize;
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut series: Vec<RangeSeries> = Vec::new();
        while ts <= te {
            self.check_deadline()?;
            let samples = match self.subqueries.get(&(key, ts)) {
                Some(s) => s.clone(),
                None => {
                    let s = match self.eval(&sq.expr, ts)? {
                        Val::Vector(v) => v,
                        Val::Scalar(v) => vec![Sample {
                            labels: Labels::default(),
                            t: ts,
                            v,
                        }],
                        other => {
                            return Err(QueryError::bad(format!(
                                "subquery is only allowed on instant vector or scalar, got {}",
                                other.type_name()
                            )));
                        }
                    };
                    self.subqueries.insert((key, ts), s.clone());
                    s
                }
            };
            for s in samples {
                let i = *index.entry(s.labels.clone()).or_insert_with(|| {
                    series.push(RangeSeries {
                        labels: s.labels.clone(),
                        points: Vec::new(),
                    });
                    series.len() - 1
                });
                series[i].points.push((ts, s.v));
            }
            ts += step;
        }
        Ok(Val::Matrix(Matrix {
            series,
            start,
            end: te,
        }))
    }

    /// Evaluates an argument that must be a scalar.
    pub(crate) fn scalar(&mut self, e: &Expr, t: i64) -> Result<f64, QueryError> {
        match self.eval(e, t)? {
            Val::Scalar(v) => Ok(v),
            other => Err(QueryError::bad(format!(
                "expected a scalar, got {}",
                other.type_name()
            ))),
        }
    }

    /// Evaluates an argument that must be an instant vector.
    pub(crate) fn vector(&mut self, e: &Expr, t: i64) -> Result<Vec<Sample>, QueryError> {
        match self.eval(e, t)? {
            Val::Vector(v) => Ok(v),
            other => Err(QueryError::bad(format!(
                "expected an instant vector, got {}",
                other.type_name()
            ))),
        }
    }

    /// Evaluates an argument that must be a range vector.
    pub(crate) fn matrix(&mut self, e: &Expr, t: i64) -> Result<Matrix, QueryError> {
        match self.eval(e, t)? {
            Val::Matrix(m) => Ok(m),
            other => Err(QueryError::bad(format!(
                "expected a range vector, got {}",
                other.type_name()
            ))),
        }
    }

    /// Evaluates an argument that must be a string literal.
    pub(crate) fn string(&mut self, e: &Expr, t: i64) -> Result<String, QueryError> {
        match self.eval(e, t)? {
            Val::Str(s) => Ok(s),
            other => Err(QueryError::bad(format!(
                "expected a string, got {}",
                other.type_name()
            ))),
        }
    }
}
