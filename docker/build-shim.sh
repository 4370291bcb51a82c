#!/usr/bin/env bash
# Builds the release hermes-shim as a static, non-PIE executable and prints its path.
#
# Static linking is what keeps the shim cheap: it runs in front of every `docker exec … hermes`,
# and a static binary skips the dynamic loader, which is most of a small program's start-up
# cost (see tests/bench/shim.sh). It needs no NSS: /etc/passwd and /etc/group are parsed by hand.
# Non-PIE (`relocation-model=static`) because a static PIE relocates itself at every start:
# thousands of relocations written into some ten pages of data, each a page fault (about 9 more
# per exec, 0.02-0.04x of an exec-only program's cost here). The price is a fixed load address
# for the binary's own code; stack, heap and mmap stay randomised.
# `--target` is given explicitly so that these flags apply to the binary only, not to
# build-time proc-macros (which cannot be static).
# On x86_64, where rustc links with lld, docker/shim-order.txt has lld put the functions the
# shim runs side by side (docker/shim-order.sh says how it is made and what it saves). Here the
# list must match the build: a name it holds that the binary does not define (a renamed
# function, another toolchain's hash) fails the build, rather than leaving the list to go stale
# in silence; HERMES_SHIM_ORDER=none builds without it (docker/shim-order.sh does, to make it).
# The flags themselves are written once, in docker/shim-rustflags.sh (the Dockerfile uses it too).
#
# HERMES_SHIM_ARCH=aarch64 (on an x86_64 host) builds the same static, non-PIE, stripped binary
# for arm64 with Debian's cross Rust in a container (docker/cross/), since rustup cannot add
# targets here. It links with GNU ld through aarch64-linux-gnu-gcc, which has no
# --symbol-ordering-file, and the list's names carry x86_64 symbol hashes of another rustc anyway:
# the arm64 binary is built without it, its functions in the linker's own order. That costs
# only the few page faults docker/shim-order.sh measures; nothing else about the binary changes.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.sh
. tests/lib.sh
LOG_PREFIX=build-shim
choose_arch
export PATH="$HOME/.cargo/bin:$PATH"
triple=$(rustc -vV | sed -n 's/^host: //p')
# `hermes-shim --version` names the source revision; "-dirty" when the tree has changes.
if [ -z "${HERMES_SHIM_REVISION:-}" ] && git rev-parse --git-dir >/dev/null 2>&1; then
    HERMES_SHIM_REVISION=$(git describe --always --dirty --abbrev=12 2>/dev/null || true)
fi
export HERMES_SHIM_REVISION="${HERMES_SHIM_REVISION:-}"
# Symbols are stripped here, not by the profile: the profile's setting is part of the hash in
# every Rust symbol name, and docker/shim-order.sh needs the same names with symbols kept
# (HERMES_SHIM_SYMBOLS=keep).
keep=()
[ "${HERMES_SHIM_SYMBOLS:-}" = keep ] && keep=(--keep-symbols)
mapfile -t flags < <(docker/shim-rustflags.sh "${keep[@]}")
build() {
    CARGO_ENCODED_RUSTFLAGS=$(IFS=$'\x1f' && echo "$*") \
        cargo build --release --locked --quiet --target "$triple" >&2
}
if [ -n "$ARCH_SUFFIX" ]; then
    CARGO_ENCODED_RUSTFLAGS=$(IFS=$'\x1f' && echo "${flags[*]}") \
        docker/cross/cargo.sh build --release --locked --quiet >&2
    bin="$CROSS_TARGET/$TRIPLE/release/hermes-shim"
    # No loader to ask (ldd cannot read a foreign binary): a static executable has no INTERP.
    if ! file "$bin" | grep -q 'statically linked' || readelf -l "$bin" | grep -q INTERP; then
        log "$bin is not static: $(file -b "$bin")"
        exit 1
    fi
    echo "$bin"
    exit 0
fi
# lld takes the ordering file; a toolchain that links with GNU ld (Rust before 1.90) does not:
# there, HERMES_SHIM_ORDER=none builds the same program without it.
if [ "$triple" = x86_64-unknown-linux-gnu ] && [ "${HERMES_SHIM_ORDER:-}" != none ]; then
    mapfile -t ordered < <(docker/shim-rustflags.sh "${keep[@]}" --strict \
        --order "$PWD/docker/shim-order.txt")
    build "${ordered[@]}" || {
        log "the link failed; if lld named symbols of docker/shim-order.txt that this build does not define, the list is stale: run docker/shim-order.sh (as root) and commit the list; a toolchain whose linker is not lld builds with HERMES_SHIM_ORDER=none"
        exit 1
    }
else
    build "${flags[@]}"
fi
target_dir=$(cargo metadata --format-version 1 --no-deps |
    /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
bin="$target_dir/$triple/release/hermes-shim"
if ldd "$bin" 2>&1 | grep -q '=>'; then
  echo "build-shim: $bin is not static" >&2
  exit 1
fi
echo "$bin"
