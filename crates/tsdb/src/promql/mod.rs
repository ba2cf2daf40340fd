//! PromQL evaluation over the [`crate::Store`], parsing with `promql-parser`.
//!
//! Semantics follow Prometheus 3.x: range windows and the instant-vector lookback are
//! left-open, `(t - range, t]`; a staleness marker ends a series' lookback; `rate` and
//! friends extrapolate like Prometheus; subquery steps are aligned to multiples of the step.
//! Prometheus 2.x used closed windows `[t - range, t]`; results differ only for samples that
//! sit exactly on a window's left edge.
//!
//! A range query evaluates the expression once per step, but instant selectors and
//! one-argument range functions over a selector (`rate(x[5m])`, `max_over_time(x[1h])`, …)
//! are computed series by series for all steps at once, with cursors sliding over the
//! decoded samples ("step tables"); aggregations cache each input series' group across
//! steps. Results are the same as evaluating each step on its own (a unit test checks it).
//! A large range query computes its step tables on up to [`EngineConfig::query_threads`]
//! threads, each a contiguous run of steps, decoding the stretch of each series its steps
//! read as it goes (the query's points are never all decoded at once); each output is
//! computed by one of them in the serial order (the same bits as one thread; a unit test
//! checks that too).
//!
//! Hostile queries are bounded: a linear pre-parse scan refuses nesting deeper than
//! [`EngineConfig::max_nesting`] (parser, evaluator and the tree's drop all recurse per
//! level, and run with a stack sized for the depth); subqueries with more than
//! [`EngineConfig::max_subquery_steps`] steps are refused before any data is read; every
//! sample held at once (loaded data, subquery points, range windows, caches, the result)
//! counts against [`EngineConfig::max_samples`]; the deadline and the caller's [`Cancel`]
//! token are checked inside the evaluator's loops ([`Engine::instant_with`]).

mod aggregate;
mod binary;
mod budget;
mod calendar;
mod eval;
mod exemplar_query;
mod functions;
mod kahan;
mod locate;
mod nesting;
mod over_time;
mod value;

use std::sync::Arc;
use std::time::Duration;

use promql_parser::parser::{Expr, parse};

pub use budget::{Cancel, QueryOptions};

/// Where `expr` goes wrong given the parser's message `error`: `line:column (near "…")`,
/// or `None` when it cannot be told. Rule-file checks and the query API share it.
pub fn parse_error_place(expr: &str, error: &str) -> Option<String> {
    locate::locate(expr, error).map(|at| locate::describe(expr, at))
}
pub use value::{ErrorKind, InstantSample, QueryError, Series, Value, format_float};

use crate::labels::Labels;
use crate::spread::Spread;
use crate::store::Store;
use eval::{Ctx, Val};

/// Stack a query needs besides its nesting (the evaluator's shallow frames, the parser).
const STACK_BASE: usize = 256 * 1024;
/// Stack per level of nesting: the parser's checks, the evaluator's recursion and the
/// tree's drop each take one frame per level (measured in debug builds, with headroom).
const STACK_PER_LEVEL: usize = 32 * 1024;

/// Evaluation settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How far back an instant vector selector looks for a sample (Prometheus: 5 min).
    pub lookback: Duration,
    /// Wall-clock limit per query, checked inside the evaluator's loops (a
    /// [`QueryOptions::timeout`] can only shorten it).
    pub timeout: Duration,
    /// Most samples a query may hold in memory at once: the data loaded from the store, the
    /// points of subqueries and range selectors, cached per-step results and the result
    /// being built (Prometheus' `--query.max-samples`). A range query's step tables decode
    /// one series' stretch at a time per thread, holding none of it past that series; its
    /// selectors count once something needs their points whole.
    pub max_samples: usize,
    /// Step of subqueries written without one (`[1h:]`); Prometheus uses the global
    /// evaluation interval, 1 min by default.
    pub subquery_step: Duration,
    /// Most steps one subquery may evaluate (`x[100y:1s]` is refused up front rather than
    /// run until it exhausts memory or the timeout).
    pub max_subquery_steps: usize,
    /// Deepest nesting of parentheses, calls and operators a query may have; deeper ones
    /// are refused before parsing (parsing and evaluating recurse once per level).
    pub max_nesting: usize,
    /// Most threads one range query spreads its heavy loops over (decoding the selected
    /// series, computing each series' value at every step), the calling one included; 0:
    /// the machine's available parallelism, 1: every query on its calling thread. Results
    /// are the same, to the bit, however many are used. Instant queries use one.
    pub query_threads: usize,
    /// Least work worth one more thread of a range query: samples to decode, or series ×
    /// steps to compute (smaller selections stay on the calling thread).
    pub parallel_min_work: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            lookback: Duration::from_secs(300),
            timeout: Duration::from_secs(120),
            max_samples: 50_000_000,
            subquery_step: Duration::from_secs(60),
            max_subquery_steps: 1_000_000,
            max_nesting: 1_000,
            query_threads: 0,
            parallel_min_work: 50_000,
        }
    }
}

/// A parsed query ([`Engine::prepare`]): parsing a rule's expression, and compiling the
/// regular expressions of its matchers, once instead of at every evaluation.
pub struct Prepared {
    ast: Expr,
    /// Stack its evaluation and its drop need (see [`Engine::prepare`]).
    stack: usize,
}

impl Prepared {
    /// Runs `f` on the tree with the stack the tree's depth needs.
    fn run<R>(&self, f: impl FnOnce(&Expr) -> Result<R, QueryError>) -> Result<R, QueryError> {
        stacker::maybe_grow(self.stack, self.stack, || f(&self.ast))
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        // The tree's drop recurses once per level, like parsing and evaluating it.
        let ast = std::mem::replace(&mut self.ast, Expr::from(0.0));
        stacker::maybe_grow(self.stack, self.stack, move || drop(ast));
    }
}

/// Evaluates PromQL over a store; cheap to clone the `Arc` it holds, safe to share.
pub struct Engine {
    store: Arc<Store>,
    cfg: EngineConfig,
    /// How far a range query's heavy loops spread (from `cfg`, the machine's parallelism
    /// looked up once).
    spread: Spread,
}

impl Engine {
    /// An engine over `store`.
    pub fn new(store: Arc<Store>, cfg: EngineConfig) -> Engine {
        let spread = Spread::new(cfg.query_threads, cfg.parallel_min_work);
        Engine { store, cfg, spread }
    }

    /// Parses `expr`; the error says where it goes wrong (`line:column` and the text there,
    /// see [`locate`]) instead of echoing the query, or quotes at most its first 80
    /// characters when the place cannot be told.
    fn parse(expr: &str) -> Result<Expr, QueryError> {
        parse(expr).map_err(|e| {
            let place = match parse_error_place(expr, &e) {
                Some(place) => format!("at {place}"),
                None => {
                    let shown: String = expr.chars().take(80).collect();
                    let more = if shown.len() < expr.len() {
                        format!("… ({} bytes)", expr.len())
                    } else {
                        String::new()
                    };
                    format!("{shown:?}{more}")
                }
            };
            QueryError::bad(format!("invalid PromQL {place}: {e}"))
        })
    }

    /// Refuses `expr` when it nests deeper than `max_nesting`, then parses it with enough
    /// stack for the tree's depth (a fresh segment when the calling thread has too little
    /// left), so no query can overflow it. The result can be evaluated any number of times
    /// ([`Engine::instant_prepared`]).
    pub fn prepare(&self, expr: &str) -> Result<Prepared, QueryError> {
        let depth = nesting::nesting_bound(expr);
        if depth > self.cfg.max_nesting {
            return Err(QueryError::bad(format!(
                "query nests too deeply: about {depth} levels of parentheses, calls and operators, more than the limit of {} (EngineConfig::max_nesting): simplify the expression or split it into recording rules",
                self.cfg.max_nesting
            )));
        }
        let stack = STACK_BASE + depth.saturating_mul(STACK_PER_LEVEL);
        let ast = stacker::maybe_grow(stack, stack, || Self::parse(expr))?;
        Ok(Prepared { ast, stack })
    }

    /// Parses `expr` ([`Engine::prepare`]), runs `f` on the tree and drops it.
    fn with_ast<R>(
        &self,
        expr: &str,
        f: impl FnOnce(&Expr) -> Result<R, QueryError>,
    ) -> Result<R, QueryError> {
        self.prepare(expr)?.run(f)
    }

    /// Evaluates `expr` at `t_ms` (Prometheus `/api/v1/query`) under the engine's limits.
    pub fn instant(&self, expr: &str, t_ms: i64) -> Result<Value, QueryError> {
        self.instant_with(expr, t_ms, &QueryOptions::default())
    }

    /// [`Engine::instant`] with a per-query timeout and a cancellation token (the HTTP API
    /// cancels when the client goes away, the rule engine on shutdown).
    pub fn instant_with(
        &self,
        expr: &str,
        t_ms: i64,
        opts: &QueryOptions,
    ) -> Result<Value, QueryError> {
        self.instant_prepared(&self.prepare(expr)?, t_ms, opts)
    }

    /// [`Engine::instant_with`] for a query parsed once ([`Engine::prepare`]): what rule
    /// evaluation uses, the same expressions every interval.
    pub fn instant_prepared(
        &self,
        prepared: &Prepared,
        t_ms: i64,
        opts: &QueryOptions,
    ) -> Result<Value, QueryError> {
        prepared.run(|ast| {
            let at = (t_ms, t_ms, 0);
            let mut ctx = Ctx::new(&self.store, &self.cfg, opts, at, Spread::SERIAL, ast)?;
            Ok(match ctx.eval(ast, t_ms)? {
                Val::Scalar(v) => Value::Scalar { t_ms, v },
                Val::Str(v) => Value::String { t_ms, v },
                Val::Vector(samples) => {
                    eval::check_unique(&samples)?;
                    Value::Vector(
                        samples
                            .into_iter()
                            .map(|s| InstantSample {
                                labels: s.labels,
                                t_ms,
                                v: s.v,
                            })
                            .collect(),
                    )
                }
                Val::Matrix(m) => Value::Matrix(
                    m.series
                        .into_iter()
                        .map(|s| Series {
                            labels: s.labels,
                            points: s.points,
                        })
                        .collect(),
                ),
            })
        })
    }

    /// Evaluates `expr` at every step from `start_ms` to `end_ms` (Prometheus
    /// `/api/v1/query_range`); the result is a matrix sorted by labels.
    pub fn range(
        &self,
        expr: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Value, QueryError> {
        self.range_with(expr, start_ms, end_ms, step_ms, &QueryOptions::default())
    }

    /// [`Engine::range`] with a per-query timeout and a cancellation token.
    pub fn range_with(
        &self,
        expr: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        opts: &QueryOptions,
    ) -> Result<Value, QueryError> {
        if step_ms <= 0 {
            return Err(QueryError::bad(
                "zero or negative query resolution step widths are not accepted: use a positive step",
            ));
        }
        if end_ms < start_ms {
            return Err(QueryError::bad(
                "end timestamp must not be before start time",
            ));
        }
        if (end_ms - start_ms) / step_ms > 11_000 {
            return Err(QueryError::bad(
                "exceeded maximum resolution of 11,000 points per timeseries: try decreasing the query resolution (?step=XX)",
            ));
        }
        self.with_ast(expr, |ast| {
            let range = (start_ms, end_ms, step_ms);
            let mut ctx = Ctx::new(&self.store, &self.cfg, opts, range, self.spread, ast)?;
            let mut out = eval::SeriesCollector::default();
            let mut t = start_ms;
            while t <= end_ms {
                ctx.begin_step();
                let samples = ctx.eval(ast, t)?.into_samples(t, |other| {
                    format!(
                        "invalid expression type {other:?} for range query, must be Scalar or instant Vector"
                    )
                })?;
                eval::check_unique(&samples)?;
                ctx.keep(samples.len())?;
                out.push(t, samples);
                t += step_ms;
            }
            let mut out: Vec<Series> = out
                .series
                .into_iter()
                .map(|s| Series {
                    labels: s.labels,
                    points: s.points,
                })
                .collect();
            out.sort_by(|a, b| a.labels.cmp(&b.labels));
            Ok(Value::Matrix(out))
        })
    }

    fn selectors(matchers: &[&str]) -> Result<Vec<Vec<promql_parser::label::Matcher>>, QueryError> {
        matchers
            .iter()
            .map(|m| {
                // A selector never nests; refusing deep input keeps the parser's recursion shallow.
                if nesting::nesting_bound(m) > 2 {
                    return Err(QueryError::bad(format!(
                        "match[] {m:?} is not a series selector: use e.g. up{{job=\"x\"}}"
                    )));
                }
                match Self::parse(m)? {
                    Expr::VectorSelector(vs) => Ok(eval::selector_matchers(&vs)),
                    _ => Err(QueryError::bad(format!(
                        "match[] {m:?} is not a series selector: use e.g. up{{job=\"x\"}}"
                    ))),
                }
            })
            .collect()
    }

    /// Series matching any of `matchers` with samples in the range (`/api/v1/series`).
    pub fn series(
        &self,
        matchers: &[&str],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Labels>, QueryError> {
        if matchers.is_empty() {
            return Err(QueryError::bad(
                "no match[] parameter provided: pass at least one series selector",
            ));
        }
        let mut out: Vec<Labels> = Vec::new();
        for ms in Self::selectors(matchers)? {
            out.extend(self.store.series_labels(&ms, start_ms, end_ms));
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Label names of the series matching `matchers` (all series when empty).
    pub fn label_names(
        &self,
        matchers: &[&str],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>, QueryError> {
        if matchers.is_empty() {
            return Ok(self.store.label_names());
        }
        let mut names: Vec<String> = self
            .series(matchers, start_ms, end_ms)?
            .iter()
            .flat_map(|l| l.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>())
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Values of label `name` over the series matching `matchers` (all series when empty).
    pub fn label_values(
        &self,
        name: &str,
        matchers: &[&str],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>, QueryError> {
        let series = if matchers.is_empty() {
            let any = promql_parser::label::Matcher::new(
                promql_parser::label::MatchOp::NotEqual,
                name,
                "",
            );
            self.store.series_labels(&[any], start_ms, end_ms)
        } else {
            self.series(matchers, start_ms, end_ms)?
        };
        let mut values: Vec<String> = series
            .iter()
            .filter_map(|l| l.get(name).map(str::to_string))
            .collect();
        values.sort();
        values.dedup();
        Ok(values)
    }
}

#[cfg(test)]
mod tests;
