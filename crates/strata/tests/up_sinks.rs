//! `strata up` with its sinks, end to end: the real binary scrapes an engine endpoint,
//! remote-writes to a real Prometheus (remote-write receiver) and sends the alert its rule
//! file raises on the scraped data to a real Alertmanager (API v2).

use testkit::peer;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const EXPOSITION: &str = "# HELP vllm:num_requests_waiting Requests waiting.\n# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{model_name=\"llama\"} 12\n";

const RULES: &str = "groups:\n- name: queue\n  interval: 1s\n  rules:\n  - alert: QueueDeep\n    expr: vllm:num_requests_waiting > 10\n    labels: {severity: warning}\n    annotations: {summary: '{{ $labels.model_name }} has {{ $value }} waiting'}\n";

struct Up(Child);

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Serves [`EXPOSITION`] at `/metrics`; returns the URL.
async fn serve_engine() -> String {
    let app = axum::Router::new().route("/metrics", axum::routing::get(|| async { EXPOSITION }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/metrics")
}

/// Polls `url` until `found` picks something out of its JSON, for at most 30 s.
async fn wait_for(
    client: &reqwest::Client,
    url: &str,
    found: impl Fn(&Value) -> Option<Value>,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = Value::Null;
    loop {
        if let Ok(resp) = client.get(url).send().await
            && let Ok(body) = resp.bytes().await
        {
            last = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if let Some(v) = found(&last) {
                return v;
            }
        }
        assert!(
            Instant::now() < deadline,
            "timed out on {url}: last answer {last}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[test]
fn up_help_documents_the_sink_flags() {
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["up", "--help"])
        .output()
        .expect("strata up --help");
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--remote-write-queue-size <MIB>",
        "--remote-write-fsync <always|never>",
        "--external-label <NAME=VALUE>",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            "up",
            "--engine",
            "http://127.0.0.1:1/",
            "--external-label",
            "no-equals",
        ])
        .output()
        .expect("strata up");
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("NAME=VALUE"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_remote_writes_to_prometheus_and_alerts_alertmanager() {
    let (Some(prom_bin), Some(am_bin)) = (
        peer::find("prometheus", "prometheus"),
        peer::find("prometheus-alertmanager", "prometheus-alertmanager"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (prom_dir, am_dir) = (dir.path().join("prom"), dir.path().join("am"));
    std::fs::create_dir_all(&prom_dir).expect("dir");
    std::fs::create_dir_all(&am_dir).expect("dir");
    let (prom, am) = tokio::task::block_in_place(|| {
        (
            peer::prometheus(&prom_bin, &prom_dir, peer::free_port()),
            peer::alertmanager(
                &am_bin,
                &am_dir,
                peer::free_port(),
                "route:\n  receiver: none\nreceivers:\n- name: none\n",
            ),
        )
    });
    let engine = serve_engine().await;
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, RULES).expect("rules");
    let listen = format!("127.0.0.1:{}", peer::free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["up", "--no-packs", "--engine", &engine, "--listen", &listen])
        .arg("--rules")
        .arg(&rules)
        .arg("--remote-write")
        .arg(format!("http://{}/api/v1/write", prom.addr))
        .arg("--alertmanager")
        .arg(format!("http://{}/", am.addr))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args([
            "--external-label",
            "cluster=test",
            "--external-label",
            "job=ignored",
        ])
        .args([
            "--remote-write-queue-size",
            "16",
            "--remote-write-fsync",
            "never",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start strata up");
    let mut up = Up(child);
    sources::scrape::install_crypto_provider();
    let client = reqwest::Client::new();

    // The scraped samples arrive at Prometheus, as scraped (job label, value).
    let q = |expr: &str| {
        format!(
            "http://{}/api/v1/query?query={}",
            prom.addr,
            form_urlencoded::byte_serialize(expr.as_bytes()).collect::<String>()
        )
    };
    let first = |v: &Value| v["data"]["result"].as_array()?.first().cloned();
    let sample = wait_for(&client, &q("vllm:num_requests_waiting"), first).await;
    assert_eq!(sample["metric"]["model_name"], "llama", "{sample}");
    assert_eq!(
        sample["metric"]["job"], "engine",
        "a sample's own label wins over an external one: {sample}"
    );
    assert_eq!(sample["metric"]["cluster"], "test", "{sample}");
    assert_eq!(sample["value"][1], "12", "{sample}");
    let upness = wait_for(&client, &q("up"), first).await;
    assert_eq!(upness["value"][1], "1", "{upness}");
    // Rule output is written too: the ALERTS series of the firing alert.
    let alerts = wait_for(&client, &q("ALERTS{alertstate=\"firing\"}"), first).await;
    assert_eq!(alerts["metric"]["alertname"], "QueueDeep", "{alerts}");

    // The alert arrives at Alertmanager with its labels and templated annotation.
    let alert = wait_for(&client, &format!("http://{}/api/v2/alerts", am.addr), |v| {
        v.as_array()?.first().cloned()
    })
    .await;
    assert_eq!(alert["labels"]["alertname"], "QueueDeep", "{alert}");
    assert_eq!(alert["labels"]["severity"], "warning", "{alert}");
    assert_eq!(alert["labels"]["model_name"], "llama", "{alert}");
    assert_eq!(alert["labels"]["cluster"], "test", "{alert}");
    assert_eq!(
        alert["annotations"]["summary"], "llama has 12 waiting",
        "{alert}"
    );
    assert_eq!(alert["status"]["state"], "active", "{alert}");
    assert_eq!(
        alert["generatorURL"],
        format!("http://{listen}/alerts#QueueDeep"),
        "{alert}"
    );

    let _ = Command::new("kill")
        .args(["-TERM", &up.0.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = up.0.try_wait().expect("wait") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "strata up did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status:?}");
    drop((prom, am));
}
