//! The brain against the simulator, in virtual time: every scenario's scrapes (engine and
//! DCGM bodies, plus gateway histograms built from its request records) go through the real
//! parser into a real `tsdb::Store`; the built-in packs (canonical, alerts, diagnoses,
//! SLOs) are evaluated by the rule engine at each step. Each scenario must raise its own
//! diagnosis and alert, and `healthy` nothing at all.

use std::collections::BTreeSet;
use std::time::Duration;

use rules::alert::Labels;
use rules::triage::Triage;
use sim::{EngineKind, FinishReason, Scenario, SimConfig, VirtualRun};
use sources::Point;
use sources::scrape::{target_labels, to_points};
use testkit::db::Db;

/// Virtual time starts here (a real epoch, so `offset 1h` reaches before the data).
const T0: i64 = 1_700_000_000_000;
/// Scrape and evaluation step (engines are scraped every 10 s by default).
const EVERY_S: f64 = 10.0;
/// The step of scenarios whose faults begin after a baseline (minutes of virtual time;
/// their rules read windows of minutes to an hour).
const SLOW_EVERY_S: f64 = 30.0;
const GATEWAY_LE: [f64; 10] = [
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    f64::INFINITY,
];

/// What the gateway in front of the engine would have counted so far.
#[derive(Default)]
struct Gateway {
    ttft: [u64; GATEWAY_LE.len()],
    ttft_sum: f64,
    by_finish: [u64; 2],
    refusals: u64,
}

impl Gateway {
    fn record(&mut self, r: &sim::RequestRecord) {
        for (i, le) in GATEWAY_LE.iter().enumerate() {
            if r.client_ttft_s <= *le {
                self.ttft[i] += 1;
            }
        }
        self.ttft_sum += r.client_ttft_s;
        self.by_finish[usize::from(r.finish_reason == FinishReason::Length)] += 1;
        // The gateway reads "I can't help..." in the response's first bytes.
        self.refusals += u64::from(r.refusal);
    }

    fn points(&self, model: &str, t_ms: i64) -> Vec<Point> {
        let labels = |extra: &[(&str, &str)]| -> Labels {
            let mut l: Labels = [("model", model), ("tenant", "t1"), ("upstream", "sim")]
                .iter()
                .chain(extra)
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            l.extend(target_labels("gateway", "gw:8080", &[]));
            l
        };
        let mut out: Vec<Point> = GATEWAY_LE
            .iter()
            .zip(self.ttft)
            .map(|(le, n)| {
                let le = if le.is_infinite() {
                    "+Inf".to_string()
                } else {
                    le.to_string()
                };
                Point::new(
                    "strata_gateway_ttft_seconds_bucket",
                    labels(&[("le", &le)]),
                    n as f64,
                    t_ms,
                )
            })
            .collect();
        let count = self.ttft[GATEWAY_LE.len() - 1] as f64;
        out.push(Point::new(
            "strata_gateway_ttft_seconds_count",
            labels(&[]),
            count,
            t_ms,
        ));
        out.push(Point::new(
            "strata_gateway_ttft_seconds_sum",
            labels(&[]),
            self.ttft_sum,
            t_ms,
        ));
        for (reason, n) in ["stop", "length"].iter().zip(self.by_finish) {
            out.push(Point::new(
                "strata_gateway_requests_total",
                labels(&[("finish_reason", reason), ("status", "200")]),
                n as f64,
                t_ms,
            ));
        }
        out.push(Point::new(
            "strata_gateway_refusals_total",
            labels(&[]),
            self.refusals as f64,
            t_ms,
        ));
        out
    }
}

struct Outcome {
    findings: BTreeSet<String>,
    alerts: BTreeSet<String>,
    triage: Triage,
}

/// Plays `cfg` for `secs` of virtual time, scraping and evaluating every `every_s`.
fn run(cfg: &SimConfig, secs: f64, every_s: f64) -> Outcome {
    let groups = rules::packs::groups("chat").expect("packs load");
    run_switching(cfg, secs, every_s, &[], groups)
}

/// [`run`] with `groups`, switching scenario at the given `(seconds, scenario)`.
fn run_switching(
    cfg: &SimConfig,
    secs: f64,
    every_s: f64,
    switches: &[(f64, Scenario)],
    groups: Vec<rules::GroupSpec>,
) -> Outcome {
    let model = cfg.model_name().to_string();
    let db = Db::new();
    let inhibit = rules::packs::inhibit_rules(rules::packs::INHIBIT).expect("inhibit rules");
    let mut triage = Triage::new(
        groups,
        Duration::from_secs(15),
        Duration::from_secs(300),
        inhibit,
    );
    let mut gateway = Gateway::default();
    let mut findings = BTreeSet::new();
    let mut alerts = BTreeSet::new();
    let mut run = VirtualRun::new(cfg, secs, every_s);
    for (t, sc) in switches {
        run = run.switch_at(*t, *sc);
    }
    while let Some(s) = run.next() {
        let t = T0 + s.t_ms as i64;
        for (job, instance, body) in [
            ("engine", "sim:8000", &s.engine_body),
            ("gpu", "sim:9400", &s.gpu_body),
        ] {
            let exp = expo::parse(body, expo::Format::Prometheus);
            assert!(exp.errors.is_empty(), "{:?}", exp.errors);
            db.write(
                instance,
                &to_points(&exp, &target_labels(job, instance, &[]), t),
            );
            db.write(
                instance,
                &[Point::new("up", target_labels(job, instance, &[]), 1.0, t)],
            );
        }
        for r in run.take_records() {
            gateway.record(&r);
        }
        db.write("gateway", &gateway.points(&model, t));
        triage.step(t, &db, &db);
        findings.extend(triage.findings.open().map(|f| f.name.clone()));
        // Every alert that fired, muted under a finding or not.
        alerts.extend(
            triage
                .all_alerts()
                .into_iter()
                .map(|a| alertname(a).to_string()),
        );
    }
    Outcome {
        findings,
        alerts,
        triage,
    }
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// The run of `sc` on its engine (TGI for token-budget starvation, else vLLM), seed 42,
/// the fault at `fault_scale`.
fn config(sc: Scenario, fault_scale: f64) -> SimConfig {
    let engine = if sc == Scenario::TokenBudgetStarvation {
        EngineKind::Tgi
    } else {
        EngineKind::Vllm
    };
    let mut cfg = SimConfig::new(engine);
    cfg.scenario = sc;
    cfg.seed = 42;
    cfg.fault_scale = fault_scale;
    cfg
}

#[test]
#[ignore = "prints what each scenario raises and when; run with --ignored --nocapture when tuning (SC=name: one)"]
fn print_all() {
    for sc in Scenario::ALL {
        if std::env::var("SC").is_ok_and(|v| v != sc.name()) {
            continue;
        }
        let o = run(&config(sc, 1.0), 900.0, SLOW_EVERY_S);
        let when: Vec<String> = o
            .triage
            .findings
            .history()
            .map(|f| {
                let end = f
                    .ended_ms
                    .map_or("-".into(), |e| ((e - T0) / 1000).to_string());
                format!("{} {}s..{end}s", f.name, (f.started_ms - T0) / 1000)
            })
            .collect();
        eprintln!("{sc}: findings {when:?} alerts {:?}", o.alerts);
    }
}

/// Runs `sc` for `secs` and checks it raised exactly the diagnosis `finding` (none when
/// empty) and at least the alerts `alerts`.
fn expect(sc: Scenario, secs: f64, finding: &[&str], alerts: &[&str]) -> Outcome {
    expect_run(sc, 1.0, secs, EVERY_S, finding, alerts)
}

/// [`expect`] with the fault at `fault_scale`, stepping every `every_s`.
fn expect_run(
    sc: Scenario,
    fault_scale: f64,
    secs: f64,
    every_s: f64,
    finding: &[&str],
    alerts: &[&str],
) -> Outcome {
    let o = run(&config(sc, fault_scale), secs, every_s);
    assert_eq!(
        o.findings,
        set(finding),
        "{sc}: findings (alerts {:?})",
        o.alerts
    );
    let missing: Vec<&&str> = alerts.iter().filter(|a| !o.alerts.contains(**a)).collect();
    assert!(
        missing.is_empty(),
        "{sc}: {missing:?} did not fire; fired {:?}",
        o.alerts
    );
    o
}

#[test]
fn healthy_raises_nothing() {
    let o = expect(Scenario::Healthy, 360.0, &[], &[]);
    assert!(o.alerts.is_empty(), "{:?}", o.alerts);
    assert_eq!(o.triage.findings.history().count(), 0);
}

#[test]
fn cache_thrash_is_diagnosed_with_its_evidence_and_mutes_queue_backup() {
    let o = expect(
        Scenario::CacheThrash,
        540.0,
        &["cache_thrash"],
        &[
            "LLMCacheThrash",
            "LLMKVCacheExhaustion",
            "LLMSwappingOrPreemption",
        ],
    );
    let f = o.triage.findings.open().next().expect("open finding");
    assert_eq!(
        (
            f.severity.as_str(),
            f.affected.get("instance").map(String::as_str)
        ),
        ("page", Some("sim:8000"))
    );
    assert!(f.action.contains("max_num_seqs"), "{}", f.action);
    let last = |i: usize| -> f64 {
        let s = &f.evidence[i].series;
        assert_eq!(s.len(), 1, "{}: {s:?}", f.evidence[i].expr);
        s[0].points.last().map_or(f64::NAN, |p| p.1)
    };
    assert!(f.evidence[0].expr.contains("llm:requests_waiting") && last(0) > 20.0);
    assert!(f.evidence[1].expr.contains("llm:kv_cache_usage_ratio") && last(1) > 0.95);
    assert!(f.evidence[2].expr.contains("llm:preemptions_total") && last(2) > 0.0);
    assert!(
        f.evidence[0].series[0].points.len() > 5,
        "values over the window"
    );
    // The seeds' inhibition: the queue backs up, but the full cache is what pages.
    let names = |v: Vec<&rules::alert::Alert>| -> BTreeSet<String> {
        v.iter()
            .filter_map(|a| {
                a.labels
                    .iter()
                    .find(|(k, _)| k == "alertname")
                    .map(|(_, v)| v.clone())
            })
            .collect()
    };
    assert!(names(o.triage.all_alerts()).contains("LLMRequestQueueBackup"));
    assert!(!names(o.triage.alerts()).contains("LLMRequestQueueBackup"));
    // One incident for the cause: what the full cache explains nests under the finding,
    // muted, instead of paging on its own.
    let nested: BTreeSet<String> = f.symptoms.iter().map(|s| s.alert.clone()).collect();
    for symptom in [
        "LLMKVCacheExhaustion",
        "LLMSwappingOrPreemption",
        "LLMCacheThrash",
        "LLMRequestQueueBackup",
    ] {
        assert!(nested.contains(symptom), "{symptom} not nested: {nested:?}");
    }
    assert!(
        names(o.triage.alerts()).is_disjoint(&nested),
        "symptoms are not shown beside their cause: {:?}",
        names(o.triage.alerts())
    );
    assert_eq!(
        f.engines
            .iter()
            .map(|e| e.instance.as_str())
            .collect::<Vec<_>>(),
        ["sim:8000"]
    );
}

#[test]
fn compute_bound_is_diagnosed() {
    expect(
        Scenario::ComputeBound,
        360.0,
        &["compute_bound"],
        &["LLMRequestQueueBackup"],
    );
}

#[test]
fn thermal_throttle_is_diagnosed() {
    expect(
        Scenario::ThermalThrottle,
        360.0,
        &["thermal_throttling"],
        &["GPUThermalThrottling"],
    );
}

#[test]
fn nccl_stall_is_tensor_idle_under_load() {
    expect(
        Scenario::NcclStall,
        720.0,
        &["tensor_idle_under_load"],
        &["GPUTensorIdleUnderLoad", "LLMRequestQueueBackup"],
    );
}

#[test]
fn nvlink_degraded_is_diagnosed() {
    expect(
        Scenario::NvlinkDegraded,
        360.0,
        &["nvlink_degraded"],
        &["GPUXidError"],
    );
}

#[test]
fn tgi_token_budget_starvation_is_diagnosed() {
    expect(
        Scenario::TokenBudgetStarvation,
        360.0,
        &["token_budget_starvation"],
        &["LLMRequestQueueBackup"],
    );
}

#[test]
fn proxy_buffering_is_diagnosed_from_gateway_vs_engine_ttft() {
    expect(
        Scenario::ProxyBuffering,
        360.0,
        &["proxy_buffering"],
        &["LLMGatewayEngineTTFTDivergence"],
    );
}

#[test]
fn burst_is_diagnosed_as_bursts_and_the_queue_recovers() {
    let o = expect(
        Scenario::Burst,
        420.0,
        &["traffic_burst"],
        &["LLMRequestQueueBackup"],
    );
    let queue_now = o.triage.all_alerts().into_iter().any(|a| {
        a.labels
            .contains(&("alertname".to_string(), "LLMRequestQueueBackup".to_string()))
    });
    assert!(!queue_now, "the queue drained after the burst");
    let f = o.triage.findings.open().next().expect("open finding");
    assert!(f.action.contains("rate limits"), "{}", f.action);
}

#[test]
fn nvlink_saturation_with_idle_sms_is_diagnosed_and_a_lighter_load_on_the_links_is_not() {
    expect_run(
        Scenario::NvlinkSaturated,
        1.0,
        420.0,
        SLOW_EVERY_S,
        &["nvlink_saturated_idle_sms"],
        &["LLMSLOBurnRateItl"],
    );
    // Half the other job's traffic: 180 GB/s on the links, under the 200 GB/s line, and
    // the collectives still wait (SMs idle), so no finding at all (and not tensor idle:
    // NVLink carries real traffic).
    let o = run(&config(Scenario::NvlinkSaturated, 0.5), 420.0, SLOW_EVERY_S);
    assert!(
        !o.findings.contains("nvlink_saturated_idle_sms"),
        "{:?}",
        o.findings
    );
}

/// Scenarios whose fault begins at t = 4 min: the fault at full scale raises `finding` (and
/// nothing else); at `near_miss` scale, the signal stays on the healthy side of its line
/// and raises nothing.
fn quality(sc: Scenario, finding: &str, near_miss: f64) -> Outcome {
    let o = expect_run(sc, 1.0, 600.0, SLOW_EVERY_S, &[finding], &[]);
    let f = o.triage.findings.open().next().expect("open finding");
    assert!(
        f.started_ms - T0 > 240_000,
        "{sc}: raised before the fault began at {} s",
        (f.started_ms - T0) / 1000
    );
    expect_run(sc, near_miss, 600.0, SLOW_EVERY_S, &[], &[]);
    o
}

/// The last value of evidence `i` of the open finding.
fn last_evidence(o: &Outcome, i: usize) -> f64 {
    let f = o.triage.findings.open().next().expect("open finding");
    let s = &f.evidence[i].series;
    assert_eq!(s.len(), 1, "{}: {s:?}", f.evidence[i].expr);
    s[0].points.last().map_or(f64::NAN, |p| p.1)
}

#[test]
fn prefix_cache_collapse_is_diagnosed_and_a_milder_drop_is_not() {
    // 30 % → 2 % of prompt tokens from the cache; the near miss falls to 17 % (> half).
    let o = quality(Scenario::PrefixCacheCollapse, "prefix_cache_collapse", 0.45);
    let (now, before) = (last_evidence(&o, 0), last_evidence(&o, 1));
    assert!(now < 0.05 && before > 0.25, "hit rate {now} vs {before}");
}

#[test]
fn spec_decode_below_break_even_is_diagnosed_and_acceptance_just_above_is_not() {
    // Acceptance 73 % → 25 % of draft tokens; the near miss falls to 55 %.
    let o = quality(
        Scenario::SpecDecodeRegression,
        "spec_decode_below_break_even",
        0.3,
    );
    let acceptance = last_evidence(&o, 0);
    assert!((0.15..0.35).contains(&acceptance), "{acceptance}");
}

#[test]
fn output_length_drift_is_diagnosed_and_a_smaller_change_is_not() {
    // Responses 3× longer; the near miss makes them 1.8× longer.
    let o = quality(Scenario::OutputDrift, "output_length_drift", 0.4);
    let (now, before) = (last_evidence(&o, 0), last_evidence(&o, 1));
    assert!(now > 2.0 * before, "{now} tokens per response vs {before}");
}

#[test]
fn refusal_spike_is_diagnosed_from_the_gateway_and_a_smaller_rise_is_not() {
    // 1 % → 15 % of responses refuse; the near miss rises to 3.8 % (under 5 %).
    let o = quality(Scenario::RefusalSpike, "refusal_spike", 0.2);
    let share = last_evidence(&o, 0);
    assert!((0.1..0.2).contains(&share), "{share}");
}

/// How long each fault plays before the switch back: long enough for its diagnosis to
/// open (the quality faults begin 4 minutes in and compare with the hour before).
fn fault_secs(sc: Scenario) -> f64 {
    if sc.effects().quality.is_some() {
        600.0
    } else {
        480.0
    }
}

/// Seconds after the switch back by which every finding must have closed, and how long
/// after that nothing may open (the demo: healthy within 5 minutes, quiet 10 more).
const RECOVER_S: f64 = 300.0;
const QUIET_S: f64 = 600.0;

/// The step of the recovery runs of engine and GPU faults (a common scrape interval).
const RECOVERY_EVERY_S: f64 = 15.0;

/// Healthy minutes before each fault (the hour-long baselines then hold normal values).
const LEAD_S: f64 = 300.0;

fn alertname(a: &rules::alert::Alert) -> &str {
    a.labels
        .iter()
        .find(|(k, _)| k == "alertname")
        .map_or("", |(_, v)| v.as_str())
}

/// What went wrong in the recovery of `sc` (empty: a clean recovery): healthy for
/// [`LEAD_S`], the fault for [`fault_secs`], then healthy again for 15 minutes.
fn recovery_faults(sc: Scenario) -> Vec<String> {
    let mut cfg = config(sc, 1.0);
    cfg.gpus = Some(cfg.gpu_count());
    cfg.scenario = Scenario::Healthy;
    let switch = LEAD_S + fault_secs(sc);
    let every = if sc.effects().quality.is_some() || sc == Scenario::NvlinkSaturated {
        SLOW_EVERY_S
    } else {
        RECOVERY_EVERY_S
    };
    // Canonical, alerts and diagnoses: the SLO packs' burn rates are not checked (below).
    let o = run_switching(
        &cfg,
        switch + RECOVER_S + QUIET_S,
        every,
        &[(LEAD_S, sc), (switch, Scenario::Healthy)],
        rules::packs::shared().expect("packs load"),
    );
    let at = |ms: i64| (ms - T0) / 1000;
    let switch_ms = T0 + (switch * 1000.0) as i64;
    let mut bad = Vec::new();
    if o.triage.findings.history().next().is_none() {
        bad.push(format!("{sc}: the fault opened no finding"));
    }
    for f in o.triage.findings.history() {
        match f.ended_ms {
            None => bad.push(format!(
                "{sc}: {} (opened at {} s) is still open {} s after the switch back",
                f.name,
                at(f.started_ms),
                RECOVER_S + QUIET_S
            )),
            Some(end) if end > switch_ms + (RECOVER_S * 1000.0) as i64 => bad.push(format!(
                "{sc}: {} closed {} s after the switch back",
                f.name,
                (end - switch_ms) / 1000
            )),
            Some(_) => {}
        }
        if f.started_ms > switch_ms {
            bad.push(format!(
                "{sc}: {} opened {} s after the switch back",
                f.name,
                (f.started_ms - switch_ms) / 1000
            ));
        }
    }
    // SLO burn rates are left out: their 30-minute and longer windows hold the fault by
    // design (budget burned is budget burned), and they are muted while a cause fires.
    let still: Vec<String> = o
        .triage
        .all_alerts()
        .iter()
        .map(|a| alertname(a).to_string())
        .filter(|n| !n.starts_with("LLMSLOBurnRate"))
        .collect();
    if !still.is_empty() {
        bad.push(format!(
            "{sc}: alerts still fire {} s after the switch back: {still:?}",
            RECOVER_S + QUIET_S
        ));
    }
    bad
}

/// Plays the recovery of each of `scenarios` and fails with everything that went wrong.
fn recover(scenarios: &[Scenario]) {
    let bad: Vec<String> = scenarios
        .iter()
        .copied()
        .flat_map(recovery_faults)
        .collect();
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

const CAPACITY_FAULTS: [Scenario; 4] = [
    Scenario::CacheThrash,
    Scenario::ComputeBound,
    Scenario::TokenBudgetStarvation,
    Scenario::Burst,
];
const GPU_AND_NETWORK_FAULTS: [Scenario; 5] = [
    Scenario::ThermalThrottle,
    Scenario::NcclStall,
    Scenario::NvlinkDegraded,
    Scenario::NvlinkSaturated,
    Scenario::ProxyBuffering,
];
const QUALITY_FAULTS: [Scenario; 4] = [
    Scenario::PrefixCacheCollapse,
    Scenario::SpecDecodeRegression,
    Scenario::OutputDrift,
    Scenario::RefusalSpike,
];

#[test]
fn capacity_faults_recover_cleanly_after_switching_back_to_healthy() {
    recover(&CAPACITY_FAULTS);
}

#[test]
fn gpu_and_network_faults_recover_cleanly_after_switching_back_to_healthy() {
    recover(&GPU_AND_NETWORK_FAULTS);
}

#[test]
fn quality_faults_recover_cleanly_after_switching_back_to_healthy() {
    recover(&QUALITY_FAULTS);
}

#[test]
fn every_fault_scenario_has_a_recovery_run() {
    for sc in Scenario::ALL
        .into_iter()
        .filter(|s| *s != Scenario::Healthy)
    {
        let runs = [
            &CAPACITY_FAULTS[..],
            &GPU_AND_NETWORK_FAULTS,
            &QUALITY_FAULTS,
        ]
        .iter()
        .filter(|list| list.contains(&sc))
        .count();
        assert_eq!(runs, 1, "{sc}: give it one recovery run");
    }
}
