#!/usr/bin/env bash
# Installs Debian's rabbitmq-server for the lab's nova RPC (tests/lab/lab.sh
# starts its own broker on loopback, with its own node name, ports and data
# dir under $LAB; the system's service is never started). Idempotent: seconds
# when the package is there.
set -euo pipefail
say() { echo "setup-rabbitmq: $*" >&2; }

if [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || command -v rabbitmq-server > /dev/null; then
    say "rabbitmq-server is installed"
    exit 0
fi
[ "$(id -u)" = 0 ] || { say "rabbitmq-server is not installed; run as root to apt-get install it"; exit 1; }
say "installing rabbitmq-server (apt-get)"
export DEBIAN_FRONTEND=noninteractive
# The package's postinst would start the system broker (epmd and 5672 on
# every interface): a policy-rc.d answering 101 forbids that for this install.
guard=
if [ ! -e /usr/sbin/policy-rc.d ]; then
    guard=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' > "$guard"; chmod 755 "$guard"
fi
trap '[ -z "$guard" ] || rm -f "$guard"' EXIT
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends rabbitmq-server >&2
say "installed $(dpkg-query -W -f '${Version}' rabbitmq-server)"
