//! `/api/v1/query_exemplars`: the exemplars of every series a PromQL expression selects.
//! As Prometheus does, the selectors are taken out of the expression whatever surrounds
//! them, so `histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))` finds the exemplars
//! of `x_bucket`.

use promql_parser::label::Matcher;
use promql_parser::parser::Expr;

use super::{Engine, QueryError, eval};
use crate::exemplars::SeriesExemplars;

impl Engine {
    /// The exemplars in `[start_ms, end_ms]` of the series selected anywhere in `expr`;
    /// `None` when `expr` has no selector at all (Prometheus then answers `null`).
    pub fn query_exemplars(
        &self,
        expr: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Option<Vec<SeriesExemplars>>, QueryError> {
        let selectors = self.with_ast(expr, |ast| {
            let mut out = Vec::new();
            selectors(ast, &mut out);
            Ok(out)
        })?;
        if selectors.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            self.store.exemplars().select(&selectors, start_ms, end_ms),
        ))
    }
}

/// Appends the matchers of every selector in `e` (each `or` alternative on its own).
fn selectors(e: &Expr, out: &mut Vec<Vec<Matcher>>) {
    match e {
        Expr::VectorSelector(vs) => out.extend(eval::selector_alternatives(vs)),
        Expr::MatrixSelector(m) => out.extend(eval::selector_alternatives(&m.vs)),
        Expr::Subquery(sq) => selectors(&sq.expr, out),
        Expr::Aggregate(a) => {
            selectors(&a.expr, out);
            if let Some(p) = &a.param {
                selectors(p, out);
            }
        }
        Expr::Unary(u) => selectors(&u.expr, out),
        Expr::Binary(b) => {
            selectors(&b.lhs, out);
            selectors(&b.rhs, out);
        }
        Expr::Paren(p) => selectors(&p.expr, out),
        Expr::Call(c) => c.args.args.iter().for_each(|a| selectors(a, out)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::promql::{Engine, EngineConfig};
    use crate::{Store, StoreConfig};

    fn ex(trace: &str, t_s: f64) -> strata_core::Exemplar {
        strata_core::Exemplar {
            labels: vec![("trace_id".to_string(), trace.to_string())],
            value: 0.42,
            timestamp: Some(t_s),
        }
    }

    #[test]
    fn selectors_are_found_inside_any_expression() {
        let (store, _) = Store::open(StoreConfig::default());
        let le = |v: &str| vec![("le".to_string(), v.to_string())];
        let ex_store = store.exemplars();
        ex_store.add("x_bucket", &le("0.5"), &ex("a", 10.0), 0);
        ex_store.add("y_bucket", &le("0.5"), &ex("b", 10.0), 0);
        ex_store.add("z_bucket", &le("0.5"), &ex("c", 10.0), 0);
        let engine = Engine::new(Arc::new(store), EngineConfig::default());
        let names = |q: &str| -> Vec<String> {
            let got = engine
                .query_exemplars(q, 0, 20_000)
                .unwrap_or_else(|e| panic!("{q}: {e}"));
            got.unwrap_or_default()
                .iter()
                .map(|s| s.series.name().to_string())
                .collect()
        };
        assert_eq!(
            names("histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))"),
            ["x_bucket"]
        );
        assert_eq!(
            names("x_bucket{le=\"0.5\"} / on(le) y_bucket"),
            ["x_bucket", "y_bucket"]
        );
        assert_eq!(names("max_over_time(z_bucket[10m:1m])"), ["z_bucket"]);
        assert_eq!(names("x_bucket{le=\"1\"}"), Vec::<String>::new());
        assert!(engine.query_exemplars("rate(x_bucket[5m]", 0, 1).is_err());
        assert_eq!(
            engine.query_exemplars("x_bucket", 11_000, 20_000).ok(),
            Some(Some(Vec::new()))
        );
        assert_eq!(engine.query_exemplars("1 + 1", 0, 20_000).ok(), Some(None));
    }
}
