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

/// A release whose `/metrics` the simulator reproduces (`strata sim --engine-version`): the
/// metric names and label sets that release registers, as read from its source. Without one
/// the simulator writes its long-standing mix of the current names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EngineVersion {
    /// vLLM 0.8.5 with the V0 engine (`VLLM_USE_V1=0`): no `engine` label.
    Vllm085V0,
    /// vLLM 0.8.5 on V1: `gpu_cache_usage_perc`, prefix caching in blocks, TPOT only.
    Vllm085,
    /// vLLM 0.10.2: the `kv_cache_usage_perc` / `inter_token_latency_seconds` names beside the
    /// old ones.
    Vllm0102,
    /// vLLM 0.14.0: old names gone, `request_time_per_output_token_seconds`,
    /// `finished_reason="error"`.
    Vllm014,
    /// vLLM 0.33.0: admission rejections, waiting by reason, cached prompt tokens,
    /// `finished_reason="repetition"`.
    Vllm033,
    /// SGLang 0.4.10: `engine_type`/`tp_rank`/`pp_rank` on scheduler series,
    /// `total_retracted_reqs`.
    Sglang0410,
    /// SGLang 0.5.4: queue time histogram, `num_retracted_reqs` gauge.
    Sglang054,
    /// SGLang 0.5.23: `moe_ep_rank`/`dp_rank`, `is_streaming`, `cache_source`, the
    /// `num_retracted_requests_total` counter.
    Sglang0523,
    /// TGI 3.3.7: `tgi_batch_max_total_tokens`, `tgi_request_failure{err="generation"}`.
    Tgi337,
    /// llama.cpp before PR #26920: no `prompt_tokens_cached_total`.
    LlamacppBefore26920,
    /// llama.cpp as vendored in llama-cpp-python 0.3.36.
    Llamacpp0336,
}

/// Every release: engine, `--engine-version` name, variant.
const VERSIONS: &[(EngineKind, &str, EngineVersion)] = &[
    (EngineKind::Vllm, "0.8.5-v0", EngineVersion::Vllm085V0),
    (EngineKind::Vllm, "0.8.5", EngineVersion::Vllm085),
    (EngineKind::Vllm, "0.10.2", EngineVersion::Vllm0102),
    (EngineKind::Vllm, "0.14.0", EngineVersion::Vllm014),
    (EngineKind::Vllm, "0.33.0", EngineVersion::Vllm033),
    (EngineKind::Sglang, "0.4.10", EngineVersion::Sglang0410),
    (EngineKind::Sglang, "0.5.4", EngineVersion::Sglang054),
    (EngineKind::Sglang, "0.5.23", EngineVersion::Sglang0523),
    (EngineKind::Tgi, "3.3.7", EngineVersion::Tgi337),
    (
        EngineKind::Llamacpp,
        "before-26920",
        EngineVersion::LlamacppBefore26920,
    ),
    (EngineKind::Llamacpp, "0.3.36", EngineVersion::Llamacpp0336),
];

impl EngineVersion {
    /// The `--engine-version` names known for `engine`, oldest first.
    pub fn names(engine: EngineKind) -> Vec<&'static str> {
        VERSIONS
            .iter()
            .filter(|(e, _, _)| *e == engine)
            .map(|(_, n, _)| *n)
            .collect()
    }

    /// Parses `--engine-version` for `engine`; the error lists the known names.
    pub fn parse(engine: EngineKind, name: &str) -> Result<EngineVersion, String> {
        VERSIONS
            .iter()
            .find(|(e, n, _)| *e == engine && *n == name)
            .map(|(_, _, v)| *v)
            .ok_or_else(|| {
                format!(
                    "no {} release `{name}` is simulated; one of: {}",
                    engine.name(),
                    EngineVersion::names(engine).join(", ")
                )
            })
    }

    /// The engine this release belongs to.
    pub fn engine(self) -> EngineKind {
        VERSIONS
            .iter()
            .find(|(_, _, v)| *v == self)
            .map_or(EngineKind::Vllm, |(e, _, _)| *e)
    }
}

/// Which DCGM exporter the simulated GPUs' `/metrics` reproduces (`strata sim
/// --dcgm-version`). Without one: the exporter with the counters file `strata generate
/// dcgm-counters` writes (profiling, clock-event and NVLink fields on), under Kubernetes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DcgmVersion {
    /// dcgm-exporter 4.5.3 with its default counters, outside Kubernetes: no
    /// `PROF_SM_ACTIVE`/`SM_OCCUPANCY`, no clock-event reasons, no `PROF_NVLINK_*`;
    /// label `Hostname`.
    Stock453,
    /// The same under an old Kubernetes setup: `pod_name`, `pod_namespace`,
    /// `container_name`, `pod_uid`.
    Stock453OldK8s,
    /// dcgm-exporter main (after PR #655) with the default counters under Kubernetes:
    /// label `hostname`, `pod`, `namespace`, `container`, `pod_uid`.
    Main,
}

impl DcgmVersion {
    /// Every `--dcgm-version` name and its variant.
    pub const ALL: [(&'static str, DcgmVersion); 3] = [
        ("4.5.3", DcgmVersion::Stock453),
        ("4.5.3-old-k8s", DcgmVersion::Stock453OldK8s),
        ("main", DcgmVersion::Main),
    ];

    /// Parses `--dcgm-version`; the error lists the known names.
    pub fn parse(name: &str) -> Result<DcgmVersion, String> {
        DcgmVersion::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                let names: Vec<&str> = DcgmVersion::ALL.iter().map(|(n, _)| *n).collect();
                format!(
                    "no DCGM exporter `{name}` is simulated; one of: {}",
                    names.join(", ")
                )
            })
    }
}

/// A simulator run. Every field has a default ([`SimConfig::new`]); `None` limits take the
/// profile's or the engine's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Dialect.
    pub engine: EngineKind,
    /// vLLM metric generation (when no `version` is set).
    pub vllm_metrics: VllmMetrics,
    /// The release whose metric names and labels to write; `None`: the default mix.
    pub version: Option<EngineVersion>,
    /// The DCGM exporter to reproduce; `None`: Strata's counters under Kubernetes.
    pub dcgm: Option<DcgmVersion>,
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
            version: None,
            dcgm: None,
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
