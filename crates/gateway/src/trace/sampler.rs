//! The tail sampler: decided when a request ends, from everything it did. Keeps every
//! error, every slow TTFT, every request of the listed tenants and a baseline share of the
//! rest (the seed's policy is the default).

use std::collections::HashSet;

use crate::config::SamplingPolicy;
use crate::ids::TraceId;
use crate::record::Record;

/// Why a trace is kept (index into [`crate::metrics::POLICIES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// It ended with an error class.
    Error = 0,
    /// Its TTFT reached the threshold.
    SlowTtft = 1,
    /// Its tenant is listed.
    Tenant = 2,
    /// The baseline share.
    Baseline = 3,
}

/// The policy, ready to apply.
#[derive(Debug, Clone)]
pub struct TailSampler {
    policy: SamplingPolicy,
    tenants: HashSet<String>,
    threshold: u64,
}

impl TailSampler {
    /// From the config.
    pub fn new(policy: &SamplingPolicy) -> TailSampler {
        let p = policy.baseline_percent.clamp(0.0, 100.0) / 100.0;
        let threshold = if p >= 1.0 {
            u64::MAX
        } else {
            (p * (1u64 << 56) as f64) as u64
        };
        TailSampler {
            policy: policy.clone(),
            tenants: policy.tenants.iter().cloned().collect(),
            threshold,
        }
    }

    /// The first policy that keeps `r`, or none.
    pub fn decide(&self, r: &Record) -> Option<Keep> {
        if self.policy.errors && r.error.is_some() {
            return Some(Keep::Error);
        }
        if let Some(t) = self.policy.slow_ttft
            && r.timing.ttft().is_some_and(|x| x >= t)
        {
            return Some(Keep::SlowTtft);
        }
        if self.tenants.contains(&r.tenant) {
            return Some(Keep::Tenant);
        }
        self.baseline(&r.trace_id).then_some(Keep::Baseline)
    }

    /// Baseline share from the trace id's last 7 bytes (as the OpenTelemetry probability
    /// sampler reads randomness), so every component using the rule agrees.
    pub fn baseline(&self, trace_id: &TraceId) -> bool {
        if self.threshold == u64::MAX {
            return true;
        }
        let mut b = [0u8; 8];
        b[1..].copy_from_slice(&trace_id[9..]);
        u64::from_be_bytes(b) < self.threshold
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::IdGen;

    #[test]
    fn baseline_share_is_close_to_the_percentage() {
        let s = TailSampler::new(&SamplingPolicy::default());
        let g = IdGen::default();
        let kept = (0..100_000).filter(|_| s.baseline(&g.trace_id())).count();
        assert!((4_500..5_500).contains(&kept), "{kept}");
        let all = TailSampler::new(&SamplingPolicy {
            baseline_percent: 100.0,
            ..SamplingPolicy::default()
        });
        assert!(all.baseline(&[0xff; 16]));
        let none = TailSampler::new(&SamplingPolicy {
            baseline_percent: 0.0,
            ..SamplingPolicy::default()
        });
        assert!(!none.baseline(&[0; 16]));
    }
}
