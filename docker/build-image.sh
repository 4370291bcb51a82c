#!/usr/bin/env bash
# Builds the hermes-shim image offline from the repository's Dockerfile: local Debian 12 base
# (docker/build-base.sh), cached wheelhouse (docker/build-wheelhouse.sh), the release binary built
# here on the host, and no s6-overlay (its tarballs cannot be fetched without GitHub).
# Idempotent: docker's layer cache makes an unchanged rebuild take seconds.
#   usage: docker/build-image.sh            (tag: $HERMES_SHIM_IMAGE, default hermes-shim:test)
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
IMAGE="${HERMES_SHIM_IMAGE:-hermes-shim:test}"
BASE_TAG="${HERMES_SHIM_BASE_TAG:-hermes-shim/debian:bookworm}"
CACHE_DIR="${HERMES_SHIM_CACHE:-$HOME/.cache/hermes-shim}"
# Debian's client has BuildKit built in; a newer client earlier on PATH may lack buildx.
DOCKER_BUILD=(/usr/bin/docker build)

log() { printf 'build-image: %s\n' "$*" >&2; }

start=$(date +%s)
HERMES_SHIM_BASE_TAG="$BASE_TAG" "$REPO/docker/build-base.sh"
wheelhouse=$("$REPO/docker/build-wheelhouse.sh")

binary=$("$REPO/docker/build-shim.sh")
[ -x "$binary" ] || { log "no release binary at $binary"; exit 1; }

# The context lives outside the repository and holds exactly what the Dockerfile copies; one per
# build, so two builds (two image tags) can run at once.
mkdir -p "$CACHE_DIR"
CONTEXT=$(mktemp -d "$CACHE_DIR/context.XXXXXX")
trap 'rm -rf --one-file-system "$CONTEXT"' EXIT
mkdir -p "$CONTEXT/dist" "$CONTEXT/docker"
cp "$REPO/Dockerfile" "$REPO/.dockerignore" "$CONTEXT/"
cp -a "$REPO/s6-overlay" "$CONTEXT/s6-overlay"
cp -a "$REPO/docker/entrypoint.sh" "$CONTEXT/docker/"
cp -a "$binary" "$CONTEXT/dist/hermes-shim"
# Check the copy, not the target dir: another cargo run may rewrite the binary at any moment,
# and a binary that cannot even print its version makes every container test fail obscurely.
"$CONTEXT/dist/hermes-shim" --version >/dev/null 2>&1 ||
    { log "$binary does not run on the host (hermes-shim --version failed); not building"; exit 1; }
# Hard links: same filesystem as the cache, no 38 MB copy per build.
cp -al "$wheelhouse" "$CONTEXT/dist/wheelhouse"

log "building $IMAGE (offline: base $BASE_TAG, host binary, local wheelhouse, no s6-overlay)"
if ! DOCKER_BUILDKIT=1 "${DOCKER_BUILD[@]}" --network=none --progress=plain \
    --build-arg BASE_IMAGE="$BASE_TAG" \
    --build-arg SHIM_FROM=host-binary \
    --build-arg VENV_FROM=venv-wheelhouse \
    --build-arg S6_FROM=no-s6-overlay \
    -t "$IMAGE" "$CONTEXT" >"$CONTEXT.log" 2>&1; then
    tail -n 30 "$CONTEXT.log" >&2
    log "docker build failed; full log: $CONTEXT.log"
    exit 1
fi
log "built $IMAGE in $(($(date +%s) - start)) s"
