#!/usr/bin/env bash
# Server CPU per sign-in over the socket, as a multiple of one OpenSSL P-256 verify
# (docs/benchmarks.md, "Server CPU per sign-in against one OpenSSL P-256 verify").
#
#   scripts/signin-floor.sh [ROUNDS] [BINARY...]     (defaults: 3 rounds of target/release/wsauthn)
#
# Each round runs every binary in turn as a server on a fresh data directory (the limits
# scripts/bench-server.sh raises, raised), drives it with `wsauthn bench --mode login --clients 64`
# for 8 s, then times `openssl speed -seconds 3 ecdsap256` in the same minute. Prints, per run,
# the server's µs of CPU per sign-in and its ratio to 1e6 / (verifies per second).
# PORT (default 8080) picks the port; the origin stays http://localhost:8080.
set -euo pipefail
rounds=${1:-3}
shift || true
bins=("$@")
if [[ ${#bins[@]} -eq 0 ]]; then bins=(target/release/wsauthn); fi
port=${PORT:-8080}
export WSAUTHN__SERVER__BIND="127.0.0.1:$port" WSAUTHN__SERVER__STATIC_DIR=""
export WSAUTHN__LIMITS__CEREMONIES_PER_MINUTE=1000000 WSAUTHN__WEBSOCKET__MESSAGES_PER_SECOND=1000000
export WSAUTHN__WEBSOCKET__MESSAGE_BURST=1000000 WSAUTHN__SERVER__MAX_CONNECTS_PER_SECOND=0
export WSAUTHN__LIMITS__CEREMONIES_PER_MINUTE_PER_ADDRESS=100000000
export WSAUTHN__LIMITS__PENDING_CEREMONIES_PER_ADDRESS=1000000
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT

floor_us() {
  local per_s
  per_s=$(openssl speed -seconds 3 ecdsap256 2>/dev/null | awk '/nistp256/ {print $NF}')
  awk -v v="$per_s" 'BEGIN {printf "%.2f", 1e6 / v}'
}

for round in $(seq "$rounds"); do
  results=()
  for bin in "${bins[@]}"; do
    rm -rf "$data/db"
    WSAUTHN__SERVER__DATA_DIR="$data/db" "$bin" >"$data/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
      code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz" || true)
      if [[ "$code" != "000" && -n "$code" ]]; then break; fi
      sleep 0.1
    done
    us=$("$bin" bench --url "ws://127.0.0.1:$port" --mode login --clients 64 --duration 8s \
      --server-pid "$pid" --json --quiet | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["server"]["cpu_us_per_op"], 1))')
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    results+=("$bin $us")
  done
  floor=$(floor_us)
  for r in "${results[@]}"; do
    set -- $r
    awk -v b="$1" -v us="$2" -v f="$floor" -v n="$round" \
      'BEGIN {printf "round %d  %-32s %6.1f µs per sign-in  floor %5.2f µs  = %.2f x\n", n, b, us, f, us / f}'
  done
done
