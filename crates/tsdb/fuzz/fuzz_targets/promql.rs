//! Parses and evaluates arbitrary PromQL against a tiny store, as an instant and as a range
//! query, under tight limits: whatever the input (deep nesting, odd functions, huge ranges
//! or subqueries), the engine must answer or return a typed error, never panic, overflow
//! its stack or run away. The first byte picks raw text or an expression generated from
//! the remaining bytes (random nesting of operators, functions, aggregations, subqueries).
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tsdb::promql::{Engine, EngineConfig};
use tsdb::{SampleRef, Store, StoreConfig};

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let (store, _) = Store::open(StoreConfig::default());
        let series: [(&str, &[(&str, &str)]); 6] = [
            ("up", &[("job", "a")]),
            ("up", &[("job", "b")]),
            ("req_total", &[("job", "a"), ("code", "200")]),
            ("lat_bucket", &[("le", "0.1")]),
            ("lat_bucket", &[("le", "+Inf")]),
            ("g", &[]),
        ];
        for (k, (name, labels)) in series.iter().enumerate() {
            let labels: Vec<(String, String)> = labels
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            store.append(
                "fuzz",
                (0..60i64).map(|i| SampleRef {
                    name,
                    labels: &labels,
                    t_ms: i * 15_000,
                    value: (i * (k as i64 + 1)) as f64 - 20.0,
                }),
            );
        }
        let cfg = EngineConfig {
            timeout: Duration::from_millis(200),
            max_samples: 200_000,
            max_subquery_steps: 20_000,
            ..EngineConfig::default()
        };
        Engine::new(Arc::new(store), cfg)
    })
}

const LEAVES: &[&str] = &[
    "up",
    "req_total",
    "lat_bucket",
    "g",
    "1",
    "-2.5",
    "NaN",
    "Inf",
    "\"s\"",
    "up{job=\"a\"}",
    "{__name__=~\".+\"}",
    "time()",
    "pi()",
    "vector(1)",
];
const RANGE_FNS: &[&str] = &[
    "rate",
    "increase",
    "delta",
    "irate",
    "idelta",
    "deriv",
    "changes",
    "resets",
    "avg_over_time",
    "sum_over_time",
    "count_over_time",
    "min_over_time",
    "max_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "last_over_time",
    "first_over_time",
    "present_over_time",
    "mad_over_time",
    "absent_over_time",
    "ts_of_max_over_time",
];
const FNS: &[&str] = &[
    "abs",
    "ceil",
    "floor",
    "exp",
    "ln",
    "sqrt",
    "sgn",
    "timestamp",
    "sort",
    "sort_desc",
    "absent",
    "scalar",
    "vector",
    "hour",
    "year",
    "days_in_month",
    "histogram_count",
    "round",
];
const AGGRS: &[&str] = &[
    "sum",
    "avg",
    "count",
    "min",
    "max",
    "stddev",
    "stdvar",
    "group",
    "sum by (job)",
    "max without (le)",
];
const BINOPS: &[&str] = &[
    "+",
    "-",
    "*",
    "/",
    "%",
    "^",
    "==",
    "!=",
    ">",
    "<",
    ">= bool",
    "and",
    "or",
    "unless",
    "atan2",
    "+ on(job)",
    "/ ignoring(code) group_left",
];
const RANGES: &[&str] = &["[1m]", "[5m]", "[1h]", "[100y]", "[0s]"];
const SUBQUERIES: &[&str] = &["[5m:1m]", "[1h:]", "[10m:1s]", "[100y:1s]", "[1d:1ms]"];

/// Builds an expression from `bytes`, nesting while bytes last (bounded by `depth`).
fn expr_from(bytes: &mut impl Iterator<Item = u8>, depth: usize, out: &mut String) {
    let Some(b) = bytes.next() else {
        out.push_str("up");
        return;
    };
    let pick = |list: &[&'static str], i: u8| list[i as usize % list.len()];
    if depth == 0 {
        out.push_str(pick(LEAVES, b));
        return;
    }
    let arg = bytes.next().unwrap_or(0);
    match b % 9 {
        0 => out.push_str(pick(LEAVES, arg)),
        1 => {
            out.push_str(pick(RANGE_FNS, arg));
            out.push('(');
            out.push_str(pick(LEAVES, arg / 7));
            out.push_str(pick(RANGES, arg / 3));
            out.push(')');
        }
        2 | 3 => {
            out.push_str(if b % 9 == 2 {
                pick(FNS, arg)
            } else {
                pick(AGGRS, arg)
            });
            out.push('(');
            if pick(FNS, arg) == "round" && b % 9 == 2 {
                expr_from(bytes, depth - 1, out);
                out.push_str(", 0.5");
            } else {
                expr_from(bytes, depth - 1, out);
            }
            out.push(')');
        }
        4 => {
            out.push('(');
            expr_from(bytes, depth - 1, out);
            out.push(' ');
            out.push_str(pick(BINOPS, arg));
            out.push(' ');
            expr_from(bytes, depth - 1, out);
            out.push(')');
        }
        5 => {
            out.push('-');
            expr_from(bytes, depth - 1, out);
        }
        6 => {
            out.push_str(pick(RANGE_FNS, arg));
            out.push('(');
            expr_from(bytes, depth - 1, out);
            out.push_str(pick(SUBQUERIES, arg / 5));
            out.push(')');
        }
        7 => {
            // A long run of one nesting shape.
            let n = usize::from(arg) * 16;
            let (open, close) =
                [("(", ")"), ("-", ""), ("abs(", ")"), ("sum(", ")")][usize::from(arg % 4)];
            out.push_str(&open.repeat(n));
            out.push_str("up");
            out.push_str(&close.repeat(n));
        }
        _ => {
            out.push_str("topk(");
            out.push_str(pick(LEAVES, arg));
            out.push_str(", ");
            expr_from(bytes, depth - 1, out);
            out.push(')');
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let expr = if mode % 2 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        let mut out = String::new();
        expr_from(&mut rest.iter().copied(), 12, &mut out);
        out
    };
    let e = engine();
    let _ = e.instant(&expr, 600_000);
    let _ = e.range(&expr, 0, 900_000, 60_000);
});
