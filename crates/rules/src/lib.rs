//! Prometheus rules for Strata: rule files are loaded and checked ([`check`]), their
//! templates parsed ([`template`]), groups evaluated on their interval against any
//! [`Query`] implementation ([`engine`]), alerts moved through inactive → pending → firing
//! with Prometheus's semantics ([`alert`]), and inhibitions between them ([`inhibit`]); the
//! notifier that sends due alerts to Alertmanager or a webhook lives with the other sinks
//! (`sinks::notify`).
//!
//! The brain on top: canonical recording rules generated from the dialect tables
//! ([`canonical`]), the built-in alert, diagnosis and SLO packs ([`packs`], [`slo`]),
//! cost rules and the cost report ([`cost`]), findings with history ([`findings`]) and step-by-step evaluation ([`triage`]).

pub mod alert;
pub mod canonical;
pub mod check;
pub mod cost;
pub mod engine;
pub mod file;
pub mod findings;
pub mod humanize;
pub mod inhibit;
pub mod packs;
pub mod slo;
pub mod template;
pub mod triage;
pub mod yaml;

pub use check::{AlertSpec, GroupSpec, RuleError, RuleSpec, load};
pub use engine::{Append, EngineConfig, Query, RuleEngine};
