//! `strata gateway` as a user runs it: the real binary on free ports in front of the
//! simulator, a streamed request, its log line, /metrics and /health, a clean SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sim::{EngineKind, SimConfig};

/// A vLLM simulator with no load of its own (at 20× speed) and the runtime serving it.
fn idle_vllm() -> (tokio::runtime::Runtime, sim::server::Running) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(async {
        let mut cfg = SimConfig::new(EngineKind::Vllm);
        cfg.load = false;
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        sim::server::start(&cfg, 20.0, l, None).await.unwrap()
    });
    (rt, sim)
}

#[test]
fn strata_gateway_proxies_logs_and_serves_metrics() {
    let (rt, sim) = idle_vllm();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("gw.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .env_remove("STRATA_CONFIG")
        .current_dir(dir.path())
        .args([
            "gateway",
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
        ])
        .args(["--upstream", &format!("vllm-a=http://{}", sim.engine_addr)])
        .args(["--engine", "vllm", "--log", log.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .expect("start strata gateway");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (mut listen, mut admin) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(20);
    while listen.is_none() || admin.is_none() {
        assert!(
            Instant::now() < deadline,
            "strata gateway did not say where it listens"
        );
        let line = lines.next().expect("a line").expect("utf-8");
        let url = line.split_whitespace().nth(3).map(str::to_string);
        if line.starts_with("gateway listening on") {
            listen = url;
            assert!(line.contains("vllm-a=http://"), "{line}");
        } else if line.starts_with("admin listening on") {
            admin = url;
        }
    }
    let (listen, admin) = (listen.unwrap(), admin.unwrap());
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let get = |url: String| {
        let c = client.clone();
        rt.block_on(async move { c.get(url).send().await.unwrap().text().await.unwrap() })
    };
    let body = rt.block_on(async {
        client
            .post(format!("{listen}/v1/chat/completions"))
            .header("content-type", "application/json")
            .header("x-request-id", "cli-test-1")
            .body(r#"{"model":"meta-llama/Llama-3.1-8B-Instruct","messages":[{"role":"user","content":"hi"}],"max_tokens":5,"stream":true}"#)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    let metrics = get(format!("{admin}/metrics"));
    assert!(
        metrics.contains("strata_gateway_ttft_seconds_count{model=\"meta-llama/Llama-3.1-8B-Instruct\",tenant=\"default\",upstream=\"vllm-a\"} 1"),
        "{metrics}"
    );
    let health = get(format!("{admin}/health"));
    assert!(health.contains("\"vllm-a\""), "{health}");
    // SIGTERM: graceful stop, exit 0, the log line is on disk.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(line["request_id"], "cli-test-1");
    assert_eq!(line["generation_tokens"], 5);
    rt.block_on(sim.shutdown());
}

#[test]
fn strata_gateway_without_upstream_says_what_to_do() {
    // Its own empty directory: a strata.toml left in a shared temp dir would be picked up.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .env_remove("STRATA_CONFIG")
        .current_dir(dir.path())
        .arg("gateway")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no upstream: give --upstream URL"), "{err}");
}

#[test]
fn strata_up_runs_the_gateway_from_the_config_and_stores_its_metrics() {
    let (rt, sim) = idle_vllm();
    let dir = tempfile::tempdir().unwrap();
    let (api, gw, admin) = (
        testkit::free_port(),
        testkit::free_port(),
        testkit::free_port(),
    );
    let config = dir.path().join("strata.toml");
    std::fs::write(
        &config,
        format!(
            "[gateway]\nlisten = \"127.0.0.1:{gw}\"\nadmin = \"127.0.0.1:{admin}\"\n[gateway.log]\noutput = \"off\"\n[[gateway.upstream]]\nname = \"vllm-a\"\nurl = \"http://{}\"\nengine = \"vllm\"\n",
            sim.engine_addr
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .env_remove("STRATA_CONFIG")
        .current_dir(dir.path())
        .args(["--config", config.to_str().unwrap(), "up"])
        .args(["--listen", &format!("127.0.0.1:{api}")])
        .args(["--data-dir", dir.path().join("data").to_str().unwrap()])
        .stderr(Stdio::null())
        .spawn()
        .expect("start strata up");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let found = rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(20);
        while client
            .get(format!("http://127.0.0.1:{gw}/health"))
            .send()
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "the gateway did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let body = client
            .post(format!("http://127.0.0.1:{gw}/v1/chat/completions"))
            .header("content-type", "application/json")
            .body(r#"{"model":"meta-llama/Llama-3.1-8B-Instruct","messages":[{"role":"user","content":"hi"}],"max_tokens":3,"stream":true}"#)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(body.ends_with("data: [DONE]\n\n"));
        // The store receives the gateway's metrics every 5 s.
        let q = format!(
            "http://127.0.0.1:{api}/api/v1/query?query=strata_gateway_generation_tokens_total"
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(r) = client.get(&q).send().await
                && let Ok(t) = r.text().await
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(&t)
                && let Some(s) = v["data"]["result"].as_array().and_then(|a| a.first())
                && s["value"][1] == "3"
            {
                return s["metric"].clone();
            }
            if Instant::now() > deadline {
                return serde_json::Value::Null;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    assert_eq!(found["upstream"], "vllm-a", "{found}");
    assert_eq!(found["tenant"], "default");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
    rt.block_on(sim.shutdown());
}

#[test]
fn config_check_summarises_the_gateway_section() {
    let dir = tempfile::tempdir().unwrap();
    let example = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["config", "example"])
        .output()
        .unwrap();
    let path = dir.path().join("strata.toml");
    std::fs::write(&path, &example.stdout).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .env("STRATA_CONFIG", &path)
        .args(["config", "check"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(
            "gateway: clients on 127.0.0.1:8080, /metrics on 127.0.0.1:9465, 2 upstream(s)"
        ),
        "{text}"
    );
    assert!(text.contains("vllm-b") && text.contains("meta-llama/Llama-3.1-8B-Instruct"));
}
