#!/usr/bin/env bash
# Installs Debian's chromium (the headless browser of the offline-diagram
# test) when it is missing. Idempotent. Needs root (apt-get).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    echo "setup-browser: $(chromium --version 2>/dev/null || echo chromium present)"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
echo "setup-browser: $(chromium --version)"
