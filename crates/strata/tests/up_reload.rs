//! `strata up` config reload: `POST /-/reload` (admin token) and SIGHUP re-read the config
//! file; targets start and stop, rule groups swap, an invalid file keeps the running config.

use testkit::live;

use std::path::Path;
use std::time::{Duration, Instant};

use live::{json, sim, up};
use serde_json::Value;

const TOKEN: &str = "r3load";

/// A config scraping `targets` (`(job, url)`) every 500 ms with `rule_files`, admin token in
/// `dir/token`.
fn write_config(dir: &Path, targets: &[(&str, &str)], rule_files: &[&str]) {
    let mut c = format!(
        "[scrape.engine.steady]\ninterval = \"500ms\"\ntimeout = \"400ms\"\n\n\
         [nvml]\nenabled = \"off\"\n\n\
         [api]\nadmin_token_file = {:?}\n\n\
         [rules]\npacks = false\nfiles = {:?}\n\n",
        dir.join("token").display().to_string(),
        rule_files
            .iter()
            .map(|f| dir.join(f).display().to_string())
            .collect::<Vec<_>>(),
    );
    for (job, url) in targets {
        c.push_str(&format!("[[target]]\nname = {job:?}\nurl = {url:?}\n\n"));
    }
    std::fs::write(dir.join("strata.toml"), c).expect("config");
}

fn rule_file(dir: &Path, name: &str, group: &str) {
    std::fs::write(
        dir.join(name),
        format!("groups:\n  - name: {group}\n    rules:\n      - record: {group}:up\n        expr: sum(up)\n"),
    )
    .expect("rule file");
}

/// Series of `expr` at now.
async fn query(client: &reqwest::Client, base: &str, expr: &str) -> Vec<Value> {
    let url = reqwest::Url::parse_with_params(&format!("{base}/api/v1/query"), [("query", expr)])
        .expect("url");
    let v = json(client.get(url)).await;
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// Waits up to 15 s for `expr` to return something (`want`) or nothing (`!want`).
async fn wait_for(client: &reqwest::Client, base: &str, expr: &str, want: bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while query(client, base, expr).await.is_empty() == want {
        assert!(
            Instant::now() < deadline,
            "{expr}: still {}",
            if want { "empty" } else { "non-empty" }
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `POST /-/reload` with `token`: status and JSON body.
async fn reload(client: &reqwest::Client, base: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = client.post(format!("{base}/-/reload"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.expect("reload");
    let status = r.status().as_u16();
    let body = r.bytes().await.expect("body");
    (status, serde_json::from_slice(&body).expect("json"))
}

/// The value of self-metric `name` in `/metrics`.
async fn metric(client: &reqwest::Client, base: &str, name: &str) -> f64 {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{text}"))
        .parse()
        .expect("number")
}

/// Scraped in the last second.
fn recent(job: &str) -> String {
    format!("count_over_time(up{{job=\"{job}\"}}[1s])")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_adds_and_removes_targets_swaps_rules_and_keeps_config_on_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(d.join("token"), format!("{TOKEN}\n")).expect("token");
    let (_a, a_url, _) = sim(&[]);
    let (_b, b_url, _) = sim(&[]);
    rule_file(d, "one.yml", "one");
    rule_file(d, "two.yml", "two");
    write_config(d, &[("sim-a", &a_url)], &["one.yml"]);
    let config = d.join("strata.toml");
    let (child, base) = up(
        &["--config", config.to_str().expect("utf-8")],
        &d.join("data"),
    )
    .await;
    let client = reqwest::Client::new();
    wait_for(&client, &base, &recent("sim-a"), true).await;
    assert!(query(&client, &base, "up{job=\"sim-b\"}").await.is_empty());
    assert_eq!(
        metric(&client, &base, "strata_config_last_reload_successful").await,
        1.0
    );

    // Without the token: 401, nothing re-read.
    write_config(
        d,
        &[("sim-a", &a_url), ("sim-b", &b_url)],
        &["one.yml", "two.yml"],
    );
    assert_eq!(reload(&client, &base, None).await.0, 401);
    assert_eq!(reload(&client, &base, Some("wrong")).await.0, 401);

    // Add a target and a rule group.
    let (status, body) = reload(&client, &base, Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert_eq!(
        data["targets"]["added"],
        serde_json::json!([format!("sim-b {b_url}")])
    );
    assert_eq!(data["targets"]["removed"], serde_json::json!([]));
    assert_eq!(data["targets"]["unchanged"], 1);
    assert_eq!(data["rule_groups"]["before"], serde_json::json!(["one"]));
    assert_eq!(
        data["rule_groups"]["after"],
        serde_json::json!(["one", "two"])
    );
    assert_eq!(data["rule_groups"]["kept_state"], 1);
    assert_eq!(data["needs_restart"], serde_json::json!([]));
    wait_for(&client, &base, &recent("sim-b"), true).await;
    wait_for(&client, &base, "two:up", true).await;
    let rules = json(client.get(format!("{base}/api/v1/rules"))).await;
    assert_eq!(rules["data"]["groups"].as_array().map(Vec::len), Some(2));

    // SIGHUP: remove sim-a; it stops being scraped, sim-b goes on.
    let stamp = metric(
        &client,
        &base,
        "strata_config_last_reload_success_timestamp_seconds",
    )
    .await;
    write_config(d, &[("sim-b", &b_url)], &["one.yml", "two.yml"]);
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &child.0.id().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(hup.success());
    wait_for(&client, &base, &recent("sim-a"), false).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(query(&client, &base, &recent("sim-a")).await.is_empty());
    assert!(!query(&client, &base, &recent("sim-b")).await.is_empty());
    assert!(
        metric(
            &client,
            &base,
            "strata_config_last_reload_success_timestamp_seconds"
        )
        .await
            > stamp
    );

    // A parse error: 400 at file:line:col with the fix, the running config stays.
    std::fs::write(&config, "[[target]\nname = \"x\"\n").expect("config");
    let (status, body) = reload(&client, &base, Some(TOKEN)).await;
    assert_eq!(status, 400, "{body}");
    let err = body["error"].as_str().expect("error");
    assert!(err.contains(&format!("{}:1:", config.display())), "{err}");
    assert!(err.contains("fix:"), "{err}");
    assert_eq!(
        metric(&client, &base, "strata_config_last_reload_successful").await,
        0.0
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!query(&client, &base, &recent("sim-b")).await.is_empty());

    // A bad rule file: 400 naming it, the running groups stay.
    std::fs::write(
        d.join("bad.yml"),
        "groups:\n  - name: bad\n    rules:\n      - record: x\n        expr: sum(\n",
    )
    .expect("bad");
    write_config(d, &[("sim-b", &b_url)], &["bad.yml"]);
    let (status, body) = reload(&client, &base, Some(TOKEN)).await;
    assert_eq!(status, 400, "{body}");
    let err = body["error"].as_str().expect("error");
    assert!(err.contains("bad.yml:"), "{err}");
    let rules = json(client.get(format!("{base}/api/v1/rules"))).await;
    assert_eq!(rules["data"]["groups"].as_array().map(Vec::len), Some(2));

    // Back to a valid file: successful again; a changed retention needs a restart.
    write_config(d, &[("sim-b", &b_url)], &["one.yml"]);
    let text = std::fs::read_to_string(&config).expect("read");
    std::fs::write(&config, format!("{text}[store]\nretention = \"1h\"\n")).expect("config");
    let (status, body) = reload(&client, &base, Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["rule_groups"]["after"],
        serde_json::json!(["one"])
    );
    let restart = body["data"]["needs_restart"]
        .as_array()
        .expect("needs_restart");
    assert_eq!(restart.len(), 1, "{body}");
    assert!(
        restart[0].as_str().is_some_and(|r| r.contains("retention")),
        "{body}"
    );
    assert_eq!(
        metric(&client, &base, "strata_config_last_reload_successful").await,
        1.0
    );
    drop(child);
}
