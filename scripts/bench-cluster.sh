#!/usr/bin/env bash
# Sign-ins/s, connects/s and server CPU per operation for one node on sled, one node on
# PostgreSQL and three nodes on PostgreSQL (load spread over them), then the revocation fan-out
# to 10,000 sockets on other nodes (docs/benchmarks.md, "Several nodes, one PostgreSQL").
#
#   scripts/bench-cluster.sh [SECONDS] [CLIENTS]      (defaults 8 s, 64 clients per node)
#
# Needs a release build (cargo build --release --bin wsauthn --example fanout) and PostgreSQL's
# binaries (scripts/bench-postgres.sh starts a throwaway one, fsync on).
set -euo pipefail
secs=${1:-8}
clients=${2:-64}
bin=target/release/wsauthn
fanout=target/release/examples/fanout
work=$(mktemp -d)
chmod 755 "$work"  # PostgreSQL runs as its own user below it
servers=()
trap 'kill "${servers[@]}" 2>/dev/null || true; scripts/bench-postgres.sh stop "$work/pg" || true; rm -rf "$work"' EXIT
url=$(scripts/bench-postgres.sh "$work/pg")

start() { # PORT BACKEND → pid
  local port=$1 backend=$2
  mkdir -p "$work/$port"
  WSAUTHN__STORE__BACKEND=$backend WSAUTHN__STORE__POSTGRES_URL=$url \
    PORT=$port scripts/bench-server.sh "$work/$port" 2>/dev/null
}

bench() { # PORT PID MODE → "ops_per_s cpu_us_per_op"
  "$bin" bench --url "ws://127.0.0.1:$1" --mode "$3" --clients "$clients" --duration "${secs}s" \
    --server-pid "$2" --json --quiet |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print(round(r["ops_per_sec"]), round(r["server"]["cpu_us_per_op"], 1))'
}

floor=$(openssl speed -seconds 3 ecdsap256 2>/dev/null | awk '/nistp256/ {printf "%.2f", 1e6 / $NF}')
echo "OpenSSL P-256 verify: $floor µs"
for backend in sled postgres; do
  pid=$(start 8090 "$backend"); servers+=("$pid")
  for mode in login connect; do
    read -r ops us < <(bench 8090 "$pid" "$mode")
    echo "one node $backend $mode: $ops/s, $us µs CPU/op ($(awk -v u="$us" -v f="$floor" 'BEGIN {printf "%.2f", u / f}') × verify)"
  done
  kill "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
done

pids=()
for port in 8091 8092 8093; do pids+=("$(start "$port" postgres)"); done
servers+=("${pids[@]}")
for mode in login connect; do
  loads=()
  for i in 0 1 2; do
    bench "$((8091 + i))" "${pids[$i]}" "$mode" >"$work/out$i" &
    loads+=($!)
  done
  wait "${loads[@]}"
  total=0; cpu=""
  for i in 0 1 2; do
    read -r ops us <"$work/out$i"; total=$((total + ops)); cpu="$cpu $us"
  done
  echo "three nodes postgres $mode: $total/s in all, µs CPU/op per node:$cpu"
done
"$fanout" 10000 100 ws://127.0.0.1:8091 ws://127.0.0.1:8092 ws://127.0.0.1:8093
