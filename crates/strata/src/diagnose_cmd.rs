//! `strata diagnose`: one-shot triage against live endpoints. Scrapes the engines, GPU
//! exporters and gateway over a window, evaluates the canonical rules and the diagnoses
//! (each `for:` shortened to at most half the window: a pattern must hold over half the
//! window, not one evaluation), and prints each finding with its numbers and the action.
//! Exit 2 when a page-severity finding is present, 1 on error.
//!
//! With `--backend URL` it triages from stored history instead of live scraping: the raw
//! series of the last `--since` are read from the Prometheus-compatible backend
//! (`query_range` at `--every`), replayed into a scratch store, and the same rules are
//! evaluated step by step over them.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use std::path::Path;

use clap::Args;
use rules::findings::Finding;
use rules::slo::SloProfile;
use rules::triage::Triage;
use rules::{Query, RuleSpec};
use serde::Serialize;
use sources::gpu::FieldSet;
use sources::gpu::nvml::NvmlCollector;
use sources::scrape::{
    Client, TargetKind, TargetSpec, install_crypto_provider, target_labels, to_points,
};
use tsdb::promql::{Engine, EngineConfig};
use tsdb::{Store, StoreConfig};

use ::config::Config;
use node::{Ingest, StoreQuery};

/// `strata diagnose`
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  strata diagnose --engine http://127.0.0.1:8000/metrics --gpu http://127.0.0.1:9400/metrics
  strata diagnose --engine http://vllm:8000/metrics --window 1m --json
  strata diagnose --engine http://vllm:8000/metrics --gateway http://127.0.0.1:8080/metrics --slo rag
  strata diagnose --backend http://victoria-metrics:8428 --since 15m     the fleet's history

Exit status: 0 no page-severity finding, 2 a page-severity finding, 1 an error (a target
could not be read at all).")]
pub struct DiagnoseArgs {
    /// Engine metrics URLs (vLLM, TGI, SGLang, llama.cpp).
    #[arg(long = "engine", value_name = "URL", required_unless_present = "backend", value_parser = crate::cli::parse_metrics_url)]
    pub engines: Vec<reqwest::Url>,
    /// GPU exporter URLs (DCGM), or `nvml` for this machine's GPUs read directly.
    #[arg(long = "gpu", value_name = "URL|nvml", value_parser = parse_gpu)]
    pub gpus: Vec<Gpu>,
    /// Strata gateway metrics URL (gateway vs engine TTFT, refusals).
    #[arg(long, value_name = "URL", value_parser = crate::cli::parse_metrics_url)]
    pub gateway: Option<reqwest::Url>,
    /// How long to watch: longer windows give rates more samples.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = crate::cli::parse_duration)]
    pub window: Duration,
    /// Time between scrapes inside the window.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = crate::cli::parse_duration)]
    pub every: Duration,
    /// Also report SLO profile NAME over the window: built-in chat, rag or code, or an
    /// [[slo]] of the config file.
    #[arg(long, value_name = "NAME")]
    pub slo: Option<String>,
    /// Print the findings as JSON.
    #[arg(long)]
    pub json: bool,
    /// No progress line on stderr while watching (it is off anyway when stderr is not a
    /// terminal).
    #[arg(long)]
    pub quiet: bool,
    /// Triage from a Prometheus-compatible backend's stored history (Prometheus,
    /// VictoriaMetrics, Mimir, Thanos) instead of scraping live endpoints.
    #[arg(long, value_name = "URL", conflicts_with_all = ["engines", "gpus", "gateway"])]
    pub backend: Option<reqwest::Url>,
    /// With --backend: how much history to triage.
    #[arg(long, value_name = "DURATION", default_value = "15m", requires = "backend", value_parser = crate::cli::parse_duration)]
    pub since: Duration,
    /// With --backend: only this node's series (the agents' `node` label).
    #[arg(long, value_name = "NAME", requires = "backend")]
    pub node: Option<String>,
}

/// One SLI of the `--slo` profile over the window.
#[derive(Debug, Serialize)]
struct SliReport {
    /// `ttft`, `itl`, `success`, `completeness` or `headroom`.
    slo: String,
    /// Share of requests (or of time) that missed it over the window.
    error_ratio: f64,
    /// The share it may miss (1 − objective).
    budget: f64,
}

/// Runs the triage and prints the findings.
pub fn run(
    config_path: Option<&Path>,
    args: DiagnoseArgs,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    if args.every.is_zero() || args.window < args.every {
        return Err("--every must be positive and at most --window".into());
    }
    let slo = match &args.slo {
        Some(name) => {
            let config = match config::locate(config_path) {
                Some(path) => config::load(&path)?.0,
                None => Config::default(),
            };
            Some((config.slo_profile(name)?, config.slo_rule_groups(name)?))
        }
        None => None,
    };
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let result = match &args.backend {
        Some(url) => runtime.block_on(from_backend(url, &args, slo)),
        None => runtime.block_on(triage(&args, slo)),
    };
    match result {
        Ok((findings, slis)) => {
            print(&findings, &slis, args.json)?;
            let page = findings.iter().any(|f| f.severity == "page");
            Ok(ExitCode::from(if page { 2 } else { 0 }))
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// The canonical and diagnosis packs, every group evaluated at each scrape; each diagnosis
/// must hold for its `for:` or half the window, whichever is shorter (a transient, such as
/// a GPU whose activity ramps up after the first requests, is not a finding).
fn groups(every: Duration, window: Duration) -> Result<Vec<rules::GroupSpec>, String> {
    let hold = (window / 2).max(every);
    let mut out = Vec::new();
    for (name, text) in rules::packs::FILES
        .iter()
        .filter(|(n, _)| *n == "canonical.yml" || *n == "diagnoses.yml")
    {
        let loaded = rules::load(name, text).map_err(|e| format!("built-in pack {}", e[0]))?;
        out.extend(loaded);
    }
    for g in &mut out {
        g.interval = Some(every);
        for r in &mut g.rules {
            if let RuleSpec::Alerting(a) = r {
                a.for_ = a.for_.min(hold);
            }
        }
    }
    Ok(out)
}

/// The countdown line of the watch window on stderr: hidden with `--quiet` or when stderr is
/// not a terminal (logs and pipes get no control characters).
fn progress(quiet: bool, steps: usize, window: Duration) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if quiet || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(steps as u64);
    let style = indicatif::ProgressStyle::with_template(&format!(
        "watching for {} {{bar:30}} {{eta}} left",
        humantime::format_duration(window)
    ))
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// Scrapes over the window and evaluates; returns the findings and, with `slo`, each SLI's
/// error ratio over the window.
async fn triage(
    args: &DiagnoseArgs,
    slo: Option<(SloProfile, Vec<rules::GroupSpec>)>,
) -> Result<(Vec<Finding>, Vec<SliReport>), String> {
    install_crypto_provider();
    let mut targets: Vec<(TargetSpec, Client)> = Vec::new();
    let mut add = |job: &str, url: &reqwest::Url, kind: TargetKind| -> Result<(), String> {
        let spec = TargetSpec::new(job, url.clone(), kind);
        let client = Client::new(&spec).map_err(|e| format!("{url}: {e}"))?;
        targets.push((spec, client));
        Ok(())
    };
    for u in &args.engines {
        add("engine", u, TargetKind::Engine)?;
    }
    let mut nvml = None;
    for g in &args.gpus {
        match g {
            Gpu::Url(u) => add("gpu", u, TargetKind::Gpu)?,
            Gpu::Nvml if nvml.is_none() => {
                let node = crate::host::hostname();
                let collector = tokio::task::spawn_blocking(move || NvmlCollector::open(&node))
                    .await
                    .map_err(|e| format!("NVML task failed: {e}"))?
                    .map_err(|e| format!("NVML not available: {} (drop --gpu nvml, or point --gpu at a DCGM exporter)", e.reason))?;
                nvml = Some(Arc::new(std::sync::Mutex::new(collector)));
            }
            Gpu::Nvml => {}
        }
    }
    if let Some(u) = &args.gateway {
        add("gateway", u, TargetKind::Engine)?;
    }
    let (query, ingest) = scratch_store();
    let mut groups = groups(args.every, args.window)?;
    if let Some((_, g)) = &slo {
        groups.extend(g.iter().cloned().map(|mut g| {
            g.interval = Some(args.every);
            g
        }));
    }
    let mut triage = Triage::new(groups, args.every, args.window, Vec::new());
    let mut last_t = 0;
    let mut read = vec![false; targets.len()];
    let mut last_error = vec![String::new(); targets.len()];
    let steps = (args.window.as_millis() / args.every.as_millis()).max(1) as usize + 1;
    let mut tick = tokio::time::interval(args.every);
    let progress = progress(args.quiet, steps, args.window);
    for _ in 0..steps {
        tick.tick().await;
        progress.inc(1);
        let t = sources::now_ms();
        last_t = t;
        for (i, (spec, client)) in targets.iter().enumerate() {
            match client.fetch(spec, Duration::from_secs(5)).await {
                Ok(body) => {
                    read[i] = true;
                    let exp = expo::parse(&body.text, body.format);
                    let instance = spec.url.authority().to_string();
                    let labels = target_labels(&spec.job, &instance, &[]);
                    ingest.write(node::Batch::points(&instance, to_points(&exp, &labels, t)));
                }
                Err(e) => last_error[i] = e.to_string(),
            }
        }
        if let Some(c) = &nvml {
            let c = c.clone();
            let collected = tokio::task::spawn_blocking(move || {
                strata_core::sync::lock(&c).collect(FieldSet::Full, t)
            })
            .await
            .map_err(|e| format!("NVML task failed: {e}"))?;
            ingest.write(node::Batch::points("nvml", collected.points));
        }
        triage.step(t, &query, &ingest);
    }
    progress.finish_and_clear();
    if let Some(i) = read.iter().position(|r| !r) {
        return Err(format!(
            "{} could not be read during the window: {} (check the URL with `strata scrape URL`)",
            targets[i].0.url, last_error[i]
        ));
    }
    let slis = match &slo {
        Some((p, _)) => sli_reports(p, &query, last_t),
        None => Vec::new(),
    };
    Ok((triage.findings.history().cloned().collect(), slis))
}

/// Longest history one `--backend` triage reads: its `query_range` stays under the
/// backends' 11,000 points per series.
const MAX_STEPS: u128 = 10_000;

/// Triage from the backend's history: the raw series (rule results excluded: they are
/// recomputed here) of the last `--since`, read every `--every`, evaluated step by step.
async fn from_backend(
    url: &reqwest::Url,
    args: &DiagnoseArgs,
    slo: Option<(SloProfile, Vec<rules::GroupSpec>)>,
) -> Result<(Vec<Finding>, Vec<SliReport>), String> {
    install_crypto_provider();
    if args.since.as_millis() / args.every.as_millis() > MAX_STEPS {
        return Err(format!(
            "--since {} at --every {} is over {MAX_STEPS} steps: raise --every",
            humantime::format_duration(args.since),
            humantime::format_duration(args.every)
        ));
    }
    let backend = node::backend::Backend::new(node::backend::BackendConfig::new(url.clone()))?;
    // The newest samples a backend hides (VictoriaMetrics: 30 s) are left out of the window.
    let end = sources::now_ms() - backend.eval_delay().await.as_millis() as i64;
    let start = end - args.since.as_millis() as i64;
    let node = match &args.node {
        Some(n) => format!(",node=\"{}\"", n.replace('\\', "\\\\").replace('"', "\\\"")),
        None => String::new(),
    };
    // Everything scraped (a job label), nothing recorded by rules.
    let selector = format!(
        "{{__name__=~\".+\",__name__!~\"(llm|gpu|slo|cost|strata_rule):.+|ALERTS|ALERTS_FOR_STATE\",job=~\".+\"{node}}}"
    );
    let series = backend.range(&selector, start, end, args.every).await?;
    if series.is_empty() {
        return Err(format!(
            "backend {url} holds no scraped series in the last {}{}: are the agents shipping there?",
            humantime::format_duration(args.since),
            args.node
                .as_ref()
                .map_or(String::new(), |n| format!(" for node {n:?}"))
        ));
    }
    let (query, ingest) = scratch_store();
    let mut points = Vec::new();
    for (labels, values) in series {
        let name = labels
            .iter()
            .find(|(k, _)| k == "__name__")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let rest: Vec<(String, String)> = labels
            .into_iter()
            .filter(|(k, _)| k != "__name__")
            .collect();
        points.extend(
            values
                .into_iter()
                .map(|(t, v)| strata_core::Point::new(&name, rest.clone(), v, t)),
        );
    }
    points.sort_by_key(|p| p.timestamp_ms);
    let mut groups = groups(args.every, args.since)?;
    if let Some((_, g)) = &slo {
        groups.extend(g.iter().cloned().map(|mut g| {
            g.interval = Some(args.every);
            g
        }));
    }
    let mut triage = Triage::new(groups, args.every, args.since, Vec::new());
    let step = args.every.as_millis() as i64;
    let mut next = 0;
    let mut t = start;
    while t <= end {
        let upto = points[next..].partition_point(|p| p.timestamp_ms <= t) + next;
        ingest.write(node::Batch::points("backend", points[next..upto].to_vec()));
        next = upto;
        triage.step(t, &query, &ingest);
        t += step;
    }
    let slis = match &slo {
        Some((p, _)) => sli_reports(p, &query, end),
        None => Vec::new(),
    };
    Ok((triage.findings.history().cloned().collect(), slis))
}

/// Each SLI's error ratio over the window: the shortest recorded window (5 m) covers it all.
fn sli_reports(p: &SloProfile, query: &dyn Query, t_ms: i64) -> Vec<SliReport> {
    let objectives = [
        ("ttft", p.latency_objective),
        ("itl", p.latency_objective),
        ("success", p.success_objective),
        ("completeness", p.completeness_objective),
        ("headroom", p.headroom_objective),
    ];
    let mut out = Vec::new();
    for (slo, objective) in objectives {
        let expr = format!(
            "max(slo:sli_error:ratio_rate{}{{slo=\"{slo}\", profile=\"{}\"}})",
            rules::slo::WINDOWS[0],
            p.name
        );
        let value = query
            .instant(&expr, t_ms)
            .ok()
            .and_then(|v| v.first().map(|(_, v)| *v))
            .filter(|v| v.is_finite());
        if let Some(error_ratio) = value {
            out.push(SliReport {
                slo: slo.to_string(),
                error_ratio,
                budget: 1.0 - objective,
            });
        }
    }
    out
}

fn print(findings: &[Finding], slis: &[SliReport], json: bool) -> Result<(), String> {
    if json {
        let text =
            serde_json::to_string_pretty(&serde_json::json!({ "findings": findings, "slo": slis }))
                .map_err(|e| format!("cannot encode findings: {e}"))?;
        println!("{text}");
        return Ok(());
    }
    for s in slis {
        let verdict = if s.error_ratio <= s.budget {
            "within"
        } else {
            "OVER"
        };
        println!(
            "slo {}: {:.2} % missed over the window, {verdict} its budget of {:.2} %",
            s.slo,
            s.error_ratio * 100.0,
            s.budget * 100.0
        );
    }
    if findings.is_empty() {
        println!("no finding: no diagnosis pattern holds over the window");
        return Ok(());
    }
    for f in findings {
        let who: Vec<String> = f.affected.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("[{}] {} ({})", f.severity, f.name, who.join(" "));
        println!("  {}", f.summary);
        for e in &f.evidence {
            for s in &e.series {
                let values: Vec<String> = s.points.iter().map(|(_, v)| format!("{v:.3}")).collect();
                let last = values.len().saturating_sub(6);
                println!("  evidence: {}  = {}", e.title, values[last..].join(" "));
            }
        }
        println!("  action: {}", f.action);
    }
    Ok(())
}

/// One `--gpu`: an exporter's metrics URL, or this machine's GPUs through NVML.
#[derive(Debug, Clone)]
pub enum Gpu {
    /// A DCGM exporter.
    Url(reqwest::Url),
    /// NVML on this machine.
    Nvml,
}

fn parse_gpu(s: &str) -> Result<Gpu, String> {
    if s == "nvml" {
        return Ok(Gpu::Nvml);
    }
    crate::cli::parse_metrics_url(s).map(Gpu::Url)
}

/// An in-memory store for one triage: the query side the rules read, the ingest side the
/// scrapes (or the backend's history) and the rule results go through.
fn scratch_store() -> (StoreQuery, Ingest) {
    let (store, _) = Store::open(StoreConfig::default());
    let store = Arc::new(store);
    let query = StoreQuery::new(Arc::new(Engine::new(
        store.clone(),
        EngineConfig::default(),
    )));
    (query, Ingest::new(store, None, Vec::new()))
}
