#!/usr/bin/env bash
# Runs cargo for a foreign architecture in the cross builder (docker/build-cross.sh), offline:
# the crates are vendored on the host first (the registry's TLS is not trusted inside containers
# here), keyed by Cargo.lock. The repository is mounted read-only at /src, the target directory is
# a cache outside it ($CACHE_DIR/cross-target-DEB_ARCH, /target in the container), so the same
# paths hold wherever the results run (tests/arm64-vm.sh gives them the same paths).
# Extra rustflags come in CARGO_ENCODED_RUSTFLAGS, as for cargo itself; HERMES_SHIM_REVISION is
# passed through. Prints nothing of its own on stdout but cargo's.
#   usage: HERMES_SHIM_ARCH=aarch64 docker/cross/cargo.sh build|test ... (--target is added)
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/lib.sh
. "$REPO/tests/lib.sh"
LOG_PREFIX=cross-cargo
choose_arch
export PATH="$HOME/.cargo/bin:$PATH"

tag=$("$REPO/docker/build-cross.sh")
mkdir -p "$CACHE_DIR"
vendor="$CACHE_DIR/vendor-$(sha256sum "$REPO/Cargo.lock" | cut -c1-12)"
if [ ! -f "$vendor/.complete" ]; then
    partial=$(mktemp -d "$vendor.partial.XXXXXX")
    trap 'rm -rf --one-file-system "$partial"' EXIT
    log "vendoring the crates of Cargo.lock into $vendor"
    (cd "$REPO" && cargo vendor --locked --versioned-dirs --quiet "$partial" >/dev/null)
    touch "$partial/.complete"
    mv -T "$partial" "$vendor" 2>/dev/null || [ -f "$vendor/.complete" ] ||
        die "cannot move $partial to $vendor"
fi
target=$CROSS_TARGET
mkdir -p "$target"

triple_env=$(tr '[:lower:]-' '[:upper:]_' <<<"$TRIPLE")
cmd=$1
shift
# The container's name carries the pid, so a caller's timeout can find and remove it.
exec docker run --rm --network=none --name "hermes-shim-cross-$$" \
    -v "$REPO:/src:ro" -v "$vendor:/vendor:ro" -v "$target:/target" -w /src \
    -e CARGO_TARGET_DIR=/target -e HERMES_SHIM_REVISION="${HERMES_SHIM_REVISION:-}" \
    -e CARGO_ENCODED_RUSTFLAGS="${CARGO_ENCODED_RUSTFLAGS:-}" \
    -e "CARGO_TARGET_${triple_env}_LINKER=${ARCH}-linux-gnu-gcc" \
    "$tag" cargo "$cmd" --offline --target "$TRIPLE" \
    --config 'source.crates-io.replace-with="vendored"' \
    --config 'source.vendored.directory="/vendor"' "$@"
