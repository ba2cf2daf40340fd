//! `strata up`'s settings: `strata.toml` overlaid with the flags, resolved into the node's
//! plain [`Settings`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use rules::alert::Labels;
use sinks::notify::Receiver;
use sinks::remote_write::{Fsync, RemoteWriteConfig};

use node::settings::{DEFAULT_LISTEN, DEFAULT_SHUTDOWN_DEADLINE, QueryLimits, Settings};

use super::UpArgs;
use super::args::{check_label_name, parse_fsync};
use ::config::Config;

fn url(s: &str, key: &str) -> Result<reqwest::Url, String> {
    s.parse()
        .map_err(|e| format!("{key} {s:?}: {e} (write a full URL such as http://host:9093)"))
}

/// Reads a token file (trailing newline ignored); an empty token is an error.
pub(crate) fn read_token(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read the admin token file {}: {e} (check the path and permissions)",
            path.display()
        )
    })?;
    let token = text.trim().to_string();
    if token.is_empty() {
        return Err(format!(
            "admin token file {} is empty: write the token into it",
            path.display()
        ));
    }
    Ok(token)
}

/// `config` (the defaults when there is no file) overlaid with `args`.
pub(crate) fn resolve(config: &Config, args: &UpArgs) -> Result<Settings, String> {
    let configured = if args.agent {
        config.agent.listen
    } else {
        config.api.listen
    };
    let listen = match (args.listen, configured) {
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) if args.agent => AGENT_LISTEN
            .parse()
            .map_err(|e| format!("default listen address: {e}"))?,
        (None, None) => DEFAULT_LISTEN
            .parse()
            .map_err(|e| format!("default listen address: {e}"))?,
    };
    let admin_token = args
        .admin_token_file
        .as_ref()
        .or(config.api.admin_token_file.as_ref())
        .map(|p| read_token(p))
        .transpose()?;
    let data_dir = args
        .data_dir
        .clone()
        .or_else(|| config.store.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from("strata-data"));
    let span = |d: &Option<toml::Spanned<Duration>>| d.as_ref().map(|d| *d.get_ref());
    let retention = args
        .retention
        .or(span(&config.store.retention))
        .unwrap_or(Duration::from_secs(6 * 3600));
    let snapshot_interval = args
        .snapshot_interval
        .or(span(&config.store.snapshot_interval))
        .unwrap_or(Duration::from_secs(120));
    let slo_profile = args
        .slo_profile
        .clone()
        .or_else(|| config.rules.slo_profile.clone())
        .unwrap_or_else(|| "chat".to_string());
    let mut rule_files = config.rules.files.clone();
    rule_files.extend(args.rules.iter().cloned());

    let backend = backend(config, args)?;
    let sinks = &config.sinks;
    let section = sinks.remote_write.as_ref();
    let target = match (&args.remote_write, section, &backend) {
        (Some(u), _, _) => Some(u.clone()),
        (None, Some(s), _) => Some(url(&s.url, "[sinks.remote_write] url")?),
        // Rule results go back to the backend's own receiver (Prometheus with
        // --web.enable-remote-write-receiver, VictoriaMetrics, Mimir).
        (None, None, Some(b)) => Some(url(
            &format!("{}/api/v1/write", b.url.as_str().trim_end_matches('/')),
            "[backend] url",
        )?),
        (None, None, None) if args.agent => {
            return Err(
                "strata agent ships what it scrapes: give --remote-write URL or [sinks.remote_write] url (e.g. http://victoria-metrics:8428/api/v1/write)"
                    .to_string(),
            );
        }
        (None, None, None) => None,
    };
    let remote_write = match target {
        Some(target) => {
            let mut cfg = RemoteWriteConfig::new(target, data_dir.join("remote_write"));
            if let Some(node::backend::BackendConfig {
                auth: node::backend::Auth::Bearer(t),
                ..
            }) = &backend
                && args.remote_write.is_none()
                && section.is_none()
            {
                cfg.bearer_token = Some(t.clone());
            }
            let mib = args
                .remote_write_queue_size
                .or(section.and_then(|s| s.queue_size_mib))
                .unwrap_or(256);
            cfg.max_queue_bytes = mib.saturating_mul(1 << 20);
            cfg.fsync = match (
                args.remote_write_fsync,
                section.and_then(|s| s.fsync.as_deref()),
            ) {
                (Some(f), _) => f,
                (None, Some(f)) => {
                    parse_fsync(f).map_err(|e| format!("[sinks.remote_write] fsync {e}"))?
                }
                (None, None) => Fsync::Always,
            };
            Some(cfg)
        }
        None => None,
    };
    let mut receivers = Vec::new();
    for u in &sinks.alertmanager {
        receivers.push(Receiver::Alertmanager(url(u, "[sinks] alertmanager")?));
    }
    for u in &sinks.webhook {
        receivers.push(Receiver::Webhook(url(u, "[sinks] webhook")?));
    }
    receivers.extend(
        args.alertmanager
            .iter()
            .cloned()
            .map(Receiver::Alertmanager),
    );
    receivers.extend(args.webhook.iter().cloned().map(Receiver::Webhook));
    let mut external_labels: Labels = Vec::new();
    for (k, v) in &sinks.external_labels {
        check_label_name(k).map_err(|e| format!("[sinks] external_labels: {e}"))?;
        external_labels.push((k.clone(), v.clone()));
    }
    for (k, v) in &args.external_labels {
        external_labels.retain(|(x, _)| x != k);
        external_labels.push((k.clone(), v.clone()));
    }
    let mut incident_alerts = config.incident.alerts.clone();
    incident_alerts.extend(args.incident.alerts.iter().cloned());
    let incident_duration = args
        .incident
        .duration
        .or(span(&config.incident.duration))
        .unwrap_or(Duration::from_secs(600));
    Ok(Settings {
        listen,
        admin_token,
        data_dir,
        retention,
        snapshot_interval,
        // An agent evaluates only the rule files it is given: the brain evaluates the packs.
        packs: !args.agent && !args.no_packs && config.rules.packs.unwrap_or(true),
        slo_profile,
        rule_files,
        rule_interval: args.testing.rule_interval,
        remote_write,
        receivers,
        external_labels,
        incident_alerts,
        incident_duration,
        incident_from: args.incident_from.clone().map(|u| {
            let mut c = node::backend::BackendConfig::new(u);
            // Asked every 15 s: a slow answer waits for the next round.
            c.timeout = Duration::from_secs(10);
            c
        }),
        exemplars_limit: config
            .store
            .exemplars_limit
            .unwrap_or(node::settings::DEFAULT_EXEMPLARS_LIMIT),
        shutdown_deadline: args
            .shutdown_timeout
            .or(span(&config.api.shutdown_timeout))
            .unwrap_or(DEFAULT_SHUTDOWN_DEADLINE),
        query: {
            let d = QueryLimits::default();
            QueryLimits {
                timeout: args
                    .query_timeout
                    .or(span(&config.api.query_timeout))
                    .unwrap_or(d.timeout),
                max_samples: args
                    .query_max_samples
                    .or(config.api.query_max_samples)
                    .unwrap_or(d.max_samples),
                max_concurrency: args
                    .query_max_concurrency
                    .or(config.api.query_max_concurrency)
                    .unwrap_or(d.max_concurrency)
                    .max(1),
            }
        },
        agent: args.agent,
        backend,
    })
}

/// Where `strata agent` serves health and `/metrics` unless told otherwise.
const AGENT_LISTEN: &str = "127.0.0.1:9465";

/// `--backend` / `[backend]`, with its credentials read from their files.
fn backend(config: &Config, args: &UpArgs) -> Result<Option<node::backend::BackendConfig>, String> {
    let section = &config.backend;
    let target = match (&args.backend, section.url.as_deref()) {
        (Some(u), _) => u.clone(),
        (None, Some(u)) => url(u, "[backend] url")?,
        (None, None) => return Ok(None),
    };
    if args.agent {
        return Err(
            "strata agent ships to --remote-write; --backend / [backend] is for strata up (the brain that reads the fleet)"
                .to_string(),
        );
    }
    let mut cfg = node::backend::BackendConfig::new(target);
    let secret = |p: &Path, what: &str| read_token(p).map_err(|e| format!("[backend] {what}: {e}"));
    cfg.auth = match (
        &section.bearer_token_file,
        &section.basic_user,
        &section.basic_password_file,
    ) {
        (Some(_), Some(_), _) => {
            return Err("[backend]: give bearer_token_file or basic_user, not both".to_string());
        }
        (Some(f), None, _) => node::backend::Auth::Bearer(secret(f, "bearer_token_file")?),
        (None, Some(user), Some(f)) => node::backend::Auth::Basic {
            user: user.clone(),
            password: secret(f, "basic_password_file")?,
        },
        (None, Some(_), None) => {
            return Err("[backend] basic_user needs basic_password_file".to_string());
        }
        (None, None, _) => node::backend::Auth::None,
    };
    cfg.headers = section
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let span = |d: &Option<toml::Spanned<Duration>>| d.as_ref().map(|d| *d.get_ref());
    if let Some(t) = span(&section.timeout) {
        cfg.timeout = t;
    }
    cfg.eval_delay = span(&section.eval_delay);
    Ok(Some(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        up: UpArgs,
    }

    fn args(flags: &[&str]) -> UpArgs {
        Cli::parse_from(std::iter::once("up").chain(flags.iter().copied())).up
    }

    fn example() -> Config {
        ::config::parse(Path::new("strata.example.toml"), ::config::EXAMPLE)
            .expect("example parses")
    }

    #[test]
    fn the_example_sets_every_up_section_and_flags_override_it() {
        let c = example();
        let s = resolve(&c, &args(&[])).expect("resolves");
        assert_eq!(s.listen.to_string(), "127.0.0.1:9464");
        assert_eq!(s.data_dir, PathBuf::from("strata-data"));
        assert_eq!(s.retention, Duration::from_secs(6 * 3600));
        assert_eq!(s.snapshot_interval, Duration::from_secs(120));
        assert!(s.packs);
        assert_eq!(s.slo_profile, "chat");
        let rw = s.remote_write.as_ref().expect("remote_write");
        assert_eq!(rw.url.as_str(), "http://127.0.0.1:9090/api/v1/write");
        assert_eq!(rw.max_queue_bytes, 256 << 20);
        assert_eq!(
            s.external_labels,
            vec![("cluster".into(), "gpu-cluster-1".into())]
        );
        assert_eq!(s.incident_alerts, ["LLMKVCacheExhaustion"]);
        assert_eq!(s.incident_duration, Duration::from_secs(600));

        let s = resolve(
            &c,
            &args(&[
                "--listen",
                "127.0.0.1:1",
                "--data-dir",
                "elsewhere",
                "--slo-profile",
                "rag",
                "--no-packs",
                "--remote-write-queue-size",
                "16",
                "--remote-write-fsync",
                "never",
                "--external-label",
                "cluster=b",
                "--webhook",
                "http://hook/",
                "--incident-duration",
                "1m",
            ]),
        )
        .expect("resolves");
        assert_eq!(s.listen.to_string(), "127.0.0.1:1");
        assert_eq!(s.data_dir, PathBuf::from("elsewhere"));
        assert_eq!(s.slo_profile, "rag");
        assert!(!s.packs);
        let rw = s.remote_write.as_ref().expect("remote_write");
        assert_eq!((rw.max_queue_bytes, rw.fsync), (16 << 20, Fsync::Never));
        assert_eq!(rw.queue_dir, PathBuf::from("elsewhere/remote_write"));
        assert_eq!(s.external_labels, vec![("cluster".into(), "b".into())]);
        assert_eq!(s.receivers.len(), 1);
        assert_eq!(s.incident_duration, Duration::from_secs(60));
    }

    #[test]
    fn bad_values_name_the_key_and_the_fix() {
        let parse = |t: &str| ::config::parse(Path::new("s.toml"), t).expect("parses");
        let e = resolve(
            &parse("[sinks]\nalertmanager = [\"not a url\"]\n"),
            &args(&[]),
        )
        .expect_err("bad url");
        assert!(
            e.contains("[sinks] alertmanager") && e.contains("full URL"),
            "{e}"
        );
        let e = resolve(
            &parse("[sinks.remote_write]\nurl = \"http://x/\"\nfsync = \"sometimes\"\n"),
            &args(&[]),
        )
        .expect_err("bad fsync");
        assert!(e.contains("fsync") && e.contains("always"), "{e}");
        let e = resolve(
            &parse("[api]\nadmin_token_file = \"/nonexistent/t\"\n"),
            &args(&[]),
        )
        .expect_err("missing token");
        assert!(e.contains("admin token file"), "{e}");
        let e = ::config::parse(Path::new("s.toml"), "[store]\nretension = \"1h\"\n")
            .expect_err("typo")
            .to_string();
        assert!(e.contains("unknown field `retension`"), "{e}");
        let s =
            resolve(&parse("[rules]\nslo_profile = \"batch\"\n"), &args(&[])).expect("resolves");
        let e = super::super::rules::rule_groups(&Config::default(), &s).expect_err("profile");
        assert!(
            e.contains("unknown SLO profile") && e.contains("chat, rag, code"),
            "{e}"
        );
    }
}
