//! `strata`: layered observability for self-hosted LLM inference, from the GPU to the token.

mod agent_cmd;
mod bench_cmd;
mod cardinality_cmd;
mod cli;
mod config_cmd;
mod cost_cmd;
mod demo_cmd;
mod diagnose_cmd;
mod gateway_cmd;
mod generate_cmd;
mod host;
mod scrape_cmd;
mod sim_cmd;
mod top_cmd;
mod up;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc's malloc: the scrape path allocates per sample and glibc spent
/// a fifth of `strata up`'s CPU consolidating freed chunks (docs/benchmarks.md, scrape cost).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STRATA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    // Every TLS client (scrapes, remote_write, notifications, the gateway's upstreams) uses
    // rustls with the ring provider, installed once before any of them is built.
    sources::scrape::install_crypto_provider();
    let result = match cli.command {
        cli::Command::Scrape(args) => scrape_cmd::run(cli.config.as_deref(), args),
        cli::Command::Config(args) => config_cmd::run(cli.config.as_deref(), args),
        cli::Command::Diagnose(args) => diagnose_cmd::run(cli.config.as_deref(), args),
        cli::Command::Cardinality(args) => cardinality_cmd::run(args),
        cli::Command::Sim(args) => sim_cmd::run(args),
        cli::Command::Up(args) => up::run(cli.config.as_deref(), *args),
        cli::Command::Agent(args) => agent_cmd::run(cli.config.as_deref(), args),
        cli::Command::Demo(args) => demo_cmd::run(args),
        cli::Command::Gateway(args) => gateway_cmd::run(cli.config.as_deref(), args),
        cli::Command::Bench(args) => bench_cmd::run(args),
        cli::Command::Cost(args) => cost_cmd::run(args),
        cli::Command::Generate(args) => generate_cmd::run(cli.config.as_deref(), &args),
        cli::Command::Top(args) => top::run(args.options()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
