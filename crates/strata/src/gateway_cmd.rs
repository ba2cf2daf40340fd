//! `strata gateway`: the streaming proxy in front of one or more engines, from flags and
//! the `[gateway]` section of `strata.toml` (flags win). Ctrl-C / SIGTERM stops accepting,
//! lets open streams finish (up to 30 s) and flushes the span queue.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use gateway::{GatewayConfig, LogOutput, OtlpProtocol, UpstreamConfig};

use ::config;

/// `strata gateway`
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct GatewayArgs {
    /// Engine base URL, optionally named: `vllm-a=http://10.0.0.5:8000`. Repeat for several
    /// engines (they then share every model; map models to upstreams in [gateway] of
    /// strata.toml). Replaces the config's upstreams.
    #[arg(long = "upstream", value_name = "[NAME=]URL")]
    pub upstreams: Vec<String>,
    /// Address clients connect to (HTTP/1.1 and h2c). Default: [gateway] listen, else
    /// 127.0.0.1:8080.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Address of the gateway's own /metrics and /health (every path on --listen goes
    /// upstream). Default: [gateway] admin, else 127.0.0.1:9465.
    #[arg(long, value_name = "ADDR")]
    pub admin: Option<SocketAddr>,
    /// Engine kind of the --upstream URLs, reported in spans as gen_ai.provider.name.
    #[arg(long, value_enum)]
    pub engine: Option<EngineArg>,
    /// OTLP endpoint for kept traces: http://HOST:4318/v1/traces (http) or
    /// http://HOST:4317 (grpc).
    #[arg(long, value_name = "URL")]
    pub otlp: Option<String>,
    /// OTLP protocol.
    #[arg(long, value_enum)]
    pub otlp_protocol: Option<ProtocolArg>,
    /// Baseline share of traces kept besides errors, slow TTFT and listed tenants (0-100).
    #[arg(long, value_name = "PERCENT")]
    pub sample_percent: Option<f64>,
    /// Request log: `stdout`, `off` or a file (rotated at 100 MiB, 5 kept).
    #[arg(long, value_name = "stdout|off|FILE")]
    pub log: Option<String>,
    /// Header that names the tenant (when no API keys are configured).
    #[arg(long, value_name = "NAME")]
    pub tenant_header: Option<String>,
    /// Worker threads. 1 (the default) runs everything on one thread: a proxy spends its
    /// time in the kernel, and one thread saves the cross-thread wake-ups (measured: less
    /// CPU per token and lower latency up to hundreds of streams on 2 cores).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: u16,
}

const AFTER_HELP: &str = "\
Examples:
  strata gateway --upstream http://127.0.0.1:8000
  strata gateway --upstream a=http://10.0.0.5:8000 --upstream b=http://10.0.0.6:8000 --engine vllm
  strata gateway --upstream http://127.0.0.1:8000 --otlp http://127.0.0.1:4318/v1/traces

Then point clients at http://127.0.0.1:8080/v1 and scrape http://127.0.0.1:9465/metrics.";

/// `--engine`
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineArg {
    /// vLLM
    Vllm,
    /// Text Generation Inference
    Tgi,
    /// SGLang
    Sglang,
    /// llama.cpp server
    Llamacpp,
}

/// `--otlp-protocol`
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProtocolArg {
    /// HTTP/protobuf
    Http,
    /// gRPC (plaintext h2c)
    Grpc,
}

/// The gateway settings: the config file's [gateway] section overlaid with the flags.
pub fn settings(flag: Option<&Path>, args: &GatewayArgs) -> Result<GatewayConfig, String> {
    let mut cfg = match config::locate(flag) {
        Some(path) => {
            let (c, text) = config::load(&path).map_err(|e| e.to_string())?;
            c.gateway_settings(&path, &text)
                .map_err(|e| e.to_string())?
        }
        None => config::gateway::GatewaySection::default()
            .resolve(Path::new("strata.toml"), "")
            .map_err(|e| e.to_string())?,
    };
    if !args.upstreams.is_empty() {
        let engine = args.engine.map_or("openai_compatible", |e| match e {
            EngineArg::Vllm => "vllm",
            EngineArg::Tgi => "tgi",
            EngineArg::Sglang => "sglang",
            EngineArg::Llamacpp => "llamacpp",
        });
        cfg.upstreams = args
            .upstreams
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let (name, url) = match u.split_once('=') {
                    Some((n, url)) if !n.contains("://") => (n.to_string(), url.to_string()),
                    _ => (format!("upstream-{}", i + 1), u.clone()),
                };
                UpstreamConfig {
                    engine: engine.to_string(),
                    ..UpstreamConfig::new(&name, &url)
                }
            })
            .collect();
    }
    if cfg.upstreams.is_empty() {
        return Err(
            "no upstream: give --upstream URL or [[gateway.upstream]] in strata.toml".into(),
        );
    }
    if let Some(a) = args.listen {
        cfg.listen = a;
    }
    if let Some(a) = args.admin {
        cfg.admin = Some(a);
    }
    if let Some(o) = &args.otlp {
        cfg.tracing.endpoint = Some(o.clone());
    }
    if let Some(p) = args.otlp_protocol {
        cfg.tracing.protocol = match p {
            ProtocolArg::Http => OtlpProtocol::HttpProtobuf,
            ProtocolArg::Grpc => OtlpProtocol::Grpc,
        };
    }
    if let Some(p) = args.sample_percent {
        if !(0.0..=100.0).contains(&p) {
            return Err(format!("--sample-percent {p} is outside 0..100"));
        }
        cfg.tracing.sampling.baseline_percent = p;
    }
    if let Some(l) = &args.log {
        cfg.log.output = match l.as_str() {
            "stdout" => LogOutput::Stdout,
            "off" => LogOutput::Off,
            file => LogOutput::File {
                path: PathBuf::from(file),
                max_bytes: 100 << 20,
                keep: 5,
            },
        };
    }
    if let Some(h) = &args.tenant_header {
        cfg.tenant.header = Some(h.clone());
    }
    Ok(cfg)
}

/// Runs `strata gateway` until Ctrl-C or SIGTERM.
pub fn run(flag: Option<&Path>, args: GatewayArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let cfg = settings(flag, &args)?;
    sources::scrape::install_crypto_provider();
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads as usize)
            .enable_all()
            .build()
    }
    .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async move {
        let ups: Vec<String> = cfg
            .upstreams
            .iter()
            .map(|u| format!("{}={}", u.name, u.url))
            .collect();
        let gw = gateway::start(cfg).await?;
        // On stderr: stdout carries the JSON request log by default.
        eprintln!(
            "gateway listening on http://{} (upstreams: {})",
            gw.addr,
            ups.join(", ")
        );
        if let Some(a) = gw.admin_addr {
            eprintln!("admin listening on http://{a} (/metrics, /health)");
        }
        shutdown_signal().await;
        eprintln!("strata gateway: stopping (open streams get up to 30 s)");
        gw.shutdown(Duration::from_secs(30)).await;
        Ok::<_, String>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}

/// The gateway inside `strata up`: its settings when the config file's `[gateway]` section
/// lists upstreams (none otherwise).
pub fn embedded_settings(
    c: &::config::Config,
    path: &Path,
    text: &str,
) -> Result<Option<GatewayConfig>, String> {
    let g = c.gateway_settings(path, text).map_err(|e| e.to_string())?;
    if g.upstreams.is_empty()
        && text
            .parse::<toml::Table>()
            .is_ok_and(|t| t.contains_key("gateway"))
    {
        eprintln!(
            "warning: {}: [gateway] lists no [[gateway.upstream]]: the embedded gateway stays off (add an upstream, or remove the section)",
            path.display()
        );
    }
    Ok((!g.upstreams.is_empty()).then_some(g))
}
