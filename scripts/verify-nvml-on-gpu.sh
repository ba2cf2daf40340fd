#!/usr/bin/env bash
# Hardware check of the NVML collector: `strata scrape nvml` idle and under a bf16 matmul
# loop, beside nvidia-smi, then the incident profile at 250 ms. Run on a machine with an
# NVIDIA GPU, PyTorch and a release build (target/release/strata); results go to $OUT.
OUT="${OUT:-/tmp/strata-nvml-check}"; mkdir -p "$OUT"
set -u
B=target/release/strata
Q=utilization.gpu,utilization.memory,memory.used,memory.free,power.draw,temperature.gpu,temperature.memory,clocks.sm,clocks.mem,clocks_throttle_reasons.active
nvidia-smi -L
echo "=== IDLE"; $B scrape nvml | tee $OUT/idle.txt; nvidia-smi --query-gpu=$Q --format=csv | tee -a $OUT/idle.txt
python3 - <<'PY' &
import torch,time
a=torch.randn(8192,8192,device='cuda',dtype=torch.bfloat16); b=torch.randn_like(a)
t=time.time()
while time.time()-t<35:
    for _ in range(50): c=a@b
    torch.cuda.synchronize()
PY
sleep 10
echo "=== LOADED"; $B scrape nvml | tee $OUT/loaded.txt; nvidia-smi --query-gpu=$Q --format=csv | tee -a $OUT/loaded.txt
$B scrape nvml --json > $OUT/loaded.json
echo "=== INCIDENT WATCH 3s"; timeout 3 $B scrape nvml --watch --profile incident --json > $OUT/incident.ndjson; wc -l $OUT/incident.ndjson
python3 -c "
import json
for l in open('$OUT/incident.ndjson'):
    o=json.loads(l); s=dict((n,st) for n,st in o['view']['signals'])
    v=lambda n: s[n]['series'][0]['value'] if s[n]['status']=='exposed' else None
    print('tensor',v('gpu:tensor_active_ratio'),'power',v('gpu:power_watts'),'sm_clock',v('gpu:sm_clock_hz'),'throttle',v('gpu:throttle_reasons'),'energy(exp. absent)',s['gpu:energy_joules_total']['status'])
" | head -14
wait
echo "=== AFTER"; $B scrape nvml --profile incident | head -30
