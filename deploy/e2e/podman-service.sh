#!/usr/bin/env bash
# Start podman's Docker-compatible API service on $PODMAN_SOCKET unless the one running there is
# current (docker-compose talks to it). Idempotent; the service outlives this script — and the
# checkout it was started from: it runs from / with its own copy of containers.conf, because a
# service left with a deleted working directory or settings file (a CI clone removed after its run)
# still answers pings but fails every container start ("write child: broken pipe").
set -euo pipefail
. "$(dirname "$0")/env.sh"
STATE="${MEPHISTO_E2E_CACHE:-$HOME/.cache/mephisto-sed/e2e}"
CONF="$STATE/containers.conf"  # the service's settings: a copy that no checkout owns
ping() { curl -sf --unix-socket "$PODMAN_SOCKET" http://d/_ping >/dev/null 2>&1; }
service_pid() { pgrep -f "podman system service --time=0 unix://$PODMAN_SOCKET" | head -1 || true; }
current() {  # it answers, reads our copy of the settings, and that copy is these settings
  local pid
  pid="$(service_pid)"
  [ -n "$pid" ] && ping || return 1
  tr '\0' '\n' <"/proc/$pid/environ" | grep -qx "CONTAINERS_CONF=$CONF" || return 1
  [ "$(readlink "/proc/$pid/cwd")" = "/" ] || return 1
  cmp -s "$CONTAINERS_CONF" "$CONF"
}
current && exit 0
pid="$(service_pid)"
if [ -n "$pid" ]; then  # stale (another checkout's settings, or a deleted one): replace it
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
fi
mkdir -p "$STATE" "$(dirname "$PODMAN_SOCKET")"
cp "$CONTAINERS_CONF" "$CONF"
rm -f "$PODMAN_SOCKET"
(cd / && CONTAINERS_CONF="$CONF" setsid nohup podman system service --time=0 "unix://$PODMAN_SOCKET" \
  >/var/log/podman-service.log 2>&1 </dev/null &)
for _ in $(seq 1 300); do ping && exit 0; sleep 0.1; done
echo "podman system service did not answer on $PODMAN_SOCKET (/var/log/podman-service.log):" >&2
tail -20 /var/log/podman-service.log >&2
exit 1
