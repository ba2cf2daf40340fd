//! A real llama.cpp `llama-server` (CPU build) serving a tiny random-weight GGUF, for tests
//! that check Strata against what the engine itself reports. `scripts/llama-server.sh`
//! builds both into `~/.cache/strata/llama-server-<version>/` (or `$STRATA_CACHE/…`); a
//! missing build skips the test, or fails it under `STRATA_REQUIRE_PEERS=1`.

use std::path::PathBuf;

use crate::peer::{Peer, free_port, start};

/// The llama-cpp-python sdist whose vendored llama.cpp `scripts/llama-server.sh` builds.
pub const VERSION: &str = "0.3.36";

/// Where the build lives: `(llama-server binary, tiny.gguf)`, or `None` (skip) when it is
/// not built, unless `STRATA_REQUIRE_PEERS=1`, which turns that into a failure.
pub fn find() -> Option<(PathBuf, PathBuf)> {
    let cache = std::env::var_os("STRATA_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/strata")))?;
    let dir = cache.join(format!("llama-server-{VERSION}"));
    let (bin, model) = (dir.join("bin/llama-server"), dir.join("tiny.gguf"));
    if bin.is_file() && model.is_file() {
        return Some((bin, model));
    }
    assert!(
        std::env::var("STRATA_REQUIRE_PEERS").as_deref() != Ok("1"),
        "STRATA_REQUIRE_PEERS=1 but {} or {} is missing: run scripts/llama-server.sh",
        bin.display(),
        model.display()
    );
    eprintln!(
        "skipping: no llama-server in {} (run scripts/llama-server.sh)",
        dir.display()
    );
    None
}

/// `llama-server` on a free loopback port with `--metrics`, `slots` parallel slots of
/// `ctx_per_slot` tokens each, one compute thread; ready once `/health` answers 200 (the
/// model is loaded). `None` when it is not built (see [`find`]).
pub fn server(slots: u32, ctx_per_slot: u32) -> Option<Peer> {
    server_with(slots, ctx_per_slot, &[])
}

/// [`server`] with `extra` arguments (e.g. `--threads-http N`).
pub fn server_with(slots: u32, ctx_per_slot: u32, extra: &[&str]) -> Option<Peer> {
    let (bin, model) = find()?;
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let args: Vec<String> = [
        "-m",
        &model.to_string_lossy(),
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--metrics",
        "-np",
        &slots.to_string(),
        "-c",
        &(slots * ctx_per_slot).to_string(),
        // One compute thread: ggml's threads wait for each other on a spin barrier, which on
        // a busy 2-core machine costs a scheduler slice per step (1000x slower, measured).
        "-t",
        "1",
        "--no-webui",
        "--no-warmup",
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect();
    Some(start(&bin.to_string_lossy(), &args, &addr, "/health"))
}
