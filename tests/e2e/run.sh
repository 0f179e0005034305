#!/usr/bin/env bash
# End-to-end suite: the real openstack CLI against real keystone, glance, swift
# and trove from PyPI (tests/lab), with tracer in front of all four.
#
#   tests/e2e/run.sh [pytest args...]      e.g. -k image_create, -x
#
# 1. makes .venv (pytest, mkdocs) and the lab's venvs (cached; ~1-1.5 min cold)
# 2. starts `tracer serve` (tests/e2e/tracer-lab.toml, a fresh SQLite db in a temp dir)
# 3. sets the lab up from scratch with every URL pointing at tracer (tests/e2e/lab.env) and starts it
# 4. runs pytest tests/e2e (one test per recorded flow + the mkdocs --strict site)
# 5. stops tracer and the lab whatever happens (trap); on failure keeps the temp dir
#
# Env: TRACER_BIN (default: the newer of target/release/tracer and target/debug/tracer),
#      LAB (default <repo>/.lab), E2E_KEEP=1 (keep the temp dir), UWSGI_KEEPALIVE=1|0,
#      E2E_EXAMPLES_OUT=DIR (also export the flows there, redacted: make_examples.sh).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
E2E=tests/e2e
T0=$(date +%s)
say() { printf '[e2e %4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }
die() { say "ERROR: $*" >&2; exit 1; }

if [ -z "${TRACER_BIN:-}" ]; then
  for b in target/release/tracer target/debug/tracer; do
    [ -x "$b" ] && { [ -z "${TRACER_BIN:-}" ] || [ "$b" -nt "$TRACER_BIN" ]; } && TRACER_BIN=$REPO/$b
  done
fi
[ -n "${TRACER_BIN:-}" ] && [ -x "$TRACER_BIN" ] ||
  die "no tracer binary: build it (cargo build --release) or set TRACER_BIN"

export LAB=${LAB:-$REPO/.lab}
# shellcheck source=tests/e2e/lab.env
. "$E2E/lab.env"
# uwsgi with real HTTP/1.1 keep-alive (as devstack's Apache in front of uwsgi),
# so tracer keeps connections open on both sides; 0 = one request per connection
export UWSGI_KEEPALIVE=${UWSGI_KEEPALIVE:-1}

TRACER_PORTS="15000 19292 18080 18779 18778 18774 19696 18799"   # tests/e2e/tracer-lab.toml
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in $TRACER_PORTS; do
  listening "$p" && die "port $p (tests/e2e/tracer-lab.toml) is already in use: $(ss -Hltnp "sport = :$p" 2>/dev/null | grep -o 'users:.*')"
done

E2E_TMP=$(mktemp -d "${TMPDIR:-/tmp}/tracer-e2e.XXXXXX")
export E2E_TMP TRACER_BIN
export TRACER_E2E_CONFIG=$REPO/$E2E/tracer-lab.toml
export TRACER_E2E_DB=sqlite://$E2E_TMP/e2e.db
TRACER_PID=
PYTEST_PID=

# shellcheck disable=SC2329  # called from the EXIT trap
stop_tracer() {
  [ -n "$TRACER_PID" ] && kill -0 "$TRACER_PID" 2>/dev/null || return 0
  kill -TERM "$TRACER_PID"
  local i
  for i in $(seq 1 100); do kill -0 "$TRACER_PID" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$TRACER_PID" 2>/dev/null; then say "tracer did not stop in 20 s: SIGKILL"; kill -KILL "$TRACER_PID"; fi
  wait "$TRACER_PID" 2>/dev/null || say "tracer serve exited with status $?"
  TRACER_PID=
}
# shellcheck disable=SC2329  # the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$PYTEST_PID" ] && kill -0 "$PYTEST_PID" 2>/dev/null; then
    kill -TERM "$PYTEST_PID"; wait "$PYTEST_PID" 2>/dev/null || true
  fi
  stop_tracer
  tests/lab/lab.sh stop > "$E2E_TMP/lab-stop.log" 2>&1 || { say "lab stop:"; cat "$E2E_TMP/lab-stop.log"; }
  if [ "$rc" -ne 0 ] || [ -n "${E2E_KEEP:-}" ]; then
    say "kept $E2E_TMP (tracer.log, e2e.db, flows/, client/) and $LAB/logs"
  else
    rm -rf "$E2E_TMP"
  fi
  say "exit $rc"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM


say "tracer: $TRACER_BIN ($("$TRACER_BIN" --version))"
say "python tools (.venv) and the lab's venvs, in parallel"
"$E2E/setup.sh" > "$E2E_TMP/setup.log" 2>&1 & setup_pid=$!
tests/lab/lab.sh stop
bash scripts/setup-rabbitmq.sh   # Debian's rabbitmq-server for nova's RPC (idempotent)
tests/lab/lab.sh install
wait "$setup_pid" || { cat "$E2E_TMP/setup.log"; die "tests/e2e/setup.sh failed"; }
say "$(tail -n 1 "$E2E_TMP/setup.log")"

say "tracer serve (db $TRACER_E2E_DB)"
"$TRACER_BIN" --config "$TRACER_E2E_CONFIG" --db "$TRACER_E2E_DB" serve > "$E2E_TMP/tracer.log" 2>&1 &
TRACER_PID=$!
for i in $(seq 1 150); do
  kill -0 "$TRACER_PID" 2>/dev/null || { cat "$E2E_TMP/tracer.log"; die "tracer serve exited"; }
  up=1; for p in $TRACER_PORTS; do listening "$p" || up=0; done
  [ $up = 1 ] && break
  [ "$i" = 150 ] && { cat "$E2E_TMP/tracer.log"; die "tracer is not listening on $TRACER_PORTS after 30 s"; }
  sleep 0.2
done
say "tracer listening on $TRACER_PORTS"

say "lab: fresh setup and start, every URL on tracer's listeners"
tests/lab/lab.sh up

say "pytest"
# in the background so that a signal to this script is handled at once (bash
# runs traps only between foreground commands); the trap stops pytest too
"$REPO/.venv/bin/python" -m pytest "$E2E" -v "$@" &
PYTEST_PID=$!
rc=0
wait "$PYTEST_PID" || rc=$?
PYTEST_PID=
[ $rc = 5 ] && die "pytest ran no test"
exit $rc
