//! The scraper: fetches engine and exporter `/metrics`, parses them, attaches target labels,
//! tracks staleness and reports `up` / `scrape_duration_seconds` / `scrape_samples_scraped`.

mod client;
mod host_target;
mod identity;
mod ingest;
mod metrics_url;
mod profile;
mod runner;
mod staleness;
mod target;

pub use crate::gpu::nvml::NVML_JOB;
pub use client::{ACCEPT, Body, Client, FetchError, install_crypto_provider};
pub use host_target::HostTarget;
pub use identity::{ENGINE_INFO, display_name, info_series, model_from_api};
pub use ingest::{
    BodyKeys, Reading, ScrapedExemplar, Series, SeriesSamples, exemplars_of, field_filter, keeps,
    target_labels, to_points,
};
pub use metrics_url::{MetricsUrlError, metrics_url};
pub use profile::{KindProfiles, Profile, ProfileSettings};
pub use runner::{FamilyMetadata, ScrapeReport, Scraper, Target, TargetChanges, TargetState};
pub use staleness::SeriesTracker;
pub use target::{TargetKind, TargetSpec, default_timeout};
