//! Load shapes: a fixed number of requests in flight, or arrivals at a rate (Poisson, or
//! gamma-distributed gaps for burstier or smoother traffic), and sweeps over either.

mod arrivals;
mod sweep;

use std::fmt;

use serde::Serialize;

pub use arrivals::Arrivals;
pub use sweep::parse_sweep;

/// How requests are issued.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Shape {
    /// Keep this many requests in flight (closed loop).
    Concurrency {
        /// Requests in flight.
        n: u32,
    },
    /// Start requests at this mean rate (open loop), whatever is in flight.
    Rate {
        /// Requests per second.
        rate: f64,
        /// Gamma shape of the gaps: 1 is Poisson, below 1 burstier, above 1 smoother
        /// (vLLM benchmark's `--burstiness`).
        burstiness: f64,
        /// At most this many requests in flight: an arrival beyond it waits for a slot
        /// and its clock starts when it is sent (vLLM benchmark's `--max-concurrency`).
        max_concurrency: Option<u32>,
    },
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Concurrency { n } => write!(f, "concurrency {n}"),
            Shape::Rate {
                rate,
                burstiness,
                max_concurrency,
            } => {
                if *burstiness == 1.0 {
                    write!(f, "rate {rate}/s (Poisson)")?;
                } else {
                    write!(f, "rate {rate}/s (burstiness {burstiness})")?;
                }
                match max_concurrency {
                    Some(m) => write!(f, ", at most {m} in flight"),
                    None => Ok(()),
                }
            }
        }
    }
}
