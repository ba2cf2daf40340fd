#!/usr/bin/env bash
# Scrape cost of `strata up` against Prometheus and vmagent, in the same run, on the same
# targets: 8 simulated vLLM engines + 8 simulated DCGM exporters (`strata sim`, one GPU
# each), every target scraped every 250 ms (16 targets, 64 scrapes/s). Each scraper runs
# alone in turn, in interleaved rounds (round 1: A B C D, round 2: A B C D, ...), so load
# from other work on the machine falls on all of them alike. Per run: CPU (utime + stime
# from /proc/PID/stat over the window after a warm-up) as % of one core and as µs per
# scraped sample (samples counted by the scraper itself), and RSS at the end of the window.
# Prints one markdown table of medians with the min–max spread over the rounds.
#
# Strata runs with no NVML, no host collectors and no log followers (only the 16 HTTP
# targets, as the peers see), once with `--no-packs` and once with the built-in packs.
# Prometheus (Debian's `prometheus`) stores into a temporary TSDB; vmagent (Debian's
# `victoria-metrics` package ships /usr/bin/vmagent) remote-writes to a VictoriaMetrics
# started for the whole run (its own CPU is not counted); a peer not on PATH is skipped
# with a line saying so.
#
#   ROUNDS         interleaved rounds (default 3)
#   WINDOW         seconds measured per run (default 60)
#   WARMUP         seconds before the window (default 15)
#   STRATA         binary to measure (default: build target/release/strata)
#   STRATA_BEFORE  a second strata binary measured beside it (e.g. a build of the base
#                  commit), shown as `strata-before` rows
#   MODES          space-separated subset of: strata-nopacks strata-packs
#                  strata-before-nopacks strata-before-packs prometheus vmagent
#   PERF_OUT       a folder: record `perf record --call-graph dwarf` of every run over its
#                  window there (MODE-ROUND.data; read with `perf report -i`). Costs CPU of
#                  its own while it records, so take the table from a run without it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
WINDOW=${WINDOW:-60}
WARMUP=${WARMUP:-15}
if [[ -z "${STRATA:-}" ]]; then
  nice cargo build --release -p strata -j2 >&2
  STRATA=target/release/strata
fi
STRATA_BEFORE=${STRATA_BEFORE:-}

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Every server started here stops by itself after the whole run could have finished.
lifetime=$(((ROUNDS * 4 + 2) * (WINDOW + WARMUP + 20) + 300))
bounded=(timeout --signal=TERM "$lifetime")

# --- targets ---------------------------------------------------------------------------
urls=()
for i in $(seq 1 8); do
  e=$(port)
  g=$(port)
  "${bounded[@]}" "$STRATA" sim --listen "127.0.0.1:$e" --gpu-listen "127.0.0.1:$g" --seed "$i" >/dev/null 2>&1 &
  pids+=($!)
  urls+=("engine vllm-$i http://127.0.0.1:$e/metrics" "gpu dcgm-$i http://127.0.0.1:$g/metrics")
done
sleep 3
per_round=0
for u in "${urls[@]}"; do
  read -r _ _ url <<<"$u"
  n=$(curl -sf "$url" | grep -cv '^#\|^$' || true)
  per_round=$((per_round + n))
done
echo "targets: 8 vLLM + 8 DCGM simulators, ${per_round} samples a round, every 250 ms" >&2

# --- configurations --------------------------------------------------------------------
strata_toml() { # DATA_DIR LISTEN
  cat <<EOF
[scrape.engine.steady]
interval = "250ms"
timeout = "200ms"
[scrape.gpu.steady]
interval = "250ms"
timeout = "200ms"
fields = "full"
[nvml]
enabled = "off"
[host]
psi = false
engine_processes = false
[logs]
nccl = []
[api]
listen = "$2"
[store]
data_dir = "$1"
EOF
  for u in "${urls[@]}"; do
    read -r kind name url <<<"$u"
    printf '[[target]]\nname = "%s"\nurl = "%s"\nkind = "%s"\n' "$name" "$url" "$kind"
  done
}
prom_yml() {
  printf 'global:\n  scrape_interval: 250ms\n  scrape_timeout: 200ms\nscrape_configs:\n'
  for u in "${urls[@]}"; do
    read -r _ name url <<<"$u"
    hostport=${url#http://}
    hostport=${hostport%/metrics}
    printf '  - job_name: %s\n    static_configs: [{targets: ["%s"]}]\n' "$name" "$hostport"
  done
}

vm_url=""
if command -v vmagent >/dev/null && command -v victoria-metrics >/dev/null; then
  vm=$(port)
  "${bounded[@]}" victoria-metrics -httpListenAddr="127.0.0.1:$vm" -storageDataPath="$tmp/vm" >/dev/null 2>&1 &
  pids+=($!)
  vm_url="http://127.0.0.1:$vm/api/v1/write"
fi

modes=${MODES:-"strata-nopacks strata-packs ${STRATA_BEFORE:+strata-before-nopacks strata-before-packs }prometheus vmagent"}
run_modes=()
for m in $modes; do
  case $m in
    prometheus) command -v prometheus >/dev/null || { echo "skipped prometheus: not on PATH (apt-get install prometheus)" >&2; continue; } ;;
    vmagent) [[ -n $vm_url ]] || { echo "skipped vmagent: vmagent or victoria-metrics not on PATH (Debian: apt-get install victoria-metrics)" >&2; continue; } ;;
    strata-before-*) [[ -n $STRATA_BEFORE ]] || { echo "skipped $m: STRATA_BEFORE not set" >&2; continue; } ;;
  esac
  run_modes+=("$m")
done

# Starts MODE listening on LISTEN; sets `wrapper` (the `timeout` around it, which passes
# signals on) and `pid` (the scraper itself, whose CPU is measured).
start() { # MODE LISTEN DIR
  local mode=$1 listen=$2 dir=$3 bin=$STRATA
  mkdir -p "$dir"
  case $mode in
    strata-*)
      [[ $mode == strata-before-* ]] && bin=$STRATA_BEFORE
      strata_toml "$dir/data" "$listen" >"$dir/strata.toml"
      local packs=()
      [[ $mode == *-nopacks ]] && packs=(--no-packs)
      "${bounded[@]}" "$bin" up --config "$dir/strata.toml" "${packs[@]}" >"$dir/log" 2>&1 &
      ;;
    prometheus)
      prom_yml >"$dir/prometheus.yml"
      "${bounded[@]}" prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
        --web.listen-address="$listen" >"$dir/log" 2>&1 &
      ;;
    vmagent)
      prom_yml >"$dir/prometheus.yml"
      "${bounded[@]}" vmagent -promscrape.config="$dir/prometheus.yml" -remoteWrite.url="$vm_url" \
        -remoteWrite.tmpDataPath="$dir/data" -httpListenAddr="$listen" >"$dir/log" 2>&1 &
      ;;
  esac
  wrapper=$!
  pids+=("$wrapper")
  sleep 0.5
  pid=$(pgrep -P "$wrapper")
}

# Samples the scraper itself counts as scraped (total since it started).
scraped() { # MODE LISTEN
  curl -sf "http://$2/metrics" | python3 -c '
import sys
mode = sys.argv[1]
v = {}
for line in sys.stdin:
    if line.startswith("#") or not line.strip():
        continue
    name, _, value = line.rpartition(" ")
    fam = name.split("{")[0]
    v[fam] = v.get(fam, 0.0) + float(value)
if mode.startswith("strata"):
    print(v.get("strata_scrape_samples_total", 0))
elif mode == "prometheus":
    # Appended samples less the 5 series Prometheus adds per scrape (up, scrape_*).
    print(v.get("prometheus_tsdb_head_samples_appended_total", 0)
          - 5 * v.get("prometheus_target_interval_length_seconds_count", 0))
else:
    print(v.get("vm_promscrape_scraped_samples_sum", 0))
' "$1"
}

results=$tmp/results
hz=$(getconf CLK_TCK)
for round in $(seq 1 "$ROUNDS"); do
  for mode in "${run_modes[@]}"; do
    listen=127.0.0.1:$(port)
    dir=$tmp/$mode-$round
    start "$mode" "$listen" "$dir"
    sleep "$WARMUP"
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$mode exited during warm-up; its log:" >&2
      cat "$dir/log" >&2
      exit 1
    fi
    t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    s0=$(scraped "$mode" "$listen")
    w0=$(date +%s.%N)
    if [[ -n ${PERF_OUT:-} ]]; then
      mkdir -p "$PERF_OUT"
      perf record -q --call-graph dwarf,16384 -F 1999 -p "$pid" -o "$PERF_OUT/$mode-$round.data" \
        -- sleep "$WINDOW" 2>/dev/null
    else
      sleep "$WINDOW"
    fi
    t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    s1=$(scraped "$mode" "$listen")
    w1=$(date +%s.%N)
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
    kill "$wrapper"
    wait "$wrapper" 2>/dev/null || true
    echo "$mode $t0 $t1 $hz $w0 $w1 $s0 $s1 $rss" | tee -a "$results" | awk '{
      printf "round '"$round"' %-22s cpu %.2f %% of one core, %.0f samples/s, rss %d MB\n",
        $1, 100 * ($3 - $2) / $4 / ($6 - $5), ($8 - $7) / ($6 - $5), $9 / 1024 }' >&2
  done
done

python3 - "$results" "$per_round" "$ROUNDS" "$WINDOW" <<'PY'
import statistics, sys
path, per_round, rounds, window = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
runs = {}
for line in open(path):
    mode, t0, t1, hz, w0, w1, s0, s1, rss = line.split()
    t0, t1, hz, w0, w1, s0, s1 = map(float, (t0, t1, hz, w0, w1, s0, s1))
    cpu_s = (t1 - t0) / hz
    wall = w1 - w0
    samples = s1 - s0
    runs.setdefault(mode, []).append((
        100 * cpu_s / wall,
        1e6 * cpu_s / samples if samples > 0 else float("nan"),
        samples / wall,
        int(rss) / 1024,
    ))
def cell(xs, fmt):
    med = statistics.median(xs)
    return f"{fmt.format(med)} ({fmt.format(min(xs))}–{fmt.format(max(xs))})"
base = statistics.median(r[0] for r in runs["prometheus"]) if "prometheus" in runs else None
print(f"16 targets (8 vLLM + 8 DCGM simulators), {per_round} samples a round, 250 ms interval; "
      f"{rounds} interleaved rounds of {window} s; median (min–max)\n")
print("| scraper | CPU, % of one core | µs per scraped sample | samples/s scraped | RSS MB | CPU vs Prometheus |")
print("|---|--:|--:|--:|--:|--:|")
for mode, rs in runs.items():
    cpu = [r[0] for r in rs]
    ratio = f"{statistics.median(cpu) / base:.2f}" if base else "–"
    print(f"| {mode} | {cell(cpu, '{:.2f}')} | {cell([r[1] for r in rs], '{:.2f}')} | "
          f"{cell([r[2] for r in rs], '{:.0f}')} | {cell([r[3] for r in rs], '{:.0f}')} | {ratio} |")
PY
