//! `strata sim`: the engine and GPU simulator, in real time (servers), in virtual time
//! (scrape files in seconds), or as the zero-cost upstream for overhead benchmarks.

/// Prints a status line; a closed stdout (the reader went away) must not stop the servers.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use sim::server::{self, ZeroCost};
use sim::{
    DcgmVersion, EngineKind, EngineVersion, Profile, Scenario, SimConfig, VirtualRun, VllmMetrics,
};

/// `strata sim`
#[derive(Debug, Args)]
#[command(after_help = after_help())]
pub struct SimArgs {
    /// Engine to speak: wire format, errors and /metrics dialect.
    #[arg(long, value_enum, default_value = "vllm")]
    pub engine: EngineArg,
    /// Address of the engine API and its /metrics.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,
    /// Address of the simulated DCGM exporter's /metrics.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9400")]
    pub gpu_listen: SocketAddr,
    /// Simulated GPUs; the engine shards the model over all of them (tensor parallel).
    /// Default: the profile's (1 for the 8B model), raised to 2 by scenarios that need NVLink.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=8))]
    pub gpus: Option<u32>,
    /// Scenario to start with (switch at run time: POST /sim/scenario {"scenario": NAME}).
    #[arg(long, value_name = "NAME", default_value = "healthy", value_parser = parse_scenario)]
    pub scenario: Scenario,
    /// Simulated seconds per real second.
    #[arg(long, value_name = "X", default_value_t = 1.0, value_parser = parse_speed)]
    pub speed: f64,
    /// Seed for every random draw (same seed, same run).
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,
    /// Model and GPU profile: llama-8b-h100, llama-70b-4xh100, qwen-7b-l4.
    #[arg(long, value_name = "NAME", default_value = "llama-8b-h100", value_parser = parse_profile)]
    pub profile: &'static Profile,
    /// vLLM metric names: v1 (current) or v0 (gpu_cache_usage_perc, num_requests_swapped).
    #[arg(long, value_enum, default_value = "v1")]
    pub vllm_metrics: VllmMetricsArg,
    /// Reproduce one release's /metrics names and labels, as read from its source
    /// (vllm: 0.8.5-v0, 0.8.5, 0.10.2, 0.14.0, 0.33.0; sglang: 0.4.10, 0.5.4, 0.5.23;
    /// tgi: 3.3.7; llamacpp: before-26920, 0.3.36). Default: the current names.
    #[arg(long, value_name = "VERSION")]
    pub engine_version: Option<String>,
    /// Reproduce a stock DCGM exporter's /metrics: 4.5.3 (default counters, `Hostname`),
    /// 4.5.3-old-k8s (with pod_name/pod_namespace/container_name) or main (`hostname`,
    /// pod/namespace/container). Default: Strata's counters file, under Kubernetes.
    #[arg(long, value_name = "VERSION", value_parser = DcgmVersion::parse)]
    pub dcgm_version: Option<DcgmVersion>,
    /// Served model name (default: the profile's).
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// Serve only the requests that arrive over HTTP; without it the scenario brings its
    /// own load.
    #[arg(long)]
    pub no_load: bool,
    /// Make this share (0..1) of the scenario's own requests end on max_tokens
    /// (finish_reason="length").
    #[arg(long, value_name = "SHARE", value_parser = parse_share)]
    pub truncation: Option<f64>,
    /// Seconds the scenario's own clients wait without a token before they cancel the
    /// request (0: they wait forever), as real clients' read timeouts do.
    #[arg(long, value_name = "SECONDS", default_value_t = sim::config::DEFAULT_CLIENT_TIMEOUT_S)]
    pub client_timeout: f64,
    /// Running-batch limit (vLLM max_num_seqs, TGI max_batch_size, llama.cpp slots).
    #[arg(long, value_name = "N")]
    pub max_num_seqs: Option<u32>,
    /// KV cache size in blocks of 16 tokens (default: what the profile's GPUs hold).
    #[arg(long, value_name = "N")]
    pub kv_blocks: Option<u32>,
    /// Run in virtual time for this long and write scrapes to --out, then exit.
    #[arg(long = "virtual", value_name = "DURATION", value_parser = parse_duration)]
    pub virtual_for: Option<Duration>,
    /// Virtual time: simulated time between scrapes.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub scrape_every: Duration,
    /// Virtual time: folder for engine-*.prom, gpu-*.prom and requests.jsonl.
    #[arg(long, value_name = "DIR", requires = "virtual_for")]
    pub out: Option<PathBuf>,
    /// Zero-cost mode: no scheduler, a fixed number of tokens at a fixed gap.
    #[arg(long)]
    pub zero_cost: bool,
    /// Zero-cost mode: tokens per response.
    #[arg(long, value_name = "N", default_value_t = 128, requires = "zero_cost")]
    pub tokens: u32,
    /// Zero-cost mode: gap between tokens.
    #[arg(long, value_name = "DURATION", default_value = "20ms", value_parser = parse_any_duration, requires = "zero_cost")]
    pub itl: Duration,
}

fn after_help() -> String {
    format!(
        "Scenarios:\n{}\nExamples:\n  strata sim --engine vllm                              vLLM on :8000, DCGM exporter on :9400\n  strata sim --engine tgi --scenario token-budget-starvation\n  strata sim --scenario thermal-throttle --speed 10     ten simulated seconds per second\n  strata sim --virtual 10m --out scrapes/               ten minutes of scrapes, in seconds\n  strata sim --zero-cost --tokens 100 --itl 20ms --listen 127.0.0.1:8100",
        Scenario::help_table()
    )
}

/// `--engine`
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineArg {
    /// vLLM: OpenAI API, vllm:* metrics.
    Vllm,
    /// TGI: /generate, /generate_stream, Messages API, tgi_* metrics.
    Tgi,
    /// SGLang: OpenAI API, sglang:* metrics.
    Sglang,
    /// llama.cpp server: OpenAI API, llamacpp:* metrics.
    Llamacpp,
}

/// `--vllm-metrics`
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VllmMetricsArg {
    /// V1 engine names.
    V1,
    /// V0 engine names.
    V0,
}

fn parse_scenario(s: &str) -> Result<Scenario, String> {
    s.parse()
}

fn parse_profile(s: &str) -> Result<&'static Profile, String> {
    Profile::by_name(s).ok_or_else(|| {
        let names: Vec<_> = sim::scheduler::PROFILES.iter().map(|p| p.name).collect();
        format!("unknown profile `{s}`; one of: {}", names.join(", "))
    })
}

fn parse_speed(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err("must be a number greater than zero (1 = real time)".into()),
    }
}

fn parse_share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err("must be a share between 0 and 1".into()),
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("must be greater than zero".into()),
        Err(e) => Err(format!("{e} (write e.g. 250ms, 5s, 10m)")),
    }
}

fn parse_any_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (write e.g. 20ms)"))
}

impl SimArgs {
    fn config(&self, hostname: String) -> Result<SimConfig, String> {
        let engine = match self.engine {
            EngineArg::Vllm => EngineKind::Vllm,
            EngineArg::Tgi => EngineKind::Tgi,
            EngineArg::Sglang => EngineKind::Sglang,
            EngineArg::Llamacpp => EngineKind::Llamacpp,
        };
        let mut cfg = SimConfig::new(engine);
        cfg.vllm_metrics = match self.vllm_metrics {
            VllmMetricsArg::V1 => VllmMetrics::V1,
            VllmMetricsArg::V0 => VllmMetrics::V0,
        };
        cfg.profile = self.profile;
        cfg.gpus = self.gpus;
        cfg.scenario = self.scenario;
        cfg.seed = self.seed;
        cfg.load = !self.no_load;
        cfg.truncation = self.truncation;
        cfg.client_timeout_s = (self.client_timeout > 0.0).then_some(self.client_timeout);
        cfg.model = self.model.clone();
        cfg.max_num_seqs = self.max_num_seqs;
        cfg.num_blocks = self.kv_blocks;
        cfg.hostname = hostname;
        cfg.version = match &self.engine_version {
            Some(v) => Some(
                EngineVersion::parse(engine, v).map_err(|e| format!("--engine-version: {e}"))?,
            ),
            None => None,
        };
        cfg.dcgm = self.dcgm_version;
        Ok(cfg)
    }
}

/// Runs `strata sim`.
pub fn run(args: SimArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let cfg = args.config(crate::host::hostname())?;
    if let Some(d) = args.virtual_for {
        return run_virtual(&cfg, d, args.scrape_every, args.out.as_deref());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let bind = |a: SocketAddr| async move {
            sim::server::listen(a).map_err(|e| format!("cannot listen on {a}: {e}"))
        };
        let running = if args.zero_cost {
            let z = ZeroCost {
                tokens: args.tokens.max(1),
                itl: args.itl,
                model: cfg.model_name().to_string(),
            };
            let r = server::start_zero_cost(z, bind(args.listen).await?).await?;
            say!(
                "strata sim: zero-cost upstream, {} tokens every {:?}, on http://{}",
                args.tokens, args.itl, r.engine_addr
            );
            r
        } else {
            let r = server::start(&cfg, args.speed, bind(args.listen).await?, Some(bind(args.gpu_listen).await?)).await?;
            say!(
                "strata sim: {} serving {} on {} GPU(s), scenario {}, speed {}x, seed {}",
                cfg.engine.name(),
                cfg.model_name(),
                cfg.gpu_count(),
                cfg.scenario,
                args.speed,
                cfg.seed
            );
            say!("engine listening on http://{}  (API and /metrics)", r.engine_addr);
            if let Some(g) = r.gpu_addr {
                say!("gpu listening on http://{g}/metrics  (DCGM exporter)");
            }
            say!("switch scenario: curl -d '{{\"scenario\":\"cache-thrash\"}}' http://{}/sim/scenario", r.engine_addr);
            r
        };
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        stop_signal().await;
        eprintln!("strata sim: stopping");
        running.shutdown().await;
        Ok::<_, Box<dyn std::error::Error>>(ExitCode::SUCCESS)
    })
}

async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn run_virtual(
    cfg: &SimConfig,
    duration: Duration,
    every: Duration,
    out: Option<&std::path::Path>,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let mut run = VirtualRun::new(cfg, duration.as_secs_f64(), every.as_secs_f64());
    let mut n = 0;
    if let Some(dir) = out {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    for s in run.by_ref() {
        n += 1;
        if let Some(dir) = out {
            std::fs::write(
                dir.join(format!("engine-{:010}.prom", s.t_ms)),
                &s.engine_body,
            )?;
            std::fs::write(dir.join(format!("gpu-{:010}.prom", s.t_ms)), &s.gpu_body)?;
        }
    }
    let records = run.take_records();
    if let Some(dir) = out {
        let mut lines = String::new();
        for r in &records {
            lines.push_str(
                &serde_json::json!({
                    "id": r.id, "arrival_s": r.arrival, "prompt_tokens": r.prompt_tokens,
                    "completion_tokens": r.completion_tokens, "max_tokens": r.max_tokens,
                    "finish_reason": r.finish_reason.as_str(), "queue_s": r.queue_s,
                    "ttft_s": r.ttft_s, "client_ttft_s": r.client_ttft_s, "e2e_s": r.e2e_s,
                    "preemptions": r.preemptions,
                })
                .to_string(),
            );
            lines.push('\n');
        }
        std::fs::write(dir.join("requests.jsonl"), lines)?;
    }
    println!(
        "strata sim: {} of {} ({}), scenario {}: {n} scrapes, {} finished requests{}",
        humantime::format_duration(duration),
        cfg.engine.name(),
        cfg.model_name(),
        cfg.scenario,
        records.len(),
        out.map(|d| format!(", written to {}", d.display()))
            .unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}
