#!/usr/bin/env bash
# The container suite (tests/container.sh) on both arm64 images under qemu-user, the two flavours
# at once: each spends most of its time in one emulated program after another, so on a machine
# of two or more cores running them side by side takes about as long as the slower alone.
# The images are built first, one after the other (they share their venv stage). Each suite's
# output is kept apart and printed whole, no-s6 first, with its own `N passed, N failed`; the
# exit status is 0 only when both pass. Checks that qemu-user cannot show are skipped by name with
# the reason (tests/emulation-skips.txt) and covered by tests/arm64-vm.sh on a real arm64 kernel.
# Needs what tests/container.sh needs (root, Docker) plus tests/setup-arm64.sh's qemu-user.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tests/lib.sh
. "$REPO/tests/lib.sh"
LOG_PREFIX=arm64
TESTS="arm64 container suites"
export HERMES_SHIM_ARCH=aarch64

[ "$(id -u)" -eq 0 ] || skip_all "needs root (it drives the Docker engine)"
grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null ||
    skip_all "no qemu-user for aarch64 (run tests/setup-arm64.sh)"
logs=$(temp_dir /tmp hermes-shim-arm64 0700) || bail "a log directory in /tmp"
trap 'rm -rf --one-file-system "$logs"' EXIT

rc=0
for flavour in ${HERMES_SHIM_ARM64_FLAVOURS:-no-s6 s6}; do
    start=$(date +%s)
    if HERMES_SHIM_FLAVOUR=$flavour "$REPO/docker/build-image.sh"; then
        echo "# the $flavour arm64 image took $(($(date +%s) - start)) s"
    else
        not_ok "docker/build-image.sh builds the $flavour arm64 image"
        rc=1
    fi
done
[ "$rc" -eq 0 ] || { summary; exit 1; }

# The images' venv came from this machine's pip (the Dockerfile's venv-cross stage), which must
# refuse a build base whose python3 is not the target base's: here Debian 12's under Debian 13.
HERMES_SHIM_SUITE=bookworm HERMES_SHIM_ARCH="$(uname -m)" HERMES_SHIM_BASE_TAG=hermes-shim/debian:bookworm \
    "$REPO/docker/build-base.sh" >&2 || bail "docker/build-base.sh builds the Debian 12 base"
mkdir -p "$logs/context/dist/wheelhouse"
cp "$REPO/Dockerfile" "$logs/context/"
if out=$(DOCKER_BUILDKIT=1 /usr/bin/docker build --network=none --progress=plain --platform linux/arm64 \
    --target venv-cross --build-arg BASE_IMAGE=hermes-shim/debian:trixie-arm64 \
    --build-arg BUILD_BASE_IMAGE=hermes-shim/debian:bookworm "$logs/context" 2>&1); then
    not_ok "venv-cross, a Debian 12 build base under a Debian 13 target: refused"
else
    # The versions appear only in the printed line, not in the RUN command BuildKit echoes.
    check_contains "venv-cross, a Debian 12 build base under a Debian 13 target: refused, naming both python3s" \
        "BASE_IMAGE has python3 3.13" "$out"
    check_contains "venv-cross refused: ... and the build base's" "BUILD_BASE_IMAGE 3.11" "$out"
fi

pids=()
for flavour in ${HERMES_SHIM_ARM64_FLAVOURS:-no-s6 s6}; do
    HERMES_SHIM_FLAVOUR=$flavour HERMES_SHIM_SKIP_BUILD=1 "$REPO/tests/container.sh" \
        >"$logs/$flavour.log" 2>&1 &
    pids+=($!)
done
i=0
for flavour in ${HERMES_SHIM_ARM64_FLAVOURS:-no-s6 s6}; do
    wait "${pids[i]}" || rc=1
    i=$((i + 1))
    echo "== container suite, $flavour, arm64"
    cat "$logs/$flavour.log"
done
echo "== the arm64 builds"
summary || rc=1
exit "$rc"
