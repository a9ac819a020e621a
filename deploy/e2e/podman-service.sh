#!/usr/bin/env bash
# Start podman's Docker-compatible API service on $PODMAN_SOCKET unless it already answers
# (docker-compose talks to it). Idempotent; the service outlives this script.
set -euo pipefail
. "$(dirname "$0")/env.sh"
ping() { curl -sf --unix-socket "$PODMAN_SOCKET" http://d/_ping >/dev/null 2>&1; }
ping && exit 0
mkdir -p "$(dirname "$PODMAN_SOCKET")"
rm -f "$PODMAN_SOCKET"
setsid nohup podman system service --time=0 "unix://$PODMAN_SOCKET" >/var/log/podman-service.log 2>&1 < /dev/null &
for _ in $(seq 1 300); do ping && exit 0; sleep 0.1; done
echo "podman system service did not answer on $PODMAN_SOCKET (/var/log/podman-service.log):" >&2
tail -20 /var/log/podman-service.log >&2
exit 1
