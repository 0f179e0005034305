#!/usr/bin/env bash
# Stops the test server scripts/setup-postgres.sh started in this checkout's
# .pg/. With --purge, also deletes .pg/ (every test database in it).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
base=$repo/.pg
data=$base/data
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)

if [ -n "$bin" ] && [ -f "$data/PG_VERSION" ]; then
    if [ "$(id -u)" = 0 ]; then run=(runuser -u postgres --); else run=(); fi
    if "${run[@]}" "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        "${run[@]}" "$bin/pg_ctl" -D "$data" -w -t 60 stop -m fast >/dev/null
        echo "stop-postgres: stopped the server in $data" >&2
    else
        echo "stop-postgres: no server running in $data" >&2
    fi
fi
if [ "${1:-}" = --purge ]; then
    rm -rf "$base"
    echo "stop-postgres: removed $base" >&2
fi
