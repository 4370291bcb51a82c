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

log() { printf 'sealed: %s\n' "$*" >&2; }

# Makes every mount of this (private) namespace read-only but the pseudo filesystems above, one
# bind remount each (only this namespace's view changes), then checks none is left writable.
seal() {
    local line lines mp opts fstype rest
    mapfile -t lines </proc/self/mountinfo
    for line in "${lines[@]}"; do
        # ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
        read -r _ _ _ _ mp opts _ <<<"$line"
        rest=${line#* - }
        fstype=${rest%% *}
        case "$fstype" in proc | devpts | mqueue | nsfs) continue ;; esac
        mp=$(printf '%b' "$mp") # mountinfo writes blanks and backslashes in octal (\040)
        [ "$mp" != /dev/shm ] || continue
        case ",$opts," in *,ro,*) continue ;; esac
        mount -o remount,bind,ro "$mp" 2>/dev/null || true
    done
    # Of a mount point mounted over several times only the last mount is reachable; that one
    # must be read-only.
    local left
    left=$(awk '{ split($0, a, " - "); split(a[2], f, " "); o[$5] = $6; t[$5] = f[1] }
        END { for (m in o) if (o[m] !~ /(^|,)ro(,|$)/ && t[m] !~ /^(proc|devpts|mqueue|nsfs)$/ &&
                               m != "/dev/shm") print m }' /proc/self/mountinfo)
    [ -z "$left" ] || { log "cannot make these mounts read-only: $(tr '\n' ' ' <<<"$left")"; exit 1; }
}

if [ "${1:-}" = --inside ]; then
    dir=$2
    shift 2
    seal
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
