//! `strata up`'s own endpoints over real sockets: readiness flips once a scrape and the rule
//! evaluations are in, the admin token guards POSTs, `/metrics` carries Strata's own
//! counters, findings answer in the shared contract, SIGTERM exits 0 with a snapshot; and
//! autodetection with neither config nor targets.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use live::{Kill, json, serve_sample_on, sim, strata, up};
use testkit::live;

async fn status(req: reqwest::RequestBuilder) -> u16 {
    req.send().await.expect("request").status().as_u16()
}

/// The value of the first sample of `name` with `labels` (text like `job="engine"`).
fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    let prefix = format!("{name}{{{labels}");
    text.lines()
        .find(|l| {
            l.starts_with(&prefix) || (labels.is_empty() && l.starts_with(&format!("{name} ")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn wait_exit(child: &mut Kill, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = child.0.try_wait().expect("wait") {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "strata did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_flips_admin_token_guards_posts_metrics_and_sigterm_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").expect("token");
    // The engine's port is free (refusing) until the sample is served on it.
    let port = testkit::free_port();
    let url = format!("http://127.0.0.1:{port}/metrics");
    let (mut child, base) = up(
        &[
            "--engine",
            &url,
            "--admin-token-file",
            token.to_str().expect("utf-8"),
            "--rule-interval",
            "1s",
        ],
        &dir.path().join("data"),
    )
    .await;
    sources::scrape::install_crypto_provider();
    let client = reqwest::Client::new();
    assert_eq!(status(client.get(format!("{base}/-/healthy"))).await, 200);
    let r = client
        .get(format!("{base}/-/ready"))
        .send()
        .await
        .expect("ready");
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.text().await.expect("body").contains("no scrape"));

    serve_sample_on(std::net::TcpListener::bind(("127.0.0.1", port)).expect("rebind"));
    let deadline = Instant::now() + Duration::from_secs(25);
    while status(client.get(format!("{base}/-/ready"))).await != 200 {
        assert!(
            Instant::now() < deadline,
            "never ready after the engine came up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let f = json(client.get(format!("{base}/api/v1/findings"))).await;
    assert_eq!(f["status"], "success", "{f}");
    assert!(
        f["data"]["open"].is_array() && f["data"]["history"].is_array(),
        "{f}"
    );

    let incident = format!("{base}/api/v1/incident");
    let body = r#"{"duration":"1s"}"#;
    assert_eq!(
        status(
            client
                .post(&incident)
                .header("content-type", "application/json")
                .body(body)
        )
        .await,
        401
    );
    assert_eq!(
        status(
            client
                .post(&incident)
                .bearer_auth("wrong")
                .header("content-type", "application/json")
                .body(body)
        )
        .await,
        401
    );
    assert_eq!(
        status(
            client
                .post(&incident)
                .bearer_auth("s3cret")
                .header("content-type", "application/json")
                .body(body)
        )
        .await,
        200
    );
    assert_eq!(status(client.get(&incident)).await, 200, "reads stay open");
    assert_eq!(
        status(
            client
                .post(format!("{base}/api/v1/query"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("query=up")
        )
        .await,
        200,
        "the Prometheus API's POSTs are no admin endpoints"
    );

    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    assert!(
        expo::parse(&text, expo::Format::Prometheus)
            .errors
            .is_empty()
    );
    assert!(
        sample(
            &text,
            "strata_scrape_duration_seconds_count",
            "job=\"engine\""
        )
        .unwrap_or(0.0)
            >= 2.0,
        "{text}"
    );
    assert!(
        sample(&text, "strata_scrape_failures_total", "job=\"engine\"").unwrap_or(0.0) >= 1.0,
        "{text}"
    );
    assert!(
        sample(
            &text,
            "strata_rule_group_duration_seconds_count",
            "rule_group=\"diagnoses\""
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{text}"
    );
    assert!(
        sample(&text, "strata_store_series", "").unwrap_or(0.0) > 10.0,
        "{text}"
    );
    assert!(
        sample(&text, "strata_ingest_queue_length", "").is_some(),
        "{text}"
    );

    let pid = child.0.id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    let s = wait_exit(&mut child, Duration::from_secs(20));
    assert!(s.success(), "{s:?}");
    assert!(dir.path().join("data/tsdb/snapshot").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autodetect_finds_engines_and_dcgm_and_says_what_it_did_not() {
    let (_sim, engine, gpu) = sim(&[]);
    let port_of = |u: &str| -> u16 {
        u.trim_start_matches("http://")
            .split(['/', ':'])
            .nth(1)
            .and_then(|p| p.parse().ok())
            .expect("port")
    };
    let (e, g, dead) = (port_of(&engine), port_of(&gpu), testkit::free_port());
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("stderr");
    let listen = testkit::free_port();
    let mut child = Kill(
        strata()
            .current_dir(dir.path())
            .args(["up", "--listen", &format!("127.0.0.1:{listen}")])
            .args(["--probe-engine-ports", &format!("{e},{dead}")])
            .args(["--probe-gpu-ports", &g.to_string(), "--no-probe-nvml"])
            .arg("--no-probe-host")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start strata up"),
    );
    sources::scrape::install_crypto_provider();
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let jobs = loop {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{listen}/api/v1/query?query=up"))
            .send()
            .await
        {
            let v: Value = serde_json::from_slice(&r.bytes().await.expect("body")).expect("json");
            let mut jobs: Vec<String> = v["data"]["result"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s["metric"]["job"].as_str().map(str::to_string))
                .collect();
            jobs.sort();
            if jobs.len() == 2 {
                break jobs;
            }
        }
        assert!(
            Instant::now() < deadline,
            "autodetected targets never scraped"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(jobs, ["dcgm", "vllm"]);
    let said = std::fs::read_to_string(&log).expect("stderr");
    assert!(
        said.contains("found   vLLM") && said.contains(&format!("on :{e}")),
        "{said}"
    );
    assert!(said.contains(&format!("on :{g}")), "{said}");
    assert!(
        said.contains(&format!("no engine on :{dead}: nothing listens")),
        "{said}"
    );
    assert!(
        said.contains(&format!("UI on http://127.0.0.1:{listen}/")),
        "{said}"
    );
    drop(child.0.kill());

    let out = strata()
        .current_dir(dir.path())
        .args(["up", "--listen", "127.0.0.1:0"])
        .args(["--probe-engine-ports", &dead.to_string()])
        .args(["--probe-gpu-ports", &dead.to_string(), "--no-probe-nvml"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nothing found to scrape"), "{err}");
}
