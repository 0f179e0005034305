#!/usr/bin/env bash
# The whole test suite, on a fresh clone: installs what the tests need
# (pinned Python tools for the page checks, Chromium, PostgreSQL, the real
# OpenStack lab from PyPI), then runs every test. `.ci/run` runs this.
#
#   ./scripts/test.sh            everything
#   SKIP_E2E=1 ./scripts/test.sh  without the real-OpenStack suite (a few minutes less)
set -euo pipefail
cd "$(dirname "$0")/.."
export CI="${CI:-}"
t0=$(date +%s)
step() { printf '\n== %s (%ss)\n' "$*" "$(( $(date +%s) - t0 ))"; }

step "format and lints (cargo fmt --check, cargo clippy -D warnings)"
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings

step "tools for the page checks (mkdocs, HAR reader) and the browser"
bash scripts/setup-python.sh
bash scripts/setup-browser.sh

step "PostgreSQL for the second storage backend"
eval "$(bash scripts/setup-postgres.sh)"

step "cargo test (unit and integration: real sockets, real SQLite, mkdocs, Chromium)"
# The page checks must not be skipped here: CI=true makes a missing tool a failure.
CI=true cargo test --locked --all-targets

if [ -z "${SKIP_E2E:-}" ]; then
    step "end to end: real keystone/glance/swift/trove/placement/nova/neutron (tests/lab) behind tracer, the real openstack CLI"
    bash scripts/setup-rabbitmq.sh   # nova's RPC broker (Debian's package; the lab runs its own node)
    # the debug binary cargo test just built; the lab installs itself into .lab (cached)
    TRACER_BIN="$PWD/target/debug/tracer" tests/e2e/run.sh
fi

step "done"
