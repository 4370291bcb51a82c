#!/usr/bin/env bash
# The run on a real arm64 kernel, for what qemu-user cannot show (it ignores seccomp filters and
# has no openat2): the unit and root integration tests, cross-compiled (`cargo test --no-run`
# in the cross builder, docker/cross/), and the filter and the openat2 walk checked by hand,
# all in one boot of Debian's arm64 kernel under qemu-system-aarch64 (TCG, so slow: one boot,
# one batch, tests/vm/batch.sh).
# The guest's whole userland is an initramfs: the project's arm64 Debian 13 base plus chattr
# (tests/vm/Dockerfile, cached as an image), the repository at /src and the test binaries at
# the paths they were built with. It is assembled and booted inside the cross builder's
# container, so nothing of it is ever unpacked on a host path, and it vanishes with the boot.
# Kernel and rootfs are cached (the builder image, the rootfs image), keyed by their recipes.
#   HERMES_SHIM_VM_TIMEOUT   seconds the boot may take in all (default 3600)
# With --prepare it builds and caches everything the boot needs (builder, rootfs, test
# binaries) and stops there, without booting: tests/arm64-prep.sh runs it ahead of time.
# Needs root, Docker and qemu-user (tests/setup-arm64.sh): skips with a reason otherwise, fails
# when $CI is set. Prints the guest's result lines, then `N passed, N failed` of its own.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tests/lib.sh
. "$REPO/tests/lib.sh"
LOG_PREFIX=arm64-vm
TESTS="arm64 kernel run"
HERMES_SHIM_ARCH=aarch64 choose_arch
export HERMES_SHIM_ARCH=aarch64
TIMEOUT="${HERMES_SHIM_VM_TIMEOUT:-3600}"
PREPARE=
case "${1:-}" in
    '') ;;
    --prepare) PREPARE=1 ;;
    *) log "unknown argument '$1'; usage: tests/arm64-vm.sh [--prepare]"; exit 2 ;;
esac
NAME="hermes-shim-vm-$$"

cleanup() {
    docker rm -f "$NAME" >/dev/null 2>&1 || true
    [ -z "${WORK:-}" ] || rm -rf --one-file-system "$WORK"
}

[ "$(id -u)" -eq 0 ] || skip_all "needs root (it drives the Docker engine)"
need_docker
grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null ||
    skip_all "no qemu-user for aarch64 (run tests/setup-arm64.sh)"
begin hermes-shim-vm 0755

step_time() { echo "# $1 took $(($(date +%s) - $2)) s"; }

t=$(date +%s)
cross=$("$REPO/docker/build-cross.sh") || bail "docker/build-cross.sh builds the cross builder"
step_time "the cross builder" "$t"

# The guest's userland: the arm64 base plus tests/vm/Dockerfile, keyed by them and the native
# base that fetches its packages (docker/build-cross.sh made sure it exists).
t=$(date +%s)
base=hermes-shim/debian:trixie-arm64
HERMES_SHIM_SUITE=trixie HERMES_SHIM_BASE_TAG="$base" "$REPO/docker/build-base.sh" ||
    bail "docker/build-base.sh builds $base"
native=hermes-shim/debian:trixie
key=$({ docker image inspect -f '{{.Id}}' "$base" "$native"; cat "$REPO/tests/vm/Dockerfile"; } |
    sha256sum | cut -c1-12)
rootfs_image="hermes-shim/vm-rootfs-arm64:$key"
if ! docker image inspect "$rootfs_image" >/dev/null 2>&1; then
    log "building $rootfs_image (dpkg under qemu-user)"
    mkdir "$WORK/rootfs-context"
    cp "$REPO/tests/vm/Dockerfile" "$WORK/rootfs-context/"
    DOCKER_BUILDKIT=1 /usr/bin/docker build --progress=plain --platform "$PLATFORM" \
        --build-arg BASE_IMAGE="$base" --build-arg NATIVE_IMAGE="$native" -t "$rootfs_image" \
        "$WORK/rootfs-context" \
        >"$WORK/rootfs.log" 2>&1 ||
        { tail -n 20 "$WORK/rootfs.log"; bail "docker build of $rootfs_image"; }
fi
rootfs_tar="$CACHE_DIR/vm-rootfs-arm64-$key.tar"
if [ ! -s "$rootfs_tar" ]; then
    id=$(docker create --platform "$PLATFORM" "$rootfs_image" /bin/true) || bail "docker create $rootfs_image"
    partial=$(mktemp "$rootfs_tar.partial.XXXXXX")
    docker export -o "$partial" "$id" && mv "$partial" "$rootfs_tar"
    docker rm -f "$id" >/dev/null
    rm -f "$partial"
    [ -s "$rootfs_tar" ] || bail "docker export of $rootfs_image"
fi
step_time "the guest's rootfs" "$t"

# The test binaries, static (the guest's glibc is older than sid's), at /target/… as cargo
# built them: CARGO_BIN_EXE_hermes-shim and CARGO_MANIFEST_DIR (/src) are compiled in.
t=$(date +%s)
CARGO_ENCODED_RUSTFLAGS="-C"$'\x1f'"target-feature=+crt-static" \
    "$REPO/docker/cross/cargo.sh" test --no-run --locked --quiet --message-format=json \
    >"$WORK/tests.json" 2>"$WORK/tests.err" ||
    { tail -n 20 "$WORK/tests.err"; bail "cargo test --no-run for $TRIPLE"; }
/usr/bin/python3 -c '
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("profile", {}).get("test") and m.get("executable"):
        print(m["executable"])' "$WORK/tests.json" | sort -u >"$WORK/tests"
[ -s "$WORK/tests" ] || bail "cargo test --no-run lists test binaries"
release=$("$REPO/docker/build-shim.sh") || bail "docker/build-shim.sh builds the aarch64 release binary"
cp "$release" "$WORK/hermes-shim"
step_time "the aarch64 test binaries ($(wc -l <"$WORK/tests"))" "$t"
if [ -n "$PREPARE" ]; then
    log "prepared: the builder, the guest's rootfs and the test binaries are cached"
    exit 0
fi

# Assemble the initramfs and boot it, in the builder's container: the rootfs is unpacked there,
# never here. An uncompressed cpio: decompressing in emulated code would cost more than copying.
t=$(date +%s)
log "booting $(docker run --rm "$cross" cat /opt/kernel/package) under qemu-system-aarch64 (TCG)"
ci=${CI:+CI=$CI}
docker run --name "$NAME" --rm --network=none \
    -v "$REPO:/src:ro" -v "$CROSS_TARGET:/target:ro" \
    -v "$rootfs_tar:/in/rootfs.tar:ro" -v "$WORK:/in/work:ro" \
    "$cross" timeout "$TIMEOUT" bash -c '
set -e
mkdir /r
tar -C /r -xpf /in/rootfs.tar
mkdir -p /r/src /r/hermes-vm
tar -C /src --exclude=./target --exclude=./.git -cf - . | tar -C /r/src -xpf -
while read -r bin; do mkdir -p "/r${bin%/*}" && cp -p "$bin" "/r$bin"; done </in/work/tests
mkdir -p /r/target/'"$TRIPLE"'/debug
cp -p /target/'"$TRIPLE"'/debug/hermes-shim /r/target/'"$TRIPLE"'/debug/
cp /in/work/tests /r/hermes-vm/tests
cp /in/work/hermes-shim /r/hermes-vm/hermes-shim
# docker export leaves an empty regular file for /dev/console: PID 1 would write into it.
rm -f /r/dev/console
mknod -m 0600 /r/dev/console c 5 1
cd /r && find . -print0 | cpio --null -o -H newc --quiet >/initrd.cpio
echo "# initramfs: $(du -m /initrd.cpio | cut -f1) MB"
exec qemu-system-aarch64 -M virt -cpu max,pauth-impdef=on -smp 2 -m 3072 -nographic \
    -no-reboot -kernel /opt/kernel/vmlinuz -initrd /initrd.cpio \
    -append "console=ttyAMA0 rdinit=/src/tests/vm/batch.sh panic=-1 loglevel=3 '"$ci"'"
' 2>&1 | sed -u 's/\r$//' | tee "$WORK/console.log" | grep --line-buffered -vE '^(running [0-9]+ tests?|[.]*)$'
step_time "the boot and its batch" "$t"

last=$(grep -E '^hermes-vm-batch: exit [0-9]+$' "$WORK/console.log" | tail -n 1)
check "the guest finished its batch within ${TIMEOUT} s" "hermes-vm-batch: exit 0" "$last"
summary
