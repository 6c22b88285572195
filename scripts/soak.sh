#!/usr/bin/env bash
# Soak: mixed load (registrations, sign-ins, connects that open and close sockets) against one
# release server for a long time, in back-to-back windows, recording per window the server's RSS,
# open file descriptors, sessions and the latency the load saw. The curve should be flat: a
# leak shows as RSS or descriptors that climb window after window (docs/benchmarks.md, "Soak").
#
#   scripts/soak.sh [MINUTES] [OUT_CSV]        defaults: 10, docs/bench/soak.csv
#   python3 scripts/soak_chart.py docs/bench/soak.csv -o docs/bench/soak.svg
#
# Bounded: it stops after MINUTES on its own and kills the server it started; loopback only.
set -euo pipefail
minutes=${1:-10}
out=${2:-docs/bench/soak.csv}
bin=${WSAUTHN_BIN:-target/release/wsauthn}
window=${SOAK_WINDOW:-30s}
clients=${SOAK_CLIENTS:-32}
rate=${SOAK_RATE:-400}
[[ -x "$bin" ]] || { echo "build it first: cargo build --release" >&2; exit 2; }
mkdir -p "$(dirname "$out")"
pid=$(scripts/bench-server.sh /tmp/wsauthn-soak)
trap 'kill "$pid" 2>/dev/null || true' EXIT
echo "elapsed_s,rss_kib,fds,ops_per_sec,p50_ms,p99_ms,max_ms,errors,server_cpu_us_per_op" >"$out"
start=$(date +%s)
end=$((start + minutes * 60))
while [[ $(date +%s) -lt $end ]]; do
  report=$("$bin" bench --mode mixed --clients "$clients" --rate "$rate" --duration "$window" \
    --server-pid "$pid" --json --quiet ${BENCH_ARGS:-} || true)
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
  fds=$(ls "/proc/$pid/fd" | wc -l)
  now=$(($(date +%s) - start))
  python3 - "$now" "$rss" "$fds" <<PY >>"$out"
import json, sys
r = json.loads('''$report''' or '{}')
lat = r.get("latency_ms") or {}
srv = r.get("server") or {}
print(",".join(str(x) for x in [sys.argv[1], sys.argv[2], sys.argv[3],
    round(r.get("ops_per_sec", 0), 1), lat.get("p50", ""), lat.get("p99", ""), lat.get("max", ""),
    r.get("error_count", ""), round(srv.get("cpu_us_per_op") or 0, 1)]))
PY
  tail -n 1 "$out"
done
