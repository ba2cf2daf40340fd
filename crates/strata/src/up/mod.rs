//! `strata up`: the single-node pipeline from one config file and/or flags. This module is
//! the glue: it resolves the config and flags into a [`node::Plan`] (autodetecting engines
//! when there is neither), starts the node, re-reads the config on reload, and shuts the node
//! down on Ctrl-C / SIGTERM within its deadline.

mod args;
mod autodetect;
mod rules;
mod settings;
mod targets;

pub(crate) use args::parse_label;
pub use args::{IncidentArgs, TestArgs, UpArgs};
pub(crate) use rules::{inhibitions, rule_groups};
pub(crate) use settings::read_token;
#[cfg(test)]
pub(crate) use settings::resolve as resolve_settings;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use ::config::Config;
use node::{Plan, PlanSource};
use tokio::task::JoinHandle;

/// Started beside the node once the gateway listens (its address given), stopped first at
/// shutdown: `strata demo`'s traffic.
pub(crate) type Companion = Box<dyn FnOnce(Option<SocketAddr>) -> Vec<JoinHandle<()>> + Send>;

/// Runs `strata up` until Ctrl-C or SIGTERM.
pub fn run(
    flag: Option<&std::path::Path>,
    args: UpArgs,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let path = ::config::locate(flag);
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    Ok(runtime.block_on(async move {
        // A brain over a backend reads the fleet: it has nothing of its own to look for.
        let autodetect = path.is_none()
            && args.engines.is_empty()
            && args.gpus.is_empty()
            && args.backend.is_none();
        let first = if autodetect {
            autodetected_plan(&args).await?
        } else {
            plan(path.as_deref(), &args).await?
        };
        let source: PlanSource = {
            let (path, args) = (path.clone(), args.clone());
            Arc::new(move || {
                let (path, args) = (path.clone(), args.clone());
                Box::pin(async move {
                    let Some(path) = path else {
                        return Err("strata up was started without a config file: there is nothing to re-read (start it with --config strata.toml)".to_string());
                    };
                    plan(Some(&path), &args).await
                })
            })
        };
        serve(first, None, Some(source)).await
    })?)
}

/// The plan of the config file at `path` (none: defaults) overlaid with `args`.
async fn plan(path: Option<&std::path::Path>, args: &UpArgs) -> Result<Plan, String> {
    let loaded = path.map(load).transpose()?;
    let (settings, groups, gateway) = checked(loaded.as_ref(), args)?;
    let inhibit = rules::inhibitions(&settings)?;
    let targets = targets::targets(loaded.as_ref(), args).await?;
    if targets.is_empty() && gateway.is_none() && settings.backend.is_none() {
        let place = loaded
            .as_ref()
            .map_or(PathBuf::from("the command line"), |l| l.path.clone());
        return Err(format!(
            "{}: nothing to scrape: give --engine URL and/or --gpu URL|nvml, or [[target]] / [[gateway.upstream]] in strata.toml",
            place.display()
        ));
    }
    Ok(Plan {
        settings,
        targets,
        groups,
        inhibit,
        gateway,
        scenarios: None,
    })
}

/// What `strata up` would run with, checked without starting anything: settings, rule groups
/// (an unknown SLO profile or a bad rule file fails here) and the embedded gateway (port
/// clashes fail here). `strata config check` runs exactly this, so a config it passes starts.
pub(crate) fn checked(
    loaded: Option<&targets::Loaded>,
    args: &UpArgs,
) -> Result<
    (
        node::Settings,
        Vec<::rules::GroupSpec>,
        Option<gateway::GatewayConfig>,
    ),
    String,
> {
    let default = Config::default();
    let config = loaded.map_or(&default, |l| &l.config);
    let settings = settings::resolve(config, args)?;
    let groups = rules::rule_groups(config, &settings)?;
    let gateway = match loaded {
        Some(l) => crate::gateway_cmd::embedded_settings(&l.config, &l.path, &l.text)?,
        None => None,
    };
    if let Some(g) = &gateway {
        let place = loaded.map_or(String::new(), |l| format!("{}: ", l.path.display()));
        let mut ports = vec![
            ("[api] listen", settings.listen),
            ("[gateway] listen", g.listen),
        ];
        if let Some(admin) = g.admin {
            ports.push(("[gateway] admin", admin));
        }
        for (i, (a, x)) in ports.iter().enumerate() {
            for (b, y) in &ports[i + 1..] {
                if x == y && x.port() != 0 {
                    return Err(format!(
                        "{place}{a} and {b} are both {x}: give each its own address"
                    ));
                }
            }
        }
    }
    Ok((settings, groups, gateway))
}

/// The config file at `path` checked as `strata up` would start from it (no flags).
pub(crate) fn check_file(path: &std::path::Path) -> Result<(), String> {
    checked(Some(&load(path)?), &UpArgs::default()).map(|_| ())
}

/// The config file at `path`, with its path and text for locating later errors.
fn load(path: &std::path::Path) -> Result<targets::Loaded, String> {
    let (config, text) = ::config::load(path).map_err(|e| e.to_string())?;
    Ok(targets::Loaded {
        config,
        path: path.to_path_buf(),
        text,
    })
}

/// No config file and no targets on the command line: what runs on this machine.
async fn autodetected_plan(args: &UpArgs) -> Result<Plan, String> {
    eprintln!("strata up: no strata.toml and no --engine/--gpu: looking on this machine");
    let node = args.node(&Config::default());
    let found = autodetect::autodetect(&args.testing, &node, args.agent).await?;
    for l in &found.lines {
        eprintln!("  {l}");
    }
    if found.targets.is_empty() {
        return Err(
            "nothing found to scrape: start an engine on its usual port, give --engine URL / --gpu URL|nvml, or write a strata.toml (`strata config example`)"
                .to_string(),
        );
    }
    let config = Config::default();
    let settings = settings::resolve(&config, args)?;
    Ok(Plan {
        groups: rules::rule_groups(&config, &settings)?,
        inhibit: rules::inhibitions(&settings)?,
        settings,
        targets: found.targets,
        gateway: None,
        scenarios: None,
    })
}

/// Runs a node with `plan` until Ctrl-C or SIGTERM (or until its API server fails), then
/// shuts it down within its deadline. Exit 0 when every step finished, 1 when one missed the
/// deadline or failed (each is named in the log).
pub(crate) async fn serve(
    plan: Plan,
    companion: Option<Companion>,
    reload: Option<PlanSource>,
) -> Result<ExitCode, String> {
    let mut running = node::start(plan, reload).await?;
    let companions = match companion {
        Some(f) => f(running.gateway_addr()),
        None => Vec::new(),
    };
    let failed = tokio::select! {
        _ = shutdown_signal() => None,
        e = running.api_failed() => Some(e),
    };
    for t in &companions {
        t.abort();
    }
    for t in companions {
        let _ = t.await;
    }
    let report = running.shutdown(None).await;
    if let Some(e) = failed {
        return Err(e);
    }
    if report.clean() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "strata up: shutdown incomplete: {} (see the lines above)",
            report.missed().join(", ")
        );
        Ok(ExitCode::from(1))
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
