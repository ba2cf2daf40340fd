//! `strata scrape`: read each source (URL, file, stdin, NVML, the host collectors) once or
//! continuously, detect its dialect and print the canonical view.

mod host;
mod outcome;
mod read;
mod render;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use sources::gpu::FieldSet;
use sources::gpu::nvml::{NvmlCollector, NvmlProcesses};
use sources::host::infiniband::{InfinibandCollector, SYSFS_INFINIBAND};
use sources::host::kubelet::{KubeletCollector, POD_RESOURCES_SOCKET};
use sources::host::{ENGINE_GPU_JOB, EngineEndpoint, EngineGpuCollector};
use sources::scrape::{
    HostTarget, KindProfiles, NVML_JOB, Profile, ScrapeReport, Scraper, Target, TargetKind,
    TargetSpec, TargetState,
};
use tokio::sync::mpsc;

use crate::cli::{ProfileArg, ScrapeArgs};
use ::config::NvmlMode;
use outcome::Outcome;

/// One thing to read.
enum Source {
    /// An HTTP(S) endpoint.
    Url(Box<TargetSpec>),
    /// A file, or `-` for standard input.
    File(String),
    /// Local GPUs through NVML, with the GPU profiles.
    Nvml(KindProfiles),
    /// Which GPUs the local engines among the URLs use (with `nvml`).
    EngineGpu(Vec<EngineEndpoint>, KindProfiles),
    /// A collector of this node: NCCL logs, an engine's process, node PSI, InfiniBand ports,
    /// the kubelet.
    Host(host::HostSource),
}

impl Source {
    fn name(&self) -> String {
        match self {
            Source::Url(spec) => spec.url.to_string(),
            Source::File(path) => path.clone(),
            Source::Nvml(_) => "nvml".to_string(),
            Source::EngineGpu(..) => "engine-gpu".to_string(),
            Source::Host(h) => h.name(),
        }
    }
}

/// Runs `strata scrape`.
pub fn run(flag: Option<&Path>, args: ScrapeArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let Plan {
        sources,
        node,
        profile: configured,
    } = resolve(flag, &args)?;
    if sources.is_empty() {
        return Err("nothing to scrape: give a URL, a file or `nvml` (see `strata scrape --help`), or a config file with [[target]] entries".into());
    }
    if args.watch.is_some()
        && sources
            .iter()
            .any(|s| matches!(s, Source::File(p) if p == "-"))
    {
        return Err("--watch cannot re-read standard input; save it to a file first (or follow it for NCCL failures: `nccl:-`)".into());
    }
    let profile = match args.profile {
        Some(ProfileArg::Steady) => Profile::Steady,
        Some(ProfileArg::Incident) => Profile::Incident,
        None => configured.unwrap_or(Profile::Steady),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match args.watch {
            None => once(sources, profile, &node, args.json).await,
            Some(every) => watch(sources, profile, &node, every, args.json).await,
        }
    })
}

/// What to read, resolved from the command line and the config.
struct Plan {
    sources: Vec<Source>,
    /// Node name for NVML series.
    node: String,
    /// The config's start profile, if it sets one.
    profile: Option<Profile>,
}

/// Turns the command line (or, without sources, the config file) into a plan.
fn resolve(flag: Option<&Path>, args: &ScrapeArgs) -> Result<Plan, Box<dyn std::error::Error>> {
    let cfg_path = config::locate(flag);
    let (cfg, text) = match &cfg_path {
        Some(p) => config::load(p)?,
        None => (config::Config::default(), String::new()),
    };
    let node = cfg.node.clone().unwrap_or_else(crate::host::hostname);
    let mut out = Vec::new();
    let path = cfg_path.unwrap_or_else(|| PathBuf::from("strata.toml"));
    let gpu = cfg.profiles(TargetKind::Gpu, &path, &text)?;
    let engine = cfg.profiles(TargetKind::Engine, &path, &text)?;
    if args.sources.is_empty() {
        out.extend(
            config::target_specs(&cfg, &path, &text)?
                .into_iter()
                .map(|s| Source::Url(Box::new(s))),
        );
        if cfg.nvml.enabled != NvmlMode::Off {
            out.push(Source::Nvml(gpu));
        }
        add_engine_gpu(&mut out, &node, gpu);
        if InfinibandCollector::has_ports(Path::new(SYSFS_INFINIBAND)) {
            out.push(Source::Host(host::HostSource::Infiniband));
        }
        if KubeletCollector::in_kubernetes(Path::new(POD_RESOURCES_SOCKET)) {
            out.push(Source::Host(host::HostSource::Kubelet));
        }
        return Ok(Plan {
            sources: out,
            node,
            profile: cfg.scrape.profile,
        });
    }
    let token = match &args.bearer_token_file {
        Some(f) => Some(
            std::fs::read_to_string(f)
                .map_err(|e| format!("--bearer-token-file {}: {e}", f.display()))?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    let mut seen = std::collections::HashSet::new();
    for s in &args.sources {
        if !seen.insert(s.clone()) {
            continue;
        }
        if s.starts_with("http://") || s.starts_with("https://") {
            let url = sources::scrape::metrics_url(s).map_err(|e| e.to_string())?;
            let kind = kind_hint(s);
            let mut spec = TargetSpec::new(s.clone(), url, kind);
            spec.profiles = if kind == TargetKind::Gpu { gpu } else { engine };
            spec.bearer_token = token.clone();
            for p in [&mut spec.profiles.steady, &mut spec.profiles.incident] {
                // Watching keeps each scrape within its interval; a single read may take longer.
                p.timeout = match args.watch {
                    Some(_) => args.timeout.min(p.interval),
                    None => args.timeout,
                };
            }
            out.push(Source::Url(Box::new(spec)));
        } else if s == "nvml" {
            out.push(Source::Nvml(gpu));
        } else if let Some(h) = host::HostSource::parse(s)? {
            out.push(Source::Host(h));
        } else {
            out.push(Source::File(s.clone()));
        }
    }
    add_engine_gpu(&mut out, &node, gpu);
    Ok(Plan {
        sources: out,
        node,
        profile: cfg.scrape.profile,
    })
}

/// With `nvml` among the sources, also shows which GPUs the local engines among them use.
fn add_engine_gpu(sources: &mut Vec<Source>, node: &str, profiles: KindProfiles) {
    if !sources.iter().any(|s| matches!(s, Source::Nvml(_))) {
        return;
    }
    let engines: Vec<EngineEndpoint> = sources
        .iter()
        .filter_map(|s| match s {
            Source::Url(spec) => EngineEndpoint::of(spec, node),
            _ => None,
        })
        .collect();
    if !engines.is_empty() {
        sources.push(Source::EngineGpu(engines, profiles));
    }
}

/// The engine↔GPU mapping of `engines` as a scrape target on this node.
fn engine_gpu(engines: Vec<EngineEndpoint>, node: &str, profiles: KindProfiles) -> HostTarget {
    let collector = EngineGpuCollector::live(engines, Box::new(NvmlProcesses), node.to_string());
    HostTarget::new(Box::new(collector), node.to_string(), profiles)
}

/// URLs on DCGM's default port get the GPU profile; everything else is an engine.
fn kind_hint(url: &str) -> TargetKind {
    if url.contains(":9400/") {
        TargetKind::Gpu
    } else {
        TargetKind::Engine
    }
}

/// Host collectors poll on the engine cadence (10 s steady).
fn engine_profiles() -> KindProfiles {
    KindProfiles::engine_default()
}

fn fields(profile: Profile) -> FieldSet {
    match profile {
        Profile::Steady => FieldSet::Full,
        Profile::Incident => FieldSet::Reduced,
    }
}

/// Opens NVML as a scrape target; a missing library is an outcome, not a crash.
async fn open_nvml(node: &str, profiles: KindProfiles) -> Result<HostTarget, Outcome> {
    let node = node.to_string();
    let instance = node.clone();
    match tokio::task::spawn_blocking(move || NvmlCollector::open(&node)).await {
        Ok(Ok(c)) => Ok(HostTarget::new(Box::new(c), instance, profiles)),
        Ok(Err(e)) => Err(Outcome::failed("nvml", e.to_string())),
        Err(e) => Err(Outcome::failed("nvml", format!("NVML probe crashed: {e}"))),
    }
}

/// One read of a collector on this node, its status line as the note (or, for the
/// kubelet, with every series listed).
async fn read_host(name: &str, mut target: HostTarget, profile: Profile) -> Outcome {
    let settings = target.profiles().get(profile);
    let report = target.scrape(settings).await;
    if host::HostSource::lists_series(target.job()) {
        return Outcome::from_host(name, &report, target.status());
    }
    let mut o = Outcome::from_report(name, &report, settings.fields);
    o.note = Some(target.status());
    o
}

async fn read_file(path: String) -> Outcome {
    let name = path.clone();
    tokio::task::spawn_blocking(move || read::file(&path))
        .await
        .unwrap_or_else(|e| Outcome::failed(&name, format!("reading crashed: {e}")))
}

async fn once(
    sources: Vec<Source>,
    profile: Profile,
    node: &str,
    json: bool,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, source) in sources.into_iter().enumerate() {
        let node = node.to_string();
        tasks.spawn(async move {
            let name = source.name();
            let outcome = match source {
                Source::Url(spec) => {
                    let settings = spec.profiles.get(profile);
                    match TargetState::new(*spec) {
                        Ok(mut state) => Outcome::from_report(
                            &name,
                            &state.scrape(settings).await,
                            settings.fields,
                        ),
                        Err(e) => Outcome::failed(&name, e.to_string()),
                    }
                }
                Source::File(path) => read_file(path).await,
                Source::EngineGpu(engines, profiles) => {
                    read_host(&name, engine_gpu(engines, &node, profiles), profile).await
                }
                Source::Nvml(profiles) => match open_nvml(&node, profiles).await {
                    Ok(target) => read_host(&name, target, profile).await,
                    Err(o) => o,
                },
                Source::Host(h) => {
                    read_host(&name, h.open(&node, engine_profiles()), profile).await
                }
            };
            (i, outcome)
        });
    }
    let mut outcomes: Vec<(usize, Outcome)> = tasks.join_all().await;
    outcomes.sort_by_key(|(i, _)| *i);
    let outcomes: Vec<Outcome> = outcomes.into_iter().map(|(_, o)| o).collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&outcomes)?);
    } else {
        print!("{}", render::text(&outcomes));
    }
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.is_failure()).collect();
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        for o in &failed {
            eprintln!("error: {}: {}", o.source, o.error.as_deref().unwrap_or(""));
        }
        Ok(ExitCode::from(1))
    }
}

/// Keeps reading: URL and NVML targets through the scraper (each on its profile's cadence),
/// files every `every`; the view refreshes as results arrive, until Ctrl-C.
async fn watch(
    sources: Vec<Source>,
    profile: Profile,
    node: &str,
    every: Duration,
    json: bool,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let names: Vec<String> = sources.iter().map(Source::name).collect();
    let (tx, mut rx) = mpsc::channel::<(usize, Outcome)>(64);
    let mut targets = Vec::new();
    let mut jobs: Vec<(String, usize)> = Vec::new();
    for (i, source) in sources.into_iter().enumerate() {
        match source {
            Source::Url(mut spec) => {
                spec.job = i.to_string();
                jobs.push((spec.job.clone(), i));
                targets.push(Target::Http(*spec));
            }
            Source::Nvml(profiles) => match open_nvml(node, profiles).await {
                Ok(target) => {
                    jobs.push((NVML_JOB.to_string(), i));
                    targets.push(Target::Host(target));
                }
                Err(o) => tx.send((i, o)).await?,
            },
            Source::EngineGpu(engines, profiles) => {
                jobs.push((ENGINE_GPU_JOB.to_string(), i));
                targets.push(Target::Host(engine_gpu(engines, node, profiles)));
            }
            Source::Host(h) => {
                let target = h.open(node, engine_profiles());
                jobs.push((target.job().to_string(), i));
                targets.push(Target::Host(target));
            }
            Source::File(path) => {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(every);
                    loop {
                        tick.tick().await;
                        if tx.send((i, read_file(path.clone()).await)).await.is_err() {
                            return;
                        }
                    }
                });
            }
        }
    }
    let (reports_tx, mut reports) = mpsc::channel::<ScrapeReport>(64);
    let scraper = Scraper::start(targets, profile, reports_tx)?;
    let fields = fields(profile);
    let forward = tx.clone();
    let source_names = names.clone();
    tokio::spawn(async move {
        while let Some(r) = reports.recv().await {
            let Some(&(_, i)) = jobs.iter().find(|(job, _)| *job == r.job) else {
                continue;
            };
            let name = source_names.get(i).cloned().unwrap_or_default();
            let outcome = if host::HostSource::lists_series(&r.job) {
                Outcome::from_host(&name, &r, r.warnings.join("; "))
            } else {
                Outcome::from_report(&name, &r, fields)
            };
            if forward.send((i, outcome)).await.is_err() {
                return;
            }
        }
    });
    drop(tx);
    let mut latest: Vec<Option<Outcome>> = vec![None; names.len()];
    let tty = std::io::stdout().is_terminal();
    loop {
        tokio::select! {
            got = rx.recv() => {
                let Some((i, o)) = got else { break };
                if json {
                    println!("{}", serde_json::to_string(&o)?);
                }
                if let Some(slot) = latest.get_mut(i) {
                    *slot = Some(o);
                }
                if !json {
                    let shown: Vec<Outcome> = latest.iter().flatten().cloned().collect();
                    if tty {
                        print!("\x1b[2J\x1b[H");
                    }
                    print!("{}", render::text(&shown));
                    println!("profile {:?} · {} of {} source(s) read · Ctrl-C to stop", scraper.profile(), shown.len(), names.len());
                }
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    scraper.stop();
    Ok(ExitCode::SUCCESS)
}
