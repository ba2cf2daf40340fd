//! Engine and exporter dialects: detection, and the data tables that map native metric names
//! onto Strata's canonical vocabulary.

mod detect;
mod doc;
mod table;
mod view;
mod vocabulary;

pub use detect::{Detected, detect, version_of};
pub use doc::signals_doc;
pub use table::{AbsentRow, DialectTable, MapRow, Version, table, tables};
pub use view::{
    CanonicalSeries, CanonicalView, SeriesValue, SignalStatus, bucket_quantile, canonical_view,
    direct_view,
};
pub use vocabulary::{CanonicalSignal, Layer, SignalType, Vocabulary, canonical};
