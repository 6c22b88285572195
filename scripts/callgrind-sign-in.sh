#!/usr/bin/env bash
# Instructions per sign-in, which the host's noise does not move (docs/benchmarks.md): a release
# server under `valgrind --tool=callgrind` (one worker, fresh data directory, port 8090), signed
# into by 4 virtual users for DURATION; prints the process's user-space instructions divided by
# the sign-ins, and webauthn-rs's `finish_passkey_authentication` (the bare check) the same way.
#
#   scripts/callgrind-sign-in.sh [SERVER_BINARY] [DURATION]
set -euo pipefail
bin=${1:-target/release/wsauthn}
duration=${2:-40s}
port=${PORT:-8090}
dir=$(mktemp -d /tmp/wsauthn-callgrind.XXXXXX)
WSAUTHN__SERVER__DATA_DIR="$dir/db" WSAUTHN__SERVER__STATIC_DIR="" WSAUTHN__SERVER__WORKERS=1 \
WSAUTHN__SERVER__BIND="127.0.0.1:$port" WSAUTHN__LIMITS__CEREMONIES_PER_MINUTE=1000000 \
WSAUTHN__WEBSOCKET__MESSAGES_PER_SECOND=1000000 WSAUTHN__WEBSOCKET__MESSAGE_BURST=1000000 \
  valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" "$bin" >"$dir/server.log" 2>"$dir/valgrind.log" &
vg=$!
for _ in $(seq 300); do
  curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break
  sleep 0.2
done
target/release/wsauthn bench --url "ws://127.0.0.1:$port" --mode login --clients 4 --duration "$duration" \
  --timeout 60s --setup-timeout 300s --json --quiet >"$dir/bench.json"
kill -INT "$vg"
wait "$vg" || true
python3 - "$dir" <<'PY'
import json, re, subprocess, sys
d = sys.argv[1]
n = json.load(open(f"{d}/bench.json"))["operations"]["login"]["count"]
total = next(int(l.split()[1]) for l in open(f"{d}/callgrind.out") if l.startswith(("summary:", "totals:")))
out = subprocess.run(["callgrind_annotate", "--inclusive=yes", f"{d}/callgrind.out"],
                     capture_output=True, text=True).stdout
bare = next(int(re.sub(r"[^0-9]", "", l.split()[0])) for l in out.splitlines()
            if "webauthn_rs::Webauthn::finish_passkey_authentication [" in l)
print(f"sign-ins {n}: {total / n / 1e6:.3f} M instructions per sign-in, "
      f"finish_passkey_authentication {bare / n / 1e6:.3f} M, ratio {total / bare:.3f}")
PY
echo "profile: $dir/callgrind.out"
