#!/usr/bin/env bash
# Soak: steady load against one release server for a long time, in back-to-back windows that
# alternate sign-ins (the ceremony socket reopened every 20 sign-ins) and connects (protected
# sockets opened, used once and closed with the full closing handshake), recording per window the server's RSS,
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
# Sessions live two minutes (idle: one), so they end and are swept as fast as sign-ins open
# them: the table reaches a steady size instead of growing for the token's 24 hours, and what
# stays is what a leak would leave. Accounts still accumulate (a tenth of the operations
# register one: each window's setup registers --clients accounts).
export WSAUTHN__TOKENS__LIFETIME_SECS=${WSAUTHN__TOKENS__LIFETIME_SECS:-120}
export WSAUTHN__TOKENS__IDLE_TIMEOUT_SECS=${WSAUTHN__TOKENS__IDLE_TIMEOUT_SECS:-60}
export WSAUTHN__TOKENS__EXPIRY_WARNING_SECS=${WSAUTHN__TOKENS__EXPIRY_WARNING_SECS:-30}
mkdir -p "$(dirname "$out")"
export WSAUTHN__METRICS__ENABLED=true
pid=$(scripts/bench-server.sh /tmp/wsauthn-soak)
trap 'kill "$pid" 2>/dev/null || true' EXIT
echo "elapsed_s,mode,rss_kib,fds,sessions,accounts,ops_per_sec,p50_ms,p99_ms,max_ms,errors,server_cpu_us_per_op" >"$out"
start=$(date +%s)
end=$((start + minutes * 60))
turn=0
while [[ $(date +%s) -lt $end ]]; do
  turn=$((turn + 1))
  if (( turn % 2 )); then mode=(--mode login --ops-per-socket 20); else mode=(--mode connect); fi
  report=$("$bin" bench "${mode[@]}" --clients "$clients" --rate "$rate" --duration "$window" \
    --server-pid "$pid" --json --quiet ${BENCH_ARGS:-} || true)
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
  fds=$(ls "/proc/$pid/fd" | wc -l)
  now=$(($(date +%s) - start))
  metrics=$(curl -s http://127.0.0.1:8080/metrics || true)
  sessions=$(awk '/^wsauthn_sessions_live / {print $2}' <<<"$metrics")
  accounts=$(awk '/ceremony="register",outcome="ok"/ {print $2}' <<<"$metrics")
  python3 - "$now" "${mode[1]}" "$rss" "$fds" "${sessions:-}" "${accounts:-}" <<PY >>"$out"
import json, sys
r = json.loads('''$report''' or '{}')
lat = r.get("latency_ms") or {}
srv = r.get("server") or {}
print(",".join(str(x) for x in [sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6],
    round(r.get("ops_per_sec", 0), 1), lat.get("p50", ""), lat.get("p99", ""), lat.get("max", ""),
    r.get("error_count", ""), round(srv.get("cpu_us_per_op") or 0, 1)]))
PY
  tail -n 1 "$out"
done
