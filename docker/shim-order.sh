#!/usr/bin/env bash
# Writes docker/shim-order.txt: every function the release shim runs between its own exec and
# the program's (root dropping to hermes, no terminal), in the order it first runs them, as
# callgrind sees them. docker/build-shim.sh (and the Dockerfile's builder) hand the list to lld
# as --symbol-ordering-file, which puts those functions side by side in the binary: the shim
# then touches fewer pages of its 1.7 MB, 4-5 page faults fewer per exec, which is 0.03x of an
# exec-only program's cost here (tests/bench/shim.sh measures it). Without the list the binary
# is the same program, only slower to start.
#
# Rust's symbol names carry a hash of the build's metadata (toolchain, Cargo.lock) and a path
# of modules: after a toolchain or dependency change, or a function moved or renamed, lld no
# longer finds those names, and docker/build-shim.sh fails, naming them. Run this again then,
# and commit the list. Only names the binary defines are listed (callgrind also names a few the
# static C library leaves undefined, which lld would warn of).
#
# Usage: docker/shim-order.sh   (as root: the trace is of a real drop; valgrind is installed
#                                if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.sh
. tests/lib.sh
LOG_PREFIX=shim-order

[ "$(id -u)" -eq 0 ] || die "needs root: the trace is of the shim dropping root"
need_pkg valgrind valgrind
work=$(temp_dir /tmp hermes-shim-order 0755) || die "a work directory in /tmp"
trap 'rm -rf --one-file-system "$work"' EXIT

# The same build as the release one (so the same symbol names), with its symbols kept, in a
# target directory of its own so the usual one keeps its stripped binary.
bin=$(HERMES_SHIM_SYMBOLS=keep HERMES_SHIM_ORDER=none CARGO_TARGET_DIR="$CACHE_DIR/shim-order-target" \
    docker/build-shim.sh)
# A hermes user, uid 10000, seen only inside the mount namespace below.
{ grep -v '^hermes:' /etc/passwd; echo 'hermes:x:10000:10000::/nonexistent:/bin/sh'; } >"$work/passwd"
{ grep -v '^hermes:' /etc/group; echo 'hermes:x:10000:'; } >"$work/group"
ln -s "$bin" "$work/true"
# After the drop the trace is written as uid 10000.
mkdir -m 0777 "$work/out"
# shellcheck disable=SC2016 # expanded by the inner shell
unshare -m --propagation private sh -c '
mount --bind "$1/passwd" /etc/passwd && mount --bind "$1/group" /etc/group &&
cd "$1" && HERMES_SHIM_REAL_DIR=/bin exec valgrind --tool=callgrind --demangle=no \
    --dump-before=execve --callgrind-out-file="$1/out/trace.%p" ./true' sh "$work" \
    </dev/null >/dev/null 2>"$work/valgrind.log" ||
    die "the traced run failed: $(tail -n 5 "$work/valgrind.log")"
trace=$(find "$work/out" -name 'trace.*.1' | head -n 1)
[ -n "$trace" ] || die "callgrind wrote no trace before the exec: $(tail -n 5 "$work/valgrind.log")"
# Named functions in the order callgrind first names them (a call site names its callee).
nm --defined-only "$bin" | awk '{print $3}' | sort -u >"$work/defined"
sed -nE 's/^c?fn=\([0-9]+\) //p' "$trace" | grep -vE '^(0x|\(below main\))' |
    awk 'NR == FNR { defined[$0] = 1; next } defined[$0] && !seen[$0]++' "$work/defined" - \
    >"$work/order"
n=$(wc -l <"$work/order")
[ "$n" -ge 50 ] || die "only $n functions traced; expected the shim's whole path"
mv "$work/order" docker/shim-order.txt
log "docker/shim-order.txt: $n functions"
