#!/usr/bin/env bash
# Runs every test Strata has, on a fresh machine: installs the real peers the tests talk to
# (promtool from Debian's prometheus package, the OpenAI Python SDK, a CPU llama-server
# built from source with a tiny generated model, cargo-fuzz if missing),
# then the whole workspace's tests, then bounded fuzz runs of the exposition parser and the
# PromQL engine.
#   FUZZ_SECONDS   fuzzing time budget (default 60; 0 skips fuzzing)
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v promtool >/dev/null 2>&1; then
  echo "== installing promtool (Debian package prometheus)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
missing=()
command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
command -v victoria-metrics >/dev/null 2>&1 || missing+=(victoria-metrics)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]} (rules and remote_write tests talk to them)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! python3 -c "import openai" >/dev/null 2>&1; then
  echo "== installing the OpenAI Python SDK (the simulator's SDK test drives strata sim with it)"
  if ! python3 -m pip --version >/dev/null 2>&1; then
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
  fi
  python3 -m pip install --quiet openai 2>/dev/null ||
    python3 -m pip install --quiet --break-system-packages openai
fi
if ! python3 -c "import rotel" >/dev/null 2>&1; then
  echo "== installing rotel (its rotel-agent is the OTLP receiver the gateway's trace tests export to)"
  python3 -m pip install --quiet rotel 2>/dev/null ||
    python3 -m pip install --quiet --break-system-packages rotel
fi
browser_missing=()
command -v chromium >/dev/null 2>&1 || browser_missing+=(chromium)
command -v npm >/dev/null 2>&1 || browser_missing+=(nodejs npm)
if [ ${#browser_missing[@]} -gt 0 ]; then
  echo "== installing ${browser_missing[*]} (the web UI's browser test drives chromium with playwright-core)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${browser_missing[@]}" >/dev/null
fi
if ! command -v tmux >/dev/null 2>&1; then
  echo "== installing tmux (strata top's end-to-end test reads its screen with capture-pane)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends tmux >/dev/null
fi
echo "== llama-server and its tiny model (built once from PyPI's llama-cpp-python sdist, cached in ~/.cache/strata)"
scripts/llama-server.sh >/dev/null
echo "== npm ci in crates/strata/tests/browser (playwright-core, pinned by package-lock.json)"
(cd crates/strata/tests/browser && npm ci --no-audit --no-fund --loglevel=error)
echo "== npm ci in crates/strata/tests/grafana (@grafana/schema and TypeScript: the generated dashboards are type-checked)"
(cd crates/strata/tests/grafana && npm ci --no-audit --no-fund --loglevel=error)
# Tests that need a real peer fail (instead of skipping) when it is missing.
export STRATA_REQUIRE_PEERS=1

