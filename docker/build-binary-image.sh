#!/usr/bin/env bash
# Builds the binary image: FROM scratch, holding only the static /hermes-shim, so that any image
# adds hermes-shim with one line:
#   COPY --from=<this image> /hermes-shim /opt/hermes/bin/hermes-shim
# Offline (this repository's CI): from the release binary docker/build-shim.sh builds here, through
# the Dockerfile's `binary` stage. Prints the image's tag.
#   usage: docker/build-binary-image.sh     (tag: $HERMES_SHIM_BINARY_IMAGE, default
#                                            hermes-shim-binary:VERSION)
#   HERMES_SHIM_ARCH=aarch64 docker/build-binary-image.sh   (the arm64 image, from the aarch64
#                                            binary; default tag hermes-shim-binary:VERSION-arm64)
# With a registry, the same stage builds the binary in the Rust image instead:
#   docker build --target binary --build-arg HERMES_SHIM_REVISION="$(git rev-parse HEAD)" \
#       -t hermes-shim-binary:VERSION .
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tests/lib.sh
. "$REPO/tests/lib.sh"
LOG_PREFIX=build-binary-image
choose_arch

binary=$("$REPO/docker/build-shim.sh")
version=$("$binary" --version | awk '{ print $2 }')
IMAGE="${HERMES_SHIM_BINARY_IMAGE:-hermes-shim-binary:$version$ARCH_SUFFIX}"

mkdir -p "$CACHE_DIR"
CONTEXT=$(mktemp -d "$CACHE_DIR/binary-context.XXXXXX")
trap 'rm -rf --one-file-system "$CONTEXT"' EXIT
mkdir "$CONTEXT/dist"
cp "$REPO/Dockerfile" "$REPO/.dockerignore" "$CONTEXT/"
cp "$binary" "$CONTEXT/dist/hermes-shim"
offline_build "$CONTEXT" --platform "$PLATFORM" --target binary --build-arg SHIM_FROM=host-binary \
    -t "$IMAGE" || exit 1
log "built $IMAGE: $("$binary" --version)"
printf '%s\n' "$IMAGE"
