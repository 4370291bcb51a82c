#!/bin/bash
# PID 1 of the arm64 kernel run (tests/arm64-vm.sh): one boot, one batch. The whole userland is
# the initramfs (no disk: Debian's kernel has its disk drivers as modules), so everything here
# is a throwaway of this boot. Runs the unit and root integration test binaries the way cargo
# does (through tests/sealed.sh), then checks what qemu-user cannot show: the seccomp filter in
# force and the openat2 walk chosen. Its lines go to the console, which the host reads; the last
# one is `hermes-vm-batch: exit N`, then the machine powers off.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
# The sweep's model test (tests/fix_model.rs) explores on the real machine; here, where every
# instruction is emulated, a few trees per backend show the arm64 kernel agrees.
export HERMES_SHIM_MODEL_TREES=${HERMES_SHIM_MODEL_TREES:-20}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o ptmxmode=0666,mode=0620,gid=5 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=1777 tmpfs /tmp
# What udev would add: the descriptor links scripts expect.
ln -s /proc/self/fd /dev/fd
ln -s fd/0 /dev/stdin
ln -s fd/1 /dev/stdout
ln -s fd/2 /dev/stderr
# Debian's kernel turns TIOCSTI off for everyone (0); the test host has it on. On, the filter is
# the only thing that stops the attacker, so the tests see the filter and not the sysctl.
echo 1 >/proc/sys/dev/tty/legacy_tiocsti

cd /src || exit 1
# shellcheck source=tests/lib.sh
. tests/lib.sh
LOG_PREFIX=arm64-vm-guest
TESTS="arm64 kernel run"
SHIM=/hermes-vm/hermes-shim

finish() {
    summary
    echo "hermes-vm-batch: exit $?"
    sync
    echo o >/proc/sysrq-trigger
    sleep 60
}

echo "# kernel: $(uname -srm), $(nproc) CPUs; CI=${CI:-}"
check "the kernel is arm64" aarch64 "$(uname -m)"

# The test binaries, as `cargo test` runs them, but one test at a time: the terminal tests
# drive a shell with fixed pauses, which emulated CPUs shared with a parallel test can outlast.
# Their own `test result:` lines carry their counts; a binary that dies before it prints one is a
# failure of its own.
while read -r bin; do
    echo "== $bin"
    start=$(date +%s)
    tests/sealed.sh "$bin" --quiet --color never --test-threads 1
    rc=$?
    echo "# ${bin##*/} took $(($(date +%s) - start)) s"
    [ "$rc" -eq 0 ] || not_ok "${bin##*/} exited $rc"
done </hermes-vm/tests

# What only a real kernel shows, on a tmpfs of this boot.
mkdir -p /vmcheck
mount -t tmpfs -o mode=0755 vmcheck /vmcheck
mkdir -m 0755 /vmcheck/data /vmcheck/data/sub /vmcheck/bin
echo x >/vmcheck/data/sub/file
out=$("$SHIM" fix-ownership --user 10000:10000 --json /vmcheck/data 2>/dev/null)
check "fix-ownership exits 0" 0 $?
walk=$(printf '%s' "$out" | json_field walk 2>&1)
check "fix-ownership chooses the openat2 walk (qemu-user has no openat2)" openat2 "$walk"
check "fix-ownership re-owned root's file" 10000:10000 "$(stat -c %u:%g /vmcheck/data/sub/file)"

# A bind mount of the same filesystem inside the tree: only the mount id tells it apart (qemu-user's
# statx drops it). Both walks must leave it alone and count it.
mkdir -m 0755 /vmcheck/outside /vmcheck/bound /vmcheck/bound/nested
echo x >/vmcheck/outside/root-file
mount --bind /vmcheck/outside /vmcheck/bound/nested
for walk in openat2 fallback; do
    out=$("$SHIM" fix-ownership --walk "$walk" --user 10000:10000 --json /vmcheck/bound 2>/dev/null)
    check "fix-ownership --walk $walk: a same-filesystem bind mount is counted as skipped" 1 \
        "$(printf '%s' "$out" | /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["skipped"]["mount"])' 2>&1)"
    check "fix-ownership --walk $walk: the bind mount's files untouched" 0:0:0:0 \
        "$(stat -c %u:%g /vmcheck/outside /vmcheck/outside/root-file | paste -sd :)"
done

# The probe pushes one byte into its terminal and says what the kernel answered.
install -m 0755 /dev/stdin /vmcheck/bin/probe <<'EOF'
#!/usr/bin/python3
import fcntl, termios
status = [l.split()[1] for l in open("/proc/self/status") if l.startswith("Seccomp:")][0]
try:
    fcntl.ioctl(0, termios.TIOCSTI, b"#")
    sti = "allowed"
except OSError as e:
    sti = "EPERM" if e.errno == 1 else "errno %d" % e.errno
print("Seccomp=%s TIOCSTI=%s" % (status, sti))
EOF
shim_env=(HERMES_SHIM_USER=10000 HERMES_SHIM_REAL_DIR=/vmcheck/bin)
# `script` gives the shim a terminal, as `docker exec -it` does; the relay then runs the program
# on a terminal of its own, under the filter.
out=$(env "${shim_env[@]}" script -qec "$SHIM exec probe" /dev/null 2>&1 | tr -d '\r')
check_contains "with a terminal the program runs under the filter (Seccomp: 2)" "Seccomp=2" "$out"
check_contains "the filter denies TIOCSTI with EPERM (the aarch64 numbers)" "TIOCSTI=EPERM" "$out"
out=$(env "${shim_env[@]}" HERMES_DOCKER_EXEC_AS_ROOT=1 script -qec "$SHIM exec probe" /dev/null 2>&1 | tr -d '\r')
check_contains "control: the opt-out runs unfiltered and TIOCSTI goes through" \
    "Seccomp=0 TIOCSTI=allowed" "$out"
out=$(env "${shim_env[@]}" "$SHIM" exec probe </dev/null 2>&1)
check_contains "without a terminal no filter is installed" "Seccomp=0" "$out"

finish
