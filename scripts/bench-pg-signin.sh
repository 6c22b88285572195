#!/usr/bin/env bash
# Server CPU per sign-in on PostgreSQL against sled, in interleaved rounds on one machine
# (docs/benchmarks.md, "Several nodes, one PostgreSQL"): each round starts a sled server and a
# PostgreSQL server (one throwaway PostgreSQL for the run, fsync on) on fresh data, drives each
# with `wsauthn bench --mode login` (64 clients, a token per sign-in), and prints both CPU
# figures, their ratio, and the medians at the end.
#
#   scripts/bench-pg-signin.sh [ROUNDS] [SECONDS]      (defaults 5 rounds of 8 s)
#
# Needs a release build (cargo build --release) and PostgreSQL's binaries.
set -euo pipefail
rounds=${1:-5}
secs=${2:-8}
bin=${WSAUTHN_BIN:-target/release/wsauthn}
work=$(mktemp -d)
chmod 755 "$work" # PostgreSQL runs as its own user below it
pid=
trap '[[ -n "$pid" ]] && kill "$pid" 2>/dev/null; scripts/bench-postgres.sh stop "$work/pg" || true; rm -rf "$work"' EXIT
url=$(scripts/bench-postgres.sh "$work/pg")

run() { # BACKEND → "ops_per_s cpu_us_per_op"
  pid=$(WSAUTHN__STORE__BACKEND=$1 WSAUTHN__STORE__POSTGRES_URL=$url PORT=8090 \
    scripts/bench-server.sh "$work/$1" 2>/dev/null)
  "$bin" bench --url ws://127.0.0.1:8090 --mode login --clients 64 --duration "${secs}s" \
    --server-pid "$pid" --json --quiet |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print(round(r["ops_per_sec"]), round(r["server"]["cpu_us_per_op"], 1))'
  kill "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  pid=
}

ratios=()
for round in $(seq "$rounds"); do
  read -r sled_ops sled_us < <(run sled)
  read -r pg_ops pg_us < <(run postgres)
  ratio=$(awk -v p="$pg_us" -v s="$sled_us" 'BEGIN {printf "%.2f", p / s}')
  ratios+=("$ratio")
  echo "round $round: sled $sled_ops/s $sled_us µs, postgres $pg_ops/s $pg_us µs: $ratio ×"
done
printf '%s\n' "${ratios[@]}" | sort -n |
  awk '{r[NR] = $1} END {printf "median PostgreSQL / sled: %s × (%s–%s)\n", r[int((NR + 1) / 2)], r[1], r[NR]}'
