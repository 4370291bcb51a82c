#!/usr/bin/env bash
# Builds a local Debian base image for the offline image builds (no registry here): debootstrap a
# minbase rootfs with python3, python3-venv, xz-utils (to unpack s6-overlay) and ca-certificates
# (what the image needs at run time), then `docker import` it.
#   HERMES_SHIM_SUITE     debootstrap suite: bookworm (Debian 12, the default) or trixie (Debian 13)
#   HERMES_SHIM_ARCH      x86_64 or aarch64 (default this machine's); a foreign one is
#                         debootstrapped under qemu-user (tests/setup-arm64.sh) and tagged
#                         SUITE-arm64
#   HERMES_SHIM_BASE_TAG  image tag (default hermes-shim/debian:SUITE)
# Skipped when the tag already holds this recipe; the rootfs tarball is cached under
# ~/.cache/hermes-shim/, keyed by suite, architecture and package list.
set -euo pipefail

# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../tests/lib.sh"
LOG_PREFIX=build-base
SUITE="${HERMES_SHIM_SUITE:-bookworm}"
choose_arch
BASE_TAG="${HERMES_SHIM_BASE_TAG:-hermes-shim/debian:$SUITE$ARCH_SUFFIX}"
INCLUDE=python3,python3-venv,ca-certificates,xz-utils

# The suite becomes part of file names and a tag: a codename, nothing else.
case "$SUITE" in
    '' | *[!a-z]*) log "HERMES_SHIM_SUITE='$SUITE' is not a Debian codename (bookworm, trixie)"; exit 2 ;;
esac

# The cache key names everything that shapes the rootfs, so changing it builds a new tarball.
TARBALL="$CACHE_DIR/rootfs-$SUITE$ARCH_SUFFIX-minbase-${INCLUDE//,/+}.tar"

cache_lock "base-$SUITE$ARCH_SUFFIX"
# The image carries the tarball's name as a label, so a changed recipe re-imports under the same tag.
KEY=$(basename "$TARBALL" .tar)
if [ "$(docker image inspect -f '{{index .Config.Labels "org.hermes-shim.rootfs"}} {{.Architecture}}' \
    "$BASE_TAG" 2>/dev/null)" = "$KEY $DEB_ARCH" ]; then
    exit 0
fi

mkdir -p "$CACHE_DIR"
if [ ! -s "$TARBALL" ]; then
    # Private names for everything in flight, so two builds of one suite cannot write into each
    # other's files; the last rename wins and both results are the same recipe.
    rootfs=$(mktemp -d "$CACHE_DIR/rootfs-$SUITE$ARCH_SUFFIX.XXXXXX")
    partial=$(mktemp "$TARBALL.partial.XXXXXX")
    trap 'rm -rf --one-file-system "$rootfs" "$partial"' EXIT
    debootstrap_log="$CACHE_DIR/debootstrap-$SUITE$ARCH_SUFFIX.log"
    log "debootstrap $SUITE ($DEB_ARCH) into $rootfs (about a minute; 5 under qemu-user)"
    start=$(date +%s)
    if [ -n "$ARCH_SUFFIX" ] && ! grep -qx enabled "/proc/sys/fs/binfmt_misc/qemu-$ARCH" 2>/dev/null; then
        log "a $ARCH rootfs needs qemu-user through binfmt_misc: run tests/setup-arm64.sh"
        exit 1
    fi
    debootstrap --arch="$DEB_ARCH" --variant=minbase --include="$INCLUDE" "$SUITE" "$rootfs" \
        >"$debootstrap_log" 2>&1 ||
        { log "debootstrap failed; see $debootstrap_log"; exit 1; }
    log "debootstrap $SUITE took $(($(date +%s) - start)) s"
    # Apt lists and caches are dead weight in an image; the build stage runs apt-get update anyway.
    # Left out of the tarball rather than deleted: no path into the rootfs is ever resolved on
    # the host (an absolute symlink in it would lead out of it).
    tar --numeric-owner -C "$rootfs" --exclude='./var/cache/apt/archives/*.deb' \
        --exclude='./var/lib/apt/lists/*' -cf "$partial" .
    mv "$partial" "$TARBALL"
fi

log "importing $TARBALL as $BASE_TAG"
docker import --platform "$PLATFORM" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' \
    --change "LABEL org.hermes-shim.rootfs=$KEY" \
    "$TARBALL" "$BASE_TAG" >/dev/null
# Docker 20.10's import ignores --platform and marks the image with the engine's architecture;
# BuildKit then refuses it as a base for `--platform linux/arm64`.
[ "$(docker image inspect -f '{{.Architecture}}' "$BASE_TAG")" = "$DEB_ARCH" ] ||
    "$(dirname "$0")/set-image-arch.sh" "$BASE_TAG" "$DEB_ARCH"
