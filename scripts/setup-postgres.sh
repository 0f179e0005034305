#!/usr/bin/env bash
# A private PostgreSQL server for tracer's tests, in this checkout's .pg/
# (git-ignored): installs Debian's `postgresql` if it is missing, creates the
# cluster the first time, starts it if it is not running, and makes sure the
# role and database `tracer` (password `tracer`) exist. Idempotent; seconds
# when already set up.
#
# stdout is one line, for eval:
#   eval "$(scripts/setup-postgres.sh)"   # exports TRACER_TEST_POSTGRES_URL
# Progress goes to stderr. TRACER_PG_PORT picks the first port to try
# (default 55432); the port in use is remembered in .pg/port.
# Stop it with scripts/stop-postgres.sh.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
base=$repo/.pg
data=$base/data
log=$base/server.log
say() { echo "setup-postgres: $*" >&2; }
die() { say "$*"; exit 1; }

pg_bin() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$dir" ] && [ -x "$dir/initdb" ] && echo "$dir"
}

bin=$(pg_bin || true)
if [ -z "$bin" ] || ! command -v openssl >/dev/null; then
    [ "$(id -u)" = 0 ] || die "PostgreSQL or openssl is not installed; run as root to apt-get install them, or install the 'postgresql' and 'openssl' packages"
    say "installing PostgreSQL (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends postgresql openssl >&2
    bin=$(pg_bin) || die "apt-get installed postgresql but no /usr/lib/postgresql/*/bin/initdb was found"
fi
major=$(basename "$(dirname "$bin")")

# Root runs the server as `postgres` (initdb refuses root); anyone else as themselves.
if [ "$(id -u)" = 0 ]; then
    owner=postgres
    as_owner() { runuser -u postgres -- "$@"; }
else
    owner=$(id -un)
    as_owner() { "$@"; }
fi

mkdir -p "$base"
exec 9>"$base/lock"
flock -w 120 9 || die "another setup-postgres.sh holds $base/lock"

# Unix sockets have a ~107-byte path limit: use .pg/ when short enough.
if [ ${#base} -le 80 ]; then sock=$base; else sock=/tmp; fi

if [ -f "$data/PG_VERSION" ] && [ "$(cat "$data/PG_VERSION")" != "$major" ]; then
    say "cluster in $data is PostgreSQL $(cat "$data/PG_VERSION"), installed is $major: recreating it"
    as_owner "$bin/pg_ctl" -D "$data" stop -m immediate >/dev/null 2>&1 || true
    rm -rf "$data"
fi

if [ ! -f "$data/PG_VERSION" ]; then
    say "creating a PostgreSQL $major cluster in $data"
    rm -rf "$data"
    chown "$owner" "$base"
    chmod 700 "$base"
    as_owner test -w "$base" || die "user $owner cannot write $base (a parent directory is not searchable?)"
    as_owner "$bin/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 --no-locale --no-sync >"$base/initdb.log" 2>&1 \
        || { cat "$base/initdb.log" >&2; die "initdb failed"; }
    # TLS with a self-signed certificate, so that sslmode=require is tested.
    as_owner openssl req -new -x509 -days 3650 -nodes -subj "/CN=127.0.0.1" \
        -addext "subjectAltName=IP:127.0.0.1" \
        -keyout "$data/server.key" -out "$data/server.crt" >/dev/null 2>&1 \
        || die "openssl could not make the test server's certificate"
    chmod 600 "$data/server.key"
    # A throwaway test server: durability off for speed, loopback only.
    cat >>"$data/postgresql.conf" <<CONF

# tracer test cluster (scripts/setup-postgres.sh)
listen_addresses = '127.0.0.1'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
ssl = on
CONF
fi

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    port=$(cat "$base/port")
else
    port=$(cat "$base/port" 2>/dev/null || echo "${TRACER_PG_PORT:-55432}")
    tries=0
    while port_busy "$port"; do
        tries=$((tries + 1))
        [ $tries -le 50 ] || die "no free port from $((port - tries + 1)) to $port"
        port=$((port + 1))
    done
    echo "$port" >"$base/port"
    say "starting PostgreSQL $major on 127.0.0.1:$port"
    as_owner "$bin/pg_ctl" -D "$data" -l "$log" -w -t 60 \
        -o "-p $port -k $sock" start >/dev/null 9>&- \
        || { tail -n 20 "$log" >&2; die "the server did not start (log: $log)"; }
fi

psql_admin() { "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port" -U postgres -d postgres -tAc "$1"; }
if [ "$(psql_admin "SELECT 1 FROM pg_roles WHERE rolname = 'tracer'")" != 1 ]; then
    psql_admin "CREATE ROLE tracer LOGIN PASSWORD 'tracer'"
fi
if [ "$(psql_admin "SELECT 1 FROM pg_database WHERE datname = 'tracer'")" != 1 ]; then
    psql_admin "CREATE DATABASE tracer OWNER tracer"
fi

echo "export TRACER_TEST_POSTGRES_URL=postgres://tracer:tracer@127.0.0.1:$port/tracer"
