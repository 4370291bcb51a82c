#!/usr/bin/env bash
# Builds the cross builder image for a foreign architecture (docker/cross/Dockerfile: Debian's
# cross Rust, qemu-system, Debian's kernel for that architecture) and prints its tag. The tag is
# keyed by the Dockerfile and the base image it starts from, so an unchanged recipe is not rebuilt.
# Unlike the offline image builds, this one uses the network: apt, from Debian's mirror.
#   HERMES_SHIM_ARCH   the target: aarch64 (the only foreign one wired up)
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tests/lib.sh
. "$REPO/tests/lib.sh"
LOG_PREFIX=build-cross
choose_arch
[ "$ARCH" = aarch64 ] || die "HERMES_SHIM_ARCH=$ARCH: the cross builder targets aarch64 only"

# The builder runs natively (x86_64): the Debian 13 base of this machine's own architecture.
base=hermes-shim/debian:trixie
HERMES_SHIM_SUITE=trixie HERMES_SHIM_ARCH="$(uname -m)" HERMES_SHIM_BASE_TAG="$base" \
    "$REPO/docker/build-base.sh"
key=$({ docker image inspect -f '{{.Id}}' "$base"; cat "$REPO/docker/cross/Dockerfile"; } |
    sha256sum | cut -c1-12)
tag="hermes-shim/cross-$DEB_ARCH:$key"
cache_lock "cross-$DEB_ARCH"
if ! docker image inspect "$tag" >/dev/null 2>&1; then
    mkdir -p "$CACHE_DIR"
    context=$(mktemp -d "$CACHE_DIR/cross-context.XXXXXX")
    trap 'rm -rf --one-file-system "$context" "$context.log"' EXIT
    cp "$REPO/docker/cross/Dockerfile" "$context/"
    log "building $tag (Debian sid's cross Rust, qemu-system, the $DEB_ARCH kernel; a few minutes)"
    start=$(date +%s)
    DOCKER_BUILDKIT=1 /usr/bin/docker build --progress=plain --build-arg BASE_IMAGE="$base" \
        --build-arg DEB_ARCH="$DEB_ARCH" -t "$tag" "$context" >"$context.log" 2>&1 ||
        { tail -n 30 "$context.log" >&2; die "docker build of $tag failed"; }
    log "built $tag in $(($(date +%s) - start)) s"
fi
printf '%s\n' "$tag"
