//! Virtual time: minutes of engine and GPU life in milliseconds of CPU, deterministically.
//!
//! [`VirtualRun`] advances a simulated clock step by step through the same [`Engine`] the
//! servers use, and every `scrape_every` seconds of simulated time yields a [`Scrape`]: the
//! engine's and the DCGM exporter's `/metrics` bodies as they would have been read then.
//! Same config and seed, same scrapes, byte for byte.

use crate::clock::Clock;
use crate::config::SimConfig;
use crate::engine::{Engine, RequestRecord};
use crate::scenario::Scenario;
use crate::scheduler::Emitted;

/// Both expositions at one instant of simulated time.
#[derive(Debug, Clone, PartialEq)]
pub struct Scrape {
    /// Milliseconds of simulated time since the start of the run.
    pub t_ms: u64,
    /// The engine's `/metrics` body.
    pub engine_body: String,
    /// The DCGM exporter's `/metrics` body.
    pub gpu_body: String,
}

/// A run in virtual time; iterate it for scrapes.
pub struct VirtualRun {
    engine: Engine,
    clock: Clock,
    duration: f64,
    every: f64,
    next_scrape: f64,
    switches: Vec<(f64, Scenario)>,
    emitted: Vec<Emitted>,
}

impl VirtualRun {
    /// `duration` and `scrape_every` in seconds of simulated time; the first scrape is at
    /// `scrape_every`.
    pub fn new(cfg: &SimConfig, duration: f64, scrape_every: f64) -> VirtualRun {
        let mut engine = Engine::new(cfg);
        engine.record_requests();
        VirtualRun {
            engine,
            clock: Clock::Virtual { now: 0.0 },
            duration,
            every: scrape_every.max(0.001),
            next_scrape: scrape_every.max(0.001),
            switches: Vec::new(),
            emitted: Vec::new(),
        }
    }

    /// Switches to `scenario` at simulated time `t` (seconds).
    pub fn switch_at(mut self, t: f64, scenario: Scenario) -> VirtualRun {
        self.switches.push((t, scenario));
        self.switches.sort_by(|a, b| a.0.total_cmp(&b.0));
        self
    }

    /// The engine (for its stats and GPUs).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Requests finished so far (emptied).
    pub fn take_records(&mut self) -> Vec<RequestRecord> {
        self.engine.take_records()
    }

    /// Current simulated time, seconds.
    pub fn now(&self) -> f64 {
        self.clock.now()
    }

    fn apply_switches(&mut self, now: f64) {
        while let Some(&(t, s)) = self.switches.first() {
            if t > now {
                break;
            }
            self.engine.set_scenario(s, t);
            self.switches.remove(0);
        }
    }

    fn scrape(&mut self) -> Scrape {
        let t = self.next_scrape;
        self.clock.advance_to(t);
        // Arrivals during a long step (a stall) are queued when they arrive.
        self.engine.pump_arrivals(t);
        self.next_scrape += self.every;
        Scrape {
            t_ms: (t * 1000.0).round() as u64,
            engine_body: self.engine.render_engine(t),
            gpu_body: self.engine.render_gpus(t),
        }
    }
}

impl Iterator for VirtualRun {
    type Item = Scrape;

    fn next(&mut self) -> Option<Scrape> {
        if self.next_scrape > self.duration + 1e-9 {
            return None;
        }
        loop {
            let now = self.clock.now();
            if self.engine.step_in_flight() {
                let end = self.engine.now_step_end();
                if end > self.next_scrape {
                    return Some(self.scrape());
                }
                self.emitted.clear();
                self.engine.complete(&mut self.emitted);
                self.clock.advance_to(end);
                continue;
            }
            self.apply_switches(now);
            self.engine.pump_arrivals(now);
            if self.engine.plan(now).is_some() {
                continue;
            }
            let mut wake = self.next_scrape;
            if let Some(a) = self.engine.next_arrival() {
                wake = wake.min(a);
            }
            if let Some(&(t, _)) = self.switches.first() {
                wake = wake.min(t);
            }
            if wake >= self.next_scrape {
                return Some(self.scrape());
            }
            self.clock.advance_to(wake);
        }
    }
}
