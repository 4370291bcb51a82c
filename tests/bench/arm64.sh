#!/usr/bin/env bash
# Benchmark (not a test): the two ratios of tests/bench/ for the aarch64 binary, on this x86_64
# machine under qemu-user (tests/setup-arm64.sh). Absolute times under emulation mean nothing
# (every program pays qemu's start and translation); ratios between programs emulated alike still
# say something. Every contender is an aarch64 program:
#   sweep  tests/bench/fix-ownership.sh itself, with the aarch64 hermes-shim (HERMES_SHIM_ARCH)
#          and Debian's arm64 `find` and `chown` first on PATH: the arm64 base's rootfs
#          (docker/build-base.sh) unpacked on a tmpfs of a private mount namespace, each tool
#          started through that rootfs's loader
#   shim   in a private mount namespace (passwd and group bind-mounted with a `hermes` user,
#          uid 10000; the machine's /etc is never edited), hyperfine -N as root of
#            floor  a static aarch64 C program that only execv's its arguments
#            shim   a symlink `true` -> the static aarch64 hermes-shim, HERMES_SHIM_REAL_DIR
#                   holding a static aarch64 `true`
#          both ending in that same `true`; first checking that the shim runs it as 10000:10000
# Usage: tests/bench/arm64.sh [--entries N] [--runs N]        (as root)
#   --entries N   the sweep's tree size (default 20000: python and find are emulated too)
#   --runs N      hyperfine runs per contender (default 10 for the sweep, 100x that for the shim)
set -euo pipefail

me=tests/bench/arm64.sh
self=$(readlink -f "${BASH_SOURCE[0]}")
# shellcheck source=tests/lib.sh
. "$(dirname "$self")/../lib.sh"
LOG_PREFIX=$me
entries=20000
runs=10

# Runs inside `unshare -m`, over a fresh tmpfs at $1: the arm64 userland, then both benchmarks.
in_namespace() {
    local mnt=$1 base=$2 bin=$3 tools=$4
    mount -t tmpfs -o mode=0755 hermes-shim-arm64-bench "$mnt"
    mkdir "$mnt/root" "$mnt/path" "$mnt/bin"
    local id
    id=$(docker create --platform linux/arm64 "$base" /bin/true)
    docker export "$id" | tar -C "$mnt/root" -xpf -
    docker rm -f "$id" >/dev/null
    # Through the arm64 loader by name, not QEMU_LD_PREFIX: qemu would then resolve every absolute
    # path under the prefix first (/tmp too), and the shim would walk the wrong tree. The wrapper
    # is one native sh exec, well under 1% of an emulated find over the tree.
    local tool
    for tool in find chown; do
        printf '#!/bin/sh\nexec %s --library-path %s %s "$@"\n' "$mnt/root/usr/lib/ld-linux-aarch64.so.1" \
            "$mnt/root/usr/lib/aarch64-linux-gnu" "$mnt/root/usr/bin/$tool" |
            install -m 0755 /dev/stdin "$mnt/path/$tool"
    done
    "$mnt/path/find" "$mnt/root/etc/debian_version" -quit || die "the arm64 find does not run"
    cp -p "$tools/floor" "$tools/true" "$mnt/bin/"
    mkdir "$mnt/shim"
    ln -s "$bin" "$mnt/shim/true"

    echo "== sweep vs find, aarch64 under qemu-user ($entries entries)"
    PATH="$mnt/path:$PATH" HERMES_SHIM_ARCH=aarch64 \
        tests/bench/fix-ownership.sh --entries "$entries" --runs "$runs"

    echo "== shim vs floor, aarch64 under qemu-user"
    grep -v '^hermes:' /etc/passwd >"$mnt/passwd"
    echo 'hermes:x:10000:10000::/opt/data:/bin/sh' >>"$mnt/passwd"
    grep -v '^hermes:' /etc/group >"$mnt/group"
    echo 'hermes:x:10000:' >>"$mnt/group"
    mount --bind "$mnt/passwd" /etc/passwd
    mount --bind "$mnt/group" /etc/group
    unset HERMES_DOCKER_EXEC_AS_ROOT HERMES_SHIM_USER
    # The shim's program must show the drop: a copy of id would be dynamic, so ask the kernel.
    local ids
    # shellcheck disable=SC2016 # expanded by the program the shim runs
    ids=$(HERMES_SHIM_REAL_DIR=/usr/bin "$bin" exec sh -c 'echo "$(id -u):$(id -g):$(id -G)"')
    [ "$ids" = 10000:10000:10000 ] || die "the aarch64 shim ran its program as $ids, not 10000:10000:10000"
    HERMES_SHIM_REAL_DIR="$mnt/bin" hyperfine -N --style basic --warmup 20 --runs "$((runs * 100))" \
        --export-json "$mnt/shim.json" -n floor "$mnt/bin/floor $mnt/bin/true" \
        -n shim "$mnt/shim/true" >&2
    /usr/bin/python3 -c '
import json, statistics, sys
m = {r["command"]: statistics.median(r["times"]) for r in json.load(open(sys.argv[1]))["results"]}
print("  medians under qemu-user: floor %.0f us, shim %.0f us: shim %.2fx the floor"
      % (m["floor"] * 1e6, m["shim"] * 1e6, m["shim"] / m["floor"]))' "$mnt/shim.json"
}

main() {
    if [[ ${1:-} == --in-namespace ]]; then
        shift
        in_namespace "$@"
        return
    fi
    while (($#)); do
        case $1 in
        --entries) entries=${2:?--entries needs a number}; shift 2 ;;
        --runs) runs=${2:?--runs needs a number}; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/{/^set/d;s/^# \{0,1\}//;p}' "$self"; return 0 ;;
        *) die "unknown argument '$1' (try --help)" ;;
        esac
    done
    [[ $(id -u) == 0 ]] || die "must run as root (try: sudo $me)"
    grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null ||
        die "no qemu-user for aarch64: run tests/setup-arm64.sh"
    need_pkg hyperfine hyperfine
    cd "$(dirname "$self")/../.."
    export HERMES_SHIM_ARCH=aarch64 entries runs
    local base=hermes-shim/debian:trixie-arm64 bin cross mnt
    HERMES_SHIM_SUITE=trixie HERMES_SHIM_BASE_TAG="$base" docker/build-base.sh
    bin=$(docker/build-shim.sh)
    cross=$(docker/build-cross.sh)
    # The floor and the final `true`, static, from the cross builder's gcc (built out here: the
    # engine cannot see the namespace's tmpfs).
    local tools="$CACHE_DIR/arm64-bench-tools"
    mkdir -p "$tools"
    docker run --rm --network=none -v "$tools:/out" "$cross" sh -c '
        printf "#include <unistd.h>\nint main(int c, char **v) { (void)c; execv(v[1], v + 1); return 127; }\n" >/tmp/floor.c &&
        printf "int main(void) { return 0; }\n" >/tmp/true.c &&
        aarch64-linux-gnu-gcc -static -O2 -o /out/floor /tmp/floor.c &&
        aarch64-linux-gnu-gcc -static -O2 -o /out/true /tmp/true.c' ||
        die "cannot build the aarch64 floor"
    mnt=$(temp_dir /tmp hermes-shim-arm64-bench 0755) || die "cannot make a directory in /tmp"
    # shellcheck disable=SC2064  # expand now: $mnt is local
    trap "rmdir '$mnt'" EXIT
    unshare --mount --propagation private -- "$BASH" "$self" --in-namespace "$mnt" "$base" "$bin" "$tools"
}

main "$@"
