//! `strata demo`: the whole pipeline on simulated engines, on one machine, in one process —
//! two vLLM replicas (one simulated H100 each) and one TGI replica (a simulated L4), each
//! with its DCGM exporter, the gateway in front of them with three tenants of bursty
//! traffic, and `strata up` over all of it. `POST /api/v1/scenario` switches what the
//! simulators play.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bench::client::{Api, Client, ClientConfig};
use bench::shape::Arrivals;
use bench::workload::{LengthDist, Prompts, Workload};
use clap::Args;
use gateway::{GatewayConfig, UpstreamConfig};
use sim::{EngineKind, Profile, Scenario, SimConfig};
use sources::host::{EngineGpuCollector, EngineGpuLink};
use sources::scrape::{HostTarget, KindProfiles, Target, TargetKind, TargetSpec};
use tokio::task::JoinHandle;

use ::config::Config;
use node::{Plan, Scenarios, Settings};

/// `strata demo`
#[derive(Debug, Args)]
#[command(after_help = "\
Open the printed URL. Switch the simulators' scenario and watch the diagnosis appear:
  curl -H 'Content-Type: application/json' -d '{\"scenario\":\"cache-thrash\"}' http://127.0.0.1:9464/api/v1/scenario
  curl http://127.0.0.1:9464/api/v1/findings")]
pub struct DemoArgs {
    /// Address of the API and UI.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9464")]
    pub listen: SocketAddr,
    /// Scenario the simulators start with (see `strata sim --help`).
    #[arg(long, value_name = "NAME", default_value = "healthy", value_parser = parse_scenario)]
    pub scenario: Scenario,
    /// File holding the bearer token admin POSTs (scenario, incident) must carry.
    #[arg(long, value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Directory for the store snapshot.
    #[arg(long, value_name = "DIR", default_value = "strata-demo-data")]
    pub data_dir: PathBuf,
    /// Simulated seconds per real second (tests).
    #[arg(long, hide = true, default_value_t = 1.0)]
    pub sim_speed: f64,
    /// Evaluate every rule group at this interval and waive `for:` (tests).
    #[arg(long, hide = true, value_parser = crate::cli::parse_duration)]
    pub rule_interval: Option<Duration>,
}

fn parse_scenario(s: &str) -> Result<Scenario, String> {
    s.parse()
}

/// One simulated replica.
struct Replica {
    name: &'static str,
    engine: EngineKind,
    profile: &'static str,
    model: &'static str,
    node: &'static str,
    seed: u64,
}

const LLAMA: &str = "meta-llama/Llama-3.1-8B-Instruct";
const QWEN: &str = "Qwen/Qwen2.5-7B-Instruct";

const REPLICAS: [Replica; 3] = [
    Replica {
        name: "vllm-a",
        engine: EngineKind::Vllm,
        profile: "llama-8b-h100",
        model: LLAMA,
        node: "demo-node-a",
        seed: 1,
    },
    Replica {
        name: "vllm-b",
        engine: EngineKind::Vllm,
        profile: "llama-8b-h100",
        model: LLAMA,
        node: "demo-node-b",
        seed: 2,
    },
    Replica {
        name: "tgi",
        engine: EngineKind::Tgi,
        // On an H100 like the others: a 7B model on an L4 cannot meet the chat SLO's 80 ms
        // ITL p95 (each step reads the weights in ~50 ms), so healthy would page.
        profile: "llama-8b-h100",
        model: QWEN,
        node: "demo-node-c",
        seed: 3,
    },
];

/// A tenant's traffic: requests per second, gamma shape (below 1: bursty), share of
/// requests to the TGI model, and the `max_tokens` it asks for (generous, as real clients
/// set it: the simulated model stops on its own first, so healthy traffic is not truncated).
struct Tenant {
    name: &'static str,
    rate: f64,
    burstiness: f64,
    tgi_share: f64,
    max_tokens: u32,
}

const TENANTS: [Tenant; 3] = [
    Tenant {
        name: "acme",
        rate: 1.5,
        burstiness: 0.5,
        tgi_share: 0.2,
        max_tokens: 1024,
    },
    Tenant {
        name: "globex",
        rate: 0.8,
        burstiness: 0.25,
        tgi_share: 0.5,
        max_tokens: 2048,
    },
    Tenant {
        name: "initech",
        rate: 0.4,
        burstiness: 1.0,
        tgi_share: 0.3,
        max_tokens: 1024,
    },
];

/// Scrape profiles that show movement within seconds.
fn profiles(kind: TargetKind) -> KindProfiles {
    let mut p = match kind {
        TargetKind::Engine => KindProfiles::engine_default(),
        TargetKind::Gpu => KindProfiles::gpu_default(),
    };
    for s in [&mut p.steady, &mut p.incident] {
        s.interval = s.interval.min(Duration::from_secs(2));
        s.timeout = s.timeout.min(s.interval);
    }
    p
}

fn target(job: &str, addr: SocketAddr, kind: TargetKind) -> Result<Target, String> {
    let url = format!("http://{addr}/metrics")
        .parse()
        .map_err(|e| format!("simulator address {addr}: {e}"))?;
    let mut spec = TargetSpec::new(job, url, kind);
    spec.profiles = profiles(kind);
    Ok(Target::Http(spec))
}

/// Runs `strata demo` until Ctrl-C or SIGTERM.
pub fn run(args: DemoArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    Ok(runtime.block_on(demo(args))?)
}

async fn demo(args: DemoArgs) -> Result<ExitCode, String> {
    sources::scrape::install_crypto_provider();
    // The simulators' backlog, not tokio's 128: the embedded gateway may open a burst of
    // upstream connections when a benchmark starts many streams at once.
    let bind = || async {
        sim::server::listen(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .map_err(|e| format!("cannot listen on a loopback port: {e}"))
    };
    let mut sims = Vec::new();
    let mut targets = Vec::new();
    let mut upstreams = Vec::new();
    let mut engines = Vec::new();
    let mut links = Vec::new();
    for r in &REPLICAS {
        let mut cfg = SimConfig::new(r.engine);
        cfg.profile = Profile::by_name(r.profile)
            .ok_or_else(|| format!("simulator profile {} is missing", r.profile))?;
        cfg.model = Some(r.model.to_string());
        cfg.scenario = args.scenario;
        cfg.seed = r.seed;
        cfg.hostname = r.node.to_string();
        let running = sim::server::start(&cfg, args.sim_speed, bind().await?, Some(bind().await?))
            .await
            .map_err(|e| format!("cannot start simulator {}: {e}", r.name))?;
        let gpu = running
            .gpu_addr
            .ok_or_else(|| format!("simulator {} serves no DCGM exporter", r.name))?;
        eprintln!(
            "strata demo: {} ({} {}, {}) on http://{}, its DCGM exporter on http://{gpu}/metrics",
            r.name,
            r.engine.name(),
            r.model,
            r.profile,
            running.engine_addr
        );
        let mut engine = target(r.name, running.engine_addr, TargetKind::Engine)?;
        if let Target::Http(spec) = &mut engine {
            spec.name = Some(r.name.to_string());
            spec.node = Some(r.node.to_string());
        }
        targets.push(engine);
        links.extend(running.gpus.iter().map(|g| EngineGpuLink {
            instance: running.engine_addr.to_string(),
            name: r.name.to_string(),
            node: r.node.to_string(),
            gpu: g.index,
            gpu_uuid: g.uuid.clone(),
            gpu_model: g.model_name.clone(),
        }));
        targets.push(target(&format!("dcgm-{}", r.name), gpu, TargetKind::Gpu)?);
        let mut up = UpstreamConfig::new(r.name, &format!("http://{}", running.engine_addr));
        up.models = vec![r.model.to_string()];
        up.engine = r.engine.name().to_string();
        upstreams.push(up);
        engines.push(format!("http://{}", running.engine_addr));
        sims.push(running);
    }
    // The simulator's topology stands in for /proc and NVML: which GPUs each engine uses.
    targets.push(Target::Host(HostTarget::new(
        Box::new(EngineGpuCollector::fixed(links)),
        "demo".to_string(),
        profiles(TargetKind::Gpu),
    )));
    let mut gw = GatewayConfig::new(
        "127.0.0.1:0"
            .parse()
            .map_err(|e| format!("loopback address: {e}"))?,
        upstreams,
    );
    gw.tenant.header = Some("x-tenant".to_string());
    gw.log.output = gateway::LogOutput::Off;

    let settings = Settings {
        admin_token: args
            .admin_token_file
            .as_deref()
            .map(crate::up::read_token)
            .transpose()?,
        rule_interval: args.rule_interval,
        ..Settings::new(args.listen, args.data_dir.clone())
    };
    let config = Config::default();
    let plan = Plan {
        groups: crate::up::rule_groups(&config, &settings)?,
        inhibit: crate::up::inhibitions(&settings)?,
        settings,
        targets,
        gateway: Some(gw),
        scenarios: Some(Arc::new(Scenarios::new(
            engines,
            sim::Scenario::ALL
                .iter()
                .map(|s| (s.name().to_string(), s.help().to_string()))
                .collect(),
        ))),
    };
    let listen = args.listen;
    let code = crate::up::serve(
        plan,
        Some(Box::new(move |gateway: Option<SocketAddr>| {
            let Some(addr) = gateway else {
                return Vec::new();
            };
            eprintln!(
                "strata demo: gateway on http://{addr}, tenants {} sending bursty traffic (header x-tenant)",
                TENANTS.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
            );
            eprintln!("strata demo: open http://{listen}/ — switch scenarios there or with: curl -H 'Content-Type: application/json' -d '{{\"scenario\":\"cache-thrash\"}}' http://{listen}/api/v1/scenario");
            traffic(addr)
        })),
        None,
    )
    .await;
    for s in sims {
        s.shutdown().await;
    }
    code
}

/// One task per tenant sending streaming chat requests through the gateway at `addr`.
fn traffic(addr: SocketAddr) -> Vec<JoinHandle<()>> {
    TENANTS
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let clients: Result<Vec<Client>, String> = [LLAMA, QWEN]
                .iter()
                .map(|model| {
                    Client::new(&ClientConfig {
                        url: format!("http://{addr}"),
                        api: Api::OpenAiChat,
                        model: Some(model.to_string()),
                        headers: vec![("x-tenant".to_string(), t.name.to_string())],
                        timeout: Duration::from_secs(120),
                        ignore_eos: false,
                    })
                    .map_err(|e| e.to_string())
                })
                .collect();
            let seed = 100 + i as u64;
            let (rate, shape, share, max_tokens, name) =
                (t.rate, t.burstiness, t.tgi_share, t.max_tokens, t.name);
            tokio::spawn(async move {
                let clients = match clients {
                    Ok(c) => Arc::new(c),
                    Err(e) => {
                        eprintln!("strata demo: tenant {name} sends nothing: {e}");
                        return;
                    }
                };
                let workload = Arc::new(Workload::new(
                    Prompts::Synthetic(LengthDist::Normal {
                        mean: 400.0,
                        sd: 150.0,
                    }),
                    LengthDist::Fixed { n: max_tokens },
                    seed,
                ));
                let mut arrivals = Arrivals::new(rate, shape, seed);
                let mut pick = sim::rng::Rng::fork(seed, 7);
                for n in 0u64.. {
                    tokio::time::sleep(arrivals.next_gap()).await;
                    let c = clients.clone();
                    let w = workload.clone();
                    let which = usize::from(pick.f64() < share);
                    tokio::spawn(async move {
                        let id = format!("demo-{name}-{n}");
                        if let Err(e) = c[which].send(&w.prompt(n), &id).await {
                            tracing::debug!("demo request {id} failed: {e:?}");
                        }
                    });
                }
            })
        })
        .collect()
}
