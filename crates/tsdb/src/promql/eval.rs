//! The evaluator core: one step at a time over data loaded once per query.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::{
    AggregateExpr, AtModifier, Call, Expr, Offset, SubqueryExpr, VectorSelector,
};

use super::aggregate::{Acc, Grouping};
use super::budget::{Budget, QueryOptions};
use super::functions::{Histograms, is_window_fn, keeps_name, window_fn};
use super::over_time::{CounterWindow, Quotients, extrapolated_with};
use super::{EngineConfig, QueryError};
use crate::labels::{AddrMap, Labels, METRIC_NAME};
use crate::spread::Spread;
use crate::store::{SeriesView, Store, decode_views, is_stale};

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

impl Val {
    /// The samples of an instant vector, or a scalar as one sample without labels;
    /// `err(type name)` describes any other value.
    pub(crate) fn into_samples(
        self,
        t: i64,
        err: impl FnOnce(&str) -> String,
    ) -> Result<Vec<Sample>, QueryError> {
        match self {
            Val::Vector(v) => Ok(v),
            Val::Scalar(v) => Ok(vec![Sample {
                labels: Labels::default(),
                t,
                v,
            }]),
            other => Err(QueryError::bad(err(other.type_name()))),
        }
    }
}

/// Gathers the instant vectors of successive steps into one series per label set, in
/// first-seen order (range queries and subqueries).
#[derive(Default)]
pub(crate) struct SeriesCollector {
    index: HashMap<Labels, usize>,
    /// Fast path: address of `series[i].labels` → i (step tables and aggregations hand out
    /// the same shared label set at every step).
    by_addr: AddrMap<usize>,
    pub(crate) series: Vec<RangeSeries>,
}

impl SeriesCollector {
    /// Appends `samples`, evaluated at `t`, to their series.
    pub(crate) fn push(&mut self, t: i64, samples: Vec<Sample>) {
        for s in samples {
            let i = match self.by_addr.get(&s.labels.addr()) {
                Some(&i) => i,
                None => *self.index.entry(s.labels.clone()).or_insert_with(|| {
                    self.by_addr.insert(s.labels.addr(), self.series.len());
                    self.series.push(RangeSeries {
                        labels: s.labels.clone(),
                        points: Vec::new(),
                    });
                    self.series.len() - 1
                }),
            };
            if let Some(series) = self.series.get_mut(i) {
                series.points.push((t, s.v));
            }
        }
    }
}

type Loaded = Arc<Vec<(Labels, Vec<(i64, f64)>)>>;

/// A range query's read of one selector: the chunks of each matching series overlapping
/// `[mint, maxt]`, sorted by labels, decoded only where used: each part of a step table
/// decodes the stretch its steps need into one reused buffer (no copy of every point),
/// and anything else decodes them whole once ([`Ctx::loaded`]).
struct Views {
    series: Vec<SeriesView>,
    mint: i64,
    maxt: i64,
    /// Whether staleness markers are kept (instant selectors; range selectors drop them).
    stale: bool,
}

/// The series a step table is computed from.
#[derive(Clone)]
enum Rows {
    /// Decoded points (what [`Ctx::loaded`] holds).
    Points(Loaded),
    /// Chunks each part decodes for itself.
    Chunks(Arc<Views>),
}

impl Rows {
    fn len(&self) -> usize {
        match self {
            Rows::Points(p) => p.len(),
            Rows::Chunks(c) => c.series.len(),
        }
    }

    /// Each series' labels, in order.
    fn labels(&self) -> Box<dyn Iterator<Item = &Labels> + '_> {
        match self {
            Rows::Points(p) => Box::new(p.iter().map(|(l, _)| l)),
            Rows::Chunks(c) => Box::new(c.series.iter().map(|v| &v.labels)),
        }
    }

    /// Calls `f` with each series' index and its points, all of those in `[mint, maxt]`
    /// at least (decoded into `buf` for chunks; cells whose windows lie inside it are the
    /// same either way).
    fn each(
        &self,
        (mint, maxt): (i64, i64),
        mut f: impl FnMut(u32, &[(i64, f64)]) -> Result<(), QueryError>,
    ) -> Result<(), QueryError> {
        match self {
            Rows::Points(p) => {
                for (i, (_, pts)) in (0u32..).zip(p.iter()) {
                    f(i, pts)?;
                }
            }
            Rows::Chunks(c) => {
                let (mint, maxt) = (mint.max(c.mint), maxt.min(c.maxt));
                let mut buf = Vec::new();
                for (i, v) in (0u32..).zip(&c.series) {
                    buf.clear();
                    v.read_into(mint, maxt, &mut buf);
                    if !c.stale {
                        buf.retain(|p| !is_stale(p.1));
                    }
                    f(i, &buf)?;
                }
            }
        }
        Ok(())
    }
}

/// A `rate`/`increase` selector's read: its bounds `[mint, maxt]` and each series' window.
type CounterWindows = (i64, i64, Vec<(Labels, CounterWindow)>);

/// Largest step table (series × steps) built; bigger ones fall back to step-by-step
/// evaluation, which needs less memory.
const TABLE_LIMIT: usize = 10_000_000;

/// The result of one selector or range function at every step of a range query, computed
/// series by series with cursors sliding over the decoded samples (no window copies, labels
/// derived once per series instead of once per step).
struct StepTable {
    labels: Vec<Labels>,
    /// Per step: (index into `labels`, sample timestamp, value) of each series present.
    steps: Vec<Vec<(u32, i64, f64)>>,
}

/// Where one series' window is while a step table is built: points `lo..hi` are in it,
/// and `resets` of them are below the point before them (counted only for `rate` and
/// `increase`, whose per-window scan for counter resets it lets them skip); `quotients`
/// are the previous window's divisions, which the next one mostly repeats.
struct Cursor {
    lo: usize,
    hi: usize,
    resets: usize,
    quotients: Quotients,
}

/// An expression a range query computes as a table, series by series with a [`Cursor`]:
/// an instant selector, or a one-argument range function (`rate(x[5m])`,
/// `max_over_time(x[1h])`, …) over a matrix selector, neither with `@`.
pub(crate) struct Cells<'e> {
    vs: &'e VectorSelector,
    off: i64,
    kind: CellKind,
}

enum CellKind {
    Selector {
        lookback: i64,
    },
    /// `counter`: `rate` or `increase`, `is_rate`: `rate` (decided once, not per cell).
    Window {
        name: &'static str,
        range: i64,
        counter: bool,
        is_rate: bool,
    },
}

impl<'e> Cells<'e> {
    /// The cells of `e`, if it has that form (`lookback`: the engine's, in ms).
    fn of(e: &'e Expr, lookback: i64) -> Option<Cells<'e>> {
        let (vs, kind) = match e {
            Expr::VectorSelector(vs) => (vs, CellKind::Selector { lookback }),
            Expr::Call(c) => {
                let name = c.func.name;
                let [arg] = c.args.args.as_slice() else {
                    return None;
                };
                let Expr::MatrixSelector(m) = &**arg else {
                    return None;
                };
                if !is_window_fn(name) {
                    return None;
                }
                let (range, counter) = (ms(m.range), matches!(name, "rate" | "increase"));
                let kind = CellKind::Window {
                    name,
                    range,
                    counter,
                    is_rate: name == "rate",
                };
                (&m.vs, kind)
            }
            _ => return None,
        };
        if vs.at.is_some() {
            return None;
        }
        Some(Cells {
            vs,
            off: offset_ms(&vs.offset),
            kind,
        })
    }

    /// The samples the cells of steps `first..=last` read: `[first - back, last]` shifted
    /// by the offset (the windows are left-open, so this holds one more instant than
    /// needed, as the planned read does).
    fn span(&self, first: i64, last: i64) -> (i64, i64) {
        let back = match self.kind {
            CellKind::Selector { lookback } => lookback,
            CellKind::Window { range, .. } => range,
        };
        (first - self.off - back, last - self.off)
    }

    /// The labels a series' results carry.
    fn labels(&self, l: &Labels) -> Labels {
        match self.kind {
            CellKind::Window { name, .. } if !keeps_name(name) => l.without_name(),
            _ => l.clone(),
        }
    }

    /// A series' cursor placed for a first step at `t`: the state [`Cells::at`] reaches by
    /// sliding there from the first point (binary searches and the window's resets instead
    /// of a walk from the start: a part of a spread range query starts mid-range).
    fn cursor(&self, pts: &[(i64, f64)], t: i64) -> Cursor {
        let te = t - self.off;
        match self.kind {
            CellKind::Selector { .. } => Cursor {
                lo: 0,
                hi: pts.partition_point(|p| p.0 <= te),
                resets: 0,
                quotients: Quotients::default(),
            },
            CellKind::Window { range, counter, .. } => {
                let lo = pts.partition_point(|p| p.0 <= te - range);
                let hi = pts.partition_point(|p| p.0 <= te).max(lo);
                // What `at` keeps count of: points inside the window after its first that
                // are below the point before them.
                let resets = match pts.get(lo..hi) {
                    Some(w) if counter => w.windows(2).filter(|p| p[1].1 < p[0].1).count(),
                    _ => 0,
                };
                Cursor {
                    lo,
                    hi,
                    resets,
                    quotients: Quotients::default(),
                }
            }
        }
    }

    /// The result of one series at step time `t`, moving its cursor forward.
    #[inline]
    fn at(&self, pts: &[(i64, f64)], cur: &mut Cursor, t: i64) -> Option<(i64, f64)> {
        let te = t - self.off;
        match self.kind {
            CellKind::Selector { lookback } => {
                while pts.get(cur.hi).is_some_and(|p| p.0 <= te) {
                    cur.hi += 1;
                }
                let (st, v) = *pts.get(cur.hi.checked_sub(1)?)?;
                (st > te - lookback && !is_stale(v)).then_some((st, v))
            }
            CellKind::Window {
                name,
                range,
                counter,
                is_rate,
            } => {
                let ws = te - range;
                // Whether point `j` is below the one before it (a counter reset).
                let reset = |j: usize| j > 0 && pts[j].1 < pts[j - 1].1;
                while pts.get(cur.lo).is_some_and(|p| p.0 <= ws) {
                    cur.lo += 1;
                    if counter && cur.lo < cur.hi && reset(cur.lo) {
                        cur.resets -= 1;
                    }
                }
                while pts.get(cur.hi).is_some_and(|p| p.0 <= te) {
                    if counter && cur.hi > cur.lo && reset(cur.hi) {
                        cur.resets += 1;
                    }
                    cur.hi += 1;
                }
                let window = pts.get(cur.lo..cur.hi).filter(|w| !w.is_empty())?;
                let v = if counter {
                    // The window's resets are counted as it slides: without any, the
                    // per-window scan for them is skipped (same result).
                    let flags = (true, is_rate, cur.resets > 0);
                    extrapolated_with(window, ws, te, flags, &mut cur.quotients)
                } else {
                    window_fn(name, window, ws, te, t, 0.0)
                };
                Some((t, v?))
            }
        }
    }
}

/// Per-query state: the data each selector needs, loaded once, subquery results, and the
/// per-series work shared across the steps of a range query.
pub(crate) struct Ctx<'a> {
    cfg: &'a EngineConfig,
    start: i64,
    end: i64,
    /// Step of the range query; 0 for an instant query.
    step: i64,
    data: HashMap<usize, Loaded>,
    /// Per selector of a range query (by address): its chunks, decoded where used.
    views: HashMap<usize, Arc<Views>>,
    /// Per `rate`/`increase` selector read as [`CounterWindow`]s (by address): the bounds
    /// `[mint, maxt]` read and each series' window.
    windows: HashMap<usize, CounterWindows>,
    /// Per subquery (by address of its inner expression): its inner result at each step
    /// still inside its window (range query steps share most of them).
    subqueries: HashMap<usize, BTreeMap<i64, Vec<Sample>>>,
    /// Step tables by address of their expression; `None` marks a table too large to
    /// build (evaluated step by step instead).
    tables: HashMap<usize, Option<StepTable>>,
    /// Every step's result of an aggregation folded from a table (by its address; `None`:
    /// too large, aggregated step by step).
    folded: HashMap<usize, Option<Vec<Vec<Sample>>>>,
    /// Group keys of each aggregation (by address), cached across steps.
    pub(crate) groupings: HashMap<usize, Grouping>,
    /// The histograms of each `histogram_quantile` call (by address), cached across steps.
    pub(crate) histograms: HashMap<usize, Histograms>,
    budget: Budget,
    /// How far the decoding of selected series and the step tables spread over threads.
    spread: Spread,
    /// Current recursion depth of [`Ctx::eval`].
    depth: usize,
}

/// Series or points between two deadline checks in the evaluator's inner loops.
pub(crate) const CHECK_EVERY: usize = 1024;

/// Stack kept free below each evaluation level, and the segment allocated when less is
/// left (a safety net under the engine's up-front stack sizing).
const RED_ZONE: usize = 128 * 1024;
const NEW_SEGMENT: usize = 4 * 1024 * 1024;

/// A selector's planned read.
struct Need<'e> {
    vs: &'e VectorSelector,
    mint: i64,
    maxt: i64,
    is_range: bool,
    /// The range of the `rate` or `increase` that is the only reader of this matrix
    /// selector (read as [`CounterWindow`]s when evaluated at a single time).
    counter_range: Option<i64>,
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
pub(crate) fn selector_alternatives(vs: &VectorSelector) -> Vec<Vec<Matcher>> {
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

/// Sorts the series of a selector's `or` alternatives by labels and keeps one of each.
fn by_labels<T>(series: &mut Vec<(Labels, T)>) {
    series.sort_by(|a, b| a.0.cmp(&b.0));
    series.dedup_by(|a, b| a.0 == b.0);
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
    /// Loads, once, every sample each selector of `ast` can need for evaluations at
    /// `start, start + step, … ≤ end` (`step` 0: an instant query at `start`). Selectors of
    /// range vectors are loaded without staleness markers (no window ever includes them).
    /// Large reads and step tables are spread over `spread`'s threads.
    pub(crate) fn new(
        store: &Store,
        cfg: &'a EngineConfig,
        opts: &QueryOptions,
        (start, end, step): (i64, i64, i64),
        spread: Spread,
        ast: &Expr,
    ) -> Result<Ctx<'a>, QueryError> {
        let mut ctx = Ctx {
            cfg,
            start,
            end,
            step,
            data: HashMap::new(),
            views: HashMap::new(),
            windows: HashMap::new(),
            subqueries: HashMap::new(),
            tables: HashMap::new(),
            folded: HashMap::new(),
            groupings: HashMap::new(),
            histograms: HashMap::new(),
            budget: Budget::new(cfg, opts),
            spread,
            depth: 0,
        };
        let mut needs: HashMap<usize, Need> = HashMap::new();
        ctx.plan(ast, start, end, 0, &mut needs)?;
        let lookback = ms(cfg.lookback);
        for (key, need) in needs {
            ctx.check_deadline()?;
            let Need {
                vs,
                mint,
                maxt,
                is_range,
                counter_range,
            } = need;
            // `rate` or `increase` of a window read at a single time (an instant query, a
            // rule; not under a subquery, which widens the read): each series summed up as
            // it is decoded, its points never held.
            if step == 0 && counter_range.is_some_and(|r| maxt - mint == r) {
                let mut windows: Vec<(Labels, CounterWindow)> = Vec::new();
                for alt in selector_alternatives(vs) {
                    // The window is left-open: `(mint, maxt]`.
                    windows.extend(store.fold_between(&alt, mint + 1, maxt, |w, t, v| {
                        if !is_stale(v) {
                            CounterWindow::push(w, t, v);
                        }
                    }));
                }
                windows.retain(|(_, w)| !w.is_empty());
                by_labels(&mut windows);
                ctx.budget.keep(windows.len())?;
                ctx.windows.insert(key, (mint, maxt, windows));
                continue;
            }
            // An instant selector read at one time only (not under a subquery, not across
            // the steps of a range query) needs each series' newest sample and no more:
            // what a rule evaluation asks of every selector, every interval.
            let once = !is_range && maxt - mint == lookback;
            let alternatives = selector_alternatives(vs);
            // A range query's selector: its chunks, decoded by the parts that use them.
            if step != 0 {
                let mut views: Vec<SeriesView> = Vec::new();
                for alt in &alternatives {
                    views.extend(store.views(alt, mint, maxt));
                }
                if alternatives.len() > 1 {
                    views.sort_by(|a, b| a.labels.cmp(&b.labels));
                    views.dedup_by(|a, b| a.labels == b.labels);
                }
                let views = Views {
                    series: views,
                    mint,
                    maxt,
                    stale: !is_range,
                };
                ctx.views.insert(key, Arc::new(views));
                continue;
            }
            let mut series: Vec<(Labels, Vec<(i64, f64)>)> = Vec::new();
            for alt in &alternatives {
                series.extend(if once {
                    store.select_latest(alt, mint, maxt)
                } else {
                    store.select_spread(alt, mint, maxt, !is_range, spread)
                });
            }
            if alternatives.len() > 1 {
                by_labels(&mut series);
            }
            ctx.budget
                .keep(series.iter().map(|s| s.1.len()).sum::<usize>())?;
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

    /// Walks the tree recording, per selector, the time range it will read; refuses
    /// subqueries with more steps than `max_subquery_steps` and trees deeper than
    /// `max_nesting` before anything is loaded.
    fn plan<'e>(
        &self,
        e: &'e Expr,
        s: i64,
        t: i64,
        depth: usize,
        needs: &mut HashMap<usize, Need<'e>>,
    ) -> Result<(), QueryError> {
        if depth > self.cfg.max_nesting {
            return Err(self.too_deep());
        }
        let depth = depth + 1;
        let need = |needs: &mut HashMap<usize, Need<'e>>,
                    vs: &'e VectorSelector,
                    back: i64,
                    is_range: bool,
                    counter: bool| {
            let (s, t) = self.at_time(&vs.at).map_or((s, t), |a| (a, a));
            let off = offset_ms(&vs.offset);
            let (mint, maxt) = (s - off - back, t - off);
            let entry = needs.entry(vs as *const _ as usize).or_insert(Need {
                vs,
                mint,
                maxt,
                is_range,
                counter_range: counter.then_some(back),
            });
            entry.mint = entry.mint.min(mint);
            entry.maxt = entry.maxt.max(maxt);
            if !counter {
                entry.counter_range = None;
            }
        };
        stacker::maybe_grow(RED_ZONE, NEW_SEGMENT, || {
            match e {
                Expr::VectorSelector(vs) => need(needs, vs, ms(self.cfg.lookback), false, false),
                Expr::MatrixSelector(m) => need(needs, &m.vs, ms(m.range), true, false),
                Expr::Subquery(sq) => {
                    let step = self.subquery_step(sq);
                    let steps = ms(sq.range) / step;
                    if usize::try_from(steps).unwrap_or(usize::MAX) > self.cfg.max_subquery_steps {
                        return Err(QueryError::bad(format!(
                            "subquery {} would evaluate {steps} steps, more than the limit of {} (EngineConfig::max_subquery_steps): shorten its range or use a coarser step",
                            Expr::Subquery(sq.clone()),
                            self.cfg.max_subquery_steps
                        )));
                    }
                    let (s, t) = self.at_time(&sq.at).map_or((s, t), |a| (a, a));
                    let off = offset_ms(&sq.offset);
                    self.plan(&sq.expr, s - off - ms(sq.range), t - off, depth, needs)?;
                }
                Expr::Aggregate(a) => {
                    self.plan(&a.expr, s, t, depth, needs)?;
                    if let Some(p) = &a.param {
                        self.plan(p, s, t, depth, needs)?;
                    }
                }
                Expr::Unary(u) => self.plan(&u.expr, s, t, depth, needs)?,
                Expr::Binary(b) => {
                    self.plan(&b.lhs, s, t, depth, needs)?;
                    self.plan(&b.rhs, s, t, depth, needs)?;
                }
                Expr::Paren(p) => self.plan(&p.expr, s, t, depth, needs)?,
                Expr::Call(c) => {
                    // The matrix selector of a `rate` or `increase` (their only argument).
                    let counter = matches!(c.func.name, "rate" | "increase");
                    for a in &c.args.args {
                        match &**a {
                            Expr::MatrixSelector(m) if counter => {
                                need(needs, &m.vs, ms(m.range), true, true)
                            }
                            _ => self.plan(a, s, t, depth, needs)?,
                        }
                    }
                }
                Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
            }
            Ok(())
        })
    }

    fn too_deep(&self) -> QueryError {
        QueryError::bad(format!(
            "query nests deeper than the limit of {} levels (EngineConfig::max_nesting): simplify the expression or split it into recording rules",
            self.cfg.max_nesting
        ))
    }

    /// The step of subquery `sq` in ms (its own, or the configured default).
    fn subquery_step(&self, sq: &SubqueryExpr) -> i64 {
        sq.step.map(ms).unwrap_or(ms(self.cfg.subquery_step)).max(1)
    }

    /// Starts a new step of a range query: what the previous step held is gone.
    pub(crate) fn begin_step(&mut self) {
        self.budget.release_to(0);
    }

    /// Counts `n` samples held until the query ends against `max_samples`.
    pub(crate) fn keep(&mut self, n: usize) -> Result<(), QueryError> {
        self.budget.keep(n)
    }

    /// Errors once the query is canceled or past its deadline.
    pub(crate) fn check_deadline(&self) -> Result<(), QueryError> {
        self.budget.check()
    }

    /// Evaluates `e` at time `t` (ms).
    pub(crate) fn eval(&mut self, e: &Expr, t: i64) -> Result<Val, QueryError> {
        if self.depth >= self.cfg.max_nesting {
            return Err(self.too_deep());
        }
        self.check_deadline()?;
        self.depth += 1;
        let out = stacker::maybe_grow(RED_ZONE, NEW_SEGMENT, || self.eval_node(e, t));
        self.depth -= 1;
        out
    }

    fn eval_node(&mut self, e: &Expr, t: i64) -> Result<Val, QueryError> {
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
                let v = match self.by_table(e, t)? {
                    Some(v) => v,
                    None => self.instant_selector(vs, t)?,
                };
                self.budget.hold(v.len())?;
                Ok(Val::Vector(v))
            }
            Expr::MatrixSelector(m) => {
                let te = self.at_time(&m.vs.at).unwrap_or(t) - offset_ms(&m.vs.offset);
                let m = self.range_selector(&m.vs, te - ms(m.range), te)?;
                Ok(Val::Matrix(m))
            }
            Expr::Subquery(sq) => self.subquery(sq, t),
            Expr::Aggregate(a) => super::aggregate::eval(self, a, t),
            Expr::Binary(b) => super::binary::eval(self, b, t),
            Expr::Call(c) => match self.by_table(e, t)? {
                Some(v) => Ok(Val::Vector(v)),
                None => super::functions::call(self, c, t),
            },
            Expr::Extension(_) => Err(QueryError::bad("extension expressions are not supported")),
        }
    }

    /// The decoded points of selector `vs`; a range query's are decoded here, whole, the
    /// first time something needs them so (they then count against `max_samples`).
    fn loaded(&mut self, vs: &VectorSelector) -> Result<Loaded, QueryError> {
        let key = vs as *const _ as usize;
        if let Some(data) = self.data.get(&key) {
            return Ok(data.clone());
        }
        let Some(views) = self.views.get(&key) else {
            return Ok(Loaded::default());
        };
        let (mint, maxt, stale) = (views.mint, views.maxt, views.stale);
        let data = Arc::new(decode_views(&views.series, mint, maxt, stale, self.spread));
        self.budget
            .keep(data.iter().map(|s| s.1.len()).sum::<usize>())?;
        self.data.insert(key, data.clone());
        Ok(data)
    }

    /// What a step table of selector `vs` is computed from: its chunks in a range query
    /// (unless already decoded whole), else its points.
    fn rows(&mut self, vs: &VectorSelector) -> Result<Rows, QueryError> {
        let key = vs as *const _ as usize;
        match self.views.get(&key) {
            Some(views) if !self.data.contains_key(&key) => Ok(Rows::Chunks(views.clone())),
            _ => self.loaded(vs).map(Rows::Points),
        }
    }

    fn instant_selector(&mut self, vs: &VectorSelector, t: i64) -> Result<Vec<Sample>, QueryError> {
        let te = self.at_time(&vs.at).unwrap_or(t) - offset_ms(&vs.offset);
        let lookback = ms(self.cfg.lookback);
        let data = self.loaded(vs)?;
        let mut out = Vec::new();
        for (i, (labels, pts)) in data.iter().enumerate() {
            if i % CHECK_EVERY == CHECK_EVERY - 1 {
                self.check_deadline()?;
            }
            let k = pts.partition_point(|p| p.0 <= te);
            let Some(&(st, v)) = k.checked_sub(1).and_then(|k| pts.get(k)) else {
                continue;
            };
            if st > te - lookback && !is_stale(v) {
                out.push(Sample {
                    labels: labels.clone(),
                    t: st,
                    v,
                });
            }
        }
        Ok(out)
    }

    /// Points of each series in the left-open window `(start, end]` (range selectors are
    /// loaded without staleness markers), counted against `max_samples` for this step.
    pub(crate) fn range_selector(
        &mut self,
        vs: &VectorSelector,
        start: i64,
        end: i64,
    ) -> Result<Matrix, QueryError> {
        let data = self.loaded(vs)?;
        let mut series = Vec::new();
        for (i, (labels, pts)) in data.iter().enumerate() {
            if i % CHECK_EVERY == CHECK_EVERY - 1 {
                self.check_deadline()?;
            }
            let a = pts.partition_point(|p| p.0 <= start);
            let b = pts.partition_point(|p| p.0 <= end);
            let Some(points) = pts.get(a..b).filter(|w| !w.is_empty()) else {
                continue;
            };
            self.budget.hold(points.len())?;
            series.push(RangeSeries {
                labels: labels.clone(),
                points: points.to_vec(),
            });
        }
        Ok(Matrix { series, start, end })
    }

    /// Index of `t` among the range query's steps, if it is one of them.
    fn step_index(&self, t: i64) -> Option<usize> {
        if self.step <= 0 || t < self.start || t > self.end || (t - self.start) % self.step != 0 {
            return None;
        }
        usize::try_from((t - self.start) / self.step).ok()
    }

    /// An instant selector or a one-argument range function over a matrix selector at a
    /// step of a range query, from its step table (same result as evaluating it at that
    /// step alone); `None` when no table applies.
    pub(crate) fn by_table(&mut self, e: &Expr, t: i64) -> Result<Option<Vec<Sample>>, QueryError> {
        let Some((k, cells)) = self.step_cells(e, t) else {
            return Ok(None);
        };
        let key = e as *const Expr as usize;
        if !self.tables.contains_key(&key) {
            let rows = self.rows(cells.vs)?;
            let table = self.build_table(&rows, &cells)?;
            if let Some(t) = &table {
                self.budget.keep(t.steps.iter().map(Vec::len).sum())?;
            }
            self.tables.insert(key, table);
        }
        let Some(Some(table)) = self.tables.get(&key) else {
            return Ok(None);
        };
        let Some(step) = table.steps.get(k) else {
            return Ok(None);
        };
        Ok(Some(
            step.iter()
                .filter_map(|&(i, t, v)| {
                    Some(Sample {
                        labels: table.labels.get(i as usize)?.clone(),
                        t,
                        v,
                    })
                })
                .collect(),
        ))
    }

    /// The step index of `t` and the cells of `e`, when `e` can be computed as a table at
    /// this step.
    fn step_cells<'e>(&self, e: &'e Expr, t: i64) -> Option<(usize, Cells<'e>)> {
        let k = self.step_index(t)?;
        let cells = Cells::of(e, ms(self.cfg.lookback))?;
        Some((k, cells))
    }

    /// Whether a table of `data` at every step of the range query stays within
    /// [`TABLE_LIMIT`] (and its series can be numbered by `u32`).
    fn table_fits(&self, rows: &Rows) -> bool {
        rows.len().saturating_mul(self.steps()) <= TABLE_LIMIT && u32::try_from(rows.len()).is_ok()
    }

    /// Runs `cells` for every series at steps `ks` of the range query, series by series (a
    /// cursor carries each series' window from one step to the next), handing each present
    /// value to `visit(series index, step index, timestamp, value)`.
    fn each_cell(
        &self,
        rows: &Rows,
        cells: &Cells<'_>,
        ks: Range<usize>,
        mut visit: impl FnMut(u32, usize, i64, f64),
    ) -> Result<(), QueryError> {
        let at = |k: usize| self.start + self.step * i64::try_from(k).unwrap_or(i64::MAX);
        let first = at(ks.start);
        let span = cells.span(first, at(ks.end.saturating_sub(1)));
        rows.each(span, |i, pts| {
            if i % 256 == 0 {
                self.check_deadline()?;
            }
            let mut cursor = cells.cursor(pts, first);
            let mut t = first;
            for k in ks.clone() {
                if let Some((st, v)) = cells.at(pts, &mut cursor, t) {
                    visit(i, k, st, v);
                }
                t += self.step;
            }
            Ok(())
        })
    }

    /// Runs `part` on contiguous runs of the range query's steps, spread over threads when
    /// `data` is large, and puts the parts' per-step outputs back in step order. Each step
    /// is computed by one part, its series in order: the same result, to the bit, as one
    /// thread computing every step.
    fn by_steps<T: Send>(
        &self,
        rows: &Rows,
        part: impl Fn(Range<usize>) -> Result<Vec<T>, QueryError> + Sync,
    ) -> Result<Vec<T>, QueryError> {
        let n = self.steps();
        let parts = self.spread.ranges(n, rows.len().saturating_mul(n), part);
        let mut out = Vec::with_capacity(n);
        for p in parts {
            out.extend(p?);
        }
        Ok(out)
    }

    /// Number of steps of the range query.
    fn steps(&self) -> usize {
        usize::try_from((self.end - self.start) / self.step.max(1) + 1).unwrap_or(0)
    }

    /// The step table of `cells` over `data`; `None` when too large.
    fn build_table(&self, rows: &Rows, cells: &Cells<'_>) -> Result<Option<StepTable>, QueryError> {
        if !self.table_fits(rows) {
            return Ok(None);
        }
        let steps = self.by_steps(rows, |ks| {
            let mut steps: Vec<Vec<(u32, i64, f64)>> = vec![Vec::new(); ks.len()];
            let first = ks.start;
            self.each_cell(rows, cells, ks, |i, k, st, v| {
                if let Some(out) = steps.get_mut(k - first) {
                    out.push((i, st, v));
                }
            })?;
            Ok(steps)
        })?;
        Ok(Some(StepTable {
            labels: rows.labels().map(|l| cells.labels(l)).collect(),
            steps,
        }))
    }

    /// A `sum`, `avg`, `count`, `group`, `min` or `max` of a table-backed expression (see
    /// [`Ctx::by_table`]) at a step of a range query, folded for every step at once
    /// straight from the cells: no per-step sample vectors of the input, each series'
    /// group found once. The same result, to the bit, as aggregating the step's input
    /// vector (the same folds in the same order); `None` when this does not apply.
    pub(crate) fn aggregate_by_table(
        &mut self,
        a: &AggregateExpr,
        t: i64,
    ) -> Result<Option<Vec<Sample>>, QueryError> {
        let op = a.op.id();
        if !super::aggregate::folds(op) {
            return Ok(None);
        }
        let Some((k, cells)) = self.step_cells(&a.expr, t) else {
            return Ok(None);
        };
        let key = a as *const AggregateExpr as usize;
        if !self.folded.contains_key(&key) {
            let rows = self.rows(cells.vs)?;
            let folded = self.fold_table(a, &rows, &cells)?;
            if let Some(f) = &folded {
                self.budget.keep(f.iter().map(Vec::len).sum())?;
            }
            self.folded.insert(key, folded);
        }
        let Some(Some(steps)) = self.folded.get(&key) else {
            return Ok(None);
        };
        Ok(steps.get(k).cloned())
    }

    /// Every step's result of aggregation `a` over `cells`; `None` when the accumulators
    /// would take more memory than the step table they replace (many groups: `by
    /// (instance)` over a few series each) or that table would exceed [`TABLE_LIMIT`].
    fn fold_table(
        &mut self,
        a: &AggregateExpr,
        rows: &Rows,
        cells: &Cells<'_>,
    ) -> Result<Option<Vec<Vec<Sample>>>, QueryError> {
        let op = a.op.id();
        let mut grouping = self
            .groupings
            .remove(&(a as *const AggregateExpr as usize))
            .unwrap_or_default();
        let group_of: Vec<usize> = rows
            .labels()
            .map(|l| grouping.id(&cells.labels(l), &a.modifier))
            .collect();
        let groups = grouping.keys.len();
        let mut out = None;
        let acc_bytes = groups.saturating_mul(std::mem::size_of::<Acc>());
        if self.table_fits(rows)
            && acc_bytes
                <= rows
                    .len()
                    .saturating_mul(std::mem::size_of::<(u32, i64, f64)>())
        {
            let keys = &grouping.keys;
            let folded = self.by_steps(rows, |ks| {
                let first = ks.start;
                let mut acc = vec![Acc::default(); ks.len() * groups];
                // Per step, the groups in the order their first member appeared (the order
                // a step's own aggregation returns them in).
                let mut order: Vec<Vec<usize>> = vec![Vec::new(); ks.len()];
                self.each_cell(rows, cells, ks, |i, k, _, v| {
                    let Some(&g) = group_of.get(i as usize) else {
                        return;
                    };
                    let k = k - first;
                    if let Some(slot) = acc.get_mut(k * groups + g) {
                        if slot.is_empty()
                            && let Some(o) = order.get_mut(k)
                        {
                            o.push(g);
                        }
                        slot.add(op, v);
                    }
                })?;
                let mut t = self.start + self.step * i64::try_from(first).unwrap_or(i64::MAX);
                Ok(order
                    .into_iter()
                    .enumerate()
                    .map(|(k, gs)| {
                        let step = gs
                            .into_iter()
                            .filter_map(|g| {
                                Some(Sample {
                                    labels: keys.get(g)?.clone(),
                                    t,
                                    v: acc.get(k * groups + g)?.value(op),
                                })
                            })
                            .collect();
                        t += self.step;
                        step
                    })
                    .collect())
            });
            out = Some(folded?);
        }
        self.groupings
            .insert(a as *const AggregateExpr as usize, grouping);
        Ok(out)
    }

    /// `rate` or `increase` of a matrix selector read as [`CounterWindow`]s (see
    /// [`Ctx::new`]); `None` when it was read as points.
    pub(crate) fn counter_by_windows(
        &self,
        c: &Call,
        t: i64,
    ) -> Result<Option<Vec<Sample>>, QueryError> {
        let [arg] = c.args.args.as_slice() else {
            return Ok(None);
        };
        let Expr::MatrixSelector(m) = &**arg else {
            return Ok(None);
        };
        let Some((mint, maxt, windows)) = self.windows.get(&(&m.vs as *const _ as usize)) else {
            return Ok(None);
        };
        let end = self.at_time(&m.vs.at).unwrap_or(t) - offset_ms(&m.vs.offset);
        let start = end - ms(m.range);
        if (start, end) != (*mint, *maxt) {
            // Planned for one evaluation time only; anything else is a planning bug, and
            // answering from the wrong window would be silently wrong.
            return Err(QueryError::exec(format!(
                "internal error: {} read for ({mint}, {maxt}] but evaluated for ({start}, {end}]",
                c.func.name
            )));
        }
        let is_rate = c.func.name == "rate";
        Ok(Some(
            windows
                .iter()
                .filter_map(|(labels, w)| {
                    Some(Sample {
                        labels: labels.without_name(),
                        t,
                        v: w.extrapolated(start, end, is_rate)?,
                    })
                })
                .collect(),
        ))
    }

    /// Evaluates the inner expression at each step of the subquery's window; every point
    /// held (the matrix built, the per-step cache) counts against `max_samples`.
    fn subquery(&mut self, sq: &SubqueryExpr, t: i64) -> Result<Val, QueryError> {
        let te = self.at_time(&sq.at).unwrap_or(t) - offset_ms(&sq.offset);
        let step = self.subquery_step(sq);
        let start = te - ms(sq.range);
        // First step-aligned time inside the left-open window (start, te].
        let mut ts = start.div_euclid(step) * step;
        if ts <= start {
            ts += step;
        }
        let key = &*sq.expr as *const Expr as usize;
        // Steps left of this window are not needed again by a forward-moving range
        // query (anything else only recomputes them).
        let cache = self.subqueries.entry(key).or_default();
        let current = cache.split_off(&(start + 1));
        let stale: usize = std::mem::replace(cache, current)
            .values()
            .map(Vec::len)
            .sum();
        self.budget.unkeep(stale);
        let mut series = SeriesCollector::default();
        let mark = self.budget.mark();
        let mut points = 0usize;
        // Only a range query comes back to the same steps; an instant query keeps nothing
        // (a 7-day subquery at 1 s would otherwise hold 604,800 cache entries for one answer).
        let reuse = self.step != 0;
        while ts <= te {
            self.check_deadline()?;
            let cached = reuse
                .then(|| self.subqueries.get(&key).and_then(|c| c.get(&ts)).cloned())
                .flatten();
            let samples = match cached {
                Some(s) => s,
                None => {
                    let s = self.eval(&sq.expr, ts)?.into_samples(ts, |other| {
                        format!("subquery is only allowed on instant vector or scalar, got {other}")
                    })?;
                    // What the inner step held is reduced to `s` now.
                    self.budget.release_to(mark);
                    if reuse {
                        self.budget.keep(s.len())?;
                        self.subqueries
                            .entry(key)
                            .or_default()
                            .insert(ts, s.clone());
                    }
                    s
                }
            };
            points += samples.len();
            self.budget.release_to(mark);
            self.budget.hold(points)?;
            series.push(ts, samples);
            ts += step;
        }
        Ok(Val::Matrix(Matrix {
            series: series.series,
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
