#!/usr/bin/env bash
# Prepares a Debian 12 x86_64 host (as root) to build and run arm64 without an arm64 machine:
# qemu-user for single binaries and arm64 containers, through binfmt_misc. (qemu-system-aarch64,
# for the run on a real arm64 kernel, lives in the cross builder image, docker/cross/: Debian 12's
# qemu-system-arm would remove a newer qemu-utils some hosts have.) Idempotent and quiet when all
# is there.
set -euo pipefail

# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
LOG_PREFIX=setup-arm64

[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages and registers binfmt handlers)"

# qemu-user-static, not qemu-user: the handler must be static and registered with the F flag
# (binfmt-support does that for it), so the kernel opens the interpreter at registration and
# containers, which have no /usr/bin/qemu-aarch64-static of their own, can still run arm64 binaries.
install_pkgs qemu-user-static binfmt-support

if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc ||
        die "cannot mount binfmt_misc on /proc/sys/fs/binfmt_misc"
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    log "registering qemu-aarch64 with binfmt_misc"
    update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 ||
        die "update-binfmts --enable qemu-aarch64 failed"
fi
handler=/proc/sys/fs/binfmt_misc/qemu-aarch64
grep -qx enabled "$handler" || echo 1 >"$handler"
grep -qx enabled "$handler" || die "the qemu-aarch64 handler is registered but disabled"
# Without F the handler works on the host and fails in every container (ENOENT on the interpreter).
grep -q '^flags:.*F' "$handler" ||
    die "the qemu-aarch64 handler lacks the F flag ($(grep '^flags' "$handler")); arm64 containers cannot run"
