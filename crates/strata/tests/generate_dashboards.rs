//! The generated Grafana dashboards: each type-checks against `@grafana/schema` with
//! TypeScript (`satisfies Dashboard`, `tsc --noEmit`), and every PromQL expression of every
//! panel, with Grafana's variables substituted, evaluates without error on Strata's own
//! query API, against a live `strata up` that scrapes `strata sim` and evaluates the
//! generated rule files; the engine, GPU and core overview panels return data.

use testkit::live;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

fn generate(what: &str, dir: &Path) {
    let out = live::strata()
        .args(["generate", what, "--out"])
        .arg(dir)
        .output()
        .expect("run strata generate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn dashboards(dir: &Path) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = std::fs::read_dir(dir)
        .expect("dashboards")
        .map(|e| e.expect("entry").path())
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read");
            let name = p
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("")
                .to_string();
            (name, serde_json::from_str(&text).expect("dashboard JSON"))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn dashboards_type_check_against_grafana_schema() {
    let grafana = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/grafana");
    let tsc = grafana.join("node_modules/.bin/tsc");
    if !tsc.exists() {
        assert!(
            std::env::var("STRATA_REQUIRE_PEERS").as_deref() != Ok("1"),
            "STRATA_REQUIRE_PEERS=1 but {} is missing (npm ci in crates/strata/tests/grafana)",
            tsc.display()
        );
        eprintln!("skipping: run `npm ci` in crates/strata/tests/grafana");
        return;
    }
    let check = tempfile::Builder::new()
        .prefix(".check-")
        .tempdir_in(&grafana)
        .expect("tmp");
    generate("dashboards", check.path());
    let boards = dashboards(check.path());
    assert_eq!(boards.len(), 5);
    let mut files = Vec::new();
    for (name, board) in &boards {
        assert_eq!(board["schemaVersion"], 42, "{name}");
        let file = check.path().join(format!("{}.ts", name.replace('-', "_")));
        std::fs::write(
            &file,
            format!(
                "import type {{ Dashboard }} from '@grafana/schema';\nexport const d = {} satisfies Dashboard;\n",
                serde_json::to_string_pretty(board).expect("json")
            ),
        )
        .expect("write ts");
        files.push(file);
    }
    let tsc_run = |files: &[PathBuf]| {
        Command::new(&tsc)
            .args([
                "--noEmit", "--strict", "--target", "es2022", "--module", "nodenext",
            ])
            .args(["--moduleResolution", "nodenext"])
            .args(files)
            .current_dir(&grafana)
            .output()
            .expect("run tsc")
    };
    let out = tsc_run(&files);
    assert!(
        out.status.success(),
        "tsc:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The check can fail: a misspelt dashboard field is refused.
    let bad = check.path().join("bad.ts");
    let text = std::fs::read_to_string(&files[0]).expect("ts");
    std::fs::write(
        &bad,
        text.replacen("\"schemaVersion\"", "\"schemaVersoin\"", 1),
    )
    .expect("write");
    assert!(
        !tsc_run(&[bad]).status.success(),
        "tsc must refuse a misspelt field"
    );
}

/// Grafana's variables as a test substitutes them.
fn substitute(expr: &str) -> String {
    expr.replace("$__rate_interval", "30s")
        .replace("$model", ".*")
        .replace("$tenant", ".*")
        .replace("$node", ".*")
        .replace("$instance", ".*")
}

/// Panels whose queries read only what `strata up` scraping `strata sim` (no gateway)
/// records: they must return data.
fn core(board: &str, exprs: &[String]) -> bool {
    (board.contains("engine") || board.contains("gpu") || board.contains("overview"))
        && exprs.iter().all(|e| {
            !e.contains("strata_gateway_")
                && !e.contains("ALERTS")
                && !e.contains("prefix_cache")
                && !e.contains("queue_seconds")
                && !e.contains("preemptions")
                && !e.contains("xid_last")
                && !e.contains("nvlink")
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_query_evaluates_on_strata_against_the_simulator() {
    let dir = tempfile::tempdir().expect("tmp");
    generate("rules", &dir.path().join("rules"));
    generate("dashboards", &dir.path().join("dashboards"));
    // The generated rule files, evaluated every second instead of every 10-30 s.
    let mut rule_args: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(dir.path().join("rules")).expect("rules") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("rule file");
        let fast: String = text
            .lines()
            .map(|l| {
                if l.starts_with("  interval: ") {
                    "  interval: 1s"
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&path, fast + "\n").expect("write");
        rule_args.extend(["--rules".to_string(), path.display().to_string()]);
    }
    let config = dir.path().join("strata.toml");
    std::fs::write(
        &config,
        "[scrape.engine.steady]\ninterval = \"1s\"\n[scrape.gpu.steady]\ninterval = \"1s\"\n",
    )
    .expect("config");
    let (_sim, engine, gpu) = live::sim(&["--engine", "vllm"]);
    let mut args: Vec<String> = vec!["--config".into(), config.display().to_string()];
    args.extend(["--engine".into(), engine, "--gpu".into(), gpu]);
    args.extend(rule_args);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_up, base) = live::up(&args, &dir.path().join("data")).await;

    let client = reqwest::Client::new();
    let panels: Vec<(String, String, Vec<String>)> = dashboards(&dir.path().join("dashboards"))
        .into_iter()
        .flat_map(|(board, d)| {
            d["panels"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |p| {
                    let exprs = p["targets"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|t| t["expr"].as_str().map(substitute))
                        .collect();
                    (
                        board.clone(),
                        p["title"].as_str().unwrap_or("").to_string(),
                        exprs,
                    )
                })
        })
        .collect();
    assert!(panels.len() >= 35, "{} panels", panels.len());
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let mut empty = Vec::new();
        for (board, title, exprs) in &panels {
            let mut data = false;
            for expr in exprs {
                let end = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("clock")
                    .as_secs_f64();
                let query = form_urlencoded::Serializer::new(String::new())
                    .append_pair("query", expr)
                    .append_pair("start", &format!("{}", end - 60.0))
                    .append_pair("end", &format!("{end}"))
                    .append_pair("step", "5")
                    .finish();
                let v = live::json(client.get(format!("{base}/api/v1/query_range?{query}"))).await;
                assert_eq!(v["status"], "success", "{board} / {title}: {expr}: {v}");
                data |= v["data"]["result"]
                    .as_array()
                    .is_some_and(|r| !r.is_empty());
            }
            if core(board, exprs) && !data {
                empty.push(format!("{board} / {title}"));
            }
        }
        if empty.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            let up = live::json(client.get(format!("{base}/api/v1/query?query=up"))).await;
            panic!("core panels without data after 90 s: {empty:?}; up: {up}");
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
}
