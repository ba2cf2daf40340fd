//! The scrape loop: one task per target, each on its own cadence, so a slow or dead target
//! never delays the others; the profile is switched at run time through [`Scraper::set_profile`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use expo::{Exposition, MetricType, ParseError};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::client::{Client, FetchError};
use super::host_target::HostTarget;
use super::identity::{ModelLookup, display_name, info_series};
use super::ingest::{
    BodyKeys, Reading, ScrapedExemplar, Series, SeriesSamples, exemplars_of, field_filter, keeps,
    target_labels,
};
use super::profile::{KindProfiles, Profile, ProfileSettings};
use super::staleness::SeriesTracker;
use super::target::{TargetKind, TargetSpec};
use crate::dialect::{self, Detected};
use crate::gpu::FieldSet;
use crate::point::{LabelSet, Point, now_ms};

/// What one scrape of one target produced.
#[derive(Debug)]
pub struct ScrapeReport {
    /// The target's `job`.
    pub job: String,
    /// The target's `instance`.
    pub instance: String,
    /// When the scrape started (ms since epoch).
    pub timestamp_ms: i64,
    /// How long it took.
    pub duration: Duration,
    /// `None` when the target answered, else why it is down.
    pub error: Option<String>,
    /// The samples of the target's series (native ones, the field set applied, and
    /// `strata_engine_info`), on a list of series shared with the target's other reports
    /// while it holds the same series.
    pub samples: SeriesSamples,
    /// What comes after `samples`: staleness markers, then `up`, `scrape_duration_seconds`,
    /// `scrape_samples_scraped` exactly as Prometheus names them.
    pub points: Vec<Point>,
    /// Lines of the body that were skipped.
    pub parse_errors: Vec<ParseError>,
    /// Problems that did not fail the scrape (a body repaired to UTF-8, GPU fields NVML
    /// could not read).
    pub warnings: Vec<String>,
    /// The body's dialect, when recognised.
    pub dialect: Option<Detected>,
    /// `# TYPE` / `# HELP` / `# UNIT` of each family in the body, for the metadata API.
    pub metadata: Vec<FamilyMetadata>,
    /// Samples in the body (before the field set was applied).
    pub samples_scraped: usize,
    /// The body's OpenMetrics exemplars, with the series they belong to.
    pub exemplars: Vec<ScrapedExemplar>,
    /// Names the series of `samples` and `points`, in order: two reports with the same
    /// non-zero number carry exactly the same series in the same order (so the store can skip looking them
    /// up, `tsdb::SeriesRefs`); 0 vouches for nothing.
    pub series_layout: u64,
}

impl ScrapeReport {
    /// An empty report for `job`/`instance`, started at `timestamp_ms`.
    pub fn new(job: &str, instance: &str, timestamp_ms: i64) -> ScrapeReport {
        ScrapeReport {
            job: job.to_string(),
            instance: instance.to_string(),
            timestamp_ms,
            duration: Duration::ZERO,
            error: None,
            samples: SeriesSamples::default(),
            points: Vec::new(),
            parse_errors: Vec::new(),
            warnings: Vec::new(),
            dialect: None,
            metadata: Vec::new(),
            samples_scraped: 0,
            exemplars: Vec::new(),
            series_layout: 0,
        }
    }

    /// Every sample as an owned point, in order: `samples`, then `points`.
    pub fn all_points(&self) -> impl Iterator<Item = Point> + '_ {
        self.samples.points().chain(self.points.iter().cloned())
    }

    /// The native samples only (no staleness markers, no `up`/`scrape_*` series).
    pub fn native_points(&self) -> impl Iterator<Item = Point> + '_ {
        self.all_points()
            .filter(|p| !expo::is_stale_nan(p.value) && !is_meta(&p.name))
    }
}

/// What a body declares about one metric family.
#[derive(Debug, Clone, PartialEq)]
pub struct FamilyMetadata {
    /// Family name.
    pub name: String,
    /// Declared type (`Unknown` when undeclared).
    pub metric_type: MetricType,
    /// `# HELP` text.
    pub help: Option<String>,
    /// `# UNIT` (OpenMetrics).
    pub unit: Option<String>,
}

impl FamilyMetadata {
    /// The metadata of every family that declares a type or a help text.
    pub fn of(exposition: &Exposition<'_>) -> Vec<FamilyMetadata> {
        exposition
            .families
            .iter()
            .filter(|f| f.metric_type != MetricType::Unknown || f.help.is_some())
            .map(|f| FamilyMetadata {
                name: f.name.to_string(),
                metric_type: f.metric_type,
                help: f.help.as_ref().map(|h| h.to_string()),
                unit: f.unit.map(str::to_string),
            })
            .collect()
    }
}

fn is_meta(name: &str) -> bool {
    matches!(
        name,
        "up" | "scrape_duration_seconds" | "scrape_samples_scraped"
    )
}

/// A target together with its client and its series memory.
pub struct TargetState {
    spec: TargetSpec,
    client: Client,
    tracker: SeriesTracker,
    /// The last body's series as its text named them, and the field set it was read with:
    /// a body naming the same series takes the tracker's last list as it is.
    last_body: Option<(BodyKeys, FieldSet)>,
    labels: LabelSet,
    model: ModelLookup,
}

impl TargetState {
    /// Prepares a target (builds its HTTP client).
    pub fn new(spec: TargetSpec) -> Result<TargetState, FetchError> {
        let client = Client::new(&spec)?;
        let labels = target_labels(&spec.job, &spec.instance(), &spec.labels);
        Ok(TargetState {
            spec,
            client,
            tracker: SeriesTracker::default(),
            last_body: None,
            labels,
            model: ModelLookup::default(),
        })
    }

    /// The target's configuration.
    pub fn spec(&self) -> &TargetSpec {
        &self.spec
    }

    /// Scrapes once with `settings` and builds the report.
    pub async fn scrape(&mut self, settings: ProfileSettings) -> ScrapeReport {
        let timestamp_ms = now_ms();
        let started = Instant::now();
        let fetched = self.client.fetch(&self.spec, settings.timeout).await;
        let mut report = ScrapeReport::new(&self.spec.job, &self.spec.instance(), timestamp_ms);
        report.duration = started.elapsed();
        match fetched {
            Ok(body) => {
                let mut exposition = expo::parse(&body.text, body.format);
                report.samples_scraped = exposition.sample_count();
                report.exemplars = exemplars_of(&exposition, &self.labels, timestamp_ms);
                report.metadata = FamilyMetadata::of(&exposition);
                report.dialect = dialect::detect(
                    exposition
                        .families
                        .iter()
                        .flat_map(|f| f.samples.iter().map(|s| s.name)),
                );
                let filter = field_filter(report.dialect.as_ref(), settings.fields);
                let kept = || {
                    exposition
                        .samples()
                        .filter(|s| keeps(filter.as_deref(), s.name))
                };
                let mut readings: Vec<Reading> = kept()
                    .map(|s| Reading {
                        value: s.value,
                        timestamp_ms: s.timestamp_ms.unwrap_or(timestamp_ms),
                    })
                    .collect();
                // The same series as last time: the last list (which starts with them) is
                // reused, and no series is built.
                let previous = self.tracker.previous().clone();
                let same_body =
                    self.last_body.as_ref().is_some_and(|(keys, f)| {
                        *f == settings.fields && keys.matches(&exposition)
                    }) && previous.len() >= readings.len();
                let built: Vec<Series>;
                let body_series = if same_body {
                    &previous[..readings.len()]
                } else {
                    built = kept().map(|s| Series::of(s, &self.labels)).collect();
                    &built[..]
                };
                let info = self
                    .engine_info(&report, body_series, settings, timestamp_ms)
                    .await
                    .filter(|i| keeps(filter.as_deref(), &i.name));
                let series: Arc<[Series]> =
                    if same_body && previous.get(readings.len()..) == Some(info.as_slice()) {
                        previous
                    } else {
                        body_series
                            .iter()
                            .cloned()
                            .chain(info.iter().cloned())
                            .collect()
                    };
                if info.is_some() {
                    readings.push(Reading {
                        value: 1.0,
                        timestamp_ms,
                    });
                }
                let stale = self.tracker.update(&series, timestamp_ms);
                // The store reuses series by position for a repeated layout: a report with
                // staleness markers is longer than the next one of the same layout, so its
                // meta points (added below, the same every time) would land on the positions
                // of the markers. Such a report takes the plain path.
                report.series_layout = if stale.is_empty() {
                    self.tracker.layout()
                } else {
                    0
                };
                report.samples = SeriesSamples { series, readings };
                report.points = stale;
                if !same_body {
                    self.last_body = Some((BodyKeys::of(&exposition), settings.fields));
                }
                report.parse_errors = std::mem::take(&mut exposition.errors);
                if body.lossy {
                    report.parse_errors.push(ParseError {
                        line: 0,
                        message: "body is not valid UTF-8; bad bytes were replaced by U+FFFD"
                            .into(),
                        excerpt: String::new(),
                    });
                }
            }
            Err(e) => {
                report.error = Some(e.to_string());
                report.points = self.tracker.all_stale(timestamp_ms);
                self.last_body = None;
            }
        }
        add_meta(&mut report, &self.spec.job);
        report
    }
}

impl TargetState {
    /// `strata_engine_info` for an engine target whose dialect was recognised.
    async fn engine_info(
        &mut self,
        report: &ScrapeReport,
        series: &[Series],
        settings: ProfileSettings,
        timestamp_ms: i64,
    ) -> Option<Series> {
        let engine = report.dialect.as_ref()?.table.name.as_str();
        if self.spec.kind != TargetKind::Engine || engine == "dcgm" {
            return None;
        }
        let instance = self.spec.instance();
        let model = self
            .model
            .model(
                self.client.http(),
                &self.spec,
                engine,
                series.iter().map(|s| &s.labels),
                settings.timeout,
                timestamp_ms,
            )
            .await;
        let name = display_name(self.spec.name.as_deref(), engine, &instance);
        let node = self.spec.node.as_deref().unwrap_or_default();
        Some(info_series(
            &self.spec.job,
            &instance,
            engine,
            &name,
            &model,
            node,
        ))
    }
}

/// Appends `up`, `scrape_duration_seconds` and `scrape_samples_scraped`, labelled with the
/// target's `job` and `instance` as Prometheus does.
pub(super) fn add_meta(report: &mut ScrapeReport, job: &str) {
    let up = if report.error.is_none() { 1.0 } else { 0.0 };
    let meta = [
        ("up", up),
        ("scrape_duration_seconds", report.duration.as_secs_f64()),
        ("scrape_samples_scraped", report.samples_scraped as f64),
    ];
    for (name, value) in meta {
        let labels = target_labels(job, &report.instance, &[]);
        report
            .points
            .push(Point::new(name, labels, value, report.timestamp_ms));
    }
}

/// Something the scraper polls: an HTTP endpoint or a collector on this node (NVML, ...).
pub enum Target {
    /// An engine's or exporter's metrics URL.
    Http(TargetSpec),
    /// A collector on this node: NVML (GPU profiles), `/sys` and `/proc` readers, logs.
    Host(HostTarget),
}

impl Target {
    /// `job url` (or the job, `nvml`, for a collector on this node): how reports and reloads
    /// name a target.
    pub fn name(&self) -> String {
        match self {
            Target::Http(spec) => format!("{} {}", spec.job, spec.url),
            Target::Host(h) => h.job().to_string(),
        }
    }

    /// What must stay equal for a reload to keep the target running.
    fn identity(&self) -> Identity {
        match self {
            Target::Http(spec) => Identity::Http(Box::new(spec.clone())),
            Target::Host(h) => Identity::Host(h.job(), h.profiles()),
        }
    }
}

#[derive(PartialEq)]
enum Identity {
    Http(Box<TargetSpec>),
    Host(&'static str, KindProfiles),
}

enum Running {
    Http(Box<TargetState>),
    Host(Box<HostTarget>),
}

impl Running {
    fn of(target: Target) -> Result<Running, FetchError> {
        match target {
            Target::Http(spec) => TargetState::new(spec).map(|s| Running::Http(Box::new(s))),
            Target::Host(h) => Ok(Running::Host(Box::new(h))),
        }
    }

    fn profiles(&self) -> KindProfiles {
        match self {
            Running::Http(t) => t.spec.profiles,
            Running::Host(t) => t.profiles(),
        }
    }

    async fn scrape(&mut self, settings: ProfileSettings) -> ScrapeReport {
        match self {
            Running::Http(t) => t.scrape(settings).await,
            Running::Host(t) => t.scrape(settings).await,
        }
    }
}

/// One target's loop.
struct Task {
    name: String,
    identity: Identity,
    handle: JoinHandle<()>,
}

/// What [`Scraper::set_targets`] changed; targets named as [`Target::name`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetChanges {
    /// Targets started.
    pub added: Vec<String>,
    /// Targets stopped.
    pub removed: Vec<String>,
    /// Targets left running as they were.
    pub kept: usize,
}

/// The running scraper: one task per target.
pub struct Scraper {
    profile: watch::Sender<Profile>,
    reports: mpsc::Sender<ScrapeReport>,
    tasks: Mutex<Vec<Task>>,
}

impl Scraper {
    /// Starts scraping every target under `profile`, sending each report to `reports`.
    /// Fails before starting anything if a target's client cannot be built.
    pub fn start(
        targets: Vec<Target>,
        profile: Profile,
        reports: mpsc::Sender<ScrapeReport>,
    ) -> Result<Scraper, FetchError> {
        let (tx, _) = watch::channel(profile);
        let scraper = Scraper {
            profile: tx,
            reports,
            tasks: Mutex::new(Vec::new()),
        };
        scraper.set_targets(targets)?;
        Ok(scraper)
    }

    /// Scrapes `targets` from now on (a config reload): targets equal to running ones keep
    /// running untouched, new or changed ones start, the others stop (a scrape of theirs in
    /// progress is dropped). Fails before changing anything if a new target's client cannot
    /// be built.
    pub fn set_targets(&self, targets: Vec<Target>) -> Result<TargetChanges, FetchError> {
        let mut tasks = strata_core::sync::lock(&self.tasks);
        let mut old: Vec<Option<Task>> = tasks.drain(..).map(Some).collect();
        let mut kept = Vec::new();
        let mut start = Vec::new();
        for target in targets {
            let identity = target.identity();
            let same = old
                .iter_mut()
                .find(|t| t.as_ref().is_some_and(|t| t.identity == identity));
            match same.and_then(Option::take) {
                Some(task) => kept.push(task),
                None => match (target.name(), Running::of(target)) {
                    (name, Ok(state)) => start.push((name, identity, state)),
                    (_, Err(e)) => {
                        // Nothing changed: put every running task back.
                        tasks.extend(kept);
                        tasks.extend(old.into_iter().flatten());
                        return Err(e);
                    }
                },
            }
        }
        let mut changes = TargetChanges {
            kept: kept.len(),
            ..TargetChanges::default()
        };
        for task in old.into_iter().flatten() {
            task.handle.abort();
            changes.removed.push(task.name);
        }
        tasks.extend(kept);
        for (name, identity, state) in start {
            let handle = tokio::spawn(run_target(
                state,
                self.profile.subscribe(),
                self.reports.clone(),
            ));
            changes.added.push(name.clone());
            tasks.push(Task {
                name,
                identity,
                handle,
            });
        }
        Ok(changes)
    }

    /// Switches every target to `profile`; the new cadence starts at once.
    pub fn set_profile(&self, profile: Profile) {
        self.profile.send_replace(profile);
    }

    /// The profile in force.
    pub fn profile(&self) -> Profile {
        *self.profile.borrow()
    }

    /// Stops every target loop (the scraper can be shared: every holder sees it stopped).
    pub fn stop(&self) {
        let tasks = std::mem::take(&mut *strata_core::sync::lock(&self.tasks));
        for task in tasks {
            task.handle.abort();
        }
    }
}

async fn run_target(
    mut state: Running,
    mut profile: watch::Receiver<Profile>,
    reports: mpsc::Sender<ScrapeReport>,
) {
    loop {
        let settings = state.profiles().get(*profile.borrow_and_update());
        let started = tokio::time::Instant::now();
        let report = state.scrape(settings).await;
        if reports.send(report).await.is_err() {
            return; // nobody listens any more
        }
        let next = started + settings.interval;
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            changed = profile.changed() => {
                if changed.is_err() {
                    return; // the scraper was dropped
                }
            }
        }
    }
}
