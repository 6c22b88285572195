#!/usr/bin/env bash
# Proxy mode against the same upstream directly (docs/benchmarks.md, "Proxied frames"): an echo
# upstream (examples/echo_upstream.rs) on its own port, a release wsauthn with a [[proxy]] path
# to it, then `wsauthn bench --mode frames` through the proxy and straight to the upstream,
# interleaved, ROUNDS times. The JSON reports go to OUT_DIR as
# frames-{direct,proxied}-<clients>c-<bytes>b-<round>.json.
#
#   cargo build --release --bin wsauthn --example echo_upstream
#   scripts/bench-proxy.sh OUT_DIR CLIENTS FRAME_BYTES [DURATION] [ROUNDS]
set -euo pipefail
out=${1:?OUT_DIR}
clients=${2:?CLIENTS}
bytes=${3:?FRAME_BYTES}
duration=${4:-8s}
rounds=${5:-3}
bin=${WSAUTHN_BIN:-target/release/wsauthn}
upstream_bin=${UPSTREAM_BIN:-target/release/examples/echo_upstream}
port=${PORT:-8180}
up_port=${UPSTREAM_PORT:-9180}
data=$(mktemp -d /tmp/wsauthn-proxy-bench.XXXXXX)
mkdir -p "$out"
cat >"$data/proxy.toml" <<TOML
[[proxy]]
path = "/game"
upstream = "http://127.0.0.1:$up_port"

[endpoints.paths]
"/game" = "required"
"/game/*" = "required"
TOML
WORKERS=1 "$upstream_bin" "127.0.0.1:$up_port" >"$data/upstream.log" 2>&1 &
up=$!
srv=$(PORT=$port WSAUTHN_BIN=$bin scripts/bench-server.sh "$data/server" "$data/proxy.toml")
trap 'kill $srv $up 2>/dev/null || true' EXIT
run() {
  local how=$1 round=$2
  shift 2
  "$bin" bench --url "ws://127.0.0.1:$port" --mode frames --clients "$clients" \
    --frame-bytes "$bytes" --duration "$duration" --quiet --json "$@" \
    >"$out/frames-$how-${clients}c-${bytes}b-$round.json"
}
for round in $(seq "$rounds"); do
  run direct "$round" --connect-url "ws://127.0.0.1:$up_port/game/x" --server-pid "$up"
  run proxied "$round" --connect-path /game/x --server-pid "$srv"
done
