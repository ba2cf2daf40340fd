//! `strata bench` through a real `strata gateway` in front of the zero-cost simulator: the
//! gateway's TTFT of the same requests (from its JSON log, matched by `x-request-id`)
//! beside the client's, and the tenant header both use by default.

use testkit::live;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use live::Kill;
use serde_json::Value;
use sim::server::{self, ZeroCost};

/// `strata gateway` on a free port in front of `upstream`, logging to `log`; its URL.
fn gateway(upstream: &str, log: &std::path::Path) -> (Kill, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .env_remove("STRATA_CONFIG")
        .args([
            "gateway",
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
        ])
        .args(["--upstream", &format!("zc={upstream}")])
        .args([
            "--tenant-header",
            "x-tenant",
            "--log",
            log.to_str().unwrap(),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .expect("start strata gateway");
    let mut child = Kill(child);
    let mut lines = BufReader::new(child.0.stderr.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "strata gateway did not start");
        let line = lines.next().expect("a line").expect("utf-8");
        if line.starts_with("gateway listening on") {
            let url = line.split_whitespace().nth(3).unwrap().to_string();
            std::thread::spawn(move || lines.for_each(drop));
            return (child, url);
        }
    }
}

#[test]
fn bench_shows_gateway_ttft_beside_its_own_for_the_same_requests() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let itl = Duration::from_millis(10);
    let sim = rt.block_on(async {
        let z = ZeroCost {
            tokens: 4,
            itl,
            model: "zc".into(),
        };
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        server::start_zero_cost(z, l).await.unwrap()
    });
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("gw.log");
    let (gw, url) = gateway(&format!("http://{}", sim.engine_addr), &log);
    let bench = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_strata"))
            .env_remove("STRATA_CONFIG")
            .args(["bench", "--url", &url, "--model", "zc", "--quiet"])
            .args([
                "--concurrency",
                "4",
                "--requests",
                "20",
                "--tenant",
                "team-a",
            ])
            .args(["--gateway-log", log.to_str().unwrap()])
            .args(extra)
            .output()
            .expect("run strata bench");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let v: Value = serde_json::from_str(&bench(&["--json"])).unwrap();
    let g = &v["steps"][0]["gateway"];
    assert_eq!(
        (g["matched"].as_u64(), g["unmatched"].as_u64()),
        (Some(20), Some(0)),
        "{g}"
    );
    let itl_ms = itl.as_secs_f64() * 1e3;
    let (client, gateway, diff) = (
        g["client_ttft_ms"]["p50"].as_f64().unwrap(),
        g["gateway_ttft_ms"]["p50"].as_f64().unwrap(),
        g["difference_ms"]["p50"].as_f64().unwrap(),
    );
    // The gateway's clock starts after the client's and reads the token before it.
    assert!(gateway >= itl_ms - 0.5 && client > gateway, "{g}");
    assert!(diff > 0.0 && diff < 10.0, "{g}");
    assert_eq!(v["steps"][0]["ttft_ms"]["p50"].as_f64(), Some(client));

    let table = bench(&[]);
    assert!(
        table.contains("client vs gateway TTFT, 20 requests matched by x-request-id (0 not timed by the gateway)")
            && table.contains("  difference "),
        "{table}"
    );
    // The default tenant header of bench is the one the gateway is configured with.
    let text = std::fs::read_to_string(&log).unwrap();
    let tenants: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|l| l["tenant"].clone())
        .collect();
    assert_eq!(tenants.len(), 40, "{text}");
    assert!(tenants.iter().all(|t| t == "team-a"), "{tenants:?}");

    // A log that is not there names the flag and the fix.
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .env_remove("STRATA_CONFIG")
        .args([
            "bench",
            "--url",
            &url,
            "--model",
            "zc",
            "--quiet",
            "--requests",
            "1",
        ])
        .args(["--gateway-log", "/nonexistent/gw.log"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("cannot read --gateway-log /nonexistent/gw.log"),
        "{err}"
    );
    drop(gw);
    rt.block_on(sim.shutdown());
}
