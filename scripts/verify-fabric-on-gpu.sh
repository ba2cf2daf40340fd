#!/usr/bin/env bash
# Hardware check of the MIG and fabric parts of the NVML collector, beside nvidia-smi. Run on
# the GPU machine with a release build (target/release/strata); it reads only and never
# changes MIG mode or any GPU setting. Results go to $OUT.
#
# Expected on a single H200 without MIG and without NVSwitch: the status line says "MIG off"
# and "fabric not visible from this node", there is no strata_gpu_mig_* series, and
# strata_gpu_nvswitch_links is 0 or absent (NotSupported); nvidia-smi agrees (MIG mode
# Disabled, Fabric State "N/A" or no Fabric section). `strata scrape infiniband kubelet`
# says whether RDMA ports and a kubelet are visible from this node.
OUT="${OUT:-/tmp/strata-fabric-check}"; mkdir -p "$OUT"
set -u
B="${STRATA:-target/release/strata}"
[ -x "$B" ] || { echo "build first: cargo build --release -p strata (or set STRATA=path)"; exit 2; }

echo "=== nvidia-smi: GPUs, MIG mode, fabric"
nvidia-smi -L | tee "$OUT/nvidia-smi-L.txt"
nvidia-smi --query-gpu=index,name,uuid,mig.mode.current,mig.mode.pending --format=csv | tee "$OUT/mig-mode.csv"
nvidia-smi -q | awk '/^GPU /{print} /Fabric/{f=1} f&&/^[[:space:]]*$/{f=0} f{print}' | tee "$OUT/fabric-smi.txt"
nvidia-smi topo -m | tee "$OUT/topo.txt"
nvidia-smi nvlink -s 2>&1 | head -40 | tee "$OUT/nvlink.txt"
nvidia-smi mig -lgi 2>&1 | tee "$OUT/mig-lgi.txt"

echo "=== strata scrape nvml: status line (MIG / fabric) and series outside the vocabulary"
"$B" scrape nvml | tee "$OUT/scrape-nvml.txt" | grep -E '^== |NVML |MIG|fabric|NVSwitch|note: strata_gpu_'
"$B" scrape nvml --json > "$OUT/scrape-nvml.json"
python3 - "$OUT/scrape-nvml.json" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))[0]
print("status:", o.get("note"))
notes = (o.get("view") or {}).get("notes", [])
mig = [n for n in notes if n.startswith("strata_gpu_mig_")]
nvs = [n for n in notes if n.startswith("strata_gpu_nvswitch_links")]
print("MIG series:", len(mig)); [print("  ", n) for n in mig]
print("NVSwitch series:", nvs or "none (NVML did not report NVML_FI_DEV_NVSWITCH_CONNECTED_LINK_COUNT)")
PY

echo "=== strata scrape infiniband kubelet (absent layers are a status line, not an error)"
"$B" scrape infiniband kubelet | tee "$OUT/scrape-node.txt" | head -40
ls /sys/class/infiniband 2>&1 | tee "$OUT/sys-class-infiniband.txt"
echo "results in $OUT"
