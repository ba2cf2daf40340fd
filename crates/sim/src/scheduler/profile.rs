//! Model + GPU profiles: the numbers the cost model and the GPU model start from.
//!
//! The default, `llama-8b-h100`, is Llama-3.1-8B-Instruct in bf16 on one H100 SXM: weights
//! 15 GiB read once per step (~5 ms at ~3 TB/s), prefill ~25k tokens/s, KV cache 128 KiB
//! per token and 27,150 blocks of 16 tokens at `gpu_memory_utilization=0.9` (as vLLM
//! reports it in `vllm:cache_config_info`).

/// A model on a kind of GPU.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// `--profile` name.
    pub name: &'static str,
    /// The served model name (`model_name` label, `/v1/models`).
    pub model: &'static str,
    /// GPUs the model is sharded over by default (tensor parallel).
    pub default_gpus: u32,
    /// DCGM `modelName`.
    pub gpu_model: &'static str,
    /// Framebuffer per GPU, MiB.
    pub fb_total_mib: f64,
    /// Weights, MiB, all shards together.
    pub weights_mib: f64,
    /// KV cache bytes per token, all shards together.
    pub kv_bytes_per_token: f64,
    /// KV cache blocks (16 tokens each) at the default GPU count.
    pub num_gpu_blocks: u32,
    /// Hidden size (all-reduce payload per token per layer is `hidden * 2` bytes).
    pub hidden: u32,
    /// Transformer layers (two all-reduces each under tensor parallelism).
    pub layers: u32,
    /// Host-side cost of one engine step (scheduling, sampling, launch), ms.
    pub step_cpu_ms: f64,
    /// Reading the weights once on one GPU, ms (memory-bound floor of a decode step).
    pub weights_read_ms: f64,
    /// Prefill compute per token on one GPU, ms.
    pub prefill_ms_per_token: f64,
    /// Decode compute per running sequence on one GPU, ms.
    pub decode_ms_per_seq: f64,
    /// Attention KV reads per context token on one GPU, ms.
    pub attn_ms_per_ctx_token: f64,
    /// Context window (`max_model_len`).
    pub max_model_len: u32,
    /// Engine defaults.
    pub max_num_seqs: u32,
    /// Tokens per step (`max_num_batched_tokens`, TGI `max_batch_prefill_tokens`).
    pub max_num_batched_tokens: u32,
    /// Board power limits, W.
    pub power_idle_w: f64,
    /// Board power at full activity and full clock, W.
    pub power_max_w: f64,
    /// Boost and idle SM clocks, MHz.
    pub sm_clock_max_mhz: f64,
    /// Idle SM clock, MHz.
    pub sm_clock_idle_mhz: f64,
    /// Memory clock, MHz.
    pub mem_clock_mhz: f64,
    /// NVLink bandwidth per GPU per direction, bytes/s.
    pub nvlink_bytes_per_s: f64,
    /// Latency of one small all-reduce, µs.
    pub allreduce_latency_us: f64,
}

/// Every known profile; the first is the default.
pub const PROFILES: &[Profile] = &[
    Profile {
        name: "llama-8b-h100",
        model: "meta-llama/Llama-3.1-8B-Instruct",
        default_gpus: 1,
        gpu_model: "NVIDIA H100 80GB HBM3",
        fb_total_mib: 81559.0,
        weights_mib: 15316.0,
        kv_bytes_per_token: 131072.0,
        num_gpu_blocks: 27150,
        hidden: 4096,
        layers: 32,
        step_cpu_ms: 1.5,
        weights_read_ms: 5.0,
        prefill_ms_per_token: 0.04,
        decode_ms_per_seq: 0.06,
        attn_ms_per_ctx_token: 0.000044,
        max_model_len: 8192,
        max_num_seqs: 256,
        max_num_batched_tokens: 8192,
        power_idle_w: 70.0,
        power_max_w: 700.0,
        sm_clock_max_mhz: 1980.0,
        sm_clock_idle_mhz: 345.0,
        mem_clock_mhz: 2619.0,
        nvlink_bytes_per_s: 450e9,
        allreduce_latency_us: 8.0,
    },
    Profile {
        name: "llama-70b-4xh100",
        model: "meta-llama/Llama-3.1-70B-Instruct",
        default_gpus: 4,
        gpu_model: "NVIDIA H100 80GB HBM3",
        fb_total_mib: 81559.0,
        weights_mib: 134_600.0,
        kv_bytes_per_token: 327_680.0,
        num_gpu_blocks: 27_466,
        hidden: 8192,
        layers: 80,
        step_cpu_ms: 2.0,
        weights_read_ms: 44.0,
        prefill_ms_per_token: 0.35,
        decode_ms_per_seq: 0.4,
        attn_ms_per_ctx_token: 0.00011,
        max_model_len: 8192,
        max_num_seqs: 256,
        max_num_batched_tokens: 8192,
        power_idle_w: 70.0,
        power_max_w: 700.0,
        sm_clock_max_mhz: 1980.0,
        sm_clock_idle_mhz: 345.0,
        mem_clock_mhz: 2619.0,
        nvlink_bytes_per_s: 450e9,
        allreduce_latency_us: 12.0,
    },
    Profile {
        name: "qwen-7b-l4",
        model: "Qwen/Qwen2.5-7B-Instruct",
        default_gpus: 1,
        gpu_model: "NVIDIA L4",
        fb_total_mib: 23034.0,
        weights_mib: 14_540.0,
        kv_bytes_per_token: 57_344.0,
        num_gpu_blocks: 5_600,
        hidden: 3584,
        layers: 28,
        step_cpu_ms: 1.5,
        weights_read_ms: 50.0,
        prefill_ms_per_token: 0.25,
        decode_ms_per_seq: 0.3,
        attn_ms_per_ctx_token: 0.0002,
        max_model_len: 8192,
        max_num_seqs: 64,
        max_num_batched_tokens: 4096,
        power_idle_w: 16.0,
        power_max_w: 72.0,
        sm_clock_max_mhz: 2040.0,
        sm_clock_idle_mhz: 210.0,
        mem_clock_mhz: 6251.0,
        nvlink_bytes_per_s: 0.0,
        allreduce_latency_us: 40.0,
    },
];

impl Profile {
    /// The profile named `name`.
    pub fn by_name(name: &str) -> Option<&'static Profile> {
        PROFILES.iter().find(|p| p.name == name)
    }

    /// The default profile.
    pub fn default_profile() -> &'static Profile {
        &PROFILES[0]
    }

    /// KV blocks when sharded over `gpus` GPUs: the free memory per GPU after the weights
    /// shard, at the same `gpu_memory_utilization` as the default.
    pub fn blocks_for_gpus(&self, gpus: u32) -> u32 {
        let d = self.default_gpus.max(1) as f64;
        let budget = |n: f64| (self.fb_total_mib * 0.9 - self.weights_mib / n).max(0.0) * n;
        let per_default = budget(d);
        if per_default <= 0.0 {
            return self.num_gpu_blocks;
        }
        ((self.num_gpu_blocks as f64) * budget(gpus.max(1) as f64) / per_default).round() as u32
    }
}
