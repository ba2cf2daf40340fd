//! Prometheus rules for Strata: rule files are loaded and checked ([`check`]), their
//! templates parsed ([`template`]), groups evaluated on their interval against any
//! [`Query`] implementation ([`engine`]), alerts moved through inactive → pending → firing
//! with Prometheus's semantics ([`alert`]), and notifications sent to Alertmanager or a
//! JSON webhook ([`notify`]).

pub mod alert;
pub mod check;
pub mod engine;
pub mod file;
pub mod humanize;
pub mod inhibit;
pub mod notify;
pub mod template;

pub use check::{AlertSpec, GroupSpec, RuleError, RuleSpec, load};
pub use engine::{Appender, EngineConfig, Query, RuleEngine};
