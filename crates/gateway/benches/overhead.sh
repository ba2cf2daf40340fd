#!/usr/bin/env bash
# Gateway overhead benchmark: direct vs `strata gateway` vs nginx vs LiteLLM, same zero-cost
# upstream, same streaming load, one run. Builds the release binary, installs nginx (Debian)
# when missing and LiteLLM's proxy (PyPI `litellm[proxy]`, into a virtual environment under
# ~/.cache/strata-bench) when no `litellm` is found, then runs
# crates/gateway/benches/overhead.rs. See crates/gateway/README.md. A LiteLLM that cannot be
# installed or started is reported and left out; the other rows still run.
#   BENCH_SECONDS=10 BENCH_CONCURRENCY=1,64,256 BENCH_TOKENS=64 BENCH_ITL_MS=20 BENCH_OUT=results.json
#   LITELLM=/path/to/litellm (or `off`), BENCH_LITELLM_MAX_C=64 (LiteLLM skipped above it)
set -euo pipefail
cd "$(dirname "$0")/../../.."
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  echo "== installing nginx (the baseline proxy)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends nginx >/dev/null
fi
if [ -z "${LITELLM:-}" ]; then
  venv="${XDG_CACHE_HOME:-$HOME/.cache}/strata-bench/litellm"
  if command -v litellm >/dev/null 2>&1; then
    LITELLM=$(command -v litellm)
  elif [ -x "$venv/bin/litellm" ]; then
    LITELLM="$venv/bin/litellm"
  else
    echo "== installing LiteLLM's proxy into $venv (the Python baseline proxy)"
    if python3 -m venv "$venv" >/dev/null 2>&1 &&
      "$venv/bin/pip" install -q 'litellm[proxy]' >"$venv.log" 2>&1; then
      LITELLM="$venv/bin/litellm"
    else
      echo "LiteLLM not installed (no python3 venv, or pip failed: see $venv.log); continuing without it"
      LITELLM=off
    fi
  fi
fi
export LITELLM
target="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -j2 -p strata
export STRATA_BIN="${STRATA_BIN:-$target/release/strata}"
export NGINX="${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}"
ulimit -n 65536 2>/dev/null || true
cargo bench -j2 -p gateway --bench overhead --no-run
# The load generator and the upstream run on CPU 0, each proxy on CPU 1 (BENCH_PIN=0: no pinning).
if [ "${BENCH_PIN:-1}" = 1 ] && command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
  taskset -c 0 cargo bench -j2 -p gateway --bench overhead
else
  BENCH_PIN=0 cargo bench -j2 -p gateway --bench overhead
fi
