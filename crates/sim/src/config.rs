//! What a simulator run is: engine dialect, model profile, GPUs, scenario, seed, limits.

use crate::scenario::Scenario;
use crate::scheduler::Profile;

/// The engine whose wire format and metrics the simulator speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EngineKind {
    /// vLLM (OpenAI server, `vllm:*` metrics).
    Vllm,
    /// Hugging Face TGI (`/generate`, OpenAI Messages API, `tgi_*` metrics).
    Tgi,
    /// SGLang (OpenAI server, `sglang:*` metrics).
    Sglang,
    /// llama.cpp server with `--metrics` (`llamacpp:*`).
    Llamacpp,
}

impl EngineKind {
    /// Every engine.
    pub const ALL: [EngineKind; 4] = [
        EngineKind::Vllm,
        EngineKind::Tgi,
        EngineKind::Sglang,
        EngineKind::Llamacpp,
    ];

    /// The `--engine` name.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Vllm => "vllm",
            EngineKind::Tgi => "tgi",
            EngineKind::Sglang => "sglang",
            EngineKind::Llamacpp => "llamacpp",
        }
    }

    /// Parses an `--engine` name.
    pub fn parse(s: &str) -> Option<EngineKind> {
        EngineKind::ALL.into_iter().find(|e| e.name() == s)
    }
}

/// Which vLLM metric names to expose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VllmMetrics {
    /// V1 engine names (`vllm:kv_cache_usage_perc`, `vllm:inter_token_latency_seconds`).
    #[default]
    V1,
    /// V0 names (`vllm:gpu_cache_usage_perc`, `vllm:num_requests_swapped`).
    V0,
}

/// A simulator run. Every field has a default ([`SimConfig::new`]); `None` limits take the
/// profile's or the engine's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Dialect.
    pub engine: EngineKind,
    /// vLLM metric generation.
    pub vllm_metrics: VllmMetrics,
    /// Model and GPU profile.
    pub profile: &'static Profile,
    /// Simulated GPUs (the engine shards the model over all of them); `None`: the
    /// profile's default, raised to what the scenario needs.
    pub gpus: Option<u32>,
    /// Starting scenario.
    pub scenario: Scenario,
    /// Seed for every random draw.
    pub seed: u64,
    /// Generate the scenario's own load (off: only requests that arrive over HTTP).
    pub load: bool,
    /// Force this share of generated requests to end on `max_tokens`.
    pub truncation: Option<f64>,
    /// The own load's client read timeout, s: a generated request that waits this long
    /// without a token is cancelled by its client, as real clients (an SDK's read timeout,
    /// a user closing the tab) do, so a backlog drains once the engine keeps up again.
    /// `None`: clients wait forever.
    pub client_timeout_s: Option<f64>,
    /// Served model name override.
    pub model: Option<String>,
    /// `max_num_seqs` override (llama.cpp: slots).
    pub max_num_seqs: Option<u32>,
    /// `max_num_batched_tokens` override.
    pub max_num_batched_tokens: Option<u32>,
    /// KV blocks override.
    pub num_blocks: Option<u32>,
    /// Context window override.
    pub max_model_len: Option<u32>,
    /// Share of each prompt found in the prefix cache (0 disables prefix caching).
    pub prefix_cache_hit_rate: f64,
    /// TGI `max_concurrent_requests`: requests in flight before 429.
    pub max_concurrent_requests: u32,
    /// `Hostname` label on GPU series.
    pub hostname: String,
    /// Kubernetes-style pod the engine runs in (labels `pod`, `namespace`, `container` on
    /// its GPUs' series, as the DCGM exporter adds them).
    pub pod: String,
    /// How hard the quality and NVLink-contention faults hit: 1 as the scenario describes,
    /// 0 not at all, in between proportionally (near misses).
    pub fault_scale: f64,
}

/// The own load's default client read timeout, s (the 60-120 s range of HTTP clients and
/// SDKs in front of inference servers).
pub const DEFAULT_CLIENT_TIMEOUT_S: f64 = 90.0;

impl SimConfig {
    /// Defaults for `engine`: healthy, seed 1, the default profile, own load on.
    pub fn new(engine: EngineKind) -> SimConfig {
        SimConfig {
            engine,
            vllm_metrics: VllmMetrics::V1,
            profile: Profile::default_profile(),
            gpus: None,
            scenario: Scenario::Healthy,
            seed: 1,
            load: true,
            truncation: None,
            client_timeout_s: Some(DEFAULT_CLIENT_TIMEOUT_S),
            model: None,
            max_num_seqs: None,
            max_num_batched_tokens: None,
            num_blocks: None,
            max_model_len: None,
            prefix_cache_hit_rate: 0.3,
            max_concurrent_requests: 128,
            hostname: "strata-sim".to_string(),
            pod: format!("{}-sim-0", engine.name()),
            fault_scale: 1.0,
        }
    }

    /// The served model name.
    pub fn model_name(&self) -> &str {
        self.model.as_deref().unwrap_or(self.profile.model)
    }

    /// GPUs the run simulates.
    pub fn gpu_count(&self) -> u32 {
        self.gpus
            .unwrap_or(self.profile.default_gpus)
            .max(self.scenario.effects().min_gpus)
            .max(1)
    }

    /// Context window.
    pub fn context(&self) -> u32 {
        self.max_model_len.unwrap_or(self.profile.max_model_len)
    }

    /// Running-batch limit (llama.cpp: 4 slots by default).
    pub fn batch_limit(&self) -> u32 {
        self.max_num_seqs.unwrap_or(match self.engine {
            EngineKind::Llamacpp => 4,
            _ => self.profile.max_num_seqs,
        })
    }

    /// Tokens per step (llama.cpp: `n_batch` 2048; TGI: `max_batch_prefill_tokens` 4096).
    pub fn step_tokens(&self) -> u32 {
        self.max_num_batched_tokens.unwrap_or(match self.engine {
            EngineKind::Llamacpp => 2048,
            EngineKind::Tgi => 4096,
            _ => self.profile.max_num_batched_tokens,
        })
    }

    /// KV blocks for the GPU count.
    pub fn blocks(&self) -> u32 {
        self.num_blocks
            .unwrap_or_else(|| self.profile.blocks_for_gpus(self.gpu_count()))
    }
}
