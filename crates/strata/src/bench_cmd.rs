//! `strata bench`: load an LLM server and report what its clients feel (TTFT, ITL, TPOT,
//! E2E, throughput, goodput), with the definitions of `docs/latency-definitions.md`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bench::client::{Api, Client, ClientConfig};
use bench::gateway::{self, Comparison, GatewayTtfts};
use bench::measure::Outcome;
use bench::progress::Progress;
use bench::report::{Slo, StepReport};
use bench::run::{Driver, Limits};
use bench::shape::{Shape, parse_sweep};
use bench::workload::{LengthDist, Prompts, Workload, parse_prompts};
use clap::{Args, ValueEnum};
use serde_json::json;
use tokio::sync::watch;

use crate::cli::parse_duration;

const EXAMPLES: &str = "\
Examples:
  strata bench --url http://127.0.0.1:8000 --concurrency 8 --requests 200
  strata bench --url http://127.0.0.1:8000 --rate 20 --burstiness 0.5 --duration 1m --slo chat
  strata bench --url http://127.0.0.1:8000 --rate 100 --max-concurrency 32 --requests 1000
  strata bench --url http://127.0.0.1:8000 --sweep concurrency:1,4,16,64 --requests 200 --json
  strata bench --url http://127.0.0.1:3000 --api tgi --prompts prompts.jsonl --output-tokens uniform:64-256
  strata bench --url http://gateway:8080 --tenant team-a --header 'authorization: Bearer KEY'
  strata bench --url http://127.0.0.1:8080 --gateway-api http://127.0.0.1:9464 --requests 500
  strata bench --url http://127.0.0.1:8080 --gateway-log gateway.log --json

Definitions: TTFT = request sent -> first chunk with output text; ITL = every gap between
chunks with output text; TPOT = (E2E - TTFT) / (output tokens - 1); E2E = request sent ->
end of body. Failed requests are counted by class and never enter a latency. Every request
carries a unique x-request-id; with --gateway-api or --gateway-log the report shows the
gateway's TTFT of the same requests beside the client's, and their per-request difference.
Ctrl-C stops and prints the partial report.

Exit status: 0 when requests completed, 1 when a step completed none, 2 for usage errors.";

/// `strata bench`
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct BenchArgs {
    /// The server: base URL (http://host:8000) or the full endpoint URL.
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// Wire API.
    #[arg(long, value_enum, default_value = "openai-chat")]
    pub api: ApiArg,
    /// Model to ask for (default: the first of GET /v1/models).
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// Keep N requests in flight (default 1 without --rate or --sweep).
    #[arg(long, value_name = "N", conflicts_with_all = ["rate", "sweep"], value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: Option<u32>,
    /// Start requests at R per second (Poisson arrivals), whatever is in flight.
    #[arg(long, value_name = "R", conflicts_with = "sweep", value_parser = parse_positive)]
    pub rate: Option<f64>,
    /// With --rate or a rate sweep: at most N requests in flight; an arrival beyond it waits
    /// for a slot and its clock starts when it is sent (vLLM benchmark's --max-concurrency).
    #[arg(long, value_name = "N", conflicts_with = "concurrency", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrency: Option<u32>,
    /// Gamma shape of the gaps between arrivals: 1 Poisson, < 1 burstier, > 1 smoother.
    #[arg(long, value_name = "B", default_value_t = 1.0, value_parser = parse_positive)]
    pub burstiness: f64,
    /// One run per value: concurrency:1,4,16 or rate:2,4,8 (bounds apply to each).
    #[arg(long, value_name = "KIND:LIST")]
    pub sweep: Option<String>,
    /// Requests per run (default 100 when --duration is not given either).
    #[arg(long, value_name = "N")]
    pub requests: Option<u64>,
    /// Stop issuing requests after this long (requests in flight finish).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// With a concurrency, spread the workers' first requests over this long (worker k of N
    /// starts ramp × k / N in), so streams of the same length do not emit their tokens in
    /// lockstep; 0s starts them all at once. The default spans one inter-token gap of
    /// common engines (10–100 ms).
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = parse_ramp)]
    pub ramp: Duration,
    /// Prompt length in tokens: N, uniform:LO-HI or normal:MEAN,SD (synthetic prompts).
    #[arg(long, value_name = "DIST", default_value = "128")]
    pub prompt_tokens: LengthDist,
    /// Output tokens asked for: N, uniform:LO-HI or normal:MEAN,SD.
    #[arg(long, value_name = "DIST", default_value = "128")]
    pub output_tokens: LengthDist,
    /// JSONL prompts, one {"prompt": "...", "max_tokens": N} per line (max_tokens optional).
    #[arg(long, value_name = "FILE")]
    pub prompts: Option<PathBuf>,
    /// Ask vLLM/SGLang to ignore end-of-sequence so each request produces its output length.
    #[arg(long)]
    pub ignore_eos: bool,
    /// Tenant sent in --tenant-header on every request.
    #[arg(long, value_name = "NAME")]
    pub tenant: Option<String>,
    /// Header that carries --tenant (`x-tenant` is the header the gateway's example config
    /// reads: `[gateway.tenant] header`).
    #[arg(long, value_name = "NAME", default_value = "x-tenant")]
    pub tenant_header: String,
    /// Extra header on every request, `NAME: VALUE` (repeatable).
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Requests sent before each run and left out of its report (open connections, warm
    /// caches).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub warmup: u64,
    /// Seed for prompts, output lengths and arrivals (same seed, same requests).
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub seed: u64,
    /// Goodput objective: chat (TTFT 1 s, ITL p95 80 ms), rag (3 s, 50 ms), code (500 ms,
    /// 30 ms), or ttft=DURATION,itl=DURATION.
    #[arg(long, value_name = "PROFILE")]
    pub slo: Option<Slo>,
    /// Per-request limit, from sending to the end of the body.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// After each run, fetch the gateway's TTFT of the same requests from `strata up` at
    /// URL (GET /api/v1/requests/{x-request-id}) and show it beside the client's.
    #[arg(long, value_name = "URL", conflicts_with = "gateway_log")]
    pub gateway_api: Option<String>,
    /// After each run, read the gateway's TTFT of the same requests from its JSON request
    /// log (`strata gateway --log FILE`) and show it beside the client's.
    #[arg(long, value_name = "FILE")]
    pub gateway_log: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// `--api`
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApiArg {
    /// POST /v1/chat/completions (vLLM, SGLang, llama.cpp, TGI Messages API).
    OpenaiChat,
    /// POST /v1/completions.
    OpenaiCompletions,
    /// TGI's POST /generate_stream.
    Tgi,
}

/// `--ramp`: any duration, zero included (all workers at once).
fn parse_ramp(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (write e.g. 0s, 100ms, 1s)"))
}

fn parse_positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err("must be a number greater than zero".into()),
    }
}

impl BenchArgs {
    fn shapes(&self) -> Result<Vec<Shape>, String> {
        if let Some(s) = &self.sweep {
            return parse_sweep(s, self.burstiness, self.max_concurrency)
                .map_err(|e| format!("--sweep {e}"));
        }
        Ok(vec![match self.rate {
            Some(rate) => Shape::Rate {
                rate,
                burstiness: self.burstiness,
                max_concurrency: self.max_concurrency,
            },
            None => Shape::Concurrency {
                n: self.concurrency.unwrap_or(1),
            },
        }])
    }

    fn client_config(&self) -> Result<ClientConfig, String> {
        let mut headers = Vec::new();
        for h in &self.headers {
            let (n, v) = h
                .split_once(':')
                .ok_or_else(|| format!("--header `{h}`: write NAME: VALUE"))?;
            headers.push((n.to_string(), v.to_string()));
        }
        if let Some(t) = &self.tenant {
            headers.push((self.tenant_header.clone(), t.clone()));
        }
        Ok(ClientConfig {
            url: self.url.clone(),
            api: match self.api {
                ApiArg::OpenaiChat => Api::OpenAiChat,
                ApiArg::OpenaiCompletions => Api::OpenAiCompletions,
                ApiArg::Tgi => Api::Tgi,
            },
            model: self.model.clone(),
            headers,
            timeout: self.timeout,
            ignore_eos: self.ignore_eos,
        })
    }

    fn workload(&self) -> Result<Workload, String> {
        let prompts = match &self.prompts {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read --prompts {}: {e}", path.display()))?;
                Prompts::File(Arc::new(parse_prompts(&text, &path.display().to_string())?))
            }
            None => Prompts::Synthetic(self.prompt_tokens),
        };
        Ok(Workload::new(prompts, self.output_tokens, self.seed))
    }
}

/// Runs `strata bench`.
pub fn run(args: BenchArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    Ok(run_bench(args)?)
}

fn run_bench(args: BenchArgs) -> Result<ExitCode, String> {
    let shapes = args.shapes()?;
    let workload = Arc::new(args.workload()?);
    let cfg = args.client_config()?;
    let limits = Limits {
        requests: args.requests.or(if args.duration.is_none() {
            Some(100)
        } else {
            None
        }),
        duration: args.duration,
    };
    let rt = tokio::runtime::Runtime::new()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    rt.block_on(async move {
        let mut client = Client::new(&cfg).map_err(|e| e.to_string())?;
        client.resolve_model().await.map_err(|e| e.to_string())?;
        let (stop_tx, stop) = watch::channel(false);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = stop_tx.send(true);
            }
        });
        let run_id = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let driver = Driver {
            client: Arc::new(client),
            workload,
            seed: args.seed,
            id_prefix: format!("bench-{run_id:x}").into(),
            stop: stop.clone(),
        };
        let gateway = GatewaySource::of(&args)?;
        let mut reports = Vec::new();
        let mut next = 0u64;
        for shape in shapes {
            if args.warmup > 0 {
                let warm = Shape::Concurrency {
                    n: u32::try_from(args.warmup).unwrap_or(u32::MAX).min(64),
                };
                let w = Limits {
                    requests: Some(args.warmup),
                    duration: None,
                };
                let r = driver
                    .step_ramped(warm, w, args.ramp, next, &mut |_| {})
                    .await;
                next += r.outcomes.len() as u64 + r.cancelled;
            }
            let mut progress = Progress::new(&shape.to_string(), limits.requests, !args.quiet);
            let r = driver
                .step_ramped(shape, limits, args.ramp, next, &mut |o| progress.observe(o))
                .await;
            progress.finish();
            next += r.outcomes.len() as u64 + r.cancelled;
            let mut rep = StepReport::new(&r, args.slo.as_ref());
            if let Some(source) = &gateway {
                let ttfts = source.ttfts(&r.outcomes).await?;
                rep.gateway = Some(Comparison::new(&r.outcomes, &ttfts, &source.name()));
            }
            if !args.json {
                println!("{}", rep.table());
            }
            reports.push(rep);
            if *stop.borrow() {
                break;
            }
        }
        if args.json {
            let out = json!({
                "url": driver.client.endpoint(),
                "api": cfg.api,
                "model": driver.client.model(),
                "steps": reports,
            });
            println!("{out:#}");
        }
        Ok(if reports.iter().any(|r| r.completed == 0) {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        })
    })
}

/// Where the gateway's times of the same requests come from.
enum GatewaySource {
    /// `strata up`'s request API.
    Api { url: String, http: reqwest::Client },
    /// The gateway's JSON request log.
    Log(PathBuf),
}

/// How long to wait for the gateway's records of requests that just finished (its log
/// and its recorder write at request end, asynchronously).
const GATEWAY_SETTLE: Duration = Duration::from_secs(3);

impl GatewaySource {
    fn of(args: &BenchArgs) -> Result<Option<GatewaySource>, String> {
        if let Some(url) = &args.gateway_api {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
            return Ok(Some(GatewaySource::Api {
                url: url.clone(),
                http,
            }));
        }
        Ok(args.gateway_log.clone().map(GatewaySource::Log))
    }

    fn name(&self) -> String {
        match self {
            GatewaySource::Api { url, .. } => url.clone(),
            GatewaySource::Log(path) => path.display().to_string(),
        }
    }

    /// The gateway TTFTs of the successful `outcomes`, waiting up to [`GATEWAY_SETTLE`] for
    /// records still being written.
    async fn ttfts(&self, outcomes: &[Outcome]) -> Result<GatewayTtfts, String> {
        let mut want: Vec<String> = outcomes
            .iter()
            .filter(|o| o.result.is_ok())
            .map(|o| o.request_id.clone())
            .collect();
        let mut got = GatewayTtfts::new();
        let deadline = tokio::time::Instant::now() + GATEWAY_SETTLE;
        loop {
            match self {
                GatewaySource::Api { url, http } => {
                    got.extend(gateway::fetch(http, url, want.clone()).await?);
                }
                GatewaySource::Log(path) => {
                    let text = tokio::fs::read_to_string(path).await.map_err(|e| {
                        format!(
                            "cannot read --gateway-log {}: {e} (pass the file given to `strata gateway --log`)",
                            path.display()
                        )
                    })?;
                    gateway::parse_log(&text, &mut got);
                }
            }
            want.retain(|id| !got.contains_key(id));
            if want.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(got);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}
