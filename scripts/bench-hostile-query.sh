#!/usr/bin/env bash
# Peak memory of Strata and Prometheus, same run, same data, while a heavy subquery
# (`sum_over_time(up[7d:1s])`) and a hostile one (`sum_over_time(up[100y:1s])`), four at once
# each, are sent to each. Both scrape the same
# simulated engine (Prometheus every 1 s, Strata at its 10 s engine default) for WARMUP seconds first. Prints a table of VmHWM (peak RSS) and
# answers. Needs a release build (`cargo build --release -p strata`) and `prometheus`.
#   WARMUP  seconds of scraping before the queries (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${STRATA_BIN:-target/release/strata}
WARMUP=${WARMUP:-20}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
SIM=$(port); STRATA=$(port); PROM=$(port)
"$BIN" sim --listen "127.0.0.1:$SIM" --gpu-listen "127.0.0.1:$(port)" >"$work/sim.log" 2>&1 &
sleep 1
cat >"$work/prom.yml" <<YML
global: {scrape_interval: 1s}
scrape_configs:
- job_name: engine
  static_configs: [{targets: ["127.0.0.1:$SIM"]}]
YML
prometheus --config.file="$work/prom.yml" --storage.tsdb.path="$work/prom" \
  --web.listen-address="127.0.0.1:$PROM" --log.level=warn >"$work/prom.log" 2>&1 &
PROM_PID=$!
"$BIN" up --listen "127.0.0.1:$STRATA" --data-dir "$work/strata" \
  --engine "http://127.0.0.1:$SIM/metrics" >"$work/strata.log" 2>&1 &
STRATA_PID=$!
sleep "$WARMUP"
hwm() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
ask() { # url -> "code seconds" for 4 concurrent queries (the first one's answer shown)
  for i in 1 2 3 4; do
    curl -s -o "$work/ans.$2.$i" -w '%{http_code} %{time_total}\n' --max-time 120 \
      --data-urlencode "query=$3" "$1/api/v1/query" >"$work/code.$2.$i" &
  done
  wait
  cat "$work/code.$2.1"
}
printf '| query | | RSS before (KiB) | peak RSS so far (KiB) | answer (first of 4) | seconds |\n|---|---|--:|--:|---|--:|\n'
# The allowed-but-heavy query first: Prometheus may not survive the second.
for q in 'sum_over_time(up[7d:1s])' 'sum_over_time(up[100y:1s])'; do
for who in strata prometheus; do
  [ -e /proc/$PROM_PID/status ] || [ $who = strata ] || continue
  if [ $who = strata ]; then pid=$STRATA_PID; url="http://127.0.0.1:$STRATA"; else pid=$PROM_PID; url="http://127.0.0.1:$PROM"; fi
  before=$(rss $pid)
  read -r code secs < <(ask "$url" $who "$q")
  msg=$(head -c 100 "$work/ans.$who.1" 2>/dev/null | tr '\n' ' ' || true)
  [ -n "$msg" ] || msg="(no answer within 120 s)"
  if [ -e "/proc/$pid/status" ]; then peak=$(hwm $pid); else
    peak="process gone"; echo "$who exited; last log lines:" >&2; tail -5 "$work/$( [ $who = strata ] && echo strata || echo prom ).log" >&2; fi
  printf '| `%s` | %s | %s | %s | %s %s | %s |\n' "$q" "$who" "$before" "$peak" "$code" "$msg" "$secs"
done
done
