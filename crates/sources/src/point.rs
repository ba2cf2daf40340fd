//! The one sample type every source produces, shared with every other crate through
//! `strata-core`.

pub use strata_core::{LabelSet, Point, now_ms};
