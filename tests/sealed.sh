#!/usr/bin/env bash
# Cargo's runner for this crate's test binaries (.cargo/config.toml): as root, each test binary
# runs in a private mount namespace where every mount that holds files is read-only and the only
# writable place is a fresh tmpfs, given to the tests as TMPDIR. The root tests chown, mount and
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
    dir=$2
    shift 2
    seal_mounts proc devpts mqueue nsfs
    mount -t tmpfs -o mode=1777,size=50% hermes-shim-tests "$dir"
    export TMPDIR=$dir HERMES_SHIM_SEALED=1
    exec "$@"
fi

case "${1:-}" in
    */deps/*) ;;      # a test binary (unit or integration)
    *) exec "$@" ;;   # cargo run
esac
if [ "$(id -u)" -ne 0 ] || [ -n "${HERMES_SHIM_SEALED:-}" ]; then
    exec "$@"
fi
# The tmpfs's mount point: an empty directory of our own, removed after (rmdir: only if empty).
dir=$(mktemp -d /tmp/hermes-shim-sealed.XXXXXX)
rc=0
unshare --mount --propagation private -- "$BASH" "$0" --inside "$dir" "$@" || rc=$?
rmdir "$dir"
exit "$rc"
