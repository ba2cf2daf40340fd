//! `strata diagnose`: one-shot triage against live endpoints. Scrapes the engines, GPU
//! exporters and gateway over a window, evaluates the canonical rules and the diagnoses
//! (their `for:` waived: the window is the evidence), and prints each finding with its
//! numbers and the action. Exit 2 when a page-severity finding is present, 1 on error.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use rules::RuleSpec;
use rules::findings::Finding;
use rules::triage::Triage;
use sources::scrape::{
    Client, TargetKind, TargetSpec, install_crypto_provider, target_labels, to_points,
};
use tsdb::promql::{Engine, EngineConfig};
use tsdb::{Store, StoreConfig};

use crate::up::{Ingest, StoreQuery};

/// `strata diagnose`
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  strata diagnose --engine http://127.0.0.1:8000/metrics --gpu http://127.0.0.1:9400/metrics
  strata diagnose --engine http://vllm:8000/metrics --window 1m --json

Exit status: 0 no page-severity finding, 2 a page-severity finding, 1 an error (a target
could not be read at all).")]
pub struct DiagnoseArgs {
    /// Engine metrics URLs (vLLM, TGI, SGLang, llama.cpp).
    #[arg(long = "engine", value_name = "URL", required = true)]
    pub engines: Vec<reqwest::Url>,
    /// GPU exporter URLs (DCGM).
    #[arg(long = "gpu", value_name = "URL")]
    pub gpus: Vec<reqwest::Url>,
    /// Strata gateway metrics URL (gateway vs engine TTFT, refusals).
    #[arg(long, value_name = "URL")]
    pub gateway: Option<reqwest::Url>,
    /// How long to watch: longer windows give rates more samples.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = crate::cli::parse_duration)]
    pub window: Duration,
    /// Time between scrapes inside the window.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = crate::cli::parse_duration)]
    pub every: Duration,
    /// Print the findings as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs the triage and prints the findings.
pub fn run(args: DiagnoseArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    if args.every.is_zero() || args.window < args.every {
        return Err("--every must be positive and at most --window".into());
    }
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    match runtime.block_on(triage(&args)) {
        Ok(findings) => {
            print(&findings, args.json)?;
            let page = findings.iter().any(|f| f.severity == "page");
            Ok(ExitCode::from(if page { 2 } else { 0 }))
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// The canonical and diagnosis packs, every group evaluated at each scrape, `for:` waived.
fn groups(every: Duration) -> Result<Vec<rules::GroupSpec>, String> {
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
                a.for_ = Duration::ZERO;
            }
        }
    }
    Ok(out)
}

async fn triage(args: &DiagnoseArgs) -> Result<Vec<Finding>, String> {
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
    for u in &args.gpus {
        add("gpu", u, TargetKind::Gpu)?;
    }
    if let Some(u) = &args.gateway {
        add("gateway", u, TargetKind::Engine)?;
    }
    let (store, _) = Store::open(StoreConfig::default());
    let store = Arc::new(store);
    let query = StoreQuery(Arc::new(Engine::new(
        store.clone(),
        EngineConfig::default(),
    )));
    let ingest = Ingest {
        store,
        remote: None,
        external: Vec::new(),
    };
    let mut triage = Triage::new(groups(args.every)?, args.every, args.window, Vec::new());
    let mut read = vec![false; targets.len()];
    let mut last_error = vec![String::new(); targets.len()];
    let steps = (args.window.as_millis() / args.every.as_millis()).max(1) as usize + 1;
    let mut tick = tokio::time::interval(args.every);
    for _ in 0..steps {
        tick.tick().await;
        let t = sources::now_ms();
        for (i, (spec, client)) in targets.iter().enumerate() {
            match client.fetch(spec, Duration::from_secs(5)).await {
                Ok(body) => {
                    read[i] = true;
                    let exp = expo::parse(&body.text, body.format);
                    let instance = spec.url.authority().to_string();
                    let labels = target_labels(&spec.job, &instance, &[]);
                    ingest.write(&instance, &to_points(&exp, &labels, t));
                }
                Err(e) => last_error[i] = e.to_string(),
            }
        }
        triage.step(t, &query, &ingest);
    }
    if let Some(i) = read.iter().position(|r| !r) {
        return Err(format!(
            "{} could not be read during the window: {} (check the URL with `strata scrape URL`)",
            targets[i].0.url, last_error[i]
        ));
    }
    Ok(triage.findings.history().cloned().collect())
}

fn print(findings: &[Finding], json: bool) -> Result<(), String> {
    if json {
        let text = serde_json::to_string_pretty(&serde_json::json!({ "findings": findings }))
            .map_err(|e| format!("cannot encode findings: {e}"))?;
        println!("{text}");
        return Ok(());
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
                println!("  evidence: {}  = {}", e.expr, values[last..].join(" "));
            }
        }
        println!("  action: {}", f.action);
    }
    Ok(())
}
