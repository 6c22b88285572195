#!/usr/bin/env bash
# Runs `wsauthn bench` at several client counts against a fresh server each time and keeps the
# JSON reports, for scripts/chart.py (docs/benchmarks.md).
#
#   scripts/sweep.sh MODE OUT_DIR [DURATION] [CLIENTS...]
#   scripts/sweep.sh login docs/bench 10s 1 2 4 8 16 32 64 128 256
set -euo pipefail
mode=$1
out=$2
duration=${3:-10s}
shift 3 || true
clients=("$@")
if [[ ${#clients[@]} -eq 0 ]]; then clients=(1 2 4 8 16 32 64 128 256); fi
bin=${WSAUTHN_BIN:-target/release/wsauthn}
mkdir -p "$out"
for n in "${clients[@]}"; do
  pid=$(scripts/bench-server.sh /tmp/wsauthn-sweep)
  "$bin" bench --mode "$mode" --clients "$n" --duration "$duration" --server-pid "$pid" \
    --json --quiet ${BENCH_ARGS:-} >"$out/$mode-$n.json" || true
  kill "$pid"
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); \
print(f\"{r['mode']:8} clients {r['clients']:4}  {r['ops_per_sec']:8.1f} ops/s  \
p99 {(r['latency_ms'] or {}).get('p99', 0):7.2f} ms  errors {r['error_count']}  \
server {((r['server'] or {}).get('cpu_us_per_op') or 0):6.1f} us/op\")" "$out/$mode-$n.json"
done
