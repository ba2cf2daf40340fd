//! Continuous batching, as vLLM V1, SGLang and TGI do it.
//!
//! Each step, running sequences are served first (a decode token each, or the next chunk of
//! their prompt), then waiting ones are admitted while sequences, tokens and KV blocks
//! allow. Two admission policies:
//!
//! * [`Policy::Recompute`] (vLLM, SGLang, llama.cpp): a sequence holds blocks for the
//!   tokens computed so far and grows one block at a time. When a running sequence cannot
//!   grow, the most recently admitted one is preempted: its blocks are freed, it goes back
//!   to the front of the queue and its whole context (prompt + output so far) is recomputed
//!   when it is admitted again. No admission happens in a step that preempted.
//! * [`Policy::Reserve`] (TGI): a request is admitted only when blocks *and* the token
//!   budget (`max_batch_total_tokens`) hold its prompt plus its full `max_new_tokens`; it
//!   never grows and is never preempted, so oversized `max_new_tokens` starve the batch.

pub mod cost;
pub mod kv;
pub mod profile;

use std::collections::VecDeque;

pub use cost::{CostModel, Link, StepCost, StepShape};
pub use kv::{BLOCK_SIZE, BlockPool, blocks_for};
pub use profile::{PROFILES, Profile};

/// Why a sequence ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FinishReason {
    /// The model produced its end-of-sequence token.
    Stop,
    /// `max_tokens` was reached.
    Length,
    /// The client went away.
    Abort,
}

impl FinishReason {
    /// The OpenAI / vLLM spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::Abort => "abort",
        }
    }
}

/// Admission policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Policy {
    /// Grow block by block; preempt and recompute when the cache is full.
    Recompute,
    /// Reserve prompt + `max_new_tokens` at admission within a token budget.
    Reserve {
        /// TGI's `max_batch_total_tokens`.
        max_batch_total_tokens: u32,
    },
}

/// Scheduler limits.
#[derive(Debug, Clone, PartialEq)]
pub struct SchedConfig {
    /// KV cache blocks of [`BLOCK_SIZE`] tokens.
    pub num_blocks: u32,
    /// Most sequences in the running batch.
    pub max_num_seqs: u32,
    /// Most tokens computed in one step.
    pub max_num_batched_tokens: u32,
    /// Split long prompts over several steps.
    pub chunked_prefill: bool,
    /// Admission policy.
    pub policy: Policy,
    /// Most requests in flight (queued + running) before new ones are refused (TGI's
    /// `max_concurrent_requests`); `None`: unbounded queue.
    pub max_in_flight: Option<u32>,
}

/// One request inside the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Seq {
    /// Engine-wide id.
    pub id: u64,
    /// Prompt tokens.
    pub prompt: u32,
    /// The request's `max_tokens`.
    pub max_tokens: u32,
    /// Output tokens after which it ends.
    pub target: u32,
    /// How it ends when `target` is reached.
    pub reason: FinishReason,
    /// Prompt tokens found in the prefix cache at first admission.
    pub cached: u32,
    /// Tokens whose KV is computed.
    pub computed: u32,
    /// Output tokens produced.
    pub generated: u32,
    /// KV blocks held.
    pub blocks: u32,
    /// Tokens reserved in the TGI budget.
    pub reserved: u32,
    /// Arrival, simulated seconds.
    pub arrival: f64,
    /// First scheduled.
    pub scheduled_at: Option<f64>,
    /// First output token.
    pub first_token_at: Option<f64>,
    /// Latest output token.
    pub last_token_at: f64,
    /// Times preempted.
    pub preemptions: u32,
    /// The client's read timeout, s: while it waits, a request that got no token for this
    /// long is given up by its client (`None`: the client waits forever).
    pub client_timeout_s: Option<f64>,
}

impl Seq {
    /// A new request; `natural` is the output length at which the model would stop.
    pub fn new(id: u64, arrival: f64, prompt: u32, max_tokens: u32, natural: u32) -> Seq {
        let max_tokens = max_tokens.max(1);
        let (target, reason) = if natural.max(1) <= max_tokens {
            (natural.max(1), FinishReason::Stop)
        } else {
            (max_tokens, FinishReason::Length)
        };
        Seq {
            id,
            prompt: prompt.max(1),
            max_tokens,
            target,
            reason,
            cached: 0,
            computed: 0,
            generated: 0,
            blocks: 0,
            reserved: 0,
            arrival,
            scheduled_at: None,
            first_token_at: None,
            last_token_at: arrival,
            preemptions: 0,
            client_timeout_s: None,
        }
    }

    /// Prompt + output tokens so far.
    pub fn num_tokens(&self) -> u32 {
        self.prompt + self.generated
    }
}

/// The request was refused: the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overloaded;

/// What [`Scheduler::plan`] decided for one step.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Planned {
    /// The work of the step.
    pub shape: StepShape,
    /// Sequences admitted for the first time.
    pub admitted: u32,
    /// Preemptions this step.
    pub preempted: u32,
    /// Prompt tokens of the admitted sequences (prefix-cache queries).
    pub prefix_queries: u64,
    /// Of those, tokens found in the prefix cache.
    pub prefix_hits: u64,
    /// Running sequences in the step.
    pub batch: u32,
}

/// One output token of one sequence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Emitted {
    /// Sequence id.
    pub id: u64,
    /// 0-based index of this output token.
    pub index: u32,
    /// Seconds since the previous token of the same sequence (`None` for the first).
    pub gap: Option<f64>,
    /// When the sequence arrived.
    pub arrival: f64,
    /// Set on the last token.
    pub finished: Option<FinishReason>,
}

/// The continuous-batching scheduler.
#[derive(Debug, Clone)]
pub struct Scheduler {
    cfg: SchedConfig,
    pool: BlockPool,
    waiting: VecDeque<Seq>,
    running: Vec<Seq>,
    in_flight: Vec<(usize, u32)>,
    reserved: u64,
}

impl Scheduler {
    /// An empty scheduler.
    pub fn new(cfg: SchedConfig) -> Scheduler {
        Scheduler {
            pool: BlockPool::new(cfg.num_blocks),
            cfg,
            waiting: VecDeque::new(),
            running: Vec::new(),
            in_flight: Vec::new(),
            reserved: 0,
        }
    }

    /// The limits.
    pub fn config(&self) -> &SchedConfig {
        &self.cfg
    }

    /// Changes the admission policy (takes effect at the next admission).
    pub fn set_policy(&mut self, policy: Policy) {
        self.cfg.policy = policy;
    }

    /// Queues a request, or refuses it when the engine bounds requests in flight.
    pub fn submit(&mut self, seq: Seq) -> Result<(), Overloaded> {
        if let Some(max) = self.cfg.max_in_flight
            && self.waiting.len() + self.running.len() >= max as usize
        {
            return Err(Overloaded);
        }
        self.waiting.push_back(seq);
        Ok(())
    }

    /// Removes the waiting requests whose client gave up by `now` (no token for longer
    /// than its [`Seq::client_timeout_s`]), as a client's read timeout cancels them.
    /// Only between steps.
    pub fn expire(&mut self, now: f64) -> Vec<Seq> {
        debug_assert!(self.in_flight.is_empty());
        let (gone, kept): (VecDeque<Seq>, VecDeque<Seq>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|s| {
                s.client_timeout_s
                    .is_some_and(|t| now - s.last_token_at > t)
            });
        self.waiting = kept;
        for s in &gone {
            self.pool.release(s.blocks);
        }
        gone.into()
    }

    /// Requests waiting.
    pub fn num_waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Requests in the running batch.
    pub fn num_running(&self) -> usize {
        self.running.len()
    }

    /// The KV block pool.
    pub fn pool(&self) -> &BlockPool {
        &self.pool
    }

    /// Tokens reserved in the TGI budget by the running batch.
    pub fn reserved_tokens(&self) -> u64 {
        self.reserved
    }

    /// Tokens held by the running batch (prompt + output so far).
    pub fn running_tokens(&self) -> u64 {
        self.running.iter().map(|s| s.computed as u64).sum()
    }

    /// True while a planned step has not been completed.
    pub fn step_in_flight(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// Removes a request (the client went away). Only between steps.
    pub fn abort(&mut self, id: u64) -> Option<Seq> {
        debug_assert!(self.in_flight.is_empty());
        if let Some(i) = self.waiting.iter().position(|s| s.id == id) {
            let s = self.waiting.remove(i)?;
            self.pool.release(s.blocks);
            return Some(s);
        }
        let i = self.running.iter().position(|s| s.id == id)?;
        let s = self.running.remove(i);
        self.pool.release(s.blocks);
        self.reserved -= s.reserved as u64;
        Some(s)
    }

    /// Decides the next step at time `now`; `None` when there is nothing to run.
    pub fn plan(&mut self, now: f64) -> Option<Planned> {
        debug_assert!(self.in_flight.is_empty());
        let mut out = Planned::default();
        let mut budget = self.cfg.max_num_batched_tokens.max(1);
        let mut i = 0;
        while i < self.running.len() && budget > 0 {
            let need = self.running[i].num_tokens() - self.running[i].computed;
            let n = need.min(budget);
            // Grow the KV of sequence i, preempting from the back when blocks run out.
            let mut preempted_self = false;
            loop {
                let s = &self.running[i];
                let want = blocks_for(s.computed + n).saturating_sub(s.blocks);
                if want == 0 || self.pool.try_allocate(want) {
                    self.running[i].blocks += want;
                    break;
                }
                let victim = self.running.len() - 1;
                self.preempt_last();
                out.preempted += 1;
                if victim == i {
                    preempted_self = true;
                    break;
                }
            }
            if preempted_self {
                break;
            }
            self.classify(i, n, &mut out.shape);
            self.in_flight.push((i, n));
            budget -= n;
            i += 1;
        }
        if out.preempted == 0 {
            while budget > 0 && self.running.len() < self.cfg.max_num_seqs as usize {
                let Some(front) = self.waiting.front() else {
                    break;
                };
                let need = front.num_tokens() - front.computed;
                let full_budget = budget == self.cfg.max_num_batched_tokens.max(1);
                if !self.cfg.chunked_prefill && need > budget && !full_budget {
                    break;
                }
                let n = if self.cfg.chunked_prefill {
                    need.min(budget)
                } else {
                    need
                };
                let (blocks, reserve) = match self.cfg.policy {
                    Policy::Recompute => (blocks_for(front.computed + n), 0),
                    Policy::Reserve {
                        max_batch_total_tokens,
                    } => {
                        let r = front.prompt + front.max_tokens;
                        if self.reserved + r as u64 > max_batch_total_tokens as u64 {
                            break;
                        }
                        (blocks_for(r), r)
                    }
                };
                if !self.pool.try_allocate(blocks) {
                    break;
                }
                let mut s = self.waiting.pop_front().expect("front exists");
                s.blocks = blocks;
                s.reserved = reserve;
                self.reserved += reserve as u64;
                if s.scheduled_at.is_none() {
                    s.scheduled_at = Some(now);
                    out.admitted += 1;
                    out.prefix_queries += s.prompt as u64;
                    out.prefix_hits += s.cached as u64;
                }
                self.running.push(s);
                let idx = self.running.len() - 1;
                self.classify(idx, n, &mut out.shape);
                self.in_flight.push((idx, n));
                budget -= n.min(budget);
            }
        }
        out.batch = self.in_flight.len() as u32;
        if self.in_flight.is_empty() {
            None
        } else {
            Some(out)
        }
    }

    fn classify(&self, i: usize, n: u32, shape: &mut StepShape) {
        let s = &self.running[i];
        if n == 1 && s.generated > 0 && s.computed + 1 == s.num_tokens() {
            shape.decode_seqs += 1;
            shape.ctx_tokens += s.num_tokens() as u64;
        } else {
            shape.prefill_tokens += n;
        }
    }

    fn preempt_last(&mut self) {
        let mut s = self.running.pop().expect("a running sequence to preempt");
        self.pool.release(s.blocks);
        self.reserved -= s.reserved as u64;
        s.blocks = 0;
        s.reserved = 0;
        s.computed = 0;
        s.preemptions += 1;
        self.waiting.push_front(s);
    }

    /// Applies the planned step, ending at `now`: computed tokens advance, sequences whose
    /// context is complete emit a token, finished ones leave the batch (into `finished`).
    pub fn complete(&mut self, now: f64, emitted: &mut Vec<Emitted>, finished: &mut Vec<Seq>) {
        for &(i, n) in &self.in_flight {
            let s = &mut self.running[i];
            s.computed += n;
            if s.computed < s.num_tokens() {
                continue;
            }
            let gap = s.first_token_at.map(|_| now - s.last_token_at);
            if s.first_token_at.is_none() {
                s.first_token_at = Some(now);
            }
            s.last_token_at = now;
            let index = s.generated;
            s.generated += 1;
            let done = (s.generated >= s.target).then_some(s.reason);
            emitted.push(Emitted {
                id: s.id,
                index,
                gap,
                arrival: s.arrival,
                finished: done,
            });
        }
        self.in_flight.clear();
        let mut k = 0;
        while k < self.running.len() {
            if self.running[k].generated >= self.running[k].target {
                let s = self.running.remove(k);
                self.pool.release(s.blocks);
                self.reserved -= s.reserved as u64;
                finished.push(s);
            } else {
                k += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(blocks: u32, policy: Policy) -> SchedConfig {
        SchedConfig {
            num_blocks: blocks,
            max_num_seqs: 8,
            max_num_batched_tokens: 64,
            chunked_prefill: true,
            policy,
            max_in_flight: None,
        }
    }

    fn run_to_end(s: &mut Scheduler) -> (Vec<Seq>, u32) {
        let (mut e, mut f, mut pre) = (Vec::new(), Vec::new(), 0);
        let mut t = 0.0;
        for _ in 0..10_000 {
            let Some(p) = s.plan(t) else { break };
            pre += p.preempted;
            t += 0.01;
            s.complete(t, &mut e, &mut f);
        }
        (f, pre)
    }

    #[test]
    fn chunked_prefill_then_one_token_per_step() {
        let mut s = Scheduler::new(cfg(100, Policy::Recompute));
        s.submit(Seq::new(1, 0.0, 100, 5, 1000)).unwrap();
        let p = s.plan(0.0).unwrap();
        assert_eq!((p.shape.prefill_tokens, p.admitted), (64, 1));
        let (mut e, mut f) = (Vec::new(), Vec::new());
        s.complete(0.1, &mut e, &mut f);
        assert!(e.is_empty());
        let p = s.plan(0.1).unwrap();
        assert_eq!(p.shape.prefill_tokens, 36);
        s.complete(0.2, &mut e, &mut f);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].gap, None);
        let p = s.plan(0.2).unwrap();
        assert_eq!((p.shape.decode_seqs, p.shape.ctx_tokens), (1, 101));
        s.complete(0.3, &mut e, &mut f);
        assert_eq!(e.len(), 2);
        assert!(e[1].gap.is_some_and(|g| (g - 0.1).abs() < 1e-9));
        let (done, _) = run_to_end(&mut s);
        assert_eq!(done.len(), 1);
        assert_eq!(
            (done[0].generated, done[0].reason),
            (5, FinishReason::Length)
        );
        assert_eq!(s.pool().used(), 0);
    }

    #[test]
    fn full_cache_preempts_the_newest_and_recomputes_it() {
        // 6 blocks = 96 tokens; two sequences of 40 prompt tokens that want 40 more each.
        let mut s = Scheduler::new(cfg(6, Policy::Recompute));
        s.submit(Seq::new(1, 0.0, 40, 40, 1000)).unwrap();
        s.submit(Seq::new(2, 0.0, 40, 40, 1000)).unwrap();
        let (done, preempted) = run_to_end(&mut s);
        assert!(preempted >= 1);
        assert_eq!(done.len(), 2);
        assert!(done.iter().all(|d| d.generated == 40));
        assert!(done.iter().any(|d| d.preemptions > 0));
        assert_eq!(s.pool().used(), 0);
    }

    #[test]
    fn reserve_policy_bounds_the_batch_by_the_token_budget() {
        let mut s = Scheduler::new(cfg(
            1000,
            Policy::Reserve {
                max_batch_total_tokens: 300,
            },
        ));
        for id in 0..5 {
            s.submit(Seq::new(id, 0.0, 10, 90, 5)).unwrap();
        }
        let p = s.plan(0.0).unwrap();
        // 300 / (10 + 90) = 3 admitted though 8 would fit the batch.
        assert_eq!(p.admitted, 3);
        assert_eq!(s.num_waiting(), 2);
        assert_eq!(s.reserved_tokens(), 300);
        s.complete(0.01, &mut Vec::new(), &mut Vec::new());
        let (done, pre) = run_to_end(&mut s);
        assert_eq!((done.len(), pre), (5, 0));
        assert_eq!(s.reserved_tokens(), 0);
    }

    #[test]
    fn waiting_requests_expire_on_their_clients_read_timeout() {
        let mut s = Scheduler::new(cfg(100, Policy::Recompute));
        let mut patient = Seq::new(1, 0.0, 10, 5, 5);
        patient.client_timeout_s = None;
        let mut impatient = Seq::new(2, 0.0, 10, 5, 5);
        impatient.client_timeout_s = Some(60.0);
        s.submit(patient).unwrap();
        s.submit(impatient).unwrap();
        assert!(s.expire(60.0).is_empty(), "not yet");
        let gone: Vec<u64> = s.expire(61.0).iter().map(|q| q.id).collect();
        assert_eq!(gone, [2]);
        assert_eq!(s.num_waiting(), 1);
    }

    #[test]
    fn bounded_queue_refuses() {
        let mut c = cfg(100, Policy::Recompute);
        c.max_in_flight = Some(2);
        let mut s = Scheduler::new(c);
        assert!(s.submit(Seq::new(1, 0.0, 4, 4, 4)).is_ok());
        assert!(s.submit(Seq::new(2, 0.0, 4, 4, 4)).is_ok());
        assert_eq!(s.submit(Seq::new(3, 0.0, 4, 4, 4)), Err(Overloaded));
    }

    #[test]
    fn natural_length_decides_stop_or_length() {
        assert_eq!(Seq::new(1, 0.0, 5, 10, 7).reason, FinishReason::Stop);
        assert_eq!(Seq::new(1, 0.0, 5, 10, 7).target, 7);
        assert_eq!(Seq::new(1, 0.0, 5, 10, 70).reason, FinishReason::Length);
        assert_eq!(Seq::new(1, 0.0, 5, 10, 70).target, 10);
    }
}
