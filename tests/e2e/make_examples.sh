#!/usr/bin/env bash
# Regenerates docs/examples/ from a fresh end-to-end run: the real lab behind
# tracer, every flow of tests/e2e/test_flows.py recorded and checked, then
# exported with --redact, plus docs/examples/README.md. The pages are only
# replaced when the whole suite passed. Do not edit docs/examples by hand.
#
#   tests/e2e/make_examples.sh      (same env knobs as tests/e2e/run.sh)
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=$(mktemp -d "${TMPDIR:-/tmp}/tracer-examples.XXXXXX")
trap 'rm -rf "$out"' EXIT
E2E_EXAMPLES_OUT=$out/examples "$REPO/tests/e2e/run.sh"
[ -f "$out/examples/README.md" ] || { echo "make_examples: the run wrote no examples" >&2; exit 1; }
rm -rf "$REPO/docs/examples"
mkdir -p "$REPO/docs"
cp -r "$out/examples" "$REPO/docs/examples"
echo "make_examples: docs/examples regenerated ($(find "$REPO/docs/examples" -type f | wc -l) files)"
