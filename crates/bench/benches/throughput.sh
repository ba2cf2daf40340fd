#!/usr/bin/env bash
# The load generator's own ceiling: the highest streamed request rate one client core
# sustains against the zero-cost simulator (on another core) while its timing error stays
# within 0.2 ms, for this tree and a baseline commit built the same way, RUNS runs of each
# interleaved, medians and ratios. Method: crates/bench/benches/throughput.rs; README.
#   RUNS=3 BASE=8945bbc BENCH_SECS=3 BENCH_CORES=2,3 crates/bench/benches/throughput.sh
#   HEAD_BIN=... BASE_BIN=... skip the builds (run binaries built elsewhere).
set -euo pipefail
cd "$(dirname "$0")/../../.."
RUNS="${RUNS:-3}"
BASE="${BASE:-8945bbc}"
export BENCH_SECS="${BENCH_SECS:-3}" BENCH_CORES="${BENCH_CORES:-2,3}"
target="${CARGO_TARGET_DIR:-$PWD/target}"
bench_bin() { # the throughput bench executable built in directory $1 with target dir $2
  (cd "$1" && CARGO_TARGET_DIR="$2" cargo bench -j2 -p bench --bench throughput --no-run \
    --message-format=json 2>/dev/null) | grep -o '"executable":"[^"]*throughput[^"]*"' | tail -1 | cut -d'"' -f4
}
if [ -z "${HEAD_BIN:-}" ]; then
  HEAD_BIN="$(bench_bin . "$target")"
  cp "$HEAD_BIN" "$target/throughput-head"; HEAD_BIN="$target/throughput-head"
fi
if [ -z "${BASE_BIN:-}" ]; then
  wt="$target/bench-baseline-$BASE"
  [ -d "$wt" ] || git worktree add --detach "$wt" "$BASE" >/dev/null
  # The same harness (steps, pinning) over the baseline's client library and simulator.
  cp crates/bench/benches/throughput.rs "$wt/crates/bench/benches/throughput.rs"
  cp crates/bench/Cargo.toml "$wt/crates/bench/Cargo.toml"
  # Its own target dir: the worktree's crates have the same relative paths, so in a shared
  # one cargo would take one tree's outputs for the other's.
  BASE_BIN="$(bench_bin "$wt" "$target/bench-baseline")"
  cp "$BASE_BIN" "$target/throughput-base"; BASE_BIN="$target/throughput-base"
fi
ulimit -n 65536 2>/dev/null || true
cpus="$BENCH_CORES"
best() { local r; r="$(taskset -c "$cpus" "$1" | tee -a /dev/stderr | sed -n 's/^highest rate within 0.2 ms: \([0-9]*\).*/\1/p')"; echo "${r:-0}"; }
declare -a head base
for i in $(seq "$RUNS"); do
  echo "== run $i: this tree" >&2; head+=("$(best "$HEAD_BIN")")
  echo "== run $i: baseline $BASE" >&2; base+=("$(best "$BASE_BIN")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
mh="$(median "${head[@]}")"; mb="$(median "${base[@]}")"
echo "streamed req/s within 0.2 ms, runs: this tree ${head[*]}; baseline $BASE ${base[*]}"
awk -v h="$mh" -v b="$mb" 'BEGIN {printf "median: this tree %d, baseline %d, ratio %.2fx\n", h, b, (b > 0 ? h / b : 0)}'
