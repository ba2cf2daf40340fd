#!/usr/bin/env bash
# Gateway overhead benchmark: direct vs `strata gateway` vs nginx, same zero-cost upstream,
# same streaming load, one run. Builds the release binary, installs nginx (Debian) when
# missing, then runs crates/gateway/benches/overhead.rs. See crates/gateway/README.md.
#   BENCH_SECONDS=10 BENCH_CONCURRENCY=1,64,256 BENCH_TOKENS=64 BENCH_ITL_MS=20 BENCH_OUT=results.json
set -euo pipefail
cd "$(dirname "$0")/../../.."
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  echo "== installing nginx (the baseline proxy)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends nginx >/dev/null
fi
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
