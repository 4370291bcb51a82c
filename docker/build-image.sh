#!/usr/bin/env bash
# Builds the hermes-shim image offline from the repository's Dockerfile: local Debian base
# (docker/build-base.sh; HERMES_SHIM_SUITE=trixie, Debian 13 as upstream, the default, or
# bookworm, Debian 12), the cached wheelhouse for that Debian's python3 (docker/build-wheelhouse.sh),
# the release binary built here on the host. Two flavours of the same Dockerfile:
#   HERMES_SHIM_FLAVOUR=no-s6  (default) no s6-overlay; the entrypoint applet is PID 1
#   HERMES_SHIM_FLAVOUR=s6     the production flavour: s6-overlay's /init as PID 1, from the
#                              release tarballs in $HERMES_SHIM_S6_TARBALLS (a directory holding
#                              s6-overlay-noarch.tar.xz and s6-overlay-x86_64.tar.xz, as published;
#                              if it also holds a SHA256SUMS, those sums replace the release pins,
#                              which is how a local build of s6-overlay passes the check)
# Idempotent: docker's layer cache makes an unchanged rebuild take seconds.
#   usage: docker/build-image.sh     (tag: $HERMES_SHIM_IMAGE, default hermes-shim:test or
#                                     hermes-shim:test-s6, with -bookworm appended for Debian 12)
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
FLAVOUR="${HERMES_SHIM_FLAVOUR:-no-s6}"
SUITE="${HERMES_SHIM_SUITE:-trixie}"
case "$SUITE" in
    trixie) PYTHON=3.13 suffix="" ;;
    bookworm) PYTHON=3.11 suffix="-bookworm" ;;
    *) echo "build-image: HERMES_SHIM_SUITE=$SUITE: give trixie (Debian 13) or bookworm (Debian 12)" >&2; exit 2 ;;
esac
case "$FLAVOUR" in
    no-s6) IMAGE="${HERMES_SHIM_IMAGE:-hermes-shim:test$suffix}" ;;
    s6) IMAGE="${HERMES_SHIM_IMAGE:-hermes-shim:test-s6$suffix}" ;;
    *) echo "build-image: HERMES_SHIM_FLAVOUR=$FLAVOUR: give no-s6 or s6" >&2; exit 2 ;;
esac
BASE_TAG="${HERMES_SHIM_BASE_TAG:-hermes-shim/debian:$SUITE}"
CACHE_DIR="${HERMES_SHIM_CACHE:-$HOME/.cache/hermes-shim}"
# Debian's client has BuildKit built in; a newer client earlier on PATH may lack buildx.
DOCKER_BUILD=(/usr/bin/docker build)

log() { printf 'build-image: %s\n' "$*" >&2; }

start=$(date +%s)
args=(--build-arg SHIM_FROM=host-binary --build-arg VENV_FROM=venv-wheelhouse)
if [ "$FLAVOUR" = s6 ]; then
    tarballs="${HERMES_SHIM_S6_TARBALLS:-}"
    arch=$(uname -m)
    for f in s6-overlay-noarch.tar.xz "s6-overlay-$arch.tar.xz"; do
        if [ -z "$tarballs" ] || [ ! -f "$tarballs/$f" ]; then
            log "the s6 flavour needs s6-overlay's release tarballs: set HERMES_SHIM_S6_TARBALLS to a directory holding $f"
            exit 3
        fi
    done
    args+=(--build-arg S6_FROM=s6-overlay --build-arg S6_TARBALLS=s6-tarballs-context)
    if [ -f "$tarballs/SHA256SUMS" ]; then
        sum() { awk -v f="$1" '$2 == f { print $1 }' "$tarballs/SHA256SUMS"; }
        noarch_sum=$(sum s6-overlay-noarch.tar.xz)
        arch_sum=$(sum "s6-overlay-$arch.tar.xz")
        if [ -z "$noarch_sum" ] || [ -z "$arch_sum" ]; then
            log "$tarballs/SHA256SUMS lacks a sum for one of the tarballs"
            exit 3
        fi
        arch_arg=$(printf '%s' "$arch" | tr '[:lower:]' '[:upper:]')
        args+=(--build-arg "S6_OVERLAY_NOARCH_SHA256=$noarch_sum"
            --build-arg "S6_OVERLAY_${arch_arg}_SHA256=$arch_sum")
    fi
else
    args+=(--build-arg S6_FROM=no-s6-overlay)
fi

HERMES_SHIM_SUITE="$SUITE" HERMES_SHIM_BASE_TAG="$BASE_TAG" "$REPO/docker/build-base.sh"
wheelhouse=$(HERMES_SHIM_PYTHON="$PYTHON" "$REPO/docker/build-wheelhouse.sh")

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
if [ "$FLAVOUR" = s6 ]; then
    mkdir "$CONTEXT/dist/s6"
    cp "$tarballs/s6-overlay-noarch.tar.xz" "$tarballs/s6-overlay-$arch.tar.xz" "$CONTEXT/dist/s6/"
fi

log "building $IMAGE (offline, flavour $FLAVOUR: base $BASE_TAG, host binary, local wheelhouse)"
if ! DOCKER_BUILDKIT=1 "${DOCKER_BUILD[@]}" --network=none --progress=plain \
    --build-arg BASE_IMAGE="$BASE_TAG" "${args[@]}" \
    -t "$IMAGE" "$CONTEXT" >"$CONTEXT.log" 2>&1; then
    tail -n 30 "$CONTEXT.log" >&2
    log "docker build failed; full log: $CONTEXT.log"
    exit 1
fi
rm -f "$CONTEXT.log"
log "built $IMAGE in $(($(date +%s) - start)) s"
