//! The step cost model: how long one engine iteration takes for a given batch.
//!
//! `step = cpu + (weights_read + prefill·P + decode·D + attn·C) / tp^0.9 · (f_max / f) + comm`
//! where P is the prefill tokens of the step, D the decoding sequences, C their context
//! tokens (KV reads), f the slowest GPU's SM clock, and `comm` the tensor-parallel
//! all-reduces (two per layer: latency plus bytes over NVLink). Scenarios scale the pieces
//! (a degraded NVLink cuts bandwidth and adds latency; an NCCL stall adds a wait).

use super::profile::Profile;

/// What one step computes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepShape {
    /// Prompt (or recomputed) tokens processed this step.
    pub prefill_tokens: u32,
    /// Sequences producing their next token from an already computed context.
    pub decode_seqs: u32,
    /// Context tokens those decoding sequences attend to.
    pub ctx_tokens: u64,
}

impl StepShape {
    /// Tokens in the step (what `vllm:iteration_tokens_total` observes).
    pub fn tokens(&self) -> u32 {
        self.prefill_tokens + self.decode_seqs
    }
}

/// The link state that the communication term depends on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Link {
    /// Share of collective traffic NVLink carries; NCCL routes the rest over PCIe when
    /// lanes are down (1 = healthy).
    pub nvlink_share: f64,
    /// Multiplier on all-reduce latency (1 = healthy).
    pub latency_factor: f64,
}

impl Default for Link {
    fn default() -> Link {
        Link {
            nvlink_share: 1.0,
            latency_factor: 1.0,
        }
    }
}

/// PCIe Gen5 x16 bandwidth per direction that collectives fall back to, bytes/s.
pub const PCIE_BYTES_PER_S: f64 = 50e9;

/// The time of one step, split into the parts the GPU model needs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepCost {
    /// Seconds the GPUs compute.
    pub compute_s: f64,
    /// Seconds of all-reduce communication.
    pub comm_s: f64,
    /// Host-side seconds (GPU idle).
    pub cpu_s: f64,
    /// Share of the compute time spent in prefill (0..1).
    pub prefill_share: f64,
    /// Share of the compute time spent reading KV (0..1).
    pub attn_share: f64,
    /// Bytes each GPU sends (and receives) over NVLink this step.
    pub nvlink_bytes: f64,
    /// Collective bytes each GPU sends over PCIe this step (NVLink fallback).
    pub pcie_bytes: f64,
}

impl StepCost {
    /// Whole step, seconds.
    pub fn total(&self) -> f64 {
        self.compute_s + self.comm_s + self.cpu_s
    }
}

/// Computes step costs for one profile and GPU count.
#[derive(Debug, Clone, PartialEq)]
pub struct CostModel {
    profile: Profile,
    tp: u32,
}

impl CostModel {
    /// A cost model for `profile` sharded over `tp` GPUs.
    pub fn new(profile: &Profile, tp: u32) -> CostModel {
        CostModel {
            profile: profile.clone(),
            tp: tp.max(1),
        }
    }

    /// Tensor-parallel degree.
    pub fn tp(&self) -> u32 {
        self.tp
    }

    /// The cost of `shape` at SM clock `clock_mhz` (the slowest GPU) over `link`.
    pub fn step(&self, shape: &StepShape, clock_mhz: f64, link: Link) -> StepCost {
        let p = &self.profile;
        let tp = self.tp as f64;
        let scale = tp.powf(0.9);
        let prefill = p.prefill_ms_per_token * shape.prefill_tokens as f64;
        let attn = p.attn_ms_per_ctx_token * shape.ctx_tokens as f64;
        let decode = p.decode_ms_per_seq * shape.decode_seqs as f64;
        let gpu_ms = p.weights_read_ms + prefill + attn + decode;
        let slow = (p.sm_clock_max_mhz / clock_mhz.max(100.0)).max(1.0);
        let compute_s = gpu_ms / scale * slow / 1000.0;
        let (comm_s, nvlink_bytes, pcie_bytes) = if self.tp > 1 {
            let allreduces = 2.0 * p.layers as f64;
            // Ring all-reduce: each GPU sends 2(n-1)/n of the payload.
            let payload = allreduces * p.hidden as f64 * 2.0 * shape.tokens() as f64;
            let bytes = payload * 2.0 * (tp - 1.0) / tp;
            let share = link.nvlink_share.clamp(0.0, 1.0);
            let (nv, pcie) = (bytes * share, bytes * (1.0 - share));
            let lat = allreduces * p.allreduce_latency_us * 1e-6 * link.latency_factor;
            let nv_s = if nv > 0.0 {
                nv / p.nvlink_bytes_per_s.max(1e6)
            } else {
                0.0
            };
            (lat + nv_s + pcie / PCIE_BYTES_PER_S, nv, pcie)
        } else {
            (0.0, 0.0, 0.0)
        };
        StepCost {
            compute_s,
            comm_s,
            cpu_s: p.step_cpu_ms / 1000.0,
            prefill_share: if gpu_ms > 0.0 { prefill / gpu_ms } else { 0.0 },
            attn_share: if gpu_ms > 0.0 { attn / gpu_ms } else { 0.0 },
            nvlink_bytes,
            pcie_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_profile_is_roughly_an_8b_model_on_an_h100() {
        let m = CostModel::new(Profile::default_profile(), 1);
        let clock = 1980.0;
        let one = m.step(
            &StepShape {
                decode_seqs: 1,
                ctx_tokens: 500,
                ..Default::default()
            },
            clock,
            Link::default(),
        );
        // ~7 ms per token at batch 1.
        assert!((0.006..0.009).contains(&one.total()), "{one:?}");
        let prefill = m.step(
            &StepShape {
                prefill_tokens: 8192,
                ..Default::default()
            },
            clock,
            Link::default(),
        );
        // ~25k prompt tokens/s.
        let rate = 8192.0 / prefill.total();
        assert!((18_000.0..30_000.0).contains(&rate), "{rate}");
        // Half the clock: slower.
        assert!(
            m.step(
                &StepShape {
                    decode_seqs: 1,
                    ..Default::default()
                },
                990.0,
                Link::default()
            )
            .total()
                > one.total() * 1.5
        );
    }

    #[test]
    fn tensor_parallel_adds_communication_that_a_bad_link_slows() {
        let m = CostModel::new(Profile::default_profile(), 2);
        let shape = StepShape {
            decode_seqs: 32,
            ctx_tokens: 32_000,
            ..Default::default()
        };
        let good = m.step(&shape, 1980.0, Link::default());
        let bad = m.step(
            &shape,
            1980.0,
            Link {
                nvlink_share: 0.2,
                latency_factor: 12.0,
            },
        );
        assert!(good.comm_s > 0.0 && good.nvlink_bytes > 0.0 && good.pcie_bytes == 0.0);
        assert!(bad.nvlink_bytes < good.nvlink_bytes && bad.pcie_bytes > 0.0);
        assert!(bad.total() > good.total() * 1.3, "{good:?} {bad:?}");
    }
}
