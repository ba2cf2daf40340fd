//! Cost rules and the cost report against hand-computed examples: synthetic series in
//! virtual time go into a real `tsdb::Store`, the generated cost group is evaluated by
//! Strata's rule engine every 30 s, and the recorded series and `rules::cost::report` are
//! compared with numbers worked out by hand (in the comments). The generated file also
//! passes the real `promtool check rules`.

use testkit::peer;

use rules::alert::Labels;
use rules::cost::{CostModel, GpuMatch, GpuPrice, ModelPrice, Report, report};
use rules::{EngineConfig, Query, RuleEngine};
use sources::Point;
use testkit::db::Db;

/// Virtual time starts here.
const T0: i64 = 1_700_000_000_000;
/// Data step.
const STEP_S: i64 = 15;

/// The one series `expr` returns from `db` whose labels include `with`.
fn value(db: &Db, expr: &str, t_s: i64, with: &[(&str, &str)]) -> f64 {
    {
        let rows = db.instant(expr, T0 + t_s * 1000).expect(expr);
        let hits: Vec<f64> = rows
            .iter()
            .filter(|(l, _)| {
                with.iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(_, v)| *v)
            .collect();
        assert_eq!(hits.len(), 1, "{expr} {with:?}: {rows:?}");
        hits[0]
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    let mut l: Labels = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    l.sort();
    l
}

fn gpu_labels(uuid: &str, model_name: &str) -> Labels {
    labels(&[
        ("Hostname", "node-a"),
        ("gpu", &uuid[uuid.len() - 1..]),
        ("gpu_uuid", uuid),
        ("modelName", model_name),
        ("instance", "dcgm:9400"),
    ])
}

fn cost_model() -> CostModel {
    CostModel {
        currency: "USD".into(),
        gpus: vec![
            GpuPrice {
                matches: GpuMatch::Contains("A100".into()),
                per_hour: 1.2,
            },
            GpuPrice {
                matches: GpuMatch::Exact("NVIDIA H100 80GB HBM3".into()),
                per_hour: 2.0,
            },
        ],
        default_gpu_per_hour: Some(0.7),
        models: vec![
            ModelPrice {
                model: "m1".into(),
                prompt_per_million: 0.5,
                generation_per_million: 1.5,
            },
            ModelPrice {
                model: "m2".into(),
                prompt_per_million: 0.2,
                generation_per_million: 0.6,
            },
        ],
    }
}

fn engine(m: &CostModel) -> RuleEngine {
    let groups = rules::load("cost.yml", &rules::cost::file(m)).expect("cost rules load");
    RuleEngine::new(groups, EngineConfig::default())
}

fn close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= 1e-9 * want.abs().max(1e-6),
        "{what}: got {got}, want {want}"
    );
}

/// Per tenant: (tenant, model, prompt tokens/s, generated tokens/s, useful prompt/s,
/// useful generated/s) while busy.
const TRAFFIC: [(&str, &str, f64, f64, f64, f64); 2] = [
    ("a", "m1", 500.0, 1125.0, 450.0, 1000.0),
    ("b", "m2", 125.0, 375.0, 125.0, 375.0),
];

/// One H100 at 2 $/h for one hour: idle (no kernel, no token) for the first 20 minutes,
/// then 40 minutes busy producing 3.6 M tokens, 2.7 M for tenant a (model m1) and 0.9 M
/// for tenant b (model m2). Written every 15 s; the cost group evaluated every 30 s.
fn one_busy_hour(db: &Db, rules: &RuleEngine) {
    let gpu = gpu_labels("GPU-0", "NVIDIA H100 80GB HBM3");
    for step in 0..=(3600 / STEP_S) {
        let t = step * STEP_S;
        let t_ms = T0 + t * 1000;
        // The sample at t stands for (t - 15 s, t]: idle through 1200 s.
        let busy_s = (t - 1200).max(0) as f64;
        let mut points = vec![Point::new(
            "gpu:util_ratio",
            gpu.clone(),
            if t <= 1200 { 0.0 } else { 1.0 },
            t_ms,
        )];
        for (tenant, model, p, g, up, ug) in TRAFFIC {
            let l = labels(&[
                ("tenant", tenant),
                ("model", model),
                ("upstream", "sim"),
                ("instance", "gw:8080"),
            ]);
            for (name, per_s) in [
                ("strata_gateway_prompt_tokens_total", p),
                ("strata_gateway_generation_tokens_total", g),
                ("strata_gateway_useful_prompt_tokens_total", up),
                ("strata_gateway_useful_generation_tokens_total", ug),
            ] {
                points.push(Point::new(name, l.clone(), per_s * busy_s, t_ms));
            }
        }
        db.write("test", &points);
        if t % rules::cost::INTERVAL_S as i64 == 0 {
            rules.eval_group(0, t_ms, db, db);
        }
    }
}

#[test]
fn one_gpu_hour_with_idle_is_shared_by_tokens_and_billed_by_model_prices() {
    let db = Db::new();
    let rules = engine(&cost_model());
    one_busy_hour(&db, &rules);
    let at = 3600;
    let usd = ("currency", "USD");

    close(
        value(&db, "cost:gpu_price:per_hour", at, &[usd]),
        2.0,
        "H100 price",
    );
    close(
        value(
            &db,
            "cost:node_price:per_hour",
            at,
            &[("Hostname", "node-a")],
        ),
        2.0,
        "node",
    );
    // 120 evaluations in (0, 3600] × 2 $/h × 30 s = 2 $.
    close(
        value(&db, "cost:gpu_cost:sum1h", at, &[usd]),
        2.0,
        "GPU hour",
    );
    // 40 idle evaluations (30 s .. 1200 s) × 2 $/h × 30 s = 2/3 $.
    close(
        value(&db, "cost:gpu_idle_cost:sum1h", at, &[usd]),
        2.0 / 3.0,
        "idle",
    );
    close(
        value(&db, "cost:generation_tokens:increase1h", at, &[]),
        3_600_000.0,
        "tokens",
    );
    // 2 $ / 3.6 M tokens.
    close(
        value(&db, "cost:effective_per_token:1h", at, &[usd]),
        2.0 / 3.6e6,
        "effective cost per token",
    );
    // a: 2.7 M / 3.6 M = 0.75 of 2 $ = 1.5 $, of which 0.75 × 2/3 $ = 0.5 $ idle;
    // b: 0.25 → 0.5 $, 1/6 $ idle.
    for (tenant, share) in [("a", 0.75), ("b", 0.25)] {
        let t = ("tenant", tenant);
        close(
            value(&db, "cost:tenant_tokens:share1h", at, &[t]),
            share,
            tenant,
        );
        close(
            value(&db, "cost:tenant_gpu_cost:sum1h", at, &[t, usd]),
            share * 2.0,
            tenant,
        );
        close(
            value(&db, "cost:tenant_gpu_idle_cost:sum1h", at, &[t, usd]),
            share * 2.0 / 3.0,
            tenant,
        );
    }
    // Billed per hour at the 5-minute rate: a (m1) = (500 × 0.5 + 1125 × 1.5) $/M × 3600 s
    // = 6.975 $/h; b (m2) = (125 × 0.2 + 375 × 0.6) × 3600 / 1e6 = 0.9 $/h.
    close(
        value(
            &db,
            "cost:billed:per_hour",
            at,
            &[("tenant", "a"), ("model", "m1")],
        ),
        6.975,
        "billed a",
    );
    close(
        value(&db, "cost:tenant_billed:per_hour", at, &[("tenant", "b")]),
        0.9,
        "billed b",
    );
    close(
        value(
            &db,
            "cost:model_billed:per_hour",
            at,
            &[("model", "m1"), usd],
        ),
        6.975,
        "billed m1",
    );
    close(
        value(
            &db,
            "cost:token_price:per_million",
            at,
            &[("model", "m2"), ("type", "generation")],
        ),
        0.6,
        "price series",
    );
    // Useful over billed: a (450 + 1000) / (500 + 1125); b all useful.
    close(
        value(
            &db,
            "cost:useful_tokens:ratio_rate1h",
            at,
            &[("tenant", "a")],
        ),
        1450.0 / 1625.0,
        "useful a",
    );
    close(
        value(
            &db,
            "cost:useful_tokens:ratio_rate1h",
            at,
            &[("tenant", "b")],
        ),
        1.0,
        "useful b",
    );
}

#[test]
fn the_report_over_the_hour_matches_the_hand_computed_bill() {
    let db = Db::new();
    one_busy_hour(&db, &engine(&cost_model()));
    let r: Report = report(&db, T0 + 3_600_000, 3600).expect("report");
    assert_eq!(r.currency, "USD");
    close(r.gpu_hours, 1.0, "GPU hours");
    close(r.gpu_cost, 2.0, "GPU cost");
    close(r.gpu_idle_cost, 2.0 / 3.0, "idle cost");
    close(r.idle_share.expect("idle share"), 1.0 / 3.0, "idle share");
    close(r.tokens_produced, 3.6e6, "tokens produced");
    close(
        r.effective_cost_per_token.expect("effective"),
        2.0 / 3.6e6,
        "effective",
    );
    assert_eq!(r.gpus.len(), 1);
    assert_eq!(r.gpus[0].model_name, "NVIDIA H100 80GB HBM3");
    // a: 1.2 M prompt × 0.5 + 2.7 M generated × 1.5 = 4.65 $; b: 0.3 × 0.2 + 0.9 × 0.6 = 0.6 $.
    let names: Vec<&str> = r.tenants.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["a", "b"], "largest bill first");
    let (a, b) = (&r.tenants[0], &r.tenants[1]);
    close(a.billed_cost, 4.65, "a billed");
    close(b.billed_cost, 0.6, "b billed");
    close(a.prompt_tokens, 1.2e6, "a prompt");
    close(a.generation_tokens, 2.7e6, "a generated");
    close(a.useful_tokens, 1.08e6 + 2.4e6, "a useful");
    close(a.gpu_cost, 1.5, "a GPU share");
    close(a.gpu_idle_cost, 0.5, "a idle share");
    close(b.gpu_cost, 0.5, "b GPU share");
    close(b.gpu_idle_cost, 1.0 / 6.0, "b idle share");
    assert_eq!(r.models[0].name, "m1");
    close(r.models[0].billed_cost, 4.65, "m1 billed");
    close(r.billed_cost, 5.25, "billed");
    close(r.billed_tokens, 5.1e6, "billed tokens");
    close(r.useful_tokens, 4.68e6, "useful tokens");
}

#[test]
fn gpus_are_priced_exact_first_then_by_substring_then_default() {
    let db = Db::new();
    let rules = engine(&cost_model());
    let t_ms = T0;
    let mut points = Vec::new();
    for (uuid, name) in [
        ("GPU-0", "NVIDIA H100 80GB HBM3"),
        ("GPU-1", "NVIDIA A100-SXM4-80GB"),
        ("GPU-2", "NVIDIA L4"),
        // An exact entry beats a substring one: "H100" is not listed as a substring here,
        // but an H100 NVL must not take the HBM3 price either.
        ("GPU-3", "NVIDIA H100 NVL"),
    ] {
        points.push(Point::new(
            "gpu:util_ratio",
            gpu_labels(uuid, name),
            0.5,
            t_ms,
        ));
    }
    db.write("test", &points);
    rules.eval_group(0, t_ms, &db, &db);
    for (uuid, want) in [
        ("GPU-0", 2.0),
        ("GPU-1", 1.2),
        ("GPU-2", 0.7),
        ("GPU-3", 0.7),
    ] {
        close(
            value(&db, "cost:gpu_price:per_hour", 0, &[("gpu_uuid", uuid)]),
            want,
            uuid,
        );
        close(
            value(&db, "cost:gpu_idle_cost:per_hour", 0, &[("gpu_uuid", uuid)]),
            want * 0.5,
            uuid,
        );
    }
    close(
        value(
            &db,
            "cost:node_price:per_hour",
            0,
            &[("Hostname", "node-a")],
        ),
        2.0 + 1.2 + 0.7 + 0.7,
        "node",
    );
}

#[test]
fn engine_token_counts_are_preferred_for_tokens_produced() {
    let db = Db::new();
    let rules = engine(&cost_model());
    let engine_labels = labels(&[("instance", "vllm:8000"), ("model", "m1")]);
    // The engines produced 4 M tokens in the hour, 0.4 M from clients that bypass the
    // gateway: the effective cost is 2 $ / 4 M; tenant a pays for its 2.7 M of the 4 M
    // (2 $ × 2.7 / 4 = 1.35 $), b for 0.9 M (0.45 $), and 0.4 M (0.2 $) is not via the gateway.
    for step in 0..=(3600 / STEP_S) {
        let t = step * STEP_S;
        db.write(
            "test",
            &[Point::new(
                "llm:generation_tokens_total",
                engine_labels.clone(),
                4e6 * (t as f64) / 3600.0,
                T0 + t * 1000,
            )],
        );
    }
    one_busy_hour(&db, &rules);
    // Linear from 0 at t = 0: the increase over (0, 3600] is extrapolated to 4 M exactly.
    close(
        value(&db, "cost:effective_per_token:1h", 3600, &[]),
        2.0 / 4e6,
        "effective",
    );
    close(
        value(&db, "cost:tenant_gpu_cost:sum1h", 3600, &[("tenant", "a")]),
        1.35,
        "a",
    );
    close(
        value(&db, "cost:not_via_gateway_gpu_cost:sum1h", 3600, &[]),
        0.2,
        "not via the gateway",
    );
    let r = report(&db, T0 + 3600 * 1000, 3600).expect("report");
    let a = r.tenants.iter().find(|t| t.name == "a").expect("a");
    close(a.gpu_cost, 1.35, "report: a");
    close(
        r.not_via_gateway_tokens,
        0.4e6,
        "report: tokens not via the gateway",
    );
    close(
        r.not_via_gateway_gpu_cost,
        0.2,
        "report: not via the gateway",
    );
    let shared: f64 =
        r.tenants.iter().map(|t| t.gpu_cost).sum::<f64>() + r.not_via_gateway_gpu_cost;
    close(
        shared,
        r.gpu_cost,
        "tenants and the rest add up to the GPU cost",
    );
}

#[test]
fn a_store_without_cost_series_gets_an_error_that_names_the_fix() {
    let db = Db::new();
    let e = report(&db, T0, 3600).expect_err("no series");
    assert!(e.contains("[cost]"), "{e}");
}

#[test]
fn counters_born_inside_the_window_count_from_zero() {
    // A gateway that started 30 minutes ago: its counter's first sample already holds the
    // 500 tokens of the requests served before the first copy into the store, then grows
    // to 1,000. Over the hour, tenant c produced 1,000 tokens, not `increase`'s 500.
    let db = Db::new();
    let rules = engine(&cost_model());
    let l = labels(&[("tenant", "c"), ("model", "m1"), ("upstream", "sim")]);
    for step in (1800 / STEP_S)..=(3600 / STEP_S) {
        let t = step * STEP_S;
        let v = 500.0 + 500.0 * (t - 1800) as f64 / 1800.0;
        let mut points = vec![
            Point::new(
                "strata_gateway_generation_tokens_total",
                l.clone(),
                v,
                T0 + t * 1000,
            ),
            Point::new(
                "strata_gateway_prompt_tokens_total",
                l.clone(),
                2.0 * v,
                T0 + t * 1000,
            ),
        ];
        points.push(Point::new(
            "gpu:util_ratio",
            gpu_labels("GPU-0", "NVIDIA H100 80GB HBM3"),
            1.0,
            T0 + t * 1000,
        ));
        db.write("test", &points);
        if t % rules::cost::INTERVAL_S as i64 == 0 {
            rules.eval_group(0, T0 + t * 1000, &db, &db);
        }
    }
    close(
        value(&db, "cost:generation_tokens:increase1h", 3600, &[]),
        1000.0,
        "tokens",
    );
    let r = report(&db, T0 + 3_600_000, 3600).expect("report");
    close(r.tenants[0].generation_tokens, 1000.0, "generated");
    // 2,000 prompt tokens × 0.5 + 1,000 generated × 1.5, per million.
    close(
        r.tenants[0].billed_cost,
        (2000.0 * 0.5 + 1000.0 * 1.5) / 1e6,
        "billed",
    );
    // The GPU was seen from 1800 s: 61 evaluations of 30 s each.
    close(r.gpu_hours, 0.5 + 1.0 / 120.0, "GPU hours");
}

#[test]
fn the_generated_cost_rules_pass_promtool() {
    let Some(promtool) = peer::find("promtool", "prometheus") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    // The test model, and one with only a default GPU price and a regex-hostile substring.
    let odd = CostModel {
        currency: "EUR".into(),
        gpus: vec![GpuPrice {
            matches: GpuMatch::Contains("H100 (SXM5) \\ \"x\"".into()),
            per_hour: 3.25,
        }],
        default_gpu_per_hour: None,
        models: vec![ModelPrice {
            model: "org/model's \"name\"".into(),
            prompt_per_million: 0.0,
            generation_per_million: 0.25,
        }],
    };
    let mut files = Vec::new();
    for (i, m) in [cost_model(), odd].iter().enumerate() {
        let path = dir.path().join(format!("cost-{i}.yml"));
        let text = rules::cost::file(m);
        rules::load("cost.yml", &text).expect("Strata's validator accepts it");
        std::fs::write(&path, text).expect("write");
        files.push(path);
    }
    let out = std::process::Command::new(&promtool)
        .arg("check")
        .arg("rules")
        .args(&files)
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("SUCCESS"), "{text}");
}
