//! Time: real (optionally sped up) for the servers, virtual for fast deterministic runs.
//!
//! The scheduler never reads a clock itself: every call takes the simulated time in seconds
//! since the start of the run. The real-time server converts with [`Clock`]; virtual runs
//! just advance a number.

use std::time::{Duration, Instant};

/// Where simulated time comes from.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    /// Wall-clock time since `start`, multiplied by `speed` (1.0 = real time).
    Real {
        /// The instant simulated time 0 corresponds to.
        start: Instant,
        /// Simulated seconds per real second.
        speed: f64,
    },
    /// Simulated time that only moves when the run advances it.
    Virtual {
        /// Current simulated time in seconds.
        now: f64,
    },
}

impl Clock {
    /// A real-time clock starting now.
    pub fn real(speed: f64) -> Clock {
        Clock::Real {
            start: Instant::now(),
            speed: if speed > 0.0 { speed } else { 1.0 },
        }
    }

    /// Current simulated time in seconds.
    pub fn now(&self) -> f64 {
        match *self {
            Clock::Real { start, speed } => start.elapsed().as_secs_f64() * speed,
            Clock::Virtual { now } => now,
        }
    }

    /// The wall-clock instant at which simulated time `t` is reached (real clocks only;
    /// a virtual clock answers "now").
    pub fn instant_of(&self, t: f64) -> Instant {
        match *self {
            Clock::Real { start, speed } => start + Duration::from_secs_f64((t / speed).max(0.0)),
            Clock::Virtual { .. } => Instant::now(),
        }
    }

    /// Real duration of `d` simulated seconds.
    pub fn real_duration(&self, d: f64) -> Duration {
        match *self {
            Clock::Real { speed, .. } => Duration::from_secs_f64((d / speed).max(0.0)),
            Clock::Virtual { .. } => Duration::ZERO,
        }
    }

    /// Moves a virtual clock to `t` (never backwards); no effect on a real clock.
    pub fn advance_to(&mut self, t: f64) {
        if let Clock::Virtual { now } = self
            && t > *now
        {
            *now = t;
        }
    }
}
