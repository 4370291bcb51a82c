#!/usr/bin/env bash
# Cargo's runner for this crate's test binaries (.cargo/config.toml): as root, each test binary
# runs in a private mount namespace where every mount that holds files is read-only and the only
# writable place is a fresh tmpfs over /tmp, given to the tests as TMPDIR. The root tests chown, mount and
# drop privileges over trees they build; a bug that leaves a tree (a followed symlink, a wrong
# path) then meets EROFS instead of a host file, and the trees vanish with the namespace.
#
# Left writable, because they hold no files of the host's: proc (the tests write uid_map),
# devpts and /dev/shm (terminals, shared memory), mqueue, nsfs. Device nodes stay usable on a
# read-only /dev (writing to a device is not writing to the filesystem).
#
# Anything that is not a test binary (`cargo run` runs target/*/hermes-shim) runs as it is, and
# so does everything when not root: no other user's file can be chowned then, and the root tests
# skip (or fail under CI).
set -euo pipefail

# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
LOG_PREFIX=sealed

if [ "${1:-}" = --inside ]; then
    shift
    seal_mounts proc devpts mqueue nsfs
    # Over /tmp itself, mode 0755: a tree the tests sweep has no ancestor another user can
    # write (fix-ownership refuses such a root), and the host's /tmp is not seen at all.
    mount -t tmpfs -o mode=0755,size=50% hermes-shim-tests /tmp
    export TMPDIR=/tmp HERMES_SHIM_SEALED=1
    exec "$@"
fi

case "${1:-}" in
    */deps/*) ;;      # a test binary (unit or integration)
    *) exec "$@" ;;   # cargo run
esac
if [ "$(id -u)" -ne 0 ] || [ -n "${HERMES_SHIM_SEALED:-}" ]; then
    exec "$@"
fi
# The seal's tmpfs over /tmp would hide a test binary built there (cargo mutants copies the
# tree into TMPDIR).
case "$(realpath -m -- "$1")" in
    /tmp/*) die "$1 lies under /tmp, which the seal covers with a tmpfs; build elsewhere (CARGO_TARGET_DIR, or TMPDIR for cargo mutants)" ;;
esac
exec unshare --mount --propagation private -- "$BASH" "$0" --inside "$@"
