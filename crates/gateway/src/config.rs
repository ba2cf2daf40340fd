//! The gateway's settings as plain structs. The binary fills them from flags and the
//! `[gateway]` section of `strata.toml`; this crate reads no files or environment for them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Default of [`GatewayConfig::max_tenants`].
pub const DEFAULT_MAX_TENANTS: usize = 100;

/// Everything the gateway needs to run.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayConfig {
    /// Where clients connect (HTTP/1.1 and h2c).
    pub listen: SocketAddr,
    /// Where the gateway's own `/metrics` and `/health` are served (none: not served).
    pub admin: Option<SocketAddr>,
    /// The engines behind the gateway.
    pub upstreams: Vec<UpstreamConfig>,
    /// Add `stream_options.include_usage` upstream when a streaming client did not ask for
    /// usage, and remove exactly that usage-only chunk from what the client receives.
    pub inject_usage: bool,
    /// Tenant resolution.
    pub tenant: TenantConfig,
    /// Body limit and timeouts.
    pub limits: Limits,
    /// Quality signals.
    pub quality: QualityConfig,
    /// Span export and tail sampling.
    pub tracing: TracingConfig,
    /// Request log lines.
    pub log: LogConfig,
    /// Opt-in prompt/completion capture through the PII scrubber.
    pub capture: Option<CaptureConfig>,
    /// Most distinct (model, tenant, upstream) label sets; later ones are counted under
    /// `model="other"` so a client cannot explode the series count.
    pub max_series: usize,
    /// Most distinct tenants with their own series; requests of later tenants are counted
    /// under `tenant="other"` (and in `strata_gateway_tenant_overflow_total`), so a client
    /// inventing tenant header values cannot grow `/metrics` or memory without bound.
    pub max_tenants: usize,
    /// Token prices per model: each request's cost goes in its log line.
    pub prices: Prices,
}

impl GatewayConfig {
    /// Defaults for everything but the upstreams.
    pub fn new(listen: SocketAddr, upstreams: Vec<UpstreamConfig>) -> GatewayConfig {
        GatewayConfig {
            listen,
            admin: None,
            upstreams,
            inject_usage: true,
            tenant: TenantConfig::default(),
            limits: Limits::default(),
            quality: QualityConfig::default(),
            tracing: TracingConfig::default(),
            log: LogConfig::default(),
            capture: None,
            max_series: 2000,
            max_tenants: DEFAULT_MAX_TENANTS,
            prices: Prices::default(),
        }
    }
}

/// Prices of one model's tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenPrice {
    /// Price of one million prompt tokens.
    pub prompt_per_million: f64,
    /// Price of one million generated tokens.
    pub generation_per_million: f64,
}

/// Token prices per model (from `[cost]` in `strata.toml`); empty: requests are not priced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prices {
    /// Currency code of every price (`EUR`, `USD`).
    pub currency: std::sync::Arc<str>,
    /// Model name (as clients ask for it) → its prices.
    pub models: HashMap<String, TokenPrice>,
}

impl Prices {
    /// What `prompt` and `generation` tokens of `model` cost; none when the model has no
    /// price, or its prompt tokens are priced but were not reported.
    pub fn cost(&self, model: &str, prompt: Option<u64>, generation: u64) -> Option<f64> {
        let p = self.models.get(model)?;
        let prompt = match prompt {
            Some(n) => n as f64 * p.prompt_per_million,
            None if p.prompt_per_million == 0.0 => 0.0,
            None => return None,
        };
        Some((prompt + generation as f64 * p.generation_per_million) / 1e6)
    }
}

/// One engine behind the gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamConfig {
    /// Name used in labels, logs, spans and error messages (`vllm-a`).
    pub name: String,
    /// Base URL (`http://10.0.0.5:8000`); request paths are appended to it.
    pub url: String,
    /// Models it serves; empty: any model no other upstream claims.
    pub models: Vec<String>,
    /// Engine kind, reported as `gen_ai.provider.name` / `gen_ai.system` (`vllm`, `tgi`,
    /// `sglang`, `llamacpp`).
    pub engine: String,
    /// GPUs it runs on (UUIDs or indexes), put in logs (`gpu_id`) and spans (`gpu_uuid`).
    pub gpus: Vec<String>,
}

impl UpstreamConfig {
    /// An upstream serving any model, engine unknown (`openai`-compatible).
    pub fn new(name: &str, url: &str) -> UpstreamConfig {
        UpstreamConfig {
            name: name.to_string(),
            url: url.to_string(),
            models: Vec::new(),
            engine: "openai_compatible".to_string(),
            gpus: Vec::new(),
        }
    }
}

/// Who the request is for.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantConfig {
    /// Header carrying the tenant (used when no API keys are configured).
    pub header: Option<String>,
    /// API key → tenant. When not empty, a request without a known key gets 401.
    pub api_keys: HashMap<String, String>,
    /// Tenant of requests that name none.
    pub default: String,
}

impl Default for TenantConfig {
    fn default() -> TenantConfig {
        TenantConfig {
            header: None,
            api_keys: HashMap::new(),
            default: "default".to_string(),
        }
    }
}

/// Request size and time limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body accepted (413 above).
    pub max_body_bytes: usize,
    /// Time a client has to send the request headers: from the connection's start (a
    /// client that never sends a byte is closed after it) and, on keep-alive connections,
    /// from the end of the previous response (the keep-alive idle timeout).
    pub header_timeout: Duration,
    /// Time a client has to send the request body.
    pub body_timeout: Duration,
    /// Time to open a TCP connection to an upstream.
    pub connect_timeout: Duration,
    /// Time an upstream has to send response headers to a streaming request.
    pub first_byte_timeout: Duration,
    /// Time an upstream has to send the whole response to a non-streaming request.
    pub response_timeout: Duration,
    /// Longest silence between two chunks of a streaming response.
    pub idle_timeout: Duration,
    /// Most client connections open at once; above it a new connection is answered `503`
    /// and closed (counted in `strata_gateway_connections_rejected_total`), so idle or
    /// slow clients cannot exhaust the process's file descriptors.
    pub max_connections: usize,
    /// Listen backlog of the client address (the kernel caps it at `net.core.somaxconn`).
    pub listen_backlog: u32,
    /// How long an idle upstream connection stays in the pool. Below the engines'
    /// keep-alive (uvicorn and llama.cpp: 5 s) so the pool does not hand out connections
    /// the engine is about to close.
    pub upstream_pool_idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_body_bytes: 8 << 20,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            first_byte_timeout: Duration::from_secs(30),
            response_timeout: Duration::from_secs(600),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
            listen_backlog: strata_core::net::LISTEN_BACKLOG,
            upstream_pool_idle_timeout: Duration::from_secs(4),
        }
    }
}

/// Quality signals taken from the response text.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityConfig {
    /// Phrases (matched case-insensitively in the first 512 bytes of the response) that
    /// mark a refusal.
    pub refusal_phrases: Vec<String>,
    /// Responses shorter than this many characters (trimmed) count as empty/very short.
    pub short_response_chars: usize,
}

impl Default for QualityConfig {
    fn default() -> QualityConfig {
        QualityConfig {
            refusal_phrases: DEFAULT_REFUSALS.iter().map(|s| s.to_string()).collect(),
            short_response_chars: 10,
        }
    }
}

/// The seeds' refusal phrase list.
pub const DEFAULT_REFUSALS: &[&str] = &[
    "i cannot",
    "i can't",
    "i'm unable to",
    "i am unable to",
    "i won't",
    "i will not",
    "as an ai",
    "as a language model",
];

/// OTLP protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// HTTP/protobuf: `POST {endpoint}` (give the full `/v1/traces` URL).
    HttpProtobuf,
    /// gRPC over h2c: `TraceService/Export` at `{endpoint}`.
    Grpc,
}

/// Span export and tail sampling.
#[derive(Debug, Clone, PartialEq)]
pub struct TracingConfig {
    /// OTLP endpoint; none: spans are not exported (the sampler still decides exemplars).
    pub endpoint: Option<String>,
    /// HTTP/protobuf or gRPC.
    pub protocol: OtlpProtocol,
    /// `service.name` resource attribute.
    pub service_name: String,
    /// Bound of the export queue, in traces; a full queue drops (counted), never waits.
    pub queue_traces: usize,
    /// Timeout of one export call.
    pub export_timeout: Duration,
    /// The tail sampler's policy.
    pub sampling: SamplingPolicy,
}

impl Default for TracingConfig {
    fn default() -> TracingConfig {
        TracingConfig {
            endpoint: None,
            protocol: OtlpProtocol::HttpProtobuf,
            service_name: "strata-gateway".to_string(),
            queue_traces: 2048,
            export_timeout: Duration::from_secs(5),
            sampling: SamplingPolicy::default(),
        }
    }
}

/// Which traces are kept, decided when the request ends (the seed's policy by default).
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingPolicy {
    /// Keep every request that ended with an error class.
    pub errors: bool,
    /// Keep every request whose TTFT is at least this (none: off).
    pub slow_ttft: Option<Duration>,
    /// Keep every request of these tenants.
    pub tenants: Vec<String>,
    /// Keep this percentage of the rest (decided from the trace id, so every hop that
    /// uses the same rule agrees).
    pub baseline_percent: f64,
}

impl Default for SamplingPolicy {
    fn default() -> SamplingPolicy {
        SamplingPolicy {
            errors: true,
            slow_ttft: Some(Duration::from_secs(2)),
            tenants: Vec::new(),
            baseline_percent: 5.0,
        }
    }
}

/// Where request log lines go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LogOutput {
    /// Standard output.
    #[default]
    Stdout,
    /// A file rotated by size.
    File {
        /// The file.
        path: PathBuf,
        /// Rotate when it reaches this size.
        max_bytes: u64,
        /// Rotated files kept (`FILE.1` … `FILE.N`).
        keep: usize,
    },
    /// No request log.
    Off,
}

/// Request log settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogConfig {
    /// Where the lines go.
    pub output: LogOutput,
}

/// Opt-in capture of prompts and completions, scrubbed, into their own files.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureConfig {
    /// Folder for `capture-YYYYMMDDHH.jsonl` files.
    pub dir: PathBuf,
    /// Files older than this are deleted.
    pub retention: Duration,
    /// Extra regular expressions whose matches are replaced by `[REDACTED]`.
    pub extra_patterns: Vec<String>,
    /// Most bytes of prompt and of completion kept per request.
    pub max_bytes: usize,
}
