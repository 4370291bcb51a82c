#!/usr/bin/env bash
# Builds, ahead of time, everything the arm64 steps of tests/run-all.sh need: the cross builder
# and the aarch64 binary, both arm64 images and the arm64 kernel run's rootfs and test binaries.
# Most of that is emulated code (debootstrap's second stage, dpkg and pip under qemu-user) or a
# cross build, bound by one core at a time, so tests/run-all.sh starts it in the background as
# soon as the host is set up and lets it overlap the x86_64 steps, which spend much of their time
# waiting on containers. Every piece is the same idempotent script the steps call themselves
# (they then find the work done), so a failure here only costs time: the step that needs the
# piece builds it again and fails with its own message.
# Prints how long each piece took. Exit: 0 when every piece was built, 1 otherwise.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tests/lib.sh
. "$REPO/tests/lib.sh"
LOG_PREFIX=arm64-prep
export HERMES_SHIM_ARCH=aarch64

rc=0
# piece NAME CMD...: runs one piece and says how long it took.
piece() {
    local name=$1 start
    shift
    start=$(date +%s)
    if "$@"; then
        echo "# arm64 ahead: $name took $(($(date +%s) - start)) s"
    else
        echo "# arm64 ahead: $name FAILED after $(($(date +%s) - start)) s"
        rc=1
    fi
}

piece "the cross builder" "$REPO/docker/build-cross.sh"
piece "the aarch64 release binary" "$REPO/docker/build-shim.sh"
for flavour in no-s6 s6; do
    piece "the $flavour arm64 image" env HERMES_SHIM_FLAVOUR="$flavour" "$REPO/docker/build-image.sh"
done
piece "the arm64 kernel run's rootfs and test binaries" "$REPO/tests/arm64-vm.sh" --prepare
exit "$rc"
