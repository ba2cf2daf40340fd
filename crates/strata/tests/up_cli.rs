//! `strata up` end to end: a real HTTP engine endpoint, the real binary, the Prometheus API
//! queried over a real socket, then a graceful SIGTERM that leaves a store snapshot.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use live::serve_sample;
use testkit::live;

struct Up(Child);

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const RULES: &str = "groups:\n- name: t\n  interval: 1s\n  rules:\n  - record: strata_test:running\n    expr: sum(vllm:num_requests_running)\n  - alert: EngineUp\n    expr: up == 1\n    labels: {severity: info}\n    annotations: {summary: '{{ $labels.instance }} up'}\n";

async fn get(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let resp = client.get(url).send().await.expect("request");
    let status = resp.status().as_u16();
    let body = resp.bytes().await.expect("body");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_scrapes_evaluates_rules_and_answers_the_prometheus_api() {
    // Given without a path, as users type it: /metrics is implied (the server 404s on `/`).
    let served = serve_sample();
    let engine = served.trim_end_matches("/metrics").to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, RULES).expect("rules");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            "up",
            "--engine",
            &engine,
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--rules",
        ])
        .arg(&rules)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--snapshot-interval", "300ms", "--no-packs"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start strata up");
    let mut up = Up(child);
    let base = format!("http://127.0.0.1:{port}/api/v1");
    sources::scrape::install_crypto_provider();
    let client = reqwest::Client::new();

    let deadline = Instant::now() + Duration::from_secs(20);
    let running = loop {
        if let Ok(resp) = client
            .get(format!("{base}/query?query=vllm:num_requests_running"))
            .send()
            .await
        {
            let v: Value =
                serde_json::from_slice(&resp.bytes().await.expect("body")).expect("json");
            if v["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
            {
                break v;
            }
        }
        assert!(
            Instant::now() < deadline,
            "strata up never answered with data"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(running["status"], "success");
    assert_eq!(running["data"]["resultType"], "vector");
    let sample = &running["data"]["result"][0];
    assert_eq!(sample["metric"]["__name__"], "vllm:num_requests_running");
    assert!(
        sample["value"][0].is_number() && sample["value"][1].is_string(),
        "{sample}"
    );

    let (_, v) = get(&client, &format!("{base}/query?query=up")).await;
    assert_eq!(v["data"]["result"][0]["value"][1], "1");
    assert_eq!(v["data"]["result"][0]["metric"]["job"], "engine");

    let resp = client
        .post(format!("{base}/query"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("query=count(up)")
        .send()
        .await
        .expect("post");
    let v: Value = serde_json::from_slice(&resp.bytes().await.expect("body")).expect("json");
    assert_eq!(
        v["data"]["result"][0]["value"][1], "1",
        "POST form body: {v}"
    );

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let (_, v) = get(
        &client,
        &format!(
            "{base}/query_range?query=up&start={}&end={}&step=1s",
            now - 30,
            now + 2
        ),
    )
    .await;
    assert_eq!(v["data"]["resultType"], "matrix");
    assert!(v["data"]["result"][0]["values"][0][1].is_string(), "{v}");

    let (_, v) = get(&client, &format!("{base}/series?match[]=up")).await;
    assert_eq!(v["data"][0]["__name__"], "up", "{v}");
    let (_, v) = get(&client, &format!("{base}/labels")).await;
    let names: Vec<&str> = v["data"]
        .as_array()
        .expect("labels")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        names.contains(&"__name__") && names.contains(&"instance"),
        "{names:?}"
    );
    let (_, v) = get(&client, &format!("{base}/label/__name__/values")).await;
    assert!(
        v["data"]
            .as_array()
            .expect("values")
            .iter()
            .any(|n| n == "up")
    );
    let (_, v) = get(&client, &format!("{base}/metadata")).await;
    let running = &v["data"]["vllm:num_requests_running"][0];
    assert_eq!(running["type"], "gauge", "{v}");
    assert_eq!(
        running["help"], "Number of requests in model execution batches.",
        "{v}"
    );
    assert_eq!(
        v["data"]["vllm:time_to_first_token_seconds"][0]["type"], "histogram",
        "{v}"
    );
    let (_, v) = get(&client, &format!("{base}/status/buildinfo")).await;
    assert_eq!(v["data"]["version"], env!("CARGO_PKG_VERSION"));

    // Rules: the recording rule writes back, the alert fires and is listed.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, rec) = get(&client, &format!("{base}/query?query=strata_test:running")).await;
        let (_, alerts) = get(&client, &format!("{base}/alerts")).await;
        if rec["data"]["result"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
            && alerts["data"]["alerts"][0]["state"] == "firing"
        {
            assert_eq!(
                alerts["data"]["alerts"][0]["annotations"]["summary"],
                format!("{} up", &engine[7..])
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rules never produced: {rec} {alerts}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, v) = get(&client, &format!("{base}/rules")).await;
    assert_eq!(v["data"]["groups"][0]["rules"][0]["type"], "recording");
    assert_eq!(v["data"]["groups"][0]["rules"][1]["health"], "ok");
    let (_, v) = get(&client, &format!("{base}/query?query=ALERTS")).await;
    assert_eq!(v["data"]["result"][0]["metric"]["alertstate"], "firing");

    // Prometheus's error shapes and codes.
    for (url, code, kind) in [
        (format!("{base}/query"), 400, "bad_data"),
        (format!("{base}/query?query=sum(up"), 400, "bad_data"),
        (
            format!("{base}/query_range?query=up&start=10&end=20&step=0"),
            400,
            "bad_data",
        ),
        (
            format!("{base}/query_range?query=up&start=20&end=10&step=1"),
            400,
            "bad_data",
        ),
        (
            format!("{base}/query?query=up&time=yesterday"),
            400,
            "bad_data",
        ),
        (format!("{base}/series"), 400, "bad_data"),
    ] {
        let (status, v) = get(&client, &url).await;
        assert_eq!(status, code, "{url}: {v}");
        assert_eq!(v["status"], "error", "{url}");
        assert_eq!(v["errorType"], kind, "{url}");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{url}");
    }

    // The periodic snapshot exists before any shutdown.
    let snapshot = dir.path().join("data/tsdb/snapshot");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !snapshot.exists() {
        assert!(
            Instant::now() < deadline,
            "no periodic snapshot within 10 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::remove_file(&snapshot).expect("remove periodic snapshot");

    let pid = up.0.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = up.0.try_wait().expect("wait") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "strata up did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status:?}");
    assert!(
        dir.path().join("data/tsdb/snapshot").exists(),
        "snapshot written on shutdown"
    );
}
