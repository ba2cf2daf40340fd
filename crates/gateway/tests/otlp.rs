//! Spans reach a real OTLP receiver (`rotel-agent` from the `rotel` PyPI package) over
//! HTTP/protobuf and gRPC with the trace id the log line and the exemplar carry; a dead
//! endpoint never slows a request. Without rotel the receiver tests are skipped, unless
//! STRATA_REQUIRE_PEERS=1 (then they fail).

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use gateway::OtlpProtocol;
use serde_json::json;
use sim::EngineKind;

fn rotel_agent() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import rotel, os; print(os.path.join(os.path.dirname(rotel.__file__), 'rotel-agent'))",
        ])
        .output()
        .ok()?;
    let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if out.status.success() && p.exists() {
        return Some(p);
    }
    assert!(
        std::env::var("STRATA_REQUIRE_PEERS").as_deref() != Ok("1"),
        "rotel-agent is missing (pip install rotel) and STRATA_REQUIRE_PEERS=1"
    );
    eprintln!("skipping: rotel-agent not installed (pip install rotel)");
    None
}

struct Rotel {
    child: Child,
    out: PathBuf,
    grpc: u16,
    http: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Rotel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Rotel {
    fn start(bin: &PathBuf) -> Rotel {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("rotel.out");
        let (grpc, http) = (testkit::free_port(), testkit::free_port());
        let child = Command::new(bin)
            .args([
                "start",
                "--otlp-grpc-endpoint",
                &format!("127.0.0.1:{grpc}"),
                "--otlp-http-endpoint",
                &format!("127.0.0.1:{http}"),
                "--exporter",
                "blackhole",
                "--debug-log",
                "traces",
                "--debug-log-verbosity",
                "detailed",
            ])
            .env("NO_COLOR", "1")
            .stdout(Stdio::from(std::fs::File::create(&out).unwrap()))
            .stderr(Stdio::from(
                std::fs::File::options().append(true).open(&out).unwrap(),
            ))
            .spawn()
            .expect("start rotel-agent");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", http)).is_err()
            || std::net::TcpStream::connect(("127.0.0.1", grpc)).is_err()
        {
            assert!(Instant::now() < deadline, "rotel-agent did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Rotel {
            child,
            out,
            grpc,
            http,
            _dir: dir,
        }
    }

    /// Waits until the receiver's debug output contains every needle.
    async fn wait_for(&self, needles: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&self.out).unwrap_or_default();
            if needles.iter().all(|n| text.contains(n)) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "rotel never showed {needles:?}; it printed:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test]
async fn kept_traces_reach_rotel_over_http_and_grpc_with_the_log_and_exemplar_trace_id() {
    let Some(bin) = rotel_agent() else { return };
    let rotel = Rotel::start(&bin);
    for protocol in [OtlpProtocol::HttpProtobuf, OtlpProtocol::Grpc] {
        let (_d, log) = temp_log();
        let s = sim(EngineKind::Vllm, 20.0, |_| {}).await;
        let mut cfg = config(&[("vllm-a", url(s.engine_addr, ""), "vllm")], &log);
        cfg.tracing.endpoint = Some(match protocol {
            OtlpProtocol::HttpProtobuf => format!("http://127.0.0.1:{}/v1/traces", rotel.http),
            OtlpProtocol::Grpc => format!("http://127.0.0.1:{}", rotel.grpc),
        });
        cfg.tracing.protocol = protocol;
        cfg.tracing.sampling.tenants = vec!["enterprise_a".into()];
        cfg.tracing.sampling.baseline_percent = 0.0;
        cfg.tenant.header = Some("x-tenant".into());
        let gw = gateway(cfg).await;
        let send = |tenant: &'static str| {
            client()
                .post(url(gw.addr, "/v1/chat/completions"))
                .header("x-tenant", tenant)
                .json(&json!({
                    "model": "meta-llama/Llama-3.1-8B-Instruct",
                    "messages": [{"role": "user", "content": "hello"}],
                    "max_tokens": 5, "stream": true, "temperature": 0.2, "top_p": 0.9,
                }))
                .send()
        };
        // Kept by the tenant policy, and one that the sampler drops.
        send("enterprise_a").await.unwrap().text().await.unwrap();
        send("free_tier").await.unwrap().text().await.unwrap();
        let lines = log_lines(&log, 2).await;
        let kept = lines
            .iter()
            .find(|l| l["tenant"] == "enterprise_a")
            .unwrap();
        let dropped = lines.iter().find(|l| l["tenant"] == "free_tier").unwrap();
        assert_eq!(kept["sampled"], true);
        assert_eq!(dropped["sampled"], false);
        let trace_id = kept["trace_id"].as_str().unwrap().to_string();
        let span_id = kept["span_id"].as_str().unwrap().to_string();

        let om = metrics(&gw, true).await;
        assert!(
            om.contains(&format!("trace_id=\"{trace_id}\",span_id=\"{span_id}\"")),
            "the exemplar carries the kept trace"
        );
        assert!(
            !om.contains(dropped["trace_id"].as_str().unwrap()),
            "never a dropped one"
        );

        let text = rotel
            .wait_for(&[
                &trace_id,
                "chat meta-llama/Llama-3.1-8B-Instruct",
                "gen_ai.provider.name",
            ])
            .await;
        for attr in [
            "gen_ai.operation.name",
            "gen_ai.system",
            "gen_ai.request.model",
            "gen_ai.request.max_tokens",
            "gen_ai.request.temperature",
            "gen_ai.request.top_p",
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.output_tokens",
            "gen_ai.response.finish_reasons",
            "request_id",
            "gpu_uuid",
            "upstream wait",
            "first token",
            "decode",
            "stream out",
            "gen_ai.tokens",
        ] {
            assert!(
                text.contains(attr),
                "{attr} missing ({protocol:?}):\n{text}"
            );
        }
        assert!(!text.contains(dropped["trace_id"].as_str().unwrap()));
        let m = metrics(&gw, false).await;
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut exported = sample(&m, "strata_gateway_spans_exported_total").unwrap();
        while exported < 6.0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            exported = sample(
                &metrics(&gw, false).await,
                "strata_gateway_spans_exported_total",
            )
            .unwrap();
        }
        assert_eq!(exported, 6.0, "server, chat and four phase spans");
        gw.shutdown(Duration::from_secs(1)).await;
        s.shutdown().await;
    }
}

#[tokio::test]
async fn a_dead_otlp_endpoint_never_slows_requests() {
    let (_d, log) = temp_log();
    // Accepts connections and never answers.
    let black_hole = fake(vec![Step::Sleep(Duration::from_secs(60))]).await;
    let up = fake(vec![
        sse_head(),
        chunk("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"),
        last_chunk(),
    ])
    .await;
    let mut cfg = config(&[("u", url(up.addr, ""), "vllm")], &log);
    cfg.tracing.endpoint = Some(format!("http://{}/v1/traces", black_hole.addr));
    cfg.tracing.sampling.baseline_percent = 100.0;
    cfg.tracing.queue_traces = 4;
    cfg.tracing.export_timeout = Duration::from_secs(30);
    let gw = gateway(cfg).await;
    let mut worst = Duration::ZERO;
    for _ in 0..40 {
        let t0 = Instant::now();
        let body = client()
            .post(url(gw.addr, "/v1/chat/completions"))
            .json(&json!({"model": "m", "messages": [], "stream": true}))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        worst = worst.max(t0.elapsed());
        assert!(body.ends_with("data: [DONE]\n\n"));
    }
    assert!(
        worst < Duration::from_millis(500),
        "slowest request {worst:?}"
    );
    let m = metrics(&gw, false).await;
    let dropped = sample(
        &m,
        "strata_gateway_spans_dropped_total{reason=\"queue_full\"}",
    )
    .unwrap();
    assert!(dropped > 0.0, "{m}");
    assert_eq!(sample(&m, "strata_gateway_spans_exported_total"), Some(0.0));
    gw.shutdown(Duration::from_millis(100)).await;
}
