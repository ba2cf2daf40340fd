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

mod aggregate;
mod binary;
mod eval;
mod functions;
mod over_time;
mod value;

use std::sync::Arc;
use std::time::Duration;

use promql_parser::parser::{Expr, parse};

pub use value::{ErrorKind, InstantSample, QueryError, Series, Value, format_float};

use crate::labels::Labels;
use crate::store::Store;
use eval::{Ctx, Val};

/// Evaluation settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How far back an instant vector selector looks for a sample (Prometheus: 5 min).
    pub lookback: Duration,
    /// Wall-clock limit per query.
    pub timeout: Duration,
    /// Upper bound on samples a query may load from the store.
    pub max_samples: usize,
    /// Step of subqueries written without one (`[1h:]`); Prometheus uses the global
    /// evaluation interval, 1 min by default.
    pub subquery_step: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            lookback: Duration::from_secs(300),
            timeout: Duration::from_secs(120),
            max_samples: 50_000_000,
            subquery_step: Duration::from_secs(60),
        }
    }
}

/// Evaluates PromQL over a store; cheap to clone the `Arc` it holds, safe to share.
pub struct Engine {
    store: Arc<Store>,
    cfg: EngineConfig,
}

impl Engine {
    /// An engine over `store`.
    pub fn new(store: Arc<Store>, cfg: EngineConfig) -> Engine {
        Engine { store, cfg }
    }

    fn parse(expr: &str) -> Result<Expr, QueryError> {
        parse(expr).map_err(|e| QueryError::bad(format!("invalid PromQL {expr:?}: {e}")))
    }

    /// Evaluates `expr` at `t_ms` (Prometheus `/api/v1/query`).
    pub fn instant(&self, expr: &str, t_ms: i64) -> Result<Value, QueryError> {
        let ast = Self::parse(expr)?;
        let mut ctx = Ctx::new(&self.store, &self.cfg, (t_ms, t_ms, 0), &ast)?;
        Ok(match ctx.eval(&ast, t_ms)? {
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
        let ast = Self::parse(expr)?;
        let mut ctx = Ctx::new(&self.store, &self.cfg, (start_ms, end_ms, step_ms), &ast)?;
        let mut out = eval::SeriesCollector::default();
        let mut t = start_ms;
        while t <= end_ms {
            let samples = ctx.eval(&ast, t)?.into_samples(t, |other| {
                format!(
                    "invalid expression type {other:?} for range query, must be Scalar or instant Vector"
                )
            })?;
            eval::check_unique(&samples)?;
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
    }

    fn selectors(matchers: &[&str]) -> Result<Vec<Vec<promql_parser::label::Matcher>>, QueryError> {
        matchers
            .iter()
            .map(|m| match Self::parse(m)? {
                Expr::VectorSelector(vs) => Ok(eval::selector_matchers(&vs)),
                _ => Err(QueryError::bad(format!(
                    "match[] {m:?} is not a series selector: use e.g. up{{job=\"x\"}}"
                ))),
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
