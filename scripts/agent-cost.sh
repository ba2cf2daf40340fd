#!/usr/bin/env bash
# Measures what `strata agent` costs on one node: two simulated engines (`strata sim`, vLLM,
# 4 GPUs each: 8 GPUs behind 2 DCGM exporters) scraped at the default steady profile
# (engines 10 s, GPUs 5 s), shipped to a real VictoriaMetrics. Prints the agent's CPU share
# (of one core, over the window, from /proc/PID/stat), its peak and final RSS (VmHWM, VmRSS),
# the series it ships and the samples/s VictoriaMetrics received from it.
#   STRATA         binary to measure (default target/release/strata)
#   AGENT_ARGS     how it runs (default `agent`; e.g. "up --no-packs --retention 10m" for a
#                  build without the agent subcommand: the same plan minus the agent's flags)
#   WINDOW         seconds to measure after a 30 s warm-up (default 120)
set -euo pipefail
cd "$(dirname "$0")/.."
STRATA=${STRATA:-target/release/strata}
AGENT_ARGS=${AGENT_ARGS:-agent}
WINDOW=${WINDOW:-120}
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

vm=$(port)
victoria-metrics -httpListenAddr=127.0.0.1:$vm -storageDataPath="$tmp/vm" -search.latencyOffset=0s >/dev/null 2>&1 &
pids+=($!)
targets=()
for i in 1 2; do
  e=$(port); g=$(port)
  "$STRATA" sim --listen 127.0.0.1:$e --gpu-listen 127.0.0.1:$g --gpus 4 >/dev/null 2>&1 &
  pids+=($!)
  targets+=(--engine "http://127.0.0.1:$e/metrics" --gpu "http://127.0.0.1:$g/metrics")
done
sleep 3
listen=$(port)
# shellcheck disable=SC2086
"$STRATA" $AGENT_ARGS "${targets[@]}" --remote-write "http://127.0.0.1:$vm/api/v1/write" \
  --external-label node=bench --listen 127.0.0.1:$listen --data-dir "$tmp/agent" >/dev/null 2>&1 &
agent=$!
pids+=($agent)
sleep 30
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$agent/stat"; }
sent() { curl -s "http://127.0.0.1:$listen/metrics" | awk '/^strata_remote_write_samples_sent_total/ {s += $2} END {print s + 0}'; }
t0=$(ticks); s0=$(sent); start=$(date +%s.%N)
sleep "$WINDOW"
t1=$(ticks); s1=$(sent); end=$(date +%s.%N)
series=$(curl -s "http://127.0.0.1:$vm/api/v1/query" --data-urlencode 'query=count({node="bench"})' |
  python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else 0)')
python3 - "$t0" "$t1" "$hz" "$start" "$end" "$s0" "$s1" "$series" "$agent" "$STRATA" "$AGENT_ARGS" <<'PY'
import sys
t0, t1, hz, start, end, s0, s1 = map(float, sys.argv[1:8])
series, pid, binary, mode = sys.argv[8], sys.argv[9], sys.argv[10], sys.argv[11]
status = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status") if ":" in l)
wall = end - start
print(f"binary: {binary} ({mode}), 2 engines + 8 GPUs (2 DCGM exporters), steady profile, {wall:.0f} s window")
print(f"cpu: {100 * (t1 - t0) / hz / wall:.2f} % of one core")
print(f"rss: {status['VmRSS'].strip()} now, {status['VmHWM'].strip()} peak")
print(f"series shipped: {series}")
print(f"samples/s shipped: {(s1 - s0) / wall:.1f}")
PY
