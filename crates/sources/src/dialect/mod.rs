//! Engine and exporter dialects: detection, and the data tables that map native metric names
//! onto Strata's canonical vocabulary.

mod vocabulary;

pub use vocabulary::{CanonicalSignal, Layer, SignalType, Vocabulary, canonical};
