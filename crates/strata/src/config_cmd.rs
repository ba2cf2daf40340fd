//! `strata config check|example`.

use std::path::Path;
use std::process::ExitCode;

use crate::cli::{ConfigAction, ConfigArgs};
use ::config;

/// Runs `strata config ...`.
pub fn run(flag: Option<&Path>, args: ConfigArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    match args.action {
        ConfigAction::Example => {
            print!("{}", config::EXAMPLE);
            Ok(ExitCode::SUCCESS)
        }
        ConfigAction::Check => {
            let Some(path) = config::locate(flag) else {
                return Err("no config file: pass --config FILE or set STRATA_CONFIG (`strata config example > strata.toml` writes a documented one)".into());
            };
            let (cfg, text) = config::load(&path)?;
            // What `strata up` checks before it starts: SLO profile, rule files, gateway ports.
            crate::up::check_file(&path)?;
            let specs = config::target_specs(&cfg, &path, &text)?;
            println!("{}: ok, {} target(s)", path.display(), specs.len());
            for s in &specs {
                let p = s.profiles;
                println!(
                    "  {:<20} {:<6} {}  steady every {:?}, incident every {:?}",
                    s.job,
                    format!("{:?}", s.kind).to_lowercase(),
                    strata_core::redact_url(s.url.as_str()),
                    p.steady.interval,
                    p.incident.interval
                );
            }
            let g = cfg.gateway.resolve(&path, &text)?;
            if !g.upstreams.is_empty() {
                println!(
                    "  gateway: clients on {}, /metrics on {}, {} upstream(s)",
                    g.listen,
                    g.admin.map_or("-".to_string(), |a| a.to_string()),
                    g.upstreams.len()
                );
                for u in &g.upstreams {
                    let models = if u.models.is_empty() {
                        "any model".to_string()
                    } else {
                        u.models.join(", ")
                    };
                    println!(
                        "    {:<18} {}  ({})",
                        u.name,
                        strata_core::redact_url(u.url.as_str()),
                        models
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
