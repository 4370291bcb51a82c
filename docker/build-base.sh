#!/usr/bin/env bash
# Builds the local Debian 12 base image the offline image build starts from (no registry here):
# debootstrap a minbase rootfs with python3, python3-venv, xz-utils (to unpack s6-overlay) and
# ca-certificates (what the image needs at run time), then `docker import` it.
# Skipped when the tag already exists; the rootfs tarball is cached under ~/.cache/hermes-shim/.
set -euo pipefail

BASE_TAG="${HERMES_SHIM_BASE_TAG:-hermes-shim/debian:bookworm}"
CACHE_DIR="${HERMES_SHIM_CACHE:-$HOME/.cache/hermes-shim}"
SUITE=bookworm
INCLUDE=python3,python3-venv,ca-certificates,xz-utils
# The cache key names everything that shapes the rootfs, so changing it builds a new tarball.
TARBALL="$CACHE_DIR/rootfs-$SUITE-minbase-${INCLUDE//,/+}.tar"

log() { printf 'build-base: %s\n' "$*" >&2; }

# The image carries the tarball's name as a label, so a changed recipe re-imports under the same tag.
KEY=$(basename "$TARBALL" .tar)
if [ "$(docker image inspect -f '{{index .Config.Labels "org.hermes-shim.rootfs"}}' "$BASE_TAG" 2>/dev/null)" = "$KEY" ]; then
    exit 0
fi

mkdir -p "$CACHE_DIR"
if [ ! -s "$TARBALL" ]; then
    rootfs=$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")
    trap 'rm -rf "$rootfs" "$TARBALL.partial"' EXIT
    log "debootstrap $SUITE into $rootfs (about a minute)"
    debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$rootfs" >"$CACHE_DIR/debootstrap.log" 2>&1 ||
        { log "debootstrap failed; see $CACHE_DIR/debootstrap.log"; exit 1; }
    # Apt lists and caches are dead weight in an image; the build stage runs apt-get update anyway.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar --numeric-owner -C "$rootfs" -cf "$TARBALL.partial" .
    mv "$TARBALL.partial" "$TARBALL"
fi

log "importing $TARBALL as $BASE_TAG"
docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' \
    --change "LABEL org.hermes-shim.rootfs=$KEY" \
    "$TARBALL" "$BASE_TAG" >/dev/null
