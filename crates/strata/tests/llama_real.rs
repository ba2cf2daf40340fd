//! Strata against a real llama.cpp `llama-server` (scripts/llama-server.sh builds it and a
//! tiny random-weight model): `strata scrape` detects it and its canonical values match the
//! tokens the server reported per request; and with more concurrent requests than slots,
//! `requests_deferred` rises and the queue-backup alert and the slots-exhausted diagnosis
//! become true on the real scrapes (evaluated in virtual time by Strata's rules and PromQL).

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sources::LabelSet;
use testkit::db::Db;

fn client() -> reqwest::Client {
    sources::scrape::install_crypto_provider();
    reqwest::Client::new()
}

/// One chat completion (not streamed); its `timings` `(prompt_n, cache_n, predicted_n)`.
async fn chat(c: &reqwest::Client, addr: &str, i: usize, max_tokens: u32) -> (u64, u64, u64) {
    let body = json!({
        "messages": [{"role": "user", "content": format!("Question {i}?")}],
        "max_tokens": max_tokens,
        "ignore_eos": true,
        "seed": i,
    });
    let bytes = c
        .post(format!("http://{addr}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("request")
        .bytes()
        .await
        .expect("body");
    let v: Value = serde_json::from_slice(&bytes).expect("json");
    let t = &v["timings"];
    let n = |k: &str| t[k].as_u64().unwrap_or_else(|| panic!("timings.{k}: {v}"));
    assert_eq!(
        v["usage"]["completion_tokens"].as_u64(),
        Some(n("predicted_n")),
        "{v}"
    );
    (n("prompt_n"), n("cache_n"), n("predicted_n"))
}

/// The value of canonical `signal` in `strata scrape --json`'s view (summed over series).
fn signal(view: &Value, name: &str) -> Option<f64> {
    let s = view["signals"].as_array()?.iter().find(|s| s[0] == name)?;
    let series = s[1]["series"].as_array()?;
    Some(
        series
            .iter()
            .map(|x| x["value"].as_f64().unwrap_or(0.0))
            .sum(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strata_scrape_of_a_real_llama_server_matches_what_it_served() {
    let Some(server) = testkit::llama::server(4, 256) else {
        return;
    };
    let c = client();
    let (mut prompt, mut cached, mut predicted) = (0, 0, 0);
    for i in 0..40 {
        // The same question twice in a row: the second reuses the slot's cached prefix.
        let (p, k, g) = chat(&c, &server.addr, i / 2, 3 + (i % 5) as u32).await;
        prompt += p;
        cached += k;
        predicted += g;
    }
    assert!(cached > 0, "no prompt token came from the cache");
    let url = format!("http://{}/metrics", server.addr);
    // Counters move when a slot is released, just after the response: poll until they match.
    let deadline = Instant::now() + Duration::from_secs(10);
    let view = loop {
        let out = Command::new(env!("CARGO_BIN_EXE_strata"))
            .env_remove("STRATA_CONFIG")
            .args(["scrape", "--json", &url])
            .output()
            .expect("run strata scrape");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("json");
        let view = v[0]["view"].clone();
        if signal(&view, "llm:generation_tokens_total") == Some(predicted as f64)
            || Instant::now() > deadline
        {
            break view;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(view["dialect"], "llamacpp", "{view}");
    assert_eq!(view["version"], "current", "{view}");
    assert_eq!(
        signal(&view, "llm:generation_tokens_total"),
        Some(predicted as f64)
    );
    // llama.cpp's prompt_tokens_total leaves cached tokens out; Strata adds them back.
    assert_eq!(
        signal(&view, "llm:prompt_tokens_total"),
        Some((prompt + cached) as f64)
    );
    assert_eq!(
        signal(&view, "llm:prefix_cache_hits_total"),
        Some(cached as f64)
    );
    assert_eq!(signal(&view, "llm:requests_running"), Some(0.0));
    assert_eq!(signal(&view, "llm:requests_waiting"), Some(0.0));
}

/// The built-in pack rule named `name` (its PromQL).
fn pack_expr(name: &str) -> String {
    rules::packs::shared()
        .expect("packs load")
        .into_iter()
        .flat_map(|g| g.rules)
        .find_map(|r| match r {
            rules::check::RuleSpec::Alerting(a) if a.name == name => Some(a.expr),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no rule {name}"))
}

/// Sends `n` requests of `max_tokens` at once to a `slots`-slot server started with `extra`
/// arguments and scrapes it every 20 ms until they are done: the bodies and the peak of
/// `llamacpp:requests_deferred`.
async fn backlog(
    slots: u32,
    extra: &[&str],
    n: usize,
    max_tokens: u32,
) -> Option<(String, Vec<String>, f64)> {
    let server = testkit::llama::server_with(slots, 1024, extra)?;
    let c = client();
    let url = format!("http://{}/metrics", server.addr);
    // Scrapes go over a keep-alive connection of their own, opened before the requests: the
    // server's HTTP thread that holds it stays free for them, where a new connection would
    // wait behind the queued requests and only be answered once they are nearly done.
    let scraper = client();
    scraper.get(&url).send().await.expect("first scrape");
    let mut tasks = Vec::new();
    for i in 0..n {
        let (c, addr) = (c.clone(), server.addr.clone());
        tasks.push(tokio::spawn(
            async move { chat(&c, &addr, i, max_tokens).await },
        ));
    }
    let mut bodies = Vec::new();
    let mut peak = 0.0f64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !tasks.iter().all(|t| t.is_finished()) && Instant::now() < deadline {
        let body = scraper
            .get(&url)
            .send()
            .await
            .expect("scrape")
            .text()
            .await
            .expect("body");
        let exp = expo::parse(&body, expo::Format::Prometheus);
        let value = |n: &str| {
            exp.families
                .iter()
                .flat_map(|f| &f.samples)
                .find(|s| s.name == n)
                .map_or(0.0, |s| s.value)
        };
        assert!(value("llamacpp:requests_processing") <= slots as f64);
        peak = peak.max(value("llamacpp:requests_deferred"));
        bodies.push(body);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for t in tasks {
        t.await.expect("request finished");
    }
    Some((server.addr.clone(), bodies, peak))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_deferred_counts_requests_waiting_for_a_slot() {
    // A request counts as deferred once an HTTP thread has handed it to the server and no
    // slot is free; llama-server's HTTP pool defaults to a few threads more than its slots,
    // and what no thread has picked up yet waits unseen in the socket queue. How many it
    // shows at once depends on the pool and on timing (runs here saw at most 4, once all 10
    // of the 10 without a slot), so only the bounds are checked.
    let slots = 2;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    let n = (slots + 4).max(cores.saturating_sub(1)) as usize + 6;
    let Some((_, _, peak)) = backlog(slots, &[], n, 300).await else {
        return;
    };
    assert!(peak >= 1.0, "{n} requests on {slots} slots: none deferred");
    assert!(
        peak <= (n - slots as usize) as f64,
        "{n} requests on {slots} slots: {peak} deferred"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn more_requests_than_slots_back_up_the_queue_and_raise_the_alert() {
    let (slots, in_flight) = (2, 26);
    let Some((addr, bodies, peak)) =
        backlog(slots, &["--threads-http", "64"], in_flight, 400).await
    else {
        return;
    };
    assert!(
        peak > 20.0,
        "{in_flight} requests on {slots} slots deferred only {peak} at most"
    );

    // The same scrapes 15 s apart in virtual time, through the canonical rules.
    let db = Db::new();
    let canonical = rules::canonical::groups();
    let backup = pack_expr("LLMRequestQueueBackup");
    let slots_out = pack_expr("DiagnosisSlotsExhausted");
    let (mut backup_at, mut slots_at) = (None, None);
    let target: LabelSet = vec![("instance".into(), addr)];
    for (i, body) in bodies.iter().enumerate() {
        let t = 1_000_000 + i as i64 * 15_000;
        let exp = expo::parse(body, expo::Format::Prometheus);
        db.write("llama", &sources::scrape::to_points(&exp, &target, t));
        for g in &canonical {
            for r in &g.rules {
                let out = rules::Query::instant(&db, &r.expr, t).expect("canonical rule");
                let record = r.record.clone().expect("recording rule");
                let points = out
                    .into_iter()
                    .map(|(labels, v)| {
                        let labels = labels.into_iter().filter(|(k, _)| k != "__name__");
                        sources::Point::new(record.clone(), labels.collect(), v, t)
                    })
                    .collect::<Vec<_>>();
                db.write("rules", &points);
            }
        }
        let fired = |expr: &str| {
            let r = rules::Query::instant(&db, expr, t).expect("alert expression");
            r.iter()
                .any(|(l, _)| l.iter().any(|(k, v)| k == "engine" && v == "llamacpp"))
        };
        if backup_at.is_none() && fired(&backup) {
            backup_at = Some(i);
        }
        if slots_at.is_none() && fired(&slots_out) {
            slots_at = Some(i);
        }
        if backup_at.is_some() && slots_at.is_some() {
            break;
        }
    }
    assert!(
        backup_at.is_some(),
        "LLMRequestQueueBackup never became true: {backup}"
    );
    assert!(
        slots_at.is_some(),
        "DiagnosisSlotsExhausted never became true: {slots_out}"
    );
}
