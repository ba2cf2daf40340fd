//! Scenarios: a load plus what goes wrong, each moving the signals that the seeds' patterns
//! and alerts read, for the reason the seeds give.

use crate::scheduler::Link;
use crate::traffic::{Burst, TrafficSpec};

/// A named situation the simulator plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// Moderate load, nothing wrong.
    Healthy,
    /// Long contexts fill the KV cache: preemptions, growing queue.
    CacheThrash,
    /// More requests than the GPU can compute: queue grows, cache healthy.
    ComputeBound,
    /// GPU 0's cooling degrades: temperature up, SM clock down, steps slower.
    ThermalThrottle,
    /// Collectives stall intermittently: work in flight, tensor cores idle.
    NcclStall,
    /// NVLink lanes down: collectives fall back to PCIe, steps slower.
    NvlinkDegraded,
    /// TGI token budget too small for the `max_new_tokens` clients ask for.
    TokenBudgetStarvation,
    /// The server holds stream chunks and releases them in bursts.
    ProxyBuffering,
    /// Periodic traffic spikes.
    Burst,
    /// A co-located job saturates NVLink: collectives queue, SMs idle (2+ GPUs).
    NvlinkSaturated,
    /// Prompts stop sharing prefixes: the prefix cache hit rate collapses.
    PrefixCacheCollapse,
    /// Speculative decoding's draft model stops matching: acceptance falls below
    /// break-even.
    SpecDecodeRegression,
    /// Responses get much longer (a prompt or model change): tokens per response drift.
    OutputDrift,
    /// A share of responses become refusals.
    RefusalSpike,
}

/// Speculative decoding: draft tokens proposed per step and the chance each is accepted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpecDecode {
    /// `num_speculative_tokens`: draft tokens per sequence per step.
    pub k: u32,
    /// Per-token acceptance before the fault (accepted tokens are a prefix of the draft).
    pub healthy_acceptance: f64,
    /// Per-token acceptance once the fault begins.
    pub faulted_acceptance: f64,
    /// Cost of proposing and verifying one draft token, relative to a plain decode step
    /// (0.5 with 3 draft tokens: break-even at 50 % acceptance).
    pub draft_cost: f64,
}

/// Quality faults that begin `onset_s` after the scenario starts, so the time before is
/// the baseline they are compared with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quality {
    /// Seconds after the scenario starts when the fault begins.
    pub onset_s: f64,
    /// Prefix-cache hit rate once the fault begins (the configured rate before).
    pub prefix_hit_rate: Option<f64>,
    /// Speculative decoding, if on.
    pub spec: Option<SpecDecode>,
    /// Output-length multiplier once the fault begins.
    pub output_factor: f64,
    /// Share of responses that refuse: before the fault, and once it begins.
    pub refusal_share: (f64, f64),
}

/// What a scenario changes beyond the load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Effects {
    /// Thermal resistance of GPU 0, °C/W (healthy cooling when `None`).
    pub gpu0_cooling_c_per_w: Option<f64>,
    /// Collective links.
    pub link: Link,
    /// Intermittent collective stalls: mean seconds of progress between stalls, mean
    /// seconds a stall lasts.
    pub stall: Option<(f64, f64)>,
    /// Stream chunks are released only at multiples of this many seconds.
    pub buffer_period_s: Option<f64>,
    /// TGI `max_batch_total_tokens` override.
    pub tgi_max_batch_total_tokens: Option<u32>,
    /// GPUs the scenario needs (tensor parallel).
    pub min_gpus: u32,
    /// XID the scenario raises on GPU 0 (74 = NVLink error).
    pub gpu0_xid: u32,
    /// NVLink bytes/s each GPU carries for another job (contention).
    pub nvlink_background_bps: f64,
    /// Faults in what the model answers and how (prefix cache, speculation, output).
    pub quality: Option<Quality>,
}

impl Default for Effects {
    fn default() -> Effects {
        Effects {
            gpu0_cooling_c_per_w: None,
            link: Link::default(),
            stall: None,
            buffer_period_s: None,
            tgi_max_batch_total_tokens: None,
            min_gpus: 1,
            gpu0_xid: 0,
            nvlink_background_bps: 0.0,
            quality: None,
        }
    }
}

const HEALTHY_LOAD: TrafficSpec = TrafficSpec {
    rate: 6.0,
    prompt_median: 700.0,
    prompt_sigma: 0.7,
    prompt_max: 4000,
    output_median: 160.0,
    output_sigma: 0.6,
    max_tokens: 1024,
    burst: None,
};

/// No quality fault, beginning at t = 4 min.
const QUALITY: Quality = Quality {
    onset_s: 240.0,
    prefix_hit_rate: None,
    spec: None,
    output_factor: 1.0,
    refusal_share: (0.0, 0.0),
};

impl Scenario {
    /// Every scenario, in `--help` order.
    pub const ALL: [Scenario; 14] = [
        Scenario::Healthy,
        Scenario::CacheThrash,
        Scenario::ComputeBound,
        Scenario::ThermalThrottle,
        Scenario::NcclStall,
        Scenario::NvlinkDegraded,
        Scenario::TokenBudgetStarvation,
        Scenario::ProxyBuffering,
        Scenario::Burst,
        Scenario::NvlinkSaturated,
        Scenario::PrefixCacheCollapse,
        Scenario::SpecDecodeRegression,
        Scenario::OutputDrift,
        Scenario::RefusalSpike,
    ];

    /// The `--scenario` name.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Healthy => "healthy",
            Scenario::CacheThrash => "cache-thrash",
            Scenario::ComputeBound => "compute-bound",
            Scenario::ThermalThrottle => "thermal-throttle",
            Scenario::NcclStall => "nccl-stall",
            Scenario::NvlinkDegraded => "nvlink-degraded",
            Scenario::TokenBudgetStarvation => "token-budget-starvation",
            Scenario::ProxyBuffering => "proxy-buffering",
            Scenario::Burst => "burst",
            Scenario::NvlinkSaturated => "nvlink-saturated",
            Scenario::PrefixCacheCollapse => "prefix-cache-collapse",
            Scenario::SpecDecodeRegression => "spec-decode-regression",
            Scenario::OutputDrift => "output-drift",
            Scenario::RefusalSpike => "refusal-spike",
        }
    }

    /// Parses a `--scenario` name.
    pub fn parse(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

    /// One line for `--help`.
    pub fn help(self) -> &'static str {
        match self {
            Scenario::Healthy => {
                "moderate load (6 req/s), no fault injected: once earlier backlogs drain, no pattern or alert fires"
            }
            Scenario::CacheThrash => {
                "long contexts fill the KV cache: usage ≥ 0.95, preemptions > 0.5/s, waiting grows"
            }
            Scenario::ComputeBound => {
                "more requests than the GPU computes: batch at max_num_seqs, waiting grows, cache < 0.9, no preemption"
            }
            Scenario::ThermalThrottle => {
                "GPU 0 cooling degrades: temperature rises, SM clock drops, steps slow, ITL rises"
            }
            Scenario::NcclStall => {
                "collectives stall for seconds at a time: requests running > 4 while tensor activity < 0.2 (2+ GPUs)"
            }
            Scenario::NvlinkDegraded => {
                "NVLink lanes down (XID 74): all-reduce falls back to PCIe, NVLink bytes drop, ITL rises (2+ GPUs)"
            }
            Scenario::TokenBudgetStarvation => {
                "TGI: max_new_tokens 4000 against a 60k-token budget: batch plateaus below max, queue grows, 429s"
            }
            Scenario::ProxyBuffering => {
                "the server holds stream chunks and releases them once a second: client TTFT ≫ engine TTFT"
            }
            Scenario::Burst => {
                "8× traffic spikes for 20 s every 2 min (from t=60 s): arrivals, queue and TTFT spike"
            }
            Scenario::NvlinkSaturated => {
                "another job takes most of NVLink: > 200 GB/s per GPU while collectives queue and SMs idle (2+ GPUs)"
            }
            Scenario::PrefixCacheCollapse => {
                "from t=4 min prompts stop sharing prefixes: prefix cache hit rate 30 % → 2 %, prefill grows"
            }
            Scenario::SpecDecodeRegression => {
                "speculative decoding (3 draft tokens); from t=4 min acceptance falls from 73 % to 25 %: below break-even, ITL rises"
            }
            Scenario::OutputDrift => {
                "from t=4 min responses are 3× longer (a prompt or model change): tokens per response drift"
            }
            Scenario::RefusalSpike => {
                "from t=4 min 15 % of responses refuse (\"I can't help with that.\") instead of 1 %"
            }
        }
    }

    /// The load this scenario brings.
    pub fn traffic(self) -> TrafficSpec {
        match self {
            Scenario::CacheThrash => TrafficSpec {
                rate: 2.0,
                prompt_median: 5500.0,
                prompt_sigma: 0.15,
                prompt_max: 6500,
                output_median: 1300.0,
                output_sigma: 0.15,
                max_tokens: 1800,
                burst: None,
            },
            Scenario::ComputeBound => TrafficSpec {
                rate: 90.0,
                prompt_median: 250.0,
                prompt_sigma: 0.5,
                prompt_max: 1500,
                output_median: 120.0,
                output_sigma: 0.4,
                max_tokens: 512,
                burst: None,
            },
            Scenario::TokenBudgetStarvation => TrafficSpec {
                rate: 12.0,
                prompt_median: 600.0,
                prompt_sigma: 0.4,
                prompt_max: 2000,
                output_median: 180.0,
                output_sigma: 0.5,
                max_tokens: 4000,
                burst: None,
            },
            Scenario::Burst => TrafficSpec {
                burst: Some(Burst {
                    first_s: 60.0,
                    every_s: 120.0,
                    length_s: 20.0,
                    factor: 8.0,
                }),
                ..HEALTHY_LOAD
            },
            Scenario::Healthy
            | Scenario::NvlinkSaturated
            | Scenario::PrefixCacheCollapse
            | Scenario::SpecDecodeRegression
            | Scenario::OutputDrift
            | Scenario::RefusalSpike
            | Scenario::NcclStall
            | Scenario::ThermalThrottle
            | Scenario::NvlinkDegraded
            | Scenario::ProxyBuffering => HEALTHY_LOAD,
        }
    }

    /// What the scenario breaks.
    pub fn effects(self) -> Effects {
        let base = Effects::default();
        match self {
            Scenario::ThermalThrottle => Effects {
                gpu0_cooling_c_per_w: Some(0.22),
                ..base
            },
            Scenario::NcclStall => Effects {
                stall: Some((1.5, 8.0)),
                min_gpus: 2,
                ..base
            },
            Scenario::NvlinkDegraded => Effects {
                link: Link {
                    nvlink_share: 0.2,
                    latency_factor: 5.0,
                },
                min_gpus: 2,
                gpu0_xid: 74,
                ..base
            },
            Scenario::TokenBudgetStarvation => Effects {
                tgi_max_batch_total_tokens: Some(60_000),
                ..base
            },
            Scenario::ProxyBuffering => Effects {
                buffer_period_s: Some(1.0),
                ..base
            },
            Scenario::NvlinkSaturated => Effects {
                link: Link {
                    nvlink_share: 1.0,
                    latency_factor: 200.0,
                },
                nvlink_background_bps: 3.6e11,
                min_gpus: 2,
                ..base
            },
            Scenario::PrefixCacheCollapse => Effects {
                quality: Some(Quality {
                    prefix_hit_rate: Some(0.02),
                    ..QUALITY
                }),
                ..base
            },
            Scenario::SpecDecodeRegression => Effects {
                quality: Some(Quality {
                    spec: Some(SpecDecode {
                        k: 3,
                        healthy_acceptance: 0.85,
                        faulted_acceptance: 0.45,
                        draft_cost: 0.5,
                    }),
                    ..QUALITY
                }),
                ..base
            },
            Scenario::OutputDrift => Effects {
                quality: Some(Quality {
                    output_factor: 3.0,
                    ..QUALITY
                }),
                ..base
            },
            Scenario::RefusalSpike => Effects {
                quality: Some(Quality {
                    refusal_share: (0.01, 0.15),
                    ..QUALITY
                }),
                ..base
            },
            _ => base,
        }
    }

    /// `--help` text listing every scenario.
    pub fn help_table() -> String {
        let mut s = String::new();
        for sc in Scenario::ALL {
            s.push_str(&format!("  {:<24} {}\n", sc.name(), sc.help()));
        }
        s
    }
}

impl std::fmt::Display for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Scenario {
    type Err = String;
    fn from_str(s: &str) -> Result<Scenario, String> {
        Scenario::parse(s).ok_or_else(|| {
            let names: Vec<_> = Scenario::ALL.iter().map(|s| s.name()).collect();
            format!("unknown scenario `{s}`; one of: {}", names.join(", "))
        })
    }
}
