#!/usr/bin/env bash
# Makes .venv (at the repository root, or $TRACER_VENV) with the pinned
# Python tools the tests use: mkdocs + mkdocs-material (site build check),
# haralyzer (the independent HAR reader) and jsonschema (the HAR 1.2 schema
# check). Idempotent: does nothing when the venv already holds exactly the
# pinned set.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${TRACER_VENV:-$root/.venv}"
lock="$root/scripts/requirements-test.txt"
python="${PYTHON:-python3}"

if [[ ! -x "$venv/bin/python" ]]; then
    echo "setup-python: creating $venv"
    "$python" -m venv "$venv"
fi
stamp="$venv/.tracer-requirements"
if [[ -f "$stamp" ]] && cmp -s "$stamp" "$lock"; then
    echo "setup-python: $venv is up to date"
    exit 0
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$lock"
cp "$lock" "$stamp"
"$venv/bin/mkdocs" --version
echo "setup-python: $venv ready"
