#!/usr/bin/env bash
# Checks the engine↔GPU mapping on a real GPU machine: starts a Python process that listens
# on a loopback port (answering /metrics like a vLLM engine) and holds memory on GPU 0
# (PyTorch), runs `strata scrape nvml URL`, and says whether the mapping names that GPU.
# Usage: scripts/verify-engine-gpu-map.sh [path/to/strata]   (default: target/debug/strata)
set -euo pipefail
STRATA=${1:-target/debug/strata}
PORT=${PORT:-18777}
python3 - "$PORT" <<'PY' &
import http.server, sys, torch
x = torch.ones(64 << 20, device="cuda:0")  # 256 MiB: a compute context on GPU 0
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'vllm:num_requests_running{model_name="verify"} 0\nvllm:kv_cache_usage_perc{model_name="verify"} 0\n'
        self.send_response(200); self.send_header("Content-Type", "text/plain"); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
PY_PID=$!
trap 'kill "$PY_PID" 2>/dev/null || true' EXIT
for _ in $(seq 60); do curl -sf "http://127.0.0.1:$PORT/metrics" >/dev/null 2>&1 && break; sleep 0.5; done
OUT=$("$STRATA" scrape nvml "http://127.0.0.1:$PORT/metrics" 2>&1 || true)
echo "$OUT"
echo "----"
if echo "$OUT" | grep -E "\(127\.0\.0\.1:$PORT\) → .* · GPU 0 · " >/dev/null; then
  echo "PASS: the engine on :$PORT (pid $PY_PID) is mapped to GPU 0"
else
  echo "FAIL: no engine-gpu line names GPU 0 for 127.0.0.1:$PORT (see the engine-gpu block above)"
  exit 1
fi
