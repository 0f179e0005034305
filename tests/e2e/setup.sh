#!/usr/bin/env bash
# Makes or updates .venv at the repository root (or $TRACER_VENV) for tests/e2e:
# scripts/setup-python.sh's pinned page tools (mkdocs, mkdocs-material, ...)
# plus pytest, all from tests/e2e/requirements.txt. Idempotent.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${TRACER_VENV:-$root/.venv}"
req="$root/tests/e2e/requirements.txt"
python="${PYTHON:-python3}"

[[ -x "$venv/bin/python" ]] || { echo "e2e setup: creating $venv"; "$python" -m venv "$venv"; }
stamp="$venv/.tracer-e2e-requirements"
want=$(cat "$req" "$root/scripts/requirements-test.txt" | sha256sum)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && "$venv/bin/python" -m pytest --version > /dev/null 2>&1; then
    echo "e2e setup: $venv is up to date"
    exit 0
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
echo "$want" > "$stamp"
echo "e2e setup: $venv ready ($("$venv/bin/python" -m pytest --version 2>&1), $("$venv/bin/mkdocs" --version | cut -d' ' -f1-3))"
