//! Hostile queries: deep nesting must be answered or refused without overflowing the
//! stack, and absurd subqueries, timeouts and cancellation must stop a query with a typed
//! error instead of exhausting memory or running on.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use tsdb::promql::{Cancel, Engine, EngineConfig, ErrorKind, QueryError, QueryOptions, Value};
use tsdb::{SampleRef, Store, StoreConfig};

/// `series` series `up{i="…"}` with a sample every 15 s for `minutes` minutes.
fn store(series: usize, minutes: i64) -> Arc<Store> {
    let (store, _) = Store::open(StoreConfig::default());
    for i in 0..series {
        let labels = vec![("i".to_string(), i.to_string())];
        store.append(
            "test",
            (0..minutes * 4).map(|k| SampleRef {
                name: "up",
                labels: &labels,
                t_ms: k * 15_000,
                value: 1.0,
            }),
        );
    }
    Arc::new(store)
}

/// Runs `f` on a thread with a small stack (smaller than tokio's 2 MiB workers), so a
/// recursion the engine does not guard would overflow here first.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(f)
        .and_then(|h| {
            h.join()
                .map_err(|_| std::io::Error::other("query thread panicked"))
        })
        .unwrap_or_else(|e| panic!("{e}"))
}

fn shapes(n: usize) -> Vec<String> {
    vec![
        format!("{}up", "-".repeat(n)),
        vec!["up"; n].join("+"),
        format!("{}up{}", "(".repeat(2 * n), ")".repeat(2 * n)),
        format!("{}up{}", "abs(".repeat(n / 2), ")".repeat(n / 2)),
    ]
}

#[test]
fn deep_queries_are_refused_with_the_limit_named() {
    let engine = Arc::new(Engine::new(store(1, 10), EngineConfig::default()));
    for n in [10_000, 100_000] {
        for q in shapes(n) {
            let e = Arc::clone(&engine);
            let res = on_small_stack(move || e.instant(&q, 60_000));
            let err = res.err().unwrap_or_else(|| panic!("depth {n} accepted"));
            assert_eq!(err.kind, ErrorKind::BadData);
            assert!(
                err.message.contains("max_nesting") && err.message.contains("1000"),
                "{}",
                err.message
            );
            let e = Arc::clone(&engine);
            let q = vec!["up"; n].join(" or ");
            let res = on_small_stack(move || e.range(&q, 0, 60_000, 15_000));
            assert_eq!(res.map_err(|e| e.kind), Err(ErrorKind::BadData));
        }
    }
}

#[test]
fn deep_queries_within_a_raised_limit_are_answered_on_a_small_stack() {
    let cfg = EngineConfig {
        max_nesting: 30_000,
        ..EngineConfig::default()
    };
    let engine = Arc::new(Engine::new(store(1, 10), cfg));
    // Parsing long operator chains is quadratic in promql-parser, so those stay shorter.
    let cases = [
        (
            format!("{}up{}", "(".repeat(20_000), ")".repeat(20_000)),
            1.0,
        ),
        (
            format!("{}up{}", "abs(".repeat(5_000), ")".repeat(5_000)),
            1.0,
        ),
        (format!("{}up", "-".repeat(1_501)), -1.0),
        (vec!["up"; 1_500].join("+"), 1_500.0),
    ];
    for (q, want) in cases {
        let e = Arc::clone(&engine);
        let got = on_small_stack(move || e.instant(&q, 60_000));
        match got {
            Ok(Value::Vector(v)) => {
                assert_eq!(v.len(), 1);
                assert_eq!(v[0].v, want);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn absurd_subqueries_are_refused_up_front() {
    let engine = Engine::new(store(1, 10), EngineConfig::default());
    for q in [
        "sum_over_time(up[100y:1s])",
        "max_over_time(rate(up[5m])[10y:1s])",
    ] {
        let err = engine
            .instant(q, 600_000)
            .err()
            .unwrap_or_else(|| panic!("{q} accepted"));
        assert_eq!(err.kind, ErrorKind::BadData, "{q}");
        assert!(
            err.message.contains("max_subquery_steps"),
            "{}",
            err.message
        );
    }
    // The same shape within the limit is answered: 10 min of 1 s steps over 15 s samples.
    match engine.instant("count_over_time(up[10m:1s])", 600_000) {
        Ok(Value::Vector(v)) => assert_eq!(v.first().map(|s| s.v), Some(600.0)),
        other => panic!("{other:?}"),
    }
}

fn err_of(r: Result<Value, QueryError>) -> QueryError {
    r.err().unwrap_or_else(|| panic!("query succeeded"))
}

#[test]
fn max_samples_counts_subquery_points_and_range_windows() {
    // 10 series × 40 samples = 400 loaded samples.
    let store = store(10, 10);
    let cfg = EngineConfig {
        max_samples: 1_000,
        ..EngineConfig::default()
    };
    let engine = Engine::new(Arc::clone(&store), cfg);
    assert!(engine.instant("sum(up)", 600_000).is_ok());
    // 600 subquery steps × 10 series = 6000 points held at once, though only 400 loaded.
    let err = err_of(engine.instant("max_over_time(up[10m:1s])", 600_000));
    assert_eq!(err.kind, ErrorKind::TooManySamples);
    assert!(
        err.message.contains("max_samples = 1000"),
        "{}",
        err.message
    );
    assert_eq!(err.error_type(), "execution");
    assert_eq!(err.http_status(), 422);
    // Range windows: 10 series × 40 points in one window, twice in one expression.
    let engine = Engine::new(
        store,
        EngineConfig {
            max_samples: 1_100,
            ..EngineConfig::default()
        },
    );
    assert!(engine.instant("count_over_time(up[10m])", 600_000).is_ok());
    let both = "count_over_time(up[10m]) + sum_over_time(up[10m] offset 1s)";
    assert_eq!(
        err_of(engine.instant(both, 600_000)).kind,
        ErrorKind::TooManySamples
    );
}

#[test]
fn timeouts_and_cancellation_stop_a_query() {
    let engine = Arc::new(Engine::new(store(20, 60), EngineConfig::default()));
    // Far more work than any test budget: 1M subquery steps per step of a range query.
    let heavy = "max_over_time(sum(up)[11d:1s])";
    let expired = QueryOptions {
        timeout: Some(Duration::ZERO),
        cancel: None,
    };
    let err = err_of(engine.range_with(heavy, 0, 3_600_000, 60_000, &expired));
    assert_eq!(err.kind, ErrorKind::Timeout);
    assert!(err.message.contains("timeout"), "{}", err.message);
    assert_eq!(err.http_status(), 503);

    let cancel = Cancel::new();
    cancel.cancel();
    let opts = QueryOptions {
        timeout: None,
        cancel: Some(cancel),
    };
    let err = err_of(engine.instant_with("up", 600_000, &opts));
    assert_eq!(err.kind, ErrorKind::Canceled);
    assert_eq!(err.error_type(), "canceled");

    // Canceled from another thread while it runs: the query notices inside its loops.
    let cancel = Cancel::new();
    let opts = QueryOptions {
        timeout: None,
        cancel: Some(cancel.clone()),
    };
    let e = Arc::clone(&engine);
    let running = thread::spawn(move || e.range_with(heavy, 0, 3_600_000, 60_000, &opts));
    thread::sleep(Duration::from_millis(50));
    cancel.cancel();
    let res = running
        .join()
        .unwrap_or_else(|_| panic!("query thread panicked"));
    assert_eq!(err_of(res).kind, ErrorKind::Canceled);
    // The plain methods still answer.
    assert!(engine.instant("sum(up)", 600_000).is_ok());
}
