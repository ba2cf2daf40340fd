//! `strata cost` end to end: a real `strata up` with `[cost]` and its gateway in front of
//! `strata sim`, two tenants' requests through the gateway, their log lines priced, and the
//! report read back from the running Strata; the errors when Strata is unreachable or has
//! no `[cost]`.

use testkit::live;

use std::process::Output;
use std::time::{Duration, Instant};

use live::{sim, strata, up};
use serde_json::Value;

const PROMPT_PRICE: f64 = 0.5;
const GENERATION_PRICE: f64 = 1.5;
const GPU_PRICE: f64 = 2.0;

fn cost(args: &[&str]) -> Output {
    strata()
        .arg("cost")
        .args(args)
        .output()
        .expect("run strata cost")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= 1e-9 * want.abs().max(1e-9),
        "{what}: got {got}, want {want}"
    );
}

async fn chat(client: &reqwest::Client, gateway: &str, tenant: &str) {
    let r = client
        .post(format!("{gateway}/v1/chat/completions"))
        .header("x-tenant", tenant)
        .header("content-type", "application/json")
        .body(
            serde_json::json!({
                "model": "sim-model",
                "stream": true,
                "max_tokens": 12,
                "messages": [{"role": "user", "content": "what does an idle GPU cost?"}]
            })
            .to_string(),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    let body = r.text().await.expect("body");
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strata_cost_reports_tenants_models_gpus_from_a_live_strata() {
    let o = cost(&[
        "--url",
        &format!("http://127.0.0.1:{}", testkit::free_port()),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("cannot reach Strata") && e.contains("strata up"),
        "{e}"
    );

    let (_sim, engine, gpu) = sim(&["--no-load", "--model", "sim-model", "--speed", "10"]);
    let dir = tempfile::tempdir().expect("tempdir");

    // Without [cost], the report says what to add.
    let (plain, plain_base) = up(&["--engine", &engine], &dir.path().join("plain")).await;
    let o = cost(&["--url", &plain_base]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("no cost series") && e.contains("[cost]"), "{e}");
    drop(plain);

    let gw_port = testkit::free_port();
    let log = dir.path().join("gw.log");
    let config = format!(
        "[gateway]\nlisten = \"127.0.0.1:{gw_port}\"\nadmin = \"127.0.0.1:0\"\n\n[gateway.tenant]\nheader = \"x-tenant\"\n\n\
         [gateway.log]\noutput = \"{}\"\n\n\
         [[gateway.upstream]]\nname = \"sim\"\nurl = \"{}\"\nengine = \"vllm\"\n\n\
         [cost]\ncurrency = \"USD\"\n\n[[cost.gpu]]\ncontains = \"H100\"\nper_hour = {GPU_PRICE}\n\n\
         [[cost.model]]\nname = \"sim-model\"\nprompt_per_million = {PROMPT_PRICE}\ngeneration_per_million = {GENERATION_PRICE}\n",
        log.display(),
        engine.trim_end_matches("/metrics"),
    );
    let config_path = dir.path().join("strata.toml");
    std::fs::write(&config_path, config).expect("config");
    let config_flag = config_path.display().to_string();
    let (_up, base) = up(
        &[
            "--config",
            &config_flag,
            "--engine",
            &engine,
            "--gpu",
            &gpu,
            "--rule-interval",
            "1s",
        ],
        &dir.path().join("data"),
    )
    .await;

    let client = reqwest::Client::new();
    let gateway = format!("http://127.0.0.1:{gw_port}");
    for tenant in ["a", "a", "a", "b"] {
        chat(&client, &gateway, tenant).await;
    }

    // The cost group runs every 30 s and the gateway's counters reach the store every 5 s:
    // wait for a report that has both tenants and GPU time.
    let deadline = Instant::now() + Duration::from_secs(90);
    let report = loop {
        let o = cost(&["--url", &base, "--since", "1h", "--json"]);
        if o.status.success() {
            let r: Value = serde_json::from_slice(&o.stdout).expect("json report");
            let tenants = r["tenants"].as_array().map_or(0, Vec::len);
            if tenants == 2 && r["gpu_cost"].as_f64().unwrap_or(0.0) > 0.0 {
                break r;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no complete report: {}",
            stderr(&o)
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    };

    assert_eq!(report["currency"], "USD");
    let tenant = |name: &str| -> &Value {
        report["tenants"]
            .as_array()
            .and_then(|t| t.iter().find(|u| u["name"] == name))
            .unwrap_or_else(|| panic!("tenant {name} in {report}"))
    };
    let (a, b) = (tenant("a"), tenant("b"));
    let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or_else(|| panic!("{k} in {v}"));
    assert!(
        f(a, "generation_tokens") > f(b, "generation_tokens"),
        "{report}"
    );
    for u in [a, b] {
        close(
            f(u, "billed_cost"),
            (f(u, "prompt_tokens") * PROMPT_PRICE + f(u, "generation_tokens") * GENERATION_PRICE)
                / 1e6,
            "billed = tokens x prices",
        );
        assert!(f(u, "useful_tokens") <= f(u, "prompt_tokens") + f(u, "generation_tokens"));
    }
    assert_eq!(report["models"][0]["name"], "sim-model", "{report}");
    let gpus = report["gpus"].as_array().expect("gpus");
    assert!(!gpus.is_empty(), "{report}");
    for g in gpus {
        assert!(
            g["model_name"].as_str().unwrap_or("").contains("H100"),
            "{g}"
        );
        close(
            f(g, "cost"),
            f(g, "hours") * GPU_PRICE,
            "GPU cost = hours x price",
        );
    }
    let gpu_cost = f(&report, "gpu_cost");
    close(
        f(&report, "effective_cost_per_token"),
        gpu_cost / f(&report, "tokens_produced"),
        "effective cost per token",
    );
    // The tenants' shares spread the whole GPU cost, idle included.
    close(f(a, "gpu_cost") + f(b, "gpu_cost"), gpu_cost, "shares");
    close(
        f(a, "gpu_idle_cost") + f(b, "gpu_idle_cost"),
        f(&report, "gpu_idle_cost"),
        "idle shares",
    );

    // Each request's log line carries its own price.
    let text = std::fs::read_to_string(&log).expect("gateway log");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 4, "{text}");
    for l in &lines {
        let want = (f(l, "prompt_tokens") * PROMPT_PRICE
            + f(l, "generation_tokens") * GENERATION_PRICE)
            / 1e6;
        close(f(l, "cost"), want, "log line cost");
        assert_eq!(l["currency"], "USD");
    }

    // The human report names the same figures.
    let o = cost(&["--url", &base, "--since", "1h"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("Cost over the last 1h (USD)"), "{text}");
    assert!(text.contains("GPU hours cost"), "{text}");
    assert!(text.contains("per 1M tokens"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("a ")), "{text}");
}
