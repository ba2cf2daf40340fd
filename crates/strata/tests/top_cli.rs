//! `strata top` end to end against a live `strata demo`: the clear error when Strata is
//! unreachable, the `--once` snapshot, and the terminal UI in a detached tmux session at
//! 80×24 and 160×48 (rows for every engine and GPU with plausible numbers, keys switching
//! views and sorting, `?` help, `/` filter, stale marking once Strata is gone, q quitting
//! with status 0).

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use live::{json, strata};
use testkit::live;

/// A tmux server of its own (`-L`), killed on drop.
struct Tmux(String);

impl Tmux {
    fn cmd(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-u", "-L", &self.0, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("run tmux")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "top"]).stdout).into()
    }

    fn keys(&self, keys: &str) {
        assert!(self.cmd(&["send-keys", "-t", "top", keys]).status.success());
    }

    /// The screen once `ok` holds for it.
    fn wait(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "{what}; the screen:\n{s}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

/// Whether a pane titled `title` is on the screen (a line starts with it; the tab line
/// holds the same words with counts).
fn titled(screen: &str, title: &str) -> bool {
    screen.lines().any(|l| l.starts_with(title))
}

fn tmux_available() -> bool {
    let ok = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("STRATA_REQUIRE_PEERS").as_deref() != Ok("1"),
            "STRATA_REQUIRE_PEERS=1 but tmux is missing (scripts/test.sh installs it)"
        );
        eprintln!("skipping the terminal part: tmux is missing (apt-get install tmux)");
    }
    ok
}

/// The numbers of a table row after its text columns (`29/2 4 0.0 195ms 44.2ms 1321`).
fn row<'a>(screen: &'a str, needle: &str) -> Vec<&'a str> {
    let line = screen
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("a row with {needle} in\n{screen}"));
    line.split_whitespace().collect()
}

fn num(cell: &str) -> f64 {
    cell.trim_end_matches(|c: char| c.is_ascii_alphabetic())
        .parse()
        .unwrap_or_else(|_| panic!("a number: {cell:?}"))
}

/// One engine of the demo: its row's label (its name from `strata_engine_info`, else its
/// address) and whether it is a vLLM one.
struct Demo {
    label: String,
    vllm: bool,
}

/// The numeric cells of `label`'s row by header (`RUN/WAIT`, `KV%`, ...): the columns from
/// `RUN/WAIT` on are numbers, never empty, so they align from the right (columns dropped
/// at narrow widths are absent).
fn numbers<'a>(screen: &'a str, label: &str) -> Vec<(&'a str, &'a str)> {
    let header = screen
        .lines()
        .find(|l| l.contains("RUN/WAIT"))
        .unwrap_or_else(|| panic!("the engines header in\n{screen}"));
    let heads: Vec<&str> = header
        .split_whitespace()
        .skip_while(|h| !h.starts_with("RUN/WAIT"))
        .map(|h| h.trim_end_matches(['▲', '▼']))
        .collect();
    let line = screen
        .lines()
        .find(|l| l.starts_with(&format!("{label} ")))
        .unwrap_or_else(|| panic!("a row of {label} in\n{screen}"));
    let cells: Vec<&str> = line.split_whitespace().collect();
    let tail = &cells[cells.len() - heads.len()..];
    heads.into_iter().zip(tail.iter().copied()).collect()
}

/// Engines: three rows (two vLLM, one TGI) with running/waiting, and the vLLM ones with
/// KV %, TTFT/ITL p95 (where shown) and tokens/s in plausible ranges.
fn check_engines(screen: &str, engines: &[Demo]) {
    assert!(titled(screen, "Engines (3)"), "{screen}");
    for e in engines {
        let cells = numbers(screen, &e.label);
        let get = |h: &str| cells.iter().find(|(k, _)| *k == h).map(|(_, v)| *v);
        let rw = get("RUN/WAIT").expect("RUN/WAIT is never dropped");
        let (r, w) = rw
            .split_once('/')
            .unwrap_or_else(|| panic!("r/w {cells:?}"));
        assert!(num(r) >= 0.0 && num(w) >= 0.0, "{cells:?}");
        if e.vllm {
            let kv = num(get("KV%").expect("KV%"));
            assert!((0.0..=100.0).contains(&kv), "KV% {cells:?}");
            let ttft = get("TTFT95").expect("TTFT95");
            assert!(ttft.ends_with("ms") || ttft.ends_with('s'), "{cells:?}");
            if let Some(itl) = get("ITL95") {
                assert!(num(itl) > 0.0 && itl.ends_with("ms"), "ITL {cells:?}");
            }
            let tok = num(get("TOK/s").expect("TOK/s"));
            assert!(tok > 10.0 && tok < 1e6, "tokens/s {cells:?}");
        }
    }
}

/// GPUs: one row per demo node with tensor %, SM clock, power, temperature and FB %.
fn check_gpus(screen: &str) {
    assert!(titled(screen, "GPUs (3)"), "{screen}");
    // The engines table names nodes too: read the rows under the GPUs title.
    let start = screen.find("\nGPUs (3)").map_or(0, |i| i + 1);
    let gpus = &screen[start..];
    for node in ["demo-node-a", "demo-node-b", "demo-node-c"] {
        let cells = row(gpus, node);
        let n = cells.len();
        let (tensor, clock, power, temp) = (
            num(cells[n - 5]),
            num(cells[n - 4]),
            num(cells[n - 3]),
            num(cells[n - 2]),
        );
        assert!((0.0..=100.0).contains(&tensor), "{cells:?}");
        assert!((100.0..=3000.0).contains(&clock), "SM MHz {cells:?}");
        assert!((10.0..=1500.0).contains(&power), "W {cells:?}");
        assert!((15.0..=110.0).contains(&temp), "C {cells:?}");
        let fb = num(cells[n - 1]);
        assert!((0.0..=100.0).contains(&fb), "FB% {cells:?}");
    }
}

/// `strata top` in a tmux session `w`×`h`; its exit status goes to `rc`.
fn start(tmux: &Tmux, base: &str, w: u16, h: u16, rc: &Path) {
    let cmd = format!(
        "'{}' top --url {base} --interval 1s; echo $? > '{}'",
        env!("CARGO_BIN_EXE_strata"),
        rc.display()
    );
    let o = tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "top",
        "-x",
        &w.to_string(),
        "-y",
        &h.to_string(),
        &cmd,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn quits(tmux: &Tmux, rc: &Path) {
    tmux.keys("q");
    let deadline = Instant::now() + Duration::from_secs(10);
    while tmux.cmd(&["has-session", "-t", "top"]).status.success() {
        assert!(Instant::now() < deadline, "q quits:\n{}", tmux.screen());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(std::fs::read_to_string(rc).expect("rc").trim(), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_shows_engines_gpus_and_findings_of_a_live_demo() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr");
    let o = strata()
        .args(["top", "--once", "--url", &format!("http://{closed}")])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot reach Strata") && err.contains("fix: start `strata up`"),
        "{err}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let port = closed.port();
    let (mut demo, base) = live::demo(dir.path(), port, None, Stdio::null());
    sources::scrape::install_crypto_provider();
    let client = reqwest::Client::new();
    // Ready once every vLLM engine has a token rate (two scrapes) and the GPUs report.
    let started = Instant::now();
    let engines = loop {
        let q = |q: &str| {
            client.get(
                reqwest::Url::parse_with_params(&format!("{base}/api/v1/query"), [("query", q)])
                    .expect("url"),
            )
        };
        if client.get(format!("{base}/-/ready")).send().await.is_ok() {
            let tok = json(q(
                "sum by (instance) (rate(llm:generation_tokens_total[1m]))",
            ))
            .await;
            let all = json(q("count by (instance, engine) (llm:requests_running)")).await;
            let info = json(q("max by (instance, name) (strata_engine_info)")).await;
            let gpus = json(q("count(gpu:sm_clock_hz)")).await;
            // Every engine counts generated tokens (TGI through its generated-tokens
            // histogram's sum).
            let ready = tok["data"]["result"]
                .as_array()
                .is_some_and(|r| r.len() == 3)
                && gpus["data"]["result"][0]["value"][1] == "3";
            if let Some(all) = all["data"]["result"].as_array()
                && ready
                && all.len() == 3
            {
                // Rows show the engine's name when the node knows it, else its address.
                let name_of = |instance: &str| {
                    info["data"]["result"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|s| s["metric"]["instance"] == instance)
                        .and_then(|s| s["metric"]["name"].as_str())
                        .unwrap_or(instance)
                        .to_string()
                };
                break all
                    .iter()
                    .filter_map(|s| {
                        let instance = s["metric"]["instance"].as_str()?;
                        Some(Demo {
                            label: name_of(instance),
                            vllm: s["metric"]["engine"] == "vllm",
                        })
                    })
                    .collect::<Vec<_>>();
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "demo data within 40 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    eprintln!("demo data after {:?}", started.elapsed());

    let o = strata()
        .args(["top", "--once", "--url", &base])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    check_engines(&text, &engines);
    check_gpus(&text);
    assert!(text.contains("Open findings (") && text.contains("Firing alerts ("));

    if !tmux_available() {
        return;
    }
    let tmux = Tmux(format!("strata-top-test-{}", std::process::id()));
    let rc = dir.path().join("rc");

    // 80×24: every engine and GPU row, the model whole or cut to fit, the key hint whole;
    // keys switch, sort, filter and show the help; q quits.
    start(&tmux, &base, 80, 24, &rc);
    let s = tmux.wait("engines at 80x24", |s| titled(s, "Engines (3)"));
    check_engines(&s, &engines);
    assert!(s.lines().all(|l| l.chars().count() <= 80));
    assert!(s.contains("Llama-3.1-8B"), "{s}");
    assert!(
        s.lines()
            .nth(23)
            .is_some_and(|l| l.trim_end().ends_with("? help · q quit")),
        "{s}"
    );
    tmux.keys("?");
    tmux.wait("the help", |s| {
        s.contains("Keys") && s.contains("this help")
    });
    tmux.keys("Escape");
    tmux.wait("the help closed", |s| !s.contains("this help"));
    tmux.keys("/");
    for c in ["t", "g", "i", "Enter"] {
        tmux.keys(c);
    }
    // The filter applies while it is typed: wait for the whole of it to be kept.
    let s = tmux.wait("filtered to the TGI engine", |s| {
        titled(s, "Engines (1/3)") && s.contains("filter: tgi")
    });
    assert!(s.contains("filter: tgi") && !s.contains(" vllm "), "{s}");
    // A key sent right after Esc would read as Alt-key: wait for each Esc to land.
    tmux.keys("Escape");
    tmux.wait("the filter cleared", |s| {
        titled(s, "Engines (3)") && !s.contains("filter: tgi")
    });
    tmux.keys("2");
    let s = tmux.wait("the GPU view", |s| titled(s, "GPUs (3)"));
    check_gpus(&s);
    tmux.keys("Tab");
    let s = tmux.wait("the findings view", |s| {
        titled(s, "Open findings (") && titled(s, "Firing alerts (")
    });
    if !titled(&s, "Open findings (0)") {
        tmux.keys("Enter");
        tmux.wait("a finding's detail", |s| {
            s.contains("Esc close") && s.contains("Affected:")
        });
        tmux.keys("Escape");
        tmux.wait("the detail closed", |s| !s.contains("Esc close"));
    }
    tmux.keys("1");
    tmux.keys("s");
    tmux.wait("sorted by engine", |s| s.contains("ENGINE▲"));
    tmux.keys("r");
    let s = tmux.wait("reversed", |s| s.contains("ENGINE▼"));
    let order: Vec<usize> = ["vllm", "tgi"]
        .iter()
        .map(|e| s.find(&format!(" {e} ")).expect("engine row"))
        .collect();
    assert!(order[0] < order[1], "vllm before tgi when reversed:\n{s}");
    quits(&tmux, &rc);

    // 160×48: whole model names; when Strata goes away the data stays, marked stale.
    std::fs::remove_file(&rc).expect("rc");
    start(&tmux, &base, 160, 48, &rc);
    let s = tmux.wait("engines at 160x48", |s| titled(s, "Engines (3)"));
    check_engines(&s, &engines);
    assert!(s.contains("Llama-3.1-8B-Instruct "), "{s}");
    assert!(
        s.contains("PRE/s") && s.contains("ITL95"),
        "every column at 160: {s}"
    );
    assert!(
        s.lines().nth(47).is_some_and(|l| l.contains("q quit")),
        "{s}"
    );
    let _ = demo.0.kill();
    let _ = demo.0.wait();
    let s = tmux.wait("stale marking", |s| s.contains("STALE"));
    assert!(s.contains("ERROR cannot reach Strata"), "{s}");
    check_engines(&s, &engines);
    quits(&tmux, &rc);
    eprintln!("done after {:?}", started.elapsed());
}
