#!/usr/bin/env bash
# Starts a throwaway PostgreSQL for a load run (docs/benchmarks.md, "Several nodes, one
# PostgreSQL"): a fresh data directory, fsync on (as in production), a port of its own, run as
# the `postgres` user when started as root (initdb and postgres refuse root). Prints the URL of
# its database `wsauthn`; stop it with `scripts/bench-postgres.sh stop [DIR]`.
#
#   url=$(scripts/bench-postgres.sh [DIR])
set -euo pipefail
dir=${2:-${1:-/tmp/wsauthn-bench-pg}}
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
port=${PGPORT:-55432}
as=()
if [[ $(id -u) == 0 ]]; then as=(runuser -u postgres --); fi
if [[ ${1:-} == stop ]]; then
  "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null
  exit 0
fi
rm -rf "$dir"
mkdir -p "$dir"
if [[ $(id -u) == 0 ]]; then chown postgres "$dir"; fi
"${as[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >/dev/null
"${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
"${as[@]}" "$bin/createdb" -h "$dir" -p "$port" -U postgres wsauthn
echo "postgres://postgres@127.0.0.1:$port/wsauthn"
