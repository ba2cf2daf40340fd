//! The simulated engine: scheduler, cost model, GPUs and metrics under one clock-free API.
//!
//! Both the real-time server and virtual-time runs drive it the same way:
//! [`Engine::submit`] requests, [`Engine::plan`] a step at time `t` (which says when it
//! ends), then [`Engine::complete`] it, which yields the tokens produced. Time is always
//! passed in; the engine never reads a clock.

use crate::config::{EngineKind, SimConfig};
use crate::gpu::{Activity, Gpu, GpuIdentity, GpuLimits, Thermal};
use crate::metrics::{self, Live, Stats};
use crate::rng::Rng;
use crate::scenario::{Effects, Quality, Scenario, SpecDecode};
use crate::scheduler::{
    CostModel, Emitted, FinishReason, Overloaded, Planned, Policy, SchedConfig, Scheduler, Seq,
    StepCost,
};
use crate::traffic::Traffic;

/// One finished request, as its client and the engine saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    /// Engine id.
    pub id: u64,
    /// Arrival, simulated seconds.
    pub arrival: f64,
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Output tokens.
    pub completion_tokens: u32,
    /// Requested `max_tokens`.
    pub max_tokens: u32,
    /// Why it ended.
    pub finish_reason: FinishReason,
    /// Seconds queued before first scheduled.
    pub queue_s: f64,
    /// Time to first token as the engine measures it.
    pub ttft_s: f64,
    /// Time to first token as the client sees it (after any buffering on the way).
    pub client_ttft_s: f64,
    /// End to end.
    pub e2e_s: f64,
    /// Times preempted.
    pub preemptions: u32,
    /// The response is a refusal (its text starts with one).
    pub refusal: bool,
}

struct InFlight {
    end: f64,
    segments: Vec<(f64, Activity)>,
}

/// The simulated engine and its GPUs.
pub struct Engine {
    cfg: SimConfig,
    scenario: Scenario,
    effects: Effects,
    sched: Scheduler,
    cost: CostModel,
    gpus: Vec<Gpu>,
    stats: Stats,
    rng: Rng,
    traffic: Option<Traffic>,
    now: f64,
    gpu_t: f64,
    next_id: u64,
    aborts: Vec<u64>,
    step: Option<InFlight>,
    stall_next: f64,
    scenario_start: f64,
    records: Option<Vec<RequestRecord>>,
    finished: Vec<Seq>,
}

const DEFAULT_RESISTANCE: f64 = 0.075;

/// Output tokens of a refusal ("I can't help with that request." and an end).
pub const REFUSAL_TOKENS: u32 = 8;

impl Engine {
    /// An idle engine at time 0 playing `cfg.scenario`.
    pub fn new(cfg: &SimConfig) -> Engine {
        let p = cfg.profile;
        let n = cfg.gpu_count();
        let blocks = cfg.blocks();
        let policy = match cfg.engine {
            EngineKind::Tgi => Policy::Reserve {
                max_batch_total_tokens: blocks * 16,
            },
            _ => Policy::Recompute,
        };
        let sched = Scheduler::new(SchedConfig {
            num_blocks: blocks,
            max_num_seqs: cfg.batch_limit(),
            max_num_batched_tokens: cfg.step_tokens(),
            chunked_prefill: true,
            policy,
            max_in_flight: (cfg.engine == EngineKind::Tgi).then_some(cfg.max_concurrent_requests),
        });
        let kv_mib = blocks as f64 * 16.0 * p.kv_bytes_per_token / 1_048_576.0;
        let limits = GpuLimits {
            fb_total_mib: p.fb_total_mib,
            // CUDA context, weights and KV cache, and the activation memory the engine
            // reserves at start-up for its largest step (1.4 GiB at 8192 batched tokens).
            fb_static_mib: 600.0
                + (p.weights_mib + kv_mib) / n as f64
                + 1400.0 * f64::from(cfg.step_tokens()) / 8192.0,
            power_idle_w: p.power_idle_w,
            power_max_w: p.power_max_w,
            clock_max_mhz: p.sm_clock_max_mhz,
            clock_idle_mhz: p.sm_clock_idle_mhz,
            mem_clock_mhz: p.mem_clock_mhz,
        };
        let gpus = (0..n)
            .map(|i| {
                Gpu::new(
                    GpuIdentity::new(cfg.seed, i, p.gpu_model),
                    limits,
                    Thermal {
                        resistance_c_per_w: DEFAULT_RESISTANCE,
                        ..Thermal::default()
                    },
                )
            })
            .collect();
        let mut e = Engine {
            cfg: cfg.clone(),
            scenario: cfg.scenario,
            effects: Effects::default(),
            sched,
            cost: CostModel::new(p, n),
            gpus,
            stats: Stats::new(cfg),
            rng: Rng::fork(cfg.seed, 1),
            traffic: None,
            now: 0.0,
            gpu_t: 0.0,
            next_id: 1,
            aborts: Vec::new(),
            step: None,
            stall_next: 0.0,
            scenario_start: 0.0,
            records: None,
            finished: Vec::new(),
        };
        e.set_scenario(cfg.scenario, 0.0);
        e
    }

    /// The run's configuration.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// The scenario playing now.
    pub fn scenario(&self) -> Scenario {
        self.scenario
    }

    /// The simulated GPUs.
    pub fn gpus(&self) -> &[Gpu] {
        &self.gpus
    }

    /// Counters and histograms so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Simulated time of the latest planned or completed step.
    pub fn now(&self) -> f64 {
        self.now
    }

    /// Keeps a [`RequestRecord`] for every finished request (virtual runs).
    pub fn record_requests(&mut self) {
        self.records.get_or_insert_with(Vec::new);
    }

    /// Records kept so far (emptied).
    pub fn take_records(&mut self) -> Vec<RequestRecord> {
        self.records
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Switches scenario at time `t`: its load (when enabled) and its effects.
    pub fn set_scenario(&mut self, s: Scenario, t: f64) {
        self.scenario = s;
        self.effects = s.effects();
        if let Some(g) = self.gpus.first_mut() {
            g.thermal.resistance_c_per_w = self
                .effects
                .gpu0_cooling_c_per_w
                .unwrap_or(DEFAULT_RESISTANCE);
            // Leaving an XID scenario stands for the GPU reset its diagnosis asks for,
            // which clears the last XID as the driver does.
            g.xid_last = self.effects.gpu0_xid;
        }
        if self.cfg.engine == EngineKind::Tgi {
            let budget = self
                .effects
                .tgi_max_batch_total_tokens
                .unwrap_or(self.sched.pool().total() * 16);
            self.sched.set_policy(Policy::Reserve {
                max_batch_total_tokens: budget,
            });
        }
        self.traffic = self.cfg.load.then(|| {
            Traffic::new(
                s.traffic(),
                self.cfg.seed,
                t,
                self.cfg.truncation,
                self.cfg.context(),
            )
        });
        self.stall_next = t;
        self.scenario_start = t;
    }

    /// The scenario's quality fault and how much of it applies at `t` (0 before its onset,
    /// the configured fault scale after).
    fn quality_at(&self, t: f64) -> Option<(Quality, f64)> {
        let q = self.effects.quality?;
        let w = if t >= self.scenario_start + q.onset_s {
            self.cfg.fault_scale
        } else {
            0.0
        };
        Some((q, w))
    }

    /// Whether request `id`, arrived at `arrival`, is answered with a refusal (a seeded
    /// draw per request against the scenario's refusal share then).
    pub fn refusal(&self, id: u64, arrival: f64) -> bool {
        let Some((q, w)) = self.quality_at(arrival) else {
            return false;
        };
        let (before, after) = q.refusal_share;
        let share = before + w * (after - before);
        share > 0.0 && Rng::fork(self.cfg.seed ^ 0x7265_6675, id).f64() < share
    }

    /// Queues a request that arrived at `arrival`. `natural` is the output length at
    /// which the model stops (drawn from the scenario's distribution when `None`).
    pub fn submit(
        &mut self,
        arrival: f64,
        prompt: u32,
        max_tokens: u32,
        natural: Option<u32>,
    ) -> Result<u64, Overloaded> {
        self.enqueue(arrival, prompt, max_tokens, natural, None)
    }

    /// [`Engine::submit`] for a client that gives up after `client_timeout_s` without a
    /// token (the scenario's own load; HTTP clients abort by disconnecting).
    fn enqueue(
        &mut self,
        arrival: f64,
        prompt: u32,
        max_tokens: u32,
        natural: Option<u32>,
        client_timeout_s: Option<f64>,
    ) -> Result<u64, Overloaded> {
        self.stats.received += 1;
        let mut natural =
            natural.unwrap_or_else(|| self.scenario.traffic().draw_output(&mut self.rng));
        let id = self.next_id;
        self.next_id += 1;
        let mut hit = self.cfg.prefix_cache_hit_rate;
        if let Some((q, w)) = self.quality_at(arrival) {
            if let Some(h) = q.prefix_hit_rate {
                hit += w * (h - hit);
            }
            natural = (natural as f64 * (1.0 + w * (q.output_factor - 1.0))).round() as u32;
        }
        if self.refusal(id, arrival) {
            natural = REFUSAL_TOKENS;
        }
        let mut seq = Seq::new(id, arrival, prompt, max_tokens, natural.max(1));
        seq.client_timeout_s = client_timeout_s;
        if hit > 0.0 {
            let want = seq.prompt as f64 * hit * self.rng.range(0.5, 1.5);
            seq.cached =
                ((want / 16.0).floor() as u32 * 16).min(seq.prompt.saturating_sub(1) / 16 * 16);
        }
        // TGI validates (tokenizes) before queueing: tens of microseconds.
        self.stats
            .validation
            .observe(0.00002 + prompt as f64 * 2e-8);
        match self.sched.submit(seq) {
            Ok(()) => Ok(id),
            Err(e) => {
                self.stats.overloaded += 1;
                Err(e)
            }
        }
    }

    /// Counts a request refused by validation (bad input, context overflow).
    pub fn record_invalid(&mut self) {
        self.stats.received += 1;
        self.stats.invalid += 1;
    }

    /// Drops a request whose client went away (applied before the next step).
    pub fn abort(&mut self, id: u64) {
        self.aborts.push(id);
    }

    /// Time of the scenario's next own arrival.
    pub fn next_arrival(&self) -> Option<f64> {
        self.traffic.as_ref().and_then(Traffic::peek_time)
    }

    /// Submits the scenario's own arrivals due by `t`.
    pub fn pump_arrivals(&mut self, t: f64) {
        while let Some(a) = self.traffic.as_mut().and_then(|tr| tr.pop_until(t)) {
            let timeout = self.cfg.client_timeout_s;
            let _ = self.enqueue(a.t, a.prompt, a.max_tokens, Some(a.natural), timeout);
        }
    }

    /// True while a planned step has not been completed.
    pub fn step_in_flight(&self) -> bool {
        self.step.is_some()
    }

    /// End of the step in flight (the current time when none is).
    pub fn now_step_end(&self) -> f64 {
        self.step.as_ref().map_or(self.now, |s| s.end)
    }

    /// Requests queued or running.
    pub fn busy(&self) -> bool {
        self.sched.num_running() + self.sched.num_waiting() > 0
    }

    /// Plans the next step at time `t` (no earlier than the last step's end) and returns
    /// when it ends; `None` when there is nothing to run.
    pub fn plan(&mut self, t: f64) -> Option<f64> {
        debug_assert!(self.step.is_none());
        let t = t.max(self.now);
        self.advance_gpus_to(t);
        self.now = t;
        for id in std::mem::take(&mut self.aborts) {
            if self.sched.abort(id).is_some() {
                self.stats.finish(FinishReason::Abort);
            }
        }
        for _ in self.sched.expire(t) {
            self.stats.finish(FinishReason::Abort);
        }
        let p = self.sched.plan(t)?;
        let clock = self
            .gpus
            .iter()
            .map(Gpu::busy_clock_mhz)
            .fold(f64::INFINITY, f64::min);
        let cost = self.cost.step(&p.shape, clock, self.effects.link);
        let mut busy = cost.total();
        if let Some((q, w)) = self.quality_at(t)
            && let Some(spec) = q.spec
            && p.shape.decode_seqs > 0
        {
            let factor = self.speculate(&spec, w, p.shape.decode_seqs);
            busy *= 1.0 + (1.0 - cost.prefill_share) * (factor - 1.0);
        }
        let mut segments = vec![(t + busy, self.step_activity(&cost, &p))];
        if let Some((run_mean, stall_mean)) = self.effects.stall
            && t >= self.stall_next
        {
            let stall = self.rng.exp(stall_mean).max(0.2);
            segments.push((t + busy + stall, Activity::stalled()));
            self.stall_next = t + busy + stall + self.rng.exp(run_mean);
        }
        let end = segments.last().map_or(t, |s| s.0);
        self.account_step(&p, &cost, end - t);
        self.step = Some(InFlight { end, segments });
        Some(end)
    }

    /// Draws the draft acceptance of `seqs` decoding sequences for one step, counts it,
    /// and returns how much longer each produced token takes than without speculation
    /// (drafting and verifying cost `k × draft_cost` steps; each step yields the accepted
    /// prefix of the draft plus one token).
    fn speculate(&mut self, spec: &SpecDecode, w: f64, seqs: u32) -> f64 {
        let a = spec.healthy_acceptance + w * (spec.faulted_acceptance - spec.healthy_acceptance);
        let k = spec.k.clamp(1, 16) as usize;
        let s = &mut self.stats.spec;
        s.per_pos.resize(k, 0);
        let mut accepted = 0u64;
        for _ in 0..seqs {
            let n = (0..k).take_while(|_| self.rng.f64() < a).count();
            for p in &mut s.per_pos[..n] {
                *p += 1;
            }
            accepted += n as u64;
        }
        s.drafts += seqs as u64;
        s.draft_tokens += (k as u64) * seqs as u64;
        s.accepted_tokens += accepted;
        let per_seq = accepted as f64 / seqs as f64;
        (1.0 + k as f64 * spec.draft_cost) / (1.0 + per_seq)
    }

    fn step_activity(&self, c: &StepCost, p: &Planned) -> Activity {
        let total = c.total().max(1e-9);
        let (cw, mw) = (c.compute_s / total, c.comm_s / total);
        let pf = c.prefill_share;
        let d = p.shape.decode_seqs as f64;
        let tensor = pf * 0.85 + (1.0 - pf) * (0.32 + 0.32 * (1.0 - (-d / 48.0).exp()));
        let sm = 0.6 + 0.35 * (pf + (1.0 - pf) * (1.0 - (-d / 64.0).exp()));
        let dram = pf * 0.35 + (1.0 - pf) * (0.55 + 0.35 * c.attn_share / (1.0 - pf).max(1e-9));
        let idle = Activity::idle();
        Activity {
            gr: cw + mw,
            sm: cw * sm + mw * 0.1,
            occupancy: cw * (0.15 + 0.3 * sm),
            tensor: cw * tensor,
            dram: (cw * dram.min(0.95)) + mw * 0.05,
            nvlink_bps: c.nvlink_bytes / total
                + self.effects.nvlink_background_bps * self.cfg.fault_scale,
            pcie_rx_bps: idle.pcie_rx_bps + 150_000.0 / total + c.pcie_bytes / total,
            pcie_tx_bps: idle.pcie_tx_bps + 60_000.0 / total + c.pcie_bytes / total,
            workspace_mib: p.shape.tokens() as f64 * 0.06,
        }
    }

    fn account_step(&mut self, p: &Planned, c: &StepCost, dur: f64) {
        let s = &mut self.stats;
        s.preemptions += p.preempted as u64;
        s.prefix_queries += p.prefix_queries;
        s.prefix_hits += p.prefix_hits;
        s.prompt_tokens += p.prefix_queries;
        s.iteration_tokens.observe(p.shape.tokens() as f64);
        if p.admitted > 0 {
            s.batch_next_size.observe(p.admitted as f64);
        }
        let pf = c.prefill_share;
        if p.shape.prefill_tokens > 0 {
            s.prefill_steps += 1;
            s.batch_prefill.observe(dur * pf.max(0.05));
            s.prompt_seconds += dur * pf;
            s.window.prompt_tokens += p.shape.prefill_tokens as u64;
            s.window.prompt_s += dur * pf;
        }
        if p.shape.decode_seqs > 0 {
            s.decode_steps += 1;
            s.batch_decode.observe(dur * (1.0 - pf));
            s.predicted_seconds += dur * (1.0 - pf);
            s.window.predicted_s += dur * (1.0 - pf);
        }
        s.n_decode += 1;
        s.window.decodes += 1;
        s.window.busy_slots += p.batch as u64;
    }

    /// Completes the step in flight at its end time; the tokens it produced go to `out`.
    pub fn complete(&mut self, out: &mut Vec<Emitted>) {
        let Some(end) = self.step.as_ref().map(|s| s.end) else {
            return;
        };
        let start = self.now;
        self.advance_gpus_to(end);
        self.step = None;
        self.now = end;
        let first = out.len();
        self.sched.complete(end, out, &mut self.finished);
        let s = &mut self.stats;
        let produced = (out.len() - first) as u64;
        s.generation_tokens += produced;
        s.window.predicted_tokens += produced;
        for e in &out[first..] {
            match e.gap {
                Some(g) => s.itl.observe(g),
                None => s.ttft.observe(end - e.arrival),
            }
        }
        // SGLang's throughput gauge: tokens/s smoothed over ~5 s.
        let dur = (end - start).max(1e-9);
        let k = 1.0 - (-dur / 5.0).exp();
        s.gen_throughput += (produced as f64 / dur - s.gen_throughput) * k;
        for q in std::mem::take(&mut self.finished) {
            self.finish_seq(&q, end);
        }
    }

    fn finish_seq(&mut self, q: &Seq, end: f64) {
        let s = &mut self.stats;
        let sched = q.scheduled_at.unwrap_or(q.arrival);
        let first = q.first_token_at.unwrap_or(end);
        s.e2e.observe(end - q.arrival);
        s.queue.observe(sched - q.arrival);
        s.prefill.observe(first - sched);
        s.decode.observe(end - first);
        s.inference.observe(end - sched);
        if q.generated > 1 {
            s.tpot.observe((end - first) / (q.generated - 1) as f64);
        }
        s.prompt_len.observe(q.prompt as f64);
        s.gen_len.observe(q.generated as f64);
        s.max_tokens.observe(q.max_tokens as f64);
        s.n_param.observe(1.0);
        s.n_tokens_max = s.n_tokens_max.max(q.num_tokens() as u64);
        s.finish(q.reason);
        let client_first = self.release_time(first);
        let refusal = self.refusal(q.id, q.arrival);
        if let Some(r) = self.records.as_mut() {
            r.push(RequestRecord {
                id: q.id,
                arrival: q.arrival,
                prompt_tokens: q.prompt,
                completion_tokens: q.generated,
                max_tokens: q.max_tokens,
                finish_reason: q.reason,
                queue_s: sched - q.arrival,
                ttft_s: first - q.arrival,
                client_ttft_s: client_first - q.arrival,
                e2e_s: end - q.arrival,
                preemptions: q.preemptions,
                refusal,
            });
        }
    }

    /// Brings the GPUs to time `t`: the step in flight's activity where it covers, idle
    /// elsewhere.
    pub fn advance_gpus_to(&mut self, t: f64) {
        let mut from = self.gpu_t;
        if t <= from {
            return;
        }
        let mut spans: Vec<(f64, Activity)> = Vec::with_capacity(3);
        if let Some(step) = &self.step {
            for (until, a) in &step.segments {
                if *until > from {
                    let to = until.min(t);
                    spans.push((to - from, *a));
                    from = to;
                    if from >= t {
                        break;
                    }
                }
            }
        }
        if from < t {
            let idle = t - from;
            let mut a = Activity::idle();
            a.nvlink_bps += self.effects.nvlink_background_bps * self.cfg.fault_scale;
            spans.push((idle, a));
            self.stats.gen_throughput *= (-idle / 5.0).exp();
        }
        for (dt, a) in &spans {
            for g in &mut self.gpus {
                g.advance(*dt, a);
            }
        }
        self.gpu_t = t;
    }

    /// When a chunk produced at `t` reaches the client (proxy buffering holds chunks until
    /// the next multiple of its period).
    pub fn release_time(&self, t: f64) -> f64 {
        match self.effects.buffer_period_s {
            Some(p) if p > 0.0 => (t / p).ceil() * p,
            _ => t,
        }
    }

    /// The buffering period in force, if any.
    pub fn buffer_period(&self) -> Option<f64> {
        self.effects.buffer_period_s
    }

    /// Engine gauges now.
    pub fn live(&self) -> Live {
        Live {
            running: self.sched.num_running() as u32,
            waiting: self.sched.num_waiting() as u32,
            kv_usage: self.sched.pool().usage(),
            num_blocks: self.sched.pool().total(),
            used_tokens: self.sched.running_tokens(),
            reserved_tokens: self.sched.reserved_tokens(),
        }
    }

    /// The engine's `/metrics` body at time `t`.
    pub fn render_engine(&mut self, t: f64) -> String {
        self.advance_gpus_to(t);
        let live = self.live();
        metrics::render_engine(&self.cfg, &live, &mut self.stats)
    }

    /// The DCGM exporter's `/metrics` body at time `t`.
    pub fn render_gpus(&mut self, t: f64) -> String {
        self.advance_gpus_to(t);
        let container = self.cfg.engine.name();
        metrics::render_dcgm(
            &self.gpus,
            &metrics::Placement {
                hostname: &self.cfg.hostname,
                pod: &self.cfg.pod,
                container,
                namespace: "inference",
                version: self.cfg.dcgm,
            },
        )
    }
}
