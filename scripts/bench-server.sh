#!/usr/bin/env bash
# Starts a release wsauthn server for a load run (docs/benchmarks.md): a fresh data directory,
# the per-socket limits raised so they are not what is measured, logs to a file. Prints its pid.
#
#   scripts/bench-server.sh [DATA_DIR] [extra config file]
#   pid=$(scripts/bench-server.sh /tmp/wsauthn-bench) ... kill "$pid"
#   PORT=8180 scripts/bench-server.sh ...   (another port than 8080)
set -euo pipefail
data=${1:-/tmp/wsauthn-bench}
config=${2:-}
bin=${WSAUTHN_BIN:-target/release/wsauthn}
port=${PORT:-8080}
rm -rf "$data"
mkdir -p "$data"
export WSAUTHN__SERVER__DATA_DIR="$data/db"
export WSAUTHN__SERVER__BIND="127.0.0.1:$port"
export WSAUTHN__SERVER__STATIC_DIR=""
export WSAUTHN__LIMITS__CEREMONIES_PER_MINUTE=${WSAUTHN__LIMITS__CEREMONIES_PER_MINUTE:-1000000}
export WSAUTHN__WEBSOCKET__MESSAGES_PER_SECOND=${WSAUTHN__WEBSOCKET__MESSAGES_PER_SECOND:-1000000}
export WSAUTHN__WEBSOCKET__MESSAGE_BURST=${WSAUTHN__WEBSOCKET__MESSAGE_BURST:-1000000}
export WSAUTHN__SERVER__MAX_CONNECTS_PER_SECOND=${WSAUTHN__SERVER__MAX_CONNECTS_PER_SECOND:-0}
export WSAUTHN__LIMITS__CEREMONIES_PER_MINUTE_PER_ADDRESS=${WSAUTHN__LIMITS__CEREMONIES_PER_MINUTE_PER_ADDRESS:-100000000}
# Every virtual user is on 127.0.0.1: past 64 clients the per-address cap on pending ceremonies
# (default 64) would answer rate_limited.
export WSAUTHN__LIMITS__PENDING_CEREMONIES_PER_ADDRESS=${WSAUTHN__LIMITS__PENDING_CEREMONIES_PER_ADDRESS:-1000000}
args=()
if [[ -n "$config" ]]; then args=(--config "$config"); fi
"$bin" "${args[@]}" >"$data/server.log" 2>&1 &
pid=$!
# Ready when it answers HTTP at all (bounded: 10 s); /healthz may be protected.
for _ in $(seq 100); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz" 2>/dev/null || true)
  if [[ "$code" != "000" && -n "$code" ]]; then
    echo "$pid"
    exit 0
  fi
  sleep 0.1
done
echo "server did not start; see $data/server.log" >&2
kill "$pid" 2>/dev/null || true
exit 1
