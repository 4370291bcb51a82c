#!/usr/bin/env bash
# Container tests in the real engine: builds the image offline (docker/build-image.sh), then
# checks the docker-exec contract, self-heal on start, manual repair (openat2 and, under a
# seccomp profile that denies openat2, the fallback walk), the main-program table, the
# container's environment and working directory, and PID 1's duties.
# HERMES_SHIM_FLAVOUR picks the image: no-s6 (default; the entrypoint applet is PID 1 and
# repairs itself) or s6 (production: s6-overlay's /init, its oneshot repairs; needs the release
# tarballs in HERMES_SHIM_S6_TARBALLS, see docker/build-image.sh). Every check runs on both,
# plus the ones only one flavour has (s6-svscan, the oneshot's order; reaping, SIGTERM as PID 1).
# Needs root and a running Docker engine: skips with a reason otherwise, fails when $CI is set.
# Ends with `N passed, N failed`; exits non-zero on any failure.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tests/lib.sh
. "$REPO/tests/lib.sh"
choose_image
TESTS="container tests"
TAG="hermes-shim-ct-$FLAVOUR$IMAGE_SUFFIX-$$"
LABEL="hermes-shim-ct=$TAG"
WORK=""
HERMES_UID=10000

# immutable VOLUME 1|0: sets or clears the immutable flag of `stuck` at the top of VOLUME, from a
# throwaway container (the only immutable file this script ever makes; nothing on a host path).
immutable() {
    dk run --rm --cap-add LINUX_IMMUTABLE --entrypoint /usr/bin/python3 -v "$1:/d" \
        -v "$REPO/tests/py/ct_immutable.py:/immutable.py:ro" "$IMAGE" /immutable.py "$2"
}

cleanup() {
    local v
    for v in "${volumes[@]}"; do immutable "$v" 0 >/dev/null 2>&1; done
    remove_labelled
    [ -z "${LISTENER:-}" ] || kill "$LISTENER" 2>/dev/null
    [ -z "$WORK" ] || rm -rf --one-file-system "$WORK"
}

[ "$(id -u)" -eq 0 ] || skip_all "needs root (it drives the Docker engine and chattr)"
need_s6_tarballs
need_docker

# The work tree: made with the modes it needs (0755, so the containers' users can read it), as
# every file in it is, so nothing here is ever chmod'ed, chowned or chgrp'ed on a host path.
begin hermes-shim-ct 0755

build_image || bail "docker/build-image.sh builds $IMAGE"
docker image inspect "$IMAGE" >/dev/null 2>&1 || skip_all "image $IMAGE not present"
# The timing leaves the image build out.
T_START=$(date +%s)

mkdir -m 0755 "$WORK/fake" "$WORK/nested" "$WORK/sock" "$WORK/rootsock" "$WORK/ttysock"
# A stand-in for the real hermes: shows who runs it and with which arguments, in milliseconds.
install -m 0755 /dev/stdin "$WORK/fake/hermes" <<'EOF'
#!/bin/sh
echo "uid=$(id -u) gid=$(id -g) home=$HOME argv=$*"
EOF
# Its group list, and whether it may use the Docker socket: what the drop kept.
install -m 0755 /dev/stdin "$WORK/fake/groups" <<'EOF'
#!/bin/sh
sed -n 's/^Groups:[[:space:]]*//p' /proc/self/status
EOF
install -m 0755 /dev/stdin "$WORK/fake/guards" <<'EOF'
#!/bin/sh
grep -E '^(NoNewPrivs|Seccomp_filters):' /proc/self/status | tr -s '\t ' ' ' | paste -sd ' '
EOF
install -m 0755 "$REPO/tests/py/ct_connect.py" "$WORK/fake/connect"
# What statx answers (the old-kernel profile must make it ENOSYS).
install -m 0755 "$REPO/tests/py/ct_statx_answer.py" "$WORK/fake/statx-answer"
FAKE=(-v "$WORK/fake:/opt/fake:ro")

# The seccomp profile the default one is not: allow everything but openat2, which answers ENOSYS
# as on kernels and engines that predate it.
cat >"$WORK/seccomp-no-openat2.json" <<'EOF'
{
  "defaultAction": "SCMP_ACT_ALLOW",
  "syscalls": [
    { "names": ["openat2"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38 }
  ]
}
EOF

echo "# flavour $FLAVOUR on Debian $SUITE ($IMAGE)"
echo "# docker-exec contract"
start exec "${FAKE[@]}" -- sleep infinity
C="$TAG-exec"
wait_main "$C" || not_ok "exec container reaches its main program"

dk exec "$C" hermes config set model.default from-root >/dev/null 2>&1
check "root docker exec hermes config set: exit 0" 0 $?
check "root docker exec hermes config set: config.yaml hermes:hermes" hermes:hermes \
    "$(owner "$C" /opt/data/config.yaml)"
check "root docker exec hermes config set: nothing under /opt/data owned by root" "" \
    "$(docker exec "$C" find /opt/data \( -user 0 -o -group 0 \) -print 2>&1)"
check "docker exec --user hermes: find ! -readable prints nothing" "" \
    "$(docker exec --user hermes "$C" find /opt/data -maxdepth 2 -type f ! -readable 2>&1)"

dk exec --user hermes "$C" hermes config set model.default from-hermes >/dev/null 2>&1
check "docker exec --user hermes hermes config set: exit 0" 0 $?
check "docker exec --user hermes hermes config set: config.yaml hermes:hermes" hermes:hermes \
    "$(owner "$C" /opt/data/config.yaml)"
check_contains "config.yaml holds the value set as hermes" from-hermes \
    "$(docker exec --user hermes "$C" cat /opt/data/config.yaml 2>&1)"

# The opt-out, with the real hermes in a fresh HERMES_HOME per value: only 1/true/yes (any case)
# keep root; every other value, however close, still drops.
i=0
for value in 1 0 false no "" garbage 2 " 1"; do
    i=$((i + 1))
    home="/tmp/optout-$i"
    dk exec -e HERMES_DOCKER_EXEC_AS_ROOT="$value" -e HERMES_HOME="$home" "$C" \
        hermes config set model.default x >/dev/null 2>&1
    rc=$?
    if [ "$value" = 1 ]; then want=root:root; else want=hermes:hermes; fi
    check "HERMES_DOCKER_EXEC_AS_ROOT='$value' hermes config set: exit 0" 0 "$rc"
    check "HERMES_DOCKER_EXEC_AS_ROOT='$value': config.yaml $want" "$want" \
        "$(owner "$C" "$home/config.yaml")"
done
for value in true TRUE yes Yes; do
    check "HERMES_DOCKER_EXEC_AS_ROOT='$value' keeps root" "uid=0 gid=0 home=/root argv=x" \
        "$(dk exec -e HERMES_DOCKER_EXEC_AS_ROOT="$value" -e HERMES_SHIM_REAL_DIR=/opt/fake "$C" hermes x 2>/dev/null)"
done
check "root docker exec drops to hermes with its HOME, args untouched" \
    "uid=$HERMES_UID gid=$HERMES_UID home=/opt/data argv=a  b --c" \
    "$(dk exec -e HERMES_SHIM_REAL_DIR=/opt/fake "$C" hermes a ' b' --c 2>&1)"
# The fake dir has no hermes-agent or hermes-acp: the shim itself must say so (127, naming the
# path), which also tells its message apart from docker exec's own "executable not found".
for name in hermes-agent hermes-acp; do
    out=$(dk exec -e HERMES_SHIM_REAL_DIR=/opt/fake "$C" "$name" 2>&1)
    check "$name is shimmed too: exit 127" 127 \
        "$(dk exec -e HERMES_SHIM_REAL_DIR=/opt/fake "$C" "$name" >/dev/null 2>&1; echo $?)"
    check_contains "$name is shimmed too: the shim names the real path" "hermes-shim: real program /opt/fake/$name" "$out"
done
# With a terminal (`docker exec -t`; `script` gives this script one) the program runs on a pty
# of its own behind the relay, with the terminal filter; without one, in place, without it.
# The engine's own seccomp profile is a filter too: the shim's adds one, and only with a terminal.
plain=$(dk exec -e HERMES_SHIM_REAL_DIR=/opt/fake "$C" hermes-shim exec guards 2>&1)
tty=$(script -qec "docker exec -it -e HERMES_SHIM_REAL_DIR=/opt/fake $C hermes-shim exec guards" /dev/null 2>&1 | tr -d '\r')
check_contains "docker exec (no terminal): no_new_privs" "NoNewPrivs: 1" "$plain"
filters() { sed -n 's/.*Seccomp_filters: \([0-9]*\).*/\1/p' <<<"$1"; }
check "docker exec -it: the relay adds the terminal filter (one more seccomp filter)" \
    "$(($(filters "$plain") + 1))" "$(filters "$tty")"
check "docker exec -it: the exit status comes through the relay" 42 \
    "$(script -qec "docker exec -it $C hermes-shim exec python3 -c 'raise SystemExit(42)'" /dev/null >/dev/null 2>&1; echo $?)"
# `docker run -it`: the console is the container's, but root's own shell may be on it too
# (`docker run -it --entrypoint bash`, `docker attach`), so the program gets it only as PID 1;
# under s6-overlay's /init it runs behind the relay. Either way TIOCSTI is refused. (Lines are
# matched inside, not at the start: `script` echoes a NUL as ^@ before the first.)
if ! emulated_away "docker run -it: the main program is on the console only as PID 1"; then
    console=$(timeout 120 script -qec "docker run --rm -it --label $LABEL $IMAGE python3 -c 'import fcntl, os, termios
print(\"tty\", os.major(os.stat(\"/dev/console\").st_rdev) == os.major(os.fstat(0).st_rdev) and os.minor(os.stat(\"/dev/console\").st_rdev) == os.minor(os.fstat(0).st_rdev))
try:
    fcntl.ioctl(0, termios.TIOCSTI, b\" \")
    print(\"sti allowed\")
except OSError as e:
    print(\"sti\", e.errno)'" /dev/null 2>/dev/null | tr -d '\r')
    if [ "$FLAVOUR" = s6 ]; then on_console=False; else on_console=True; fi
    check "docker run -it: the main program is on the console only as PID 1" "tty $on_console" \
        "$(grep -o 'tty [A-Za-z]*' <<<"$console")"
    check "docker run -it: TIOCSTI from the main program refused (EPERM)" "sti 1" \
        "$(grep -o 'sti [a-z0-9]*' <<<"$console")"
fi
check "docker exec starts in /opt/hermes, not in the agent's volume" /opt/hermes "$(docker exec "$C" pwd)"
out=$(dk exec -e HERMES_SHIM_USER=nosuch "$C" hermes --version 2>&1)
check "unknown HERMES_SHIM_USER: exit 126" 126 "$(dk exec -e HERMES_SHIM_USER=nosuch "$C" hermes --version >/dev/null 2>&1; echo $?)"
check_contains "unknown HERMES_SHIM_USER names the remedy" "docker exec --user hermes" "$out"
check_lacks "unknown HERMES_SHIM_USER: the opt-out is never offered as a remedy" HERMES_DOCKER_EXEC_AS_ROOT "$out"
out=$(dk exec -e HERMES_DOCKER_EXEC_AS_ROOT=1 "$C" hermes --version 2>&1)
check_contains "HERMES_DOCKER_EXEC_AS_ROOT=1: warns that root runs what the agent can write" \
    "WARNING: HERMES_DOCKER_EXEC_AS_ROOT is set: running /opt/hermes/.venv/bin/hermes as root" "$out"

out=$(dk run --rm "$IMAGE" chat --help 2>&1)
rc=$?
check "docker run IMAGE chat --help: exit 0" 0 "$rc"
check_lacks "docker run IMAGE chat --help: no Traceback" Traceback "$out"
check_contains "docker run IMAGE chat --help: shows chat usage" usage "$out"

echo "# install: the shim's symlinks from hermes-agent's entry points"
# shellcheck disable=SC2016 # expanded in the container
check "the image's shim names are the venv's console scripts, each a symlink to hermes-shim" \
    "hermes -> hermes-shim|hermes-acp -> hermes-shim|hermes-agent -> hermes-shim" \
    "$(docker exec "$C" sh -c 'cd /opt/hermes/bin && for f in *; do [ -L "$f" ] && echo "$f -> $(readlink "$f")"; done' | sort | paste -sd '|')"
out=$(docker exec "$C" hermes-shim install 2>&1)
check "install again: exit 0" 0 "$(docker exec "$C" hermes-shim install >/dev/null 2>&1; echo $?)"
check_contains "install again: nothing to do" "3 console scripts of hermes-agent in /opt/hermes/.venv: 0 created, 3 already there" "$out"
# One stream in the container: the engine carries stdout and stderr apart, so their
# order is lost on the way out and "rc=0" could come before the install's own lines.
# shellcheck disable=SC2016 # expanded in the container
out=$(dk run --rm --entrypoint sh "$IMAGE" -c 'exec 2>&1; cd /opt/hermes/bin && rm hermes-agent &&
    hermes-shim install --dry-run; echo "rc=$?"; test -e hermes-agent || echo "still absent"' 2>&1)
check_contains "install --dry-run: says what it would create" "would create /opt/hermes/bin/hermes-agent -> hermes-shim" "$out"
check_contains "install --dry-run: exit 0, creates nothing" "rc=0
still absent" "$out"
# shellcheck disable=SC2016 # expanded in the container
out=$(dk run --rm --entrypoint sh "$IMAGE" -c 'cd /opt/hermes/bin && rm hermes-agent hermes-acp &&
    echo "#!/bin/sh" > hermes-acp && hermes-shim install; echo "rc=$?"; ls' 2>&1)
check_contains "install over a file that is not its symlink: refused" "refusing: /opt/hermes/bin/hermes-acp exists and is not a symlink" "$out"
check_contains "install refused: exit 2" "rc=2" "$out"
check_lacks "install refused: nothing changed (hermes-agent not created)" "hermes-agent" "$out"
# docker/build-shim.sh names it as git describes this tree (so a stale image fails here).
rev=$(git -C "$REPO" describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)
check_contains "hermes-shim --version names the source revision it was built from" "(revision $rev)" \
    "$(docker exec "$C" hermes-shim --version 2>&1)"

echo "# self-heal on start"
volume data
V="$TAG-data"
echo "root-owned, outside the volume's filesystem" | install -m 0600 /dev/stdin "$WORK/nested/root-file"
start heal -v "$V:/opt/data" -v "$WORK/nested:/opt/data/nested" -- sleep infinity
H="$TAG-heal"
wait_main "$H" || not_ok "heal container reaches its main program"
shadow_before=$(docker exec "$H" stat -c %u:%g:%a /etc/shadow)

# Damage as a root `docker exec` with the opt-out leaves it, plus files root tools write.
dk exec -e HERMES_DOCKER_EXEC_AS_ROOT=1 "$H" hermes config set model.default planted >/dev/null 2>&1
docker exec "$H" bash -c '
    cd /opt/data &&
    echo "{}" >auth.json && chmod 0600 auth.json &&
    echo state >state.db && chmod 0600 state.db &&
    : >gateway.lock &&
    echo "not yours" >other-owner && chown 1000:1000 other-owner && chmod 0600 other-owner'
check "planted damage is root-owned before the restart" root:root \
    "$(owner "$H" /opt/data/config.yaml)"

dk restart -t 1 "$H" >/dev/null
wait_main "$H" || not_ok "heal container restarts"
check "after restart: every entry hermes-owned except uid 1000's and the nested mount" \
    "/opt/data/other-owner" \
    "$(docker exec "$H" find /opt/data -path /opt/data/nested -prune -o ! -user hermes -print 2>&1)"
check "after restart: no group root left" "" \
    "$(docker exec "$H" find /opt/data -path /opt/data/nested -prune -o -group 0 -print 2>&1)"
for f in auth.json state.db gateway.lock config.yaml logs/agent.log sessions; do
    check "after restart: $f hermes:hermes" hermes:hermes "$(owner "$H" "/opt/data/$f")"
done
check "after restart: hermes reads everything (find ! -readable as hermes)" "" \
    "$(docker exec --user hermes "$H" find /opt/data -path /opt/data/nested -prune -o ! -name other-owner ! -readable -print 2>&1)"
check "after restart: uid 1000's file untouched" 1000:1000:600 \
    "$(docker exec "$H" stat -c %u:%g:%a /opt/data/other-owner)"
check "after restart: file in nested bind mount untouched" 0:0 "$(stat -c %u:%g "$WORK/nested/root-file")"
check "after restart: nested bind mount root untouched" 0:0 "$(stat -c %u:%g "$WORK/nested")"
check "one repair summary per container start (2 starts)" 2 "$(summaries "$H" 2)"
check_contains "the restart's summary counts the nested mount as skipped" " 0 devices, 1 mounts," \
    "$(docker logs "$H" 2>&1 | grep 'hermes-shim fix-ownership: /opt/data:' | tail -n 1)"

docker exec "$H" bash -c 'rm -f /opt/data/auth.json && ln -s /etc/shadow /opt/data/auth.json'
dk restart -t 1 "$H" >/dev/null
wait_main "$H" || not_ok "heal container restarts with a symlink to /etc/shadow"
check "symlink auth.json -> /etc/shadow: /etc/shadow unchanged" "$shadow_before" \
    "$(docker exec "$H" stat -c %u:%g:%a /etc/shadow)"
check "symlink auth.json -> /etc/shadow: the link itself is hermes-owned" hermes:hermes \
    "$(owner "$H" /opt/data/auth.json)"
check_contains "symlink auth.json -> /etc/shadow: hermes still cannot read /etc/shadow" "Permission denied" \
    "$(docker exec --user hermes "$H" cat /opt/data/auth.json 2>&1)"

echo "# manual repair"
docker exec "$H" bash -c 'cd /opt/data && mkdir -p new/deeper && : >new/deeper/f && : >new/g'
out=$(dk exec "$H" hermes-shim fix-ownership --dry-run --json 2>/dev/null)
check "fix-ownership --dry-run --json: exit 0" 0 "$(dk exec "$H" hermes-shim fix-ownership --dry-run --json >/dev/null 2>&1; echo $?)"
check "fix-ownership --dry-run --json: dry_run true" True "$(printf '%s' "$out" | json_field dry_run 2>&1)"
check "fix-ownership --dry-run --json: counts the 4 new entries" 4 "$(printf '%s' "$out" | json_field changed 2>&1)"
check "fix-ownership --dry-run --json: uses openat2 in the default engine" openat2 \
    "$(printf '%s' "$out" | json_field walk 2>&1)"
check "fix-ownership --dry-run: changed nothing" root:root "$(owner "$H" /opt/data/new/deeper/f)"
err=$(dk exec "$H" hermes-shim fix-ownership 2>&1 >/dev/null)
check_contains "fix-ownership: summary line" "hermes-shim fix-ownership: /opt/data: changed 4 of " "$err"
check "fix-ownership: healed new damage" "" \
    "$(docker exec "$H" find /opt/data -path /opt/data/nested -prune -o ! -user hermes ! -name other-owner -print 2>&1)"
check "fix-ownership as hermes (not root): refused, exit 2" 2 \
    "$(docker exec --user hermes "$H" hermes-shim fix-ownership >/dev/null 2>&1; echo $?)"
check "fix-ownership /etc: refused, exit 2" 2 \
    "$(docker exec "$H" hermes-shim fix-ownership /etc >/dev/null 2>&1; echo $?)"

# boot, what every start-up wiring runs: 0 unless refused, and then loud.
check "boot: clean run exits 0" 0 \
    "$(docker exec "$H" hermes-shim boot >/dev/null 2>&1; echo $?)"
out=$(docker exec -e HERMES_HOME=/etc "$H" hermes-shim boot 2>&1)
check "boot: refusal exits 2" 2 \
    "$(docker exec -e HERMES_HOME=/etc "$H" hermes-shim boot >/dev/null 2>&1; echo $?)"
check_contains "boot: refusal is loud" "WARNING: ownership repair of /etc was REFUSED" "$out"
# A partial failure: an immutable file refuses chown even to root.
docker exec "$H" sh -c ': > /opt/data/stuck'
if immutable "$V" 1; then
    check "fix-ownership with an immutable root file: exit 1" 1 \
        "$(docker exec "$H" hermes-shim fix-ownership >/dev/null 2>&1; echo $?)"
    out=$(docker exec "$H" hermes-shim boot 2>&1)
    check "boot: partial failure exits 0 (the start goes on)" 0 \
        "$(docker exec "$H" hermes-shim boot >/dev/null 2>&1; echo $?)"
    check_contains "boot: partial failure logged" "could not be repaired" "$out"
    dk restart -t 1 "$H" >/dev/null
    if wait_main "$H"; then ok "container still starts when the repair partly fails"; else
        not_ok "container still starts when the repair partly fails"; fi
    immutable "$V" 0
else
    not_ok "an immutable file in the volume (needed for the partial-failure rows)"
fi
docker exec "$H" rm -f /opt/data/stuck
check "start-up refusal is not fatal (HERMES_HOME=/etc)" ok \
    "$(dk run --rm -e HERMES_HOME=/etc "$IMAGE" echo ok 2>/dev/null)"

echo "# fallback walk under a seccomp profile denying openat2"
volume seccomp
start seccomp --security-opt "seccomp=$WORK/seccomp-no-openat2.json" -v "$TAG-seccomp:/opt/data" -- sleep infinity
S="$TAG-seccomp"
wait_main "$S" || not_ok "seccomp container reaches its main program"
check "seccomp container: start-up repair ran" 1 "$(summaries "$S" 1)"
dk exec -e HERMES_DOCKER_EXEC_AS_ROOT=1 "$S" hermes config set model.default planted >/dev/null 2>&1
docker exec "$S" bash -c 'cd /opt/data && echo "{}" >auth.json && chmod 0600 auth.json'
check "seccomp: damage planted" root:root "$(owner "$S" /opt/data/auth.json)"
out=$(dk exec "$S" hermes-shim fix-ownership --json 2>/dev/null)
check "seccomp: fix-ownership --json exit 0" 0 $?
check "seccomp: walk fell back" fallback "$(printf '%s' "$out" | json_field walk 2>&1)"
check "seccomp: healed" "" "$(docker exec "$S" find /opt/data ! -user hermes -print 2>&1)"
check "seccomp: hermes reads everything" "" \
    "$(docker exec --user hermes "$S" find /opt/data ! -readable -print 2>&1)"

echo "# old kernels: seccomp profiles answering ENOSYS for statx, openat2 and close_range, EPERM for close_range"
# Linux 4.4 (Synology DSM 7) and 4.18 (RHEL 8) have no statx (so no STATX_MNT_ID), no openat2
# and no close_range: ENOSYS for all three stands in for such a kernel. Docker 20.10.0-20.10.4's
# default profile and profiles copied from it answer EPERM for close_range.
cat >"$WORK/seccomp-old-kernel.json" <<'EOF'
{
  "defaultAction": "SCMP_ACT_ALLOW",
  "syscalls": [
    { "names": ["statx", "openat2", "close_range"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38 }
  ]
}
EOF
cat >"$WORK/seccomp-close-range-eperm.json" <<'EOF'
{
  "defaultAction": "SCMP_ACT_ALLOW",
  "syscalls": [
    { "names": ["close_range"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }
  ]
}
EOF
# A host directory bind-mounted inside the volume from the volume's own filesystem: there the
# device number cannot tell the two apart, only a mount identity can. Its root-owned file is the
# canary: no repair may ever chown it. The directory is made (0755, its file 0600) in a temp tree
# of this run on the filesystem of docker's volumes, and removed with rm --one-file-system.
docker_root=$(docker info -f '{{.DockerRootDir}}' 2>/dev/null)
# Podman (behind the `docker` tests/podman.sh puts first on PATH) names its store otherwise.
[ -n "$docker_root" ] || docker_root=$(docker info -f '{{.Store.GraphRoot}}' 2>/dev/null)
docker_dev=$(stat -c %d "$docker_root" 2>/dev/null)
OLDK_HOST=""
for parent in "$WORK" "$CACHE_DIR"; do
    if [ -n "$docker_dev" ] && [ -d "$parent" ] && [ "$(stat -c %d "$parent")" = "$docker_dev" ]; then
        OLDK_HOST=$(temp_dir "$parent" hermes-shim-ct-ws 0755) && break
    fi
done
oldk_bind=()
if [ -n "$OLDK_HOST" ]; then
    case "$OLDK_HOST" in
        "$WORK"/*) ;;
        # Outside the work tree: removed at exit too, after cleanup's containers.
        *) trap 'cleanup; rm -rf --one-file-system -- "$OLDK_HOST"' EXIT ;;
    esac
    echo "root's, on the host" | install -m 0600 /dev/stdin "$OLDK_HOST/canary"
    oldk_bind=(-v "$OLDK_HOST:/opt/data/ws")
    echo "# same-filesystem bind mount: $OLDK_HOST (device $docker_dev, as $docker_root)"
elif [ -n "${CI:-}" ]; then
    not_ok "a directory on the filesystem of $docker_root (tried $WORK and $CACHE_DIR) for the same-filesystem bind mount"
else
    echo "# SKIP the same-filesystem bind mount: neither $WORK nor $CACHE_DIR is on the filesystem of ${docker_root:-the Docker root}"
fi
# host_canary DIR: a new root-owned directory DIR in the bind-mounted host directory, with a
# canary in it, so that each repair below is judged on files of its own (created, never chowned).
host_canary() {
    [ -z "$OLDK_HOST" ] && return
    mkdir -m 0755 "$OLDK_HOST/$1" &&
        echo "root's, on the host" | install -m 0600 /dev/stdin "$OLDK_HOST/$1/canary"
}
# host_owner_ok NAME DIR: DIR (. for the bind mount's root) and its canary are still root's.
host_owner_ok() {
    [ -z "$OLDK_HOST" ] && return
    check "$1: the bind-mounted host directory $2 is still root's" 0:0 "$(stat -c %u:%g "$OLDK_HOST/$2")"
    check "$1: the host's root-owned file $2/canary is still root's" 0:0:600 \
        "$(stat -c %u:%g:%a "$OLDK_HOST/$2/canary")"
}

volume oldk
OLDK="$TAG-oldk"
# The volume as the image's user left it, plus files root made there (never on a host path).
dk run --rm --entrypoint sh -v "$OLDK:/d" "$IMAGE" -c "mkdir -p /d/sessions && chown -R $HERMES_UID:$HERMES_UID /d &&
    echo '{}' >/d/sessions/s.json && echo k >/d/auth.json && chmod 0600 /d/auth.json" ||
    not_ok "populate the old-kernel volume"
start oldk --security-opt "seccomp=$WORK/seccomp-old-kernel.json" "${FAKE[@]}" \
    -v "$OLDK:/opt/data" "${oldk_bind[@]}" -- sleep infinity
wait_main "$OLDK" || not_ok "old kernel: the container reaches its main program"
check "old kernel: the profile is in force (statx answers ENOSYS)" ENOSYS \
    "$(docker exec "$OLDK" /usr/bin/python3 /opt/fake/statx-answer 2>&1)"
check "old kernel: the start-up repair ran" 1 "$(summaries "$OLDK" 1)"
check "old kernel: the volume's root-made files are hermes's" "hermes:hermes hermes:hermes" \
    "$(docker exec "$OLDK" stat -c %U:%G /opt/data/sessions/s.json /opt/data/auth.json 2>&1 | paste -sd ' ')"
host_owner_ok "old kernel, start-up repair" .
# The seed contract.
check "old kernel: the main program runs as hermes" \
    "Uid: $HERMES_UID $HERMES_UID $HERMES_UID $HERMES_UID|Gid: $HERMES_UID $HERMES_UID $HERMES_UID $HERMES_UID" \
    "$(main_status "$OLDK" "Uid|Gid")"
dk exec "$OLDK" hermes config set model.default from-root >/dev/null 2>&1
check "old kernel: root docker exec hermes config set: exit 0" 0 $?
check "old kernel: root docker exec hermes config set: config.yaml hermes:hermes" hermes:hermes \
    "$(owner "$OLDK" /opt/data/config.yaml)"
check "old kernel: nothing in the volume owned by root" "" \
    "$(docker exec "$OLDK" find /opt/data -path /opt/data/ws -prune -o \( -user 0 -o -group 0 \) -print 2>&1)"
check "old kernel: docker exec --user hermes: find ! -readable prints nothing" "" \
    "$(docker exec --user hermes "$OLDK" find /opt/data -path /opt/data/ws -prune -o ! -readable -print 2>&1)"
# The drop, with and without a terminal.
check "old kernel: root docker exec hermes drops to hermes" \
    "uid=$HERMES_UID gid=$HERMES_UID home=/opt/data argv=x" \
    "$(dk exec -e HERMES_SHIM_REAL_DIR=/opt/fake "$OLDK" hermes x 2>&1)"
check "old kernel: root docker exec hermes-shim exec id: uid, gid and groups hermes's" \
    "uid=$HERMES_UID(hermes) gid=$HERMES_UID(hermes) groups=$HERMES_UID(hermes)" \
    "$(dk exec -e HERMES_SHIM_REAL_DIR=/usr/bin "$OLDK" hermes-shim exec id 2>&1)"
# (script echoes its own stdin's end as ^@ somewhere in the output: the number is taken alone.)
check "old kernel: docker exec -it hermes-shim exec id -u: hermes behind the relay" "$HERMES_UID" \
    "$(script -qec "docker exec -it -e HERMES_SHIM_REAL_DIR=/usr/bin $OLDK hermes-shim exec id -u" /dev/null 2>&1 |
        grep -oE '[0-9]+' | tail -n 1)"
check "old kernel: root docker exec hermes --version: exit 0" 0 \
    "$(dk exec "$OLDK" hermes --version >/dev/null 2>&1; echo $?)"
# The manual repair and the next start's, with new root damage each time.
docker exec "$OLDK" sh -c ': >/opt/data/manual' 2>/dev/null
host_canary manual
out=$(dk exec "$OLDK" hermes-shim fix-ownership --json 2>/dev/null)
check "old kernel: fix-ownership --json: exit 0" 0 \
    "$(dk exec "$OLDK" hermes-shim fix-ownership >/dev/null 2>&1; echo $?)"
check "old kernel: fix-ownership walks the fallback" fallback "$(printf '%s' "$out" | json_field walk 2>&1)"
check "old kernel: fix-ownership healed the new damage" hermes:hermes "$(owner "$OLDK" /opt/data/manual)"
host_owner_ok "old kernel, fix-ownership" manual
docker exec "$OLDK" sh -c ': >/opt/data/restart' 2>/dev/null
host_canary restart
dk restart -t 1 "$OLDK" >/dev/null
wait_main "$OLDK" || not_ok "old kernel: the container restarts"
check "old kernel, after restart: the repair ran again" 2 "$(summaries "$OLDK" 2)"
check "old kernel, after restart: the new damage is hermes's" hermes:hermes "$(owner "$OLDK" /opt/data/restart)"
host_owner_ok "old kernel, after restart" restart

# The drop from a root docker exec, in a container whose own main program does not drop.
start eperm --security-opt "seccomp=$WORK/seccomp-close-range-eperm.json" --entrypoint sleep -- infinity
EP="$TAG-eperm"
check "close_range EPERM: root docker exec hermes --version: exit 0" 0 \
    "$(dk exec "$EP" hermes --version >/dev/null 2>&1; echo $?)"
check "close_range EPERM: root docker exec hermes-shim exec id: hermes" \
    "uid=$HERMES_UID(hermes) gid=$HERMES_UID(hermes) groups=$HERMES_UID(hermes)" \
    "$(dk exec -e HERMES_SHIM_REAL_DIR=/usr/bin "$EP" hermes-shim exec id 2>&1)"
check "close_range EPERM: docker exec -it hermes-shim exec id -u: hermes behind the relay" "$HERMES_UID" \
    "$(script -qec "docker exec -it -e HERMES_SHIM_REAL_DIR=/usr/bin $EP hermes-shim exec id -u" /dev/null 2>&1 |
        grep -oE '[0-9]+' | tail -n 1)"
# The main program, through the image's own entrypoint.
# shellcheck disable=SC2016 # expanded in the container
out=$(dk run --rm --security-opt "seccomp=$WORK/seccomp-close-range-eperm.json" "$IMAGE" \
    sh -c 'echo "main: $(id -u):$(id -g)"' 2>&1)
rc=$?
check "close_range EPERM: the main program starts: exit 0" 0 "$rc"
check_contains "close_range EPERM: the main program runs as hermes" "main: $HERMES_UID:$HERMES_UID" "$out"

# The containers go first (the bind mount with them), then the host directory.
dk rm -f -v "$OLDK" "$EP" >/dev/null 2>&1
case "$OLDK_HOST" in
    "" | "$WORK"/*) ;;
    *)
        rm -rf --one-file-system -- "$OLDK_HOST"
        trap cleanup EXIT
        ;;
esac

echo "# boot-time uid remap (HERMES_UID/PUID, HERMES_GID/PGID)"
volume remap
R="$TAG-remap"
# The volume as an image with the default uid left it, plus root damage and a stranger's file,
# made by a throwaway container (never on the volume's host path).
dk run --rm --entrypoint sh -v "$R:/d" "$IMAGE" -c "mkdir -p /d/sessions && echo '{}' >/d/sessions/s.json &&
    echo k >/d/auth.json && echo x >/d/host && chown -R $HERMES_UID:$HERMES_UID /d &&
    chown 0:0 /d/auth.json && chown 4321:4321 /d/host" || not_ok "populate the remap volume"
start remap -e PUID=1234 -e PGID=1235 -v "$R:/opt/data" -- sleep infinity
wait_main "$R" || not_ok "remap container reaches its main program"
check "PUID/PGID: hermes is remapped" "1234 1235" "$(docker exec "$R" sh -c 'echo "$(id -u hermes) $(id -g hermes)"' 2>&1)"
check "PUID/PGID: the main program runs with the new ids" "Uid: 1234 1234 1234 1234|Gid: 1235 1235 1235 1235" \
    "$(main_status "$R" "Uid|Gid")"
check "PUID/PGID: files of the old uid and root's moved with it" "1234:1235 1234:1235 1234:1235" \
    "$(docker exec "$R" stat -c %u:%g /opt/data /opt/data/sessions/s.json /opt/data/auth.json | paste -sd ' ')"
check "PUID/PGID: a stranger's file untouched" 4321:4321 "$(docker exec "$R" stat -c %u:%g /opt/data/host)"
dk exec "$R" hermes config set model.default remapped >/dev/null 2>&1
check "PUID/PGID: a root docker exec hermes config set lands as the new ids" 1234:1235 \
    "$(docker exec "$R" stat -c %u:%g /opt/data/config.yaml 2>&1)"
out=$(dk run --rm -e HERMES_UID=0 "$IMAGE" id -u 2>"$WORK/uid0.err")
check_contains "HERMES_UID=0 is refused loudly" 'HERMES_UID="0" is not a usable id' "$(cat "$WORK/uid0.err")"
check "HERMES_UID=0: the container still starts, as the unchanged hermes" "$HERMES_UID" "$out"

echo "# main program"
run_main() { dk run --rm "$@" 2>/dev/null; }
check "no args -> hermes, as hermes" "uid=$HERMES_UID gid=$HERMES_UID home=/opt/data argv=" \
    "$(run_main "${FAKE[@]}" -e HERMES_SHIM_REAL_DIR=/opt/fake "$IMAGE")"
check "chat --help -> hermes chat --help, as hermes" \
    "uid=$HERMES_UID gid=$HERMES_UID home=/opt/data argv=chat --help" \
    "$(run_main "${FAKE[@]}" -e HERMES_SHIM_REAL_DIR=/opt/fake "$IMAGE" chat --help)"
# shellcheck disable=SC2016 # expanded in the container
check "program on PATH (id) runs as hermes" "$HERMES_UID:$HERMES_UID:$HERMES_UID" \
    "$(run_main "$IMAGE" sh -c 'echo "$(id -u):$(id -g):$(id -G)"')"
# shellcheck disable=SC2016 # expanded in the container
check "bash -c runs as hermes with HOME and HERMES_HOME" "hermes /opt/data /opt/data" \
    "$(run_main "$IMAGE" bash -c 'echo "$(id -un) $HOME $HERMES_HOME"')"
check "hermes --version via PATH" "Hermes Agent v0.19.0" \
    "$(run_main "$IMAGE" hermes --version | head -n 1 | cut -d' ' -f1-3)"
out=$(dk run --rm -e HERMES_SHIM_USER=nosuch "$IMAGE" true 2>&1)
rc=$?
check "main program, unknown HERMES_SHIM_USER: exit 126" 126 "$rc"
check_contains "main program refusal names the remedy that applies to it" \
    "start the container with --user hermes" "$out"
check_lacks "main program refusal does not offer the shim's opt-out" "HERMES_DOCKER_EXEC_AS_ROOT" "$out"
check "exit code 42 propagates" 42 "$(dk run --rm "$IMAGE" bash -c 'exit 42' >/dev/null 2>&1; echo $?)"
check "exit code 42 propagates with --init" 42 \
    "$(dk run --rm --init "$IMAGE" bash -c 'exit 42' >/dev/null 2>&1; echo $?)"
check "docker run --user hermes: runs as hermes" "$HERMES_UID" "$(run_main --user hermes "$IMAGE" id -u)"
check "docker run --user 1234 with a writable HERMES_HOME: runs as 1234, no drop" 1234 \
    "$(run_main --user 1234 -e HERMES_HOME=/tmp "$IMAGE" id -u)"
check "docker run --user 1234: no repair attempted (not even a refusal)" 0 \
    "$(dk run --rm --user 1234 "$IMAGE" true 2>&1 | grep -c 'fix-ownership')"
check "as root: exactly one repair sweep per start" 1 \
    "$(dk run --rm "$IMAGE" true 2>&1 | grep -cE '^hermes-shim fix-ownership: /opt/data: changed')"
check "as root with --init: exactly one repair sweep per start" 1 \
    "$(dk run --rm --init "$IMAGE" true 2>&1 | grep -cE '^hermes-shim fix-ownership: /opt/data: changed')"
start pid1 -- sleep infinity
P="$TAG-pid1"
wait_main "$P" || not_ok "sleep infinity container reaches its main program"
check "sleep infinity: main program runs with all uids and gids hermes" \
    "Uid: $HERMES_UID $HERMES_UID $HERMES_UID $HERMES_UID|Gid: $HERMES_UID $HERMES_UID $HERMES_UID $HERMES_UID" \
    "$(main_status "$P" "Uid|Gid")"
check "sleep infinity: no capabilities left" "CapEff: 0000000000000000" "$(main_status "$P" CapEff)"

# The gateway as the main program, as the README runs it: it must keep running (no s6 service
# lookup under /init, no exit).
start gw -- gateway run
sleep 5
check "gateway run as the main program keeps running" true \
    "$(docker inspect -f '{{.State.Running}}' "$TAG-gw" 2>&1)"
check_lacks "gateway run: no s6 service lookup" "no such gateway" "$(docker logs "$TAG-gw" 2>&1)"

# --pid=host: PID 1 is the host's, whose start time never changes, so a start record cannot
# name this container's start: every start repairs.
# (wait_main cannot tell its sleep from the host's here; the summaries in the log can.)
start pidhost --pid=host -- sleep infinity
check "--pid=host: the first start repairs" 1 "$(summaries "$TAG-pidhost" 1)"
docker exec "$TAG-pidhost" touch /opt/data/root-after-start
dk restart -t 1 "$TAG-pidhost" >/dev/null
check "--pid=host: the restart repairs again (no stale record trusted)" 2 "$(summaries "$TAG-pidhost" 2)"
check "--pid=host: the file root left is the user's" hermes:hermes \
    "$(owner "$TAG-pidhost" /opt/data/root-after-start)"

echo "# the container's environment and working directory"
printf 'FROM_FILE=from-env-file\n' >"$WORK/env-file"
# shellcheck disable=SC2016 # expanded in the container
check "the main program sees the container's environment (ENV, -e, --env-file)" \
    "/opt/data sk-test from-env-file" \
    "$(run_main -e OPENAI_API_KEY=sk-test --env-file "$WORK/env-file" "$IMAGE" \
        sh -c 'echo "$HERMES_HOME $OPENAI_API_KEY $FROM_FILE"')"
# shellcheck disable=SC2016 # expanded in the container
check "HERMES_SHIM_USER=4321 reaches the main program's drop" 4321:4321 \
    "$(run_main -e HERMES_SHIM_USER=4321 "$IMAGE" sh -c 'echo "$(id -u):$(id -g)"')"
check "hermes run by the main program writes \$HERMES_HOME/config.yaml, not ~/.hermes" "/opt/data/config.yaml" \
    "$(run_main "$IMAGE" bash -c 'hermes config set model.default x >/dev/null 2>&1; ls -d /opt/data/config.yaml /opt/data/.hermes 2>/dev/null')"
check "docker run -w /tmp: the main program starts in /tmp" /tmp "$(run_main -w /tmp "$IMAGE" pwd)"
out=$(dk run --rm "$IMAGE" true 2>&1)
if [ "$FLAVOUR" = s6 ]; then
    check_contains "the entrypoint says the oneshot already repaired" \
        "hermes-shim entrypoint: the start-up repair already ran in this container start (exit 0); not repairing again" "$out"
else
    check_contains "the entrypoint says it repairs itself" \
        "hermes-shim entrypoint: no start-up repair has run in this container start; repairing now" "$out"
fi

# docker stop: the exit code says whether the program ended by SIGTERM (143) or the engine had
# to SIGKILL it after the grace time (137).
stop_code() {
    dk stop -t 10 "$1" >/dev/null
    docker inspect -f '{{.State.ExitCode}}' "$1"
}

if [ "$FLAVOUR" = s6 ]; then
    echo "# s6-overlay's /init"
    start s6 -- sleep infinity
    S6C="$TAG-s6"
    wait_main "$S6C" || not_ok "s6 container reaches its main program"
    check "PID 1 is s6-svscan" s6-svscan "$(docker exec "$S6C" cat /proc/1/comm 2>&1)"
    t_stop=$(date +%s%N)
    code=$(stop_code "$S6C")
    echo "# docker stop took $((($(date +%s%N) - t_stop) / 1000000)) ms"
    case "$code" in
        137) not_ok "docker stop ends the s6 container without SIGKILL: exit 137" ;;
        *) ok "docker stop ends the s6 container without SIGKILL (exit $code)" ;;
    esac

    # Root damage in a volume before the start; the main program counts what it still sees.
    volume order
    dk run --rm --entrypoint sh -v "$TAG-order:/opt/data" "$IMAGE" -c \
        'touch /opt/data/root-file && mkdir -m 0700 /opt/data/root-dir && touch /opt/data/root-dir/f' ||
        not_ok "plant root damage in a volume"
    start order -v "$TAG-order:/opt/data" -- sh -c \
        'find /opt/data \( -user 0 -o -group 0 \) -print | wc -l >/tmp/root-at-start; exec sleep infinity'
    wait_main "$TAG-order" || not_ok "order container reaches its main program"
    check "the oneshot ran before the main program: 0 root-owned entries at its start" 0 \
        "$(docker exec "$TAG-order" cat /tmp/root-at-start 2>&1)"
    check "exactly one sweep in that start" 1 "$(summaries "$TAG-order" 1)"

    out=$(dk run --rm --entrypoint sh "$IMAGE" -c \
        'rm /etc/s6-overlay/user-bundles.d/user/contents.d/hermes-fix-ownership && exec /opt/hermes/entrypoint.sh true' 2>&1)
    check_contains "oneshot removed from the bundle: the entrypoint repairs itself" \
        "no start-up repair has run in this container start; repairing now" "$out"
    check "oneshot removed from the bundle: still exactly one sweep" 1 \
        "$(grep -cE '^hermes-shim fix-ownership: /opt/data: changed' <<<"$out")"

    out=$(dk run --rm -e HERMES_HOME=/etc -e S6_BEHAVIOUR_IF_STAGE2_FAILS=1 "$IMAGE" echo MAIN-PROGRAM-RAN 2>&1)
    check_contains "S6_BEHAVIOUR_IF_STAGE2_FAILS=1, refused sweep: the main program starts" MAIN-PROGRAM-RAN "$out"
    check_contains "S6_BEHAVIOUR_IF_STAGE2_FAILS=1, refused sweep: a WARNING says so" WARNING "$out"
    out=$(dk run --rm -e HERMES_HOME=/etc -e S6_BEHAVIOUR_IF_STAGE2_FAILS=2 "$IMAGE" echo MAIN-PROGRAM-RAN 2>&1)
    rc=$?
    check_lacks "S6_BEHAVIOUR_IF_STAGE2_FAILS=2, refused sweep: the main program never runs" MAIN-PROGRAM-RAN "$out"
    check "S6_BEHAVIOUR_IF_STAGE2_FAILS=2, refused sweep: the container fails" 1 "$([ "$rc" -ne 0 ] && echo 1 || echo 0)"
else
    echo "# PID 1 without an init"
    # Backgrounded from subshells that exit at once, the sleeps become orphans of PID 1.
    start reap -- bash -c '(sleep 0.2 &); (sleep 0.1 &); exec sleep infinity'
    RP="$TAG-reap"
    wait_main "$RP" || not_ok "reap container reaches its main program"
    sleep 1
    check "orphans are reaped: no zombie left" "" \
        "$(docker exec "$RP" sh -c 'for p in /proc/[0-9]*/stat; do awk "\$3 == \"Z\" { print \$2 }" "$p"; done' 2>&1)"
    check "PID 1 is the entrypoint, dropped to hermes" "hermes-shim $HERMES_UID" \
        "$(docker exec "$RP" sh -c 'echo "$(cat /proc/1/comm) $(awk "/^Uid:/ { print \$3 }" /proc/1/status)"')"
    check "docker stop: the program ends by SIGTERM (143), not SIGKILL (137)" 143 "$(stop_code "$RP")"
fi

# Not root, the entrypoint glue never starts /init: on both flavours the applet is PID 1.
echo "# PID 1 under docker run --user hermes"
start reapuser --user hermes -- bash -c '(sleep 0.2 &); (sleep 0.1 &); exec sleep infinity'
RU="$TAG-reapuser"
wait_main "$RU" || not_ok "--user hermes container reaches its main program"
sleep 1
check "--user hermes: PID 1 is the entrypoint applet, as hermes" "hermes-shim $HERMES_UID" \
    "$(docker exec "$RU" sh -c 'echo "$(cat /proc/1/comm) $(awk "/^Uid:/ { print \$3 }" /proc/1/status)"')"
check "--user hermes: orphans are reaped, no zombie left" "" \
    "$(docker exec "$RU" sh -c 'for p in /proc/[0-9]*/stat; do awk "\$3 == \"Z\" { print \$2 }" "$p"; done' 2>&1)"
check "--user hermes, docker stop: ends by SIGTERM (143), not SIGKILL (137)" 143 "$(stop_code "$RU")"

echo "# start-up parity: the Docker socket's group, a missing HERMES_HOME, --user"
SOCK_GID=4998
# Real listening sockets, as dockerd's would be; they live until the checks are done.
/usr/bin/python3 "$REPO/tests/py/ct_listen.py" "$WORK/sock/docker.sock" "$WORK/rootsock/docker.sock" \
    "$WORK/ttysock/docker.sock" >"$WORK/listening" &
LISTENER=$!
for _ in $(seq 50); do [ -s "$WORK/listening" ] && break; sleep 0.1; done
# Its group, given from a throwaway container, as the host's docker group would be.
dk run --rm --entrypoint chgrp -v "$WORK/sock:/s" "$IMAGE" "$SOCK_GID" /s/docker.sock ||
    not_ok "give the test socket group $SOCK_GID"
dk run --rm --entrypoint chgrp -v "$WORK/ttysock:/s" "$IMAGE" tty /s/docker.sock ||
    not_ok "give the second test socket the group tty"
start sock "${FAKE[@]}" -v "$WORK/sock/docker.sock:/var/run/docker.sock" -- sleep infinity
SK="$TAG-sock"
wait_main "$SK" || not_ok "socket container reaches its main program"
check_contains "docker socket gid $SOCK_GID: the main program has it" "$SOCK_GID" "$(main_status "$SK" Groups)"
check_contains "docker socket: a root docker exec hermes has it" "$SOCK_GID" \
    "$(dk exec -e HERMES_SHIM_REAL_DIR=/opt/fake "$SK" hermes-shim exec groups 2>&1)"
check "docker socket: hermes can connect through the drop" connected \
    "$(dk exec -e HERMES_SHIM_REAL_DIR=/opt/fake "$SK" hermes-shim exec connect 2>&1)"
check "docker socket: a group hostdocker with that gid holds hermes" "hostdocker:x:$SOCK_GID:hermes" \
    "$(docker exec "$SK" grep ":$SOCK_GID:" /etc/group)"
check_contains "docker socket: the start says so" "created group 'hostdocker' (gid $SOCK_GID" \
    "$(docker logs "$SK" 2>&1)"
dk restart -t 1 "$SK" >/dev/null
wait_main "$SK" || not_ok "socket container restarts"
check "docker socket, restart: /etc/group unchanged (one line, one member)" "hostdocker:x:$SOCK_GID:hermes" \
    "$(docker exec "$SK" grep ":$SOCK_GID:" /etc/group)"
check_contains "docker socket, restart: the main program still has it" "$SOCK_GID" "$(main_status "$SK" Groups)"
out=$(dk run --rm -v "$WORK/rootsock/docker.sock:/var/run/docker.sock" "$IMAGE" \
    sh -c 'sed -n "s/^Groups:[[:space:]]*//p" /proc/self/status; grep -c hostdocker /etc/group' 2>&1)
check_contains "docker socket owned by gid 0: a warning names the remedy" \
    "WARNING: the Docker socket belongs to group 0" "$out"
check_lacks "docker socket owned by gid 0: root's group is never given" "hostdocker" "$out"
# tty's members can write into every terminal (root's `docker exec -it` shell among them).
# Mounted at the other path boot looks at (one file where /var/run links to /run, as on Debian).
out=$(dk run --rm -v "$WORK/ttysock/docker.sock:/run/docker.sock" "$IMAGE" \
    sh -c 'sed -n "s/^Groups:[[:space:]]*//p" /proc/self/status; grep "^tty:" /etc/group' 2>&1)
check_contains "docker socket owned by tty (gid 5): a warning names the group and the remedy" \
    "WARNING: the Docker socket belongs to gid 5, the system group 'tty'" "$out"
check_contains "docker socket owned by tty: hermes is not made a member" "tty:x:5:"$'\n' "$out"$'\n'
out=$(dk run --rm -e PGID=42 "$IMAGE" sh -c 'id -g; id -gn' 2>&1)
check_contains "PGID=42 (shadow): the remap is refused, naming the group" \
    "gid 42 is the system group 'shadow'" "$out"
check_contains "PGID=42: hermes keeps its own group" "10000"$'\n'"hermes" "$out"
kill "$LISTENER" 2>/dev/null

check "HERMES_HOME missing: created, the user's, 0700; its parent root's, 0755; hermes writes there" \
    "hermes:hermes 700|root:root 755|hermes:hermes" \
    "$(run_main -e HERMES_HOME=/home/hermes/.hermes "$IMAGE" bash -c \
        'stat -c "%U:%G %a" /home/hermes/.hermes /home/hermes; hermes config set model.default x >/dev/null 2>&1; stat -c %U:%G /home/hermes/.hermes/config.yaml' | paste -sd '|')"
out=$(dk run --rm -e HERMES_HOME=/etc/hermes "$IMAGE" sh -c 'test -e /etc/hermes && echo created || echo absent' 2>&1)
check_contains "HERMES_HOME=/etc/hermes: refused, not created" absent "$out"

echo "# scope the agent cannot rename"
volume scope
# A home below the volume root, and an excluded directory, both root's: made by a throwaway
# container; hermes owns the volume's root, so it could rename either.
dk run --rm --entrypoint sh -v "$TAG-scope:/d" "$IMAGE" -c "mkdir /d/.hermes /d/secrets &&
    echo k >/d/.hermes/key && echo s >/d/secrets/key && chmod 0700 /d/.hermes /d/secrets &&
    chown $HERMES_UID:$HERMES_UID /d" || not_ok "populate the scope volume"
root_stat() { dk run --rm --entrypoint stat -v "$TAG-scope:/d" "$IMAGE" -c %U "$@" 2>&1; }
out=$(dk run --rm -e HERMES_HOME=/opt/data/.hermes -v "$TAG-scope:/opt/data" "$IMAGE" true 2>&1)
check_contains "HERMES_HOME=/opt/data/.hermes: refused, naming the directory hermes can write" \
    "/opt/data/.hermes: /opt/data above it can be written by uid $HERMES_UID" "$out"
check "HERMES_HOME=/opt/data/.hermes: its root-owned file left alone" root "$(root_stat /d/.hermes/key)"
out=$(dk run --rm -e HERMES_SHIM_EXCLUDE=secrets -v "$TAG-scope:/opt/data" "$IMAGE" true 2>&1)
check_contains "HERMES_SHIM_EXCLUDE=secrets in hermes's directory: a WARNING names it" \
    "WARNING: /opt/data/secrets is excluded" "$out"
check_contains "HERMES_SHIM_EXCLUDE warning: the remedy" "keep root's data on a separate mount" "$out"
check "HERMES_SHIM_EXCLUDE=secrets: still root's" "root root" "$(root_stat /d/secrets /d/secrets/key | paste -sd ' ')"
check "HERMES_SHIM_EXCLUDE=secrets: the rest repaired" "hermes" "$(root_stat /d/.hermes/key)"

# Issue 19, items 3, 5 and 6: tini's name, an agent built from its sdist, docker stop's time.
# Self-contained: its own containers and volume.
echo "# issue 19: docker stop, the tini applet, the sdist-built agent"
volume stop19
# A main program that traps SIGTERM and needs about a second to finish: it must get that
# second, and its exit code (7) must be the container's, under s6-overlay as without it.
start stop19 -v "$TAG-stop19:/opt/data" -- sh -c \
    'trap "sleep 1; echo finished >/opt/data/stopped; exit 7" TERM; while :; do sleep 0.1; done'
wait_main "$TAG-stop19" || not_ok "stop19 container reaches its main program"
t_stop=$(date +%s%N)
code=$(stop_code "$TAG-stop19")
echo "# docker stop of a program that takes 1 s to finish took $((($(date +%s%N) - t_stop) / 1000000)) ms"
check "docker stop: the program trapping SIGTERM ends itself, its exit code the container's (not 137)" 7 "$code"
check "docker stop: the program trapping SIGTERM finished its work on the volume" finished \
    "$(dk run --rm --entrypoint cat -v "$TAG-stop19:/d" "$IMAGE" /d/stopped 2>&1)"
# Nothing is left to wait for once the main program has ended: before issue 19 the s6 flavour
# waited S6_KILL_GRACETIME (3 s) in full on every stop.
start stop19b -- sleep infinity
wait_main "$TAG-stop19b" || not_ok "stop19b container reaches its main program"
t_stop=$(date +%s%N)
code=$(stop_code "$TAG-stop19b")
ms=$((($(date +%s%N) - t_stop) / 1000000))
# The time is shown, not judged (speed is for benchmarks): the exit code tells the paths apart,
# since s6's shutdown broadcast after the grace time left the container exit 0 before.
echo "# docker stop of sleep took $ms ms"
check "docker stop of sleep: SIGTERM reached the main program first, exit 143" 143 "$code"
if [ "$FLAVOUR" = s6 ]; then
    # A terminal keeps the old path (s6 would give a signalled main program /dev/null as stdin):
    # the program still gets SIGTERM, from the shutdown's broadcast, and its grace time.
    name="docker run -t under s6: the main program keeps the terminal as stdin"
    if ! emulated_away "$name"; then
        out=$(dk run --rm -t "$IMAGE" sh -c 'readlink /proc/self/fd/0' 2>&1 | tr -d '\r')
        check_contains "$name" /dev/pts/ "$out"
    fi
fi

# The agent as installed: with HERMES_SHIM_AGENT_SOURCE (docker/build-image.sh: `sdist`, or an
# sdist's or a source tree's path) the image was built from source, which pip records as a direct
# URL; from the wheelhouse it records none. The whole suite then runs on that agent.
src=$(dk run --rm --entrypoint sh "$IMAGE" -c 'cat /opt/hermes/.venv/lib/python3*/site-packages/hermes_agent-*.dist-info/direct_url.json 2>/dev/null || echo none')
if [ -n "${HERMES_SHIM_AGENT_SOURCE:-}" ]; then
    check_contains "hermes-agent built from its source in the build context (dist/agent/)" '"url": "file:///src/agent' "$src"
else
    check "hermes-agent installed from the wheelhouse (no direct URL)" none "$src"
fi

# /usr/bin/tini, the tini applet: as the container's entrypoint (PID 1, root, as upstream's
# guides use it) and as a program the entrypoint runs.
tini_run() { dk run --rm --entrypoint /usr/bin/tini "$IMAGE" "$@" 2>&1; }
tini_run -- sh -c 'exit 3' >/dev/null
check "tini -- sh -c 'exit 3' as PID 1: exit 3" 3 "$?"
tini_run -e 3 -- sh -c 'exit 3' >/dev/null
check "tini -e 3 -- sh -c 'exit 3': exit 0" 0 "$?"
out=$(tini_run -x -- true)
rc=$?
check "tini -x: exit 2" 2 "$rc"
check_contains "tini -x: one line naming the option" "hermes-shim tini: unknown option -x" "$out"
# shellcheck disable=SC2016 # expanded by the container's sh
out=$(tini_run -w -- sh -c '(sleep 0.2 &); sleep 1; echo "pid1=$(cat /proc/1/comm) uid=$(id -u)";
    grep -l "^State:.*Z" /proc/[0-9]*/status 2>/dev/null | wc -l')
check_contains "tini as PID 1: PID 1 is tini, the program runs as root (no drop, as tini)" "pid1=tini uid=0" "$out"
check "tini as PID 1: the orphan reaped, no zombie left" 0 "$(grep -xE '[0-9]+' <<<"$out" | tail -n 1)"
check_contains "tini -w as PID 1: a line for the zombie it reaped" "hermes-shim tini: reaped zombie process" "$out"
check_lacks "tini as PID 1: no subreaper warning" WARNING "$out"
start tini19 --entrypoint /usr/bin/tini -- -- sleep infinity
wait_main "$TAG-tini19" || not_ok "tini19 container reaches its main program"
check "docker stop of tini -- sleep: SIGTERM passed on, exit 143" 143 "$(stop_code "$TAG-tini19")"
out=$(dk run --rm "$IMAGE" tini -- hermes --version 2>&1)
rc=$?
check "docker run IMAGE tini -- hermes --version (through the entrypoint): exit 0" 0 "$rc"
check_contains "docker run IMAGE tini -- hermes --version: the agent's version" "Hermes Agent" "$out"
check "tini -- hermes as root: hermes is the shim, so the program ran as hermes" hermes \
    "$(dk run --rm --entrypoint /usr/bin/tini "$IMAGE" -- sh -c 'hermes config set model.default via-tini >/dev/null 2>&1; stat -c %U /opt/data/config.yaml')"

out=$(dk run --rm --user 1234 "$IMAGE" true 2>&1)
rc=$?
check "docker run --user 1234, HERMES_HOME not writable: exit 126" 126 "$rc"
check_contains "docker run --user 1234: one line says to start as root with HERMES_UID" \
    "uid 1234 cannot write HERMES_HOME /opt/data" "$out"
check_contains "docker run --user 1234: ... and names the remap" "HERMES_UID=1234" "$out"

# Terminal and seccomp (issue 17, items 2, 3 and 5): the entrypoint typed at a root prompt of
# `docker exec -it`, a seccomp profile answering EPERM for close_range (Docker 20.10.0-20.10.4),
# and one that keeps the terminal filter out. Self-contained: its own programs, profiles and
# containers.
echo "# issue 19: gids below 100 by evidence, --group-add kept through the drop, the start-up environment for docker exec"
# `docker run --group-add` (compose's group_add, Kubernetes' supplementalGroups): 4242 is an
# ordinary gid, kept for the main program and a root docker exec; 42 (shadow, /etc/shadow's
# group) is left behind with one line, and the program still runs. Under s6-overlay, a
# start-up script records a variable the engine never had (as upstream's does for the browser).
mkdir -m 0755 "$WORK/continit"
install -m 0755 /dev/stdin "$WORK/continit/99-record" <<'INIT'
#!/bin/sh
printf /opt/browser-from-startup > /run/s6/container_environment/HERMES_TEST_BROWSER
INIT
start ga --group-add 4242 --group-add 42 "${FAKE[@]}" -v "$WORK/continit:/etc/cont-init.d:ro" -- sleep infinity
GA="$TAG-ga"
wait_main "$GA" || not_ok "--group-add container reaches its main program"
has_gids() { printf '%s' "$1" | tr -cs '0-9' '\n' | grep -xE '4242|42' | sort -n | paste -sd ' '; }
check "--group-add 4242 and 42: the main program has 4242, not 42" 4242 \
    "$(has_gids "$(main_status "$GA" Groups)")"
ga_groups=$(dk exec -e HERMES_SHIM_REAL_DIR=/opt/fake "$GA" hermes-shim exec groups 2>"$WORK/ga.err")
check "--group-add 4242 and 42: a root docker exec hermes has 4242, not 42" 4242 "$(has_gids "$ga_groups")"
check "--group-add 42: the exec says once that it is not kept" 1 \
    "$(grep -c "the container's supplementary gid 42, the system group 'shadow' (owner of /etc/shadow with group access) is not kept for user 'hermes'" "$WORK/ga.err")"
check_contains "--group-add 42: the start says so too" \
    "the container's supplementary gid 42, the system group 'shadow' (owner of /etc/shadow with group access) is not kept" "$(docker logs "$GA" 2>&1)"
check "no --group-add: a root docker exec hermes has the user's own groups only" "10000" \
    "$(dk exec -e HERMES_SHIM_REAL_DIR=/opt/fake "$C" hermes-shim exec groups 2>&1 | xargs)"
# The gid rule by evidence: 20 (dialout, a Mac's `id -g`) owns nothing here and is taken, the
# PUID with it; 42 (shadow) owns /etc/shadow, 5 (tty) every terminal of /dev/pts: refused.
# shellcheck disable=SC2016 # expanded in the container
check "PUID=501 PGID=20: the main program runs as 501:20" "501:20" \
    "$(run_main -e PUID=501 -e PGID=20 "$IMAGE" sh -c 'echo "$(id -u):$(id -g)"')"
# shellcheck disable=SC2016 # expanded in the container
out=$(dk run --rm -e PUID=501 -e PGID=42 "$IMAGE" sh -c 'echo "main $(id -u):$(id -g)"' 2>&1)
check_contains "PUID=501 PGID=42: the uid is remapped alone, the main program runs as 501:10000" "main 501:10000" "$out"
check_contains "PUID=501 PGID=42: one line says the gid is refused and why" \
    "WARNING: gid 42 is the system group 'shadow' (owner of /etc/shadow with group access)" "$out"
check_contains "PUID=501 PGID=42: ... and that the uid is remapped alone" \
    "remapping the uid alone: user 'hermes' keeps gid 10000" "$out"
check "HERMES_SHIM_USER=10000:20: a root docker exec runs with gid 20" 20 \
    "$(dk exec -e HERMES_SHIM_USER=10000:20 -e HERMES_SHIM_REAL_DIR=/usr/bin "$C" hermes-shim exec id -g 2>&1)"
check_contains "HERMES_SHIM_USER=10000:5: refused, tty gives every terminal" \
    "gid 5, the system group 'tty' (the group of every terminal in /dev/pts)" \
    "$(dk exec -e HERMES_SHIM_USER=10000:5 -e HERMES_SHIM_REAL_DIR=/usr/bin "$C" hermes-shim exec id -g 2>&1)"
check_contains "HERMES_SHIM_USER=10000:42: refused, naming /etc/shadow" \
    "(owner of /etc/shadow with group access)" \
    "$(dk exec -e HERMES_SHIM_USER=10000:42 -e HERMES_SHIM_REAL_DIR=/usr/bin "$C" hermes-shim exec id -g 2>&1)"
check "--group-add 20: kept (it owns nothing here)" 20 \
    "$(dk run --rm --group-add 20 "$IMAGE" sh -c 'id -G' 2>/dev/null | tr ' ' '\n' | grep -x 20)"
if [ "$FLAVOUR" = s6 ]; then
    ga_env=$(dk exec -e HERMES_SHIM_REAL_DIR=/usr/bin "$GA" hermes-shim exec env 2>&1)
    check "s6: a root docker exec hermes gets the variable a start-up script recorded" \
        "HERMES_TEST_BROWSER=/opt/browser-from-startup" "$(grep '^HERMES_TEST_BROWSER=' <<<"$ga_env")"
    check "s6: ... and not the recorded HOME, PWD or USER (the drop's own, the recorder's)" \
        "HOME=/opt/data USER=hermes" "$(grep -E '^(HOME|PWD|USER)=' <<<"$ga_env" | sort | paste -sd ' ')"
    check "s6: docker exec -e wins over the recorded value" "HERMES_TEST_BROWSER=mine" \
        "$(dk exec -e HERMES_SHIM_REAL_DIR=/usr/bin -e HERMES_TEST_BROWSER=mine "$GA" hermes-shim exec env 2>&1 | grep '^HERMES_TEST_BROWSER=')"
    check_contains "s6: the venv's python3, through the shim, sees it too" "/opt/browser-from-startup" \
        "$(dk exec "$GA" hermes-shim exec python3 -c 'import os; print(os.environ.get("HERMES_TEST_BROWSER"))' 2>&1)"
fi

echo "# terminal and seccomp: the entrypoint by hand, close_range EPERM, a filter that cannot be in force"
mkdir -m 0755 "$WORK/term"
# Which terminal the program has, against root's (argv[1], what `tty` said at root's prompt):
# on 0, and as its controlling terminal; and its filters. One line.
install -m 0755 "$REPO/tests/py/ct_whose_tty.py" "$WORK/term/whose-tty"
# Whether descriptors 3 and 7 reached the program (the shell keeps its script on another).
install -m 0755 /dev/stdin "$WORK/term/fds" <<'EOF'
#!/bin/sh
said=
for fd in 3 7; do
    if [ -e "/proc/$$/fd/$fd" ]; then said="$said $fd:open"; else said="$said $fd:closed"; fi
done
echo $said
EOF
# Drives `docker exec -it CONTAINER sh` on a pty of its own, as a person at a terminal: types
# each line, waiting a little after each, and prints the whole transcript.
install -m 0755 "$REPO/tests/py/ct_drive.py" "$WORK/term/drive.py"
# prctl(PR_SET_SECCOMP, …) refused (22 is PR_SET_SECCOMP): the terminal filter cannot go in.
cat >"$WORK/seccomp-no-filter.json" <<'EOF'
{
  "defaultAction": "SCMP_ACT_ALLOW",
  "syscalls": [
    { "names": ["prctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
      "args": [ { "index": 0, "value": 22, "op": "SCMP_CMP_EQ" } ] }
  ]
}
EOF
TERM_DIR=(-v "$WORK/term:/opt/term:ro")
whose() { grep -m1 '^WHOSE ' <<<"$1" | cut -d' ' -f2-; }

start term "${TERM_DIR[@]}" -- sleep infinity
TC="$TAG-term"
wait_main "$TC" || not_ok "term container reaches its main program"
# shellcheck disable=SC2016 # typed at the container's shell
t=$("$WORK/term/drive.py" "$TC" \
    '/opt/hermes/entrypoint.sh /opt/term/whose-tty "$(tty)"; echo "rc=$?"' \
    'hermes-shim entrypoint /opt/term/whose-tty "$(tty)" </dev/null >/tmp/whose 2>/dev/null; cat /tmp/whose')
check "entrypoint by hand at a docker exec -it prompt: the program has a terminal of its own, not root's (the relay)" \
    "uid=$HERMES_UID stdin-is-roots=False ctty=True ctty-is-roots=False" \
    "$(whose "$t" | cut -d' ' -f1-4)"
check_contains "entrypoint by hand: its exit status comes back" "rc=0" "$t"
check "entrypoint by hand, 0-2 redirected: no controlling terminal at all (root's cannot be opened by /dev/tty)" \
    "uid=$HERMES_UID stdin-is-roots=False ctty=False ctty-is-roots=False" \
    "$(grep '^WHOSE ' <<<"$t" | sed -n 2p | cut -d' ' -f2-5)"
plain=$(docker exec "$TC" sed -n 's/^Seccomp_filters:[[:space:]]*//p' /proc/self/status)
check "entrypoint by hand: the terminal filter is on (one more seccomp filter)" "filters=$((plain + 1))" \
    "$(whose "$t" | cut -d' ' -f5)"
check_lacks "entrypoint by hand: no filter warning where the filter can be in force" "cannot be in force" "$t"

start cr "${TERM_DIR[@]}" --security-opt "seccomp=$WORK/seccomp-close-range-eperm.json" -- sleep infinity
CR="$TAG-cr"
if wait_main "$CR"; then ok "close_range answered EPERM: the main program starts (as hermes)"; else
    not_ok "close_range answered EPERM: the main program starts (as hermes)"; fi
check "close_range answered EPERM: the profile is in force (control)" "-1 1" \
    "$(docker exec "$CR" /usr/bin/python3 -c 'import ctypes; c = ctypes.CDLL(None, use_errno=True); print(c.syscall(436, 1000, 1001, 0), ctypes.get_errno())' 2>&1)"
check_contains "close_range answered EPERM: a root docker exec hermes --version works" "Hermes Agent v0.19.0" \
    "$(dk exec "$CR" hermes --version 2>&1)"
check "close_range answered EPERM: root's descriptors 3 and 7 are still closed for the program" "3:closed 7:closed" \
    "$(dk exec -e HERMES_SHIM_REAL_DIR=/opt/term "$CR" sh -c 'exec 3</etc/hostname 7</etc/hostname; exec hermes-shim exec fds' 2>&1)"
check "close_range answered EPERM: docker run IMAGE id -u drops" "$HERMES_UID" \
    "$(dk run --rm --security-opt "seccomp=$WORK/seccomp-close-range-eperm.json" "$IMAGE" id -u 2>/dev/null)"

start nf "${TERM_DIR[@]}" --security-opt "seccomp=$WORK/seccomp-no-filter.json" -- sleep infinity
NF="$TAG-nf"
wait_main "$NF" || not_ok "no-filter container reaches its main program"
# shellcheck disable=SC2016 # typed at the container's shell
t=$("$WORK/term/drive.py" "$NF" 'hermes-shim exec whose-tty "$(tty)"; echo "rc=$?"')
check "filter refused: the program still runs, behind the relay" \
    "uid=$HERMES_UID stdin-is-roots=False ctty=True ctty-is-roots=False" "$(whose "$t" | cut -d' ' -f1-4)"
check "filter refused: no filter of ours was installed" "filters=$(docker exec "$NF" sed -n 's/^Seccomp_filters:[[:space:]]*//p' /proc/self/status)" \
    "$(whose "$t" | cut -d' ' -f5)"
check "filter refused: said once, in one WARNING line" 1 "$(grep -c 'WARNING: the seccomp filter against terminal injection cannot be in force here (installing it failed: EPERM' <<<"$t")"
check_contains "filter refused: the warning says the relay still keeps root's terminal" \
    "the relay still keeps root's terminal from the program" "$t"
check_contains "filter refused: exit 0" "rc=0" "$t"
check_lacks "no terminal: no probe, no warning" "WARNING" \
    "$(dk exec -e HERMES_SHIM_REAL_DIR=/opt/term "$NF" hermes-shim exec fds 2>&1)"

echo "# doctor: a read-only checklist, exit 0 healthy, 1 something to fix (with the action)"
start doc -- sleep infinity
DC="$TAG-doc"
wait_main "$DC" || not_ok "doctor container reaches its main program"
if [ "$FLAVOUR" = s6 ]; then flavour_line="s6-overlay (PID 1: s6-svscan)"; else
    flavour_line="without s6-overlay (PID 1: hermes-shim)"; fi
# Owner, group, mode, mtime and ctime of every entry the doctor could touch: it must change none.
# shellcheck disable=SC2016 # expanded in the container
tree_state() { docker exec "$DC" sh -c 'find /opt/data /etc /run/hermes-shim -printf "%p %U %G %m %T@ %C@\n" | sort | sha256sum'; }
before=$(tree_state)
out=$(dk exec "$DC" hermes-shim doctor 2>&1)
check "doctor, healthy: exit 0" 0 "$(dk exec "$DC" hermes-shim doctor >/dev/null 2>&1; echo $?)"
check_contains "doctor, healthy: all is well" "hermes-shim doctor: all is well" "$out"
check_lacks "doctor, healthy: no FIX line" "FIX" "$out"
check_contains "doctor: this start's repair ran" "ok   start-up repair  ran in this container start: exit 0" "$out"
check_contains "doctor: names the image flavour" "ok   image            $flavour_line" "$out"
check_contains "doctor: names the user's ids" "ok   user             hermes: uid $HERMES_UID, gid $HERMES_UID" "$out"
out=$(dk exec --user hermes "$DC" hermes-shim doctor 2>&1)
check "doctor as hermes, healthy: exit 0" 0 "$(dk exec --user hermes "$DC" hermes-shim doctor >/dev/null 2>&1; echo $?)"
check_contains "doctor as hermes: says what only root can check" "checked only as root" "$out"
check "doctor --json, healthy: healthy is true" True \
    "$(dk exec "$DC" hermes-shim doctor --json 2>/dev/null | json_field healthy)"
check "doctor: bad usage is exit 2" 2 "$(dk exec "$DC" hermes-shim doctor --bogus >/dev/null 2>&1; echo $?)"
check "doctor, healthy, as root and as hermes: changes nothing" "$before" "$(tree_state)"

docker exec "$DC" sh -c 'echo x >/opt/data/planted && mkdir /opt/data/rootdir && echo y >/opt/data/rootdir/inside'
before=$(tree_state)
out=$(dk exec "$DC" hermes-shim doctor 2>&1)
check "doctor, planted root-owned files: exit 1" 1 "$(dk exec "$DC" hermes-shim doctor >/dev/null 2>&1; echo $?)"
check_contains "doctor, planted root-owned files: counted under HERMES_HOME" \
    "FIX  ownership        3 entries under /opt/data have root's owner or group:" "$out"
check_contains "doctor, planted root-owned files: named" "/opt/data/rootdir/inside" "$out"
check_contains "doctor, planted root-owned files: the action" "do: restart the container (every start repairs), or run \`hermes-shim fix-ownership\` as root now" "$out"
check_contains "doctor, planted root-owned files: the verdict line" "hermes-shim doctor: 1 thing needs fixing" "$out"
check "doctor as hermes, planted root-owned files: exit 1" 1 \
    "$(dk exec --user hermes "$DC" hermes-shim doctor >/dev/null 2>&1; echo $?)"
dk exec "$DC" hermes-shim doctor --json >/dev/null 2>&1
dk exec --user hermes "$DC" hermes-shim doctor --json >/dev/null 2>&1
check "doctor changes nothing (owners, modes, mtimes and ctimes of /opt/data, /etc, /run/hermes-shim)" \
    "$before" "$(tree_state)"
dk exec "$DC" hermes-shim fix-ownership >/dev/null 2>&1
check "doctor after fix-ownership: exit 0" 0 "$(dk exec "$DC" hermes-shim doctor >/dev/null 2>&1; echo $?)"

docker exec "$DC" sh -c "chown 1234:1235 /opt/data && chmod 0755 /opt/data"
out=$(dk exec "$DC" hermes-shim doctor 2>&1)
check "doctor, unwritable home: exit 1" 1 "$(dk exec "$DC" hermes-shim doctor >/dev/null 2>&1; echo $?)"
check_contains "doctor, unwritable home: the line" \
    "FIX  home             /opt/data is 1234:1235 0755, NOT writable by hermes (uid $HERMES_UID)" "$out"
check_contains "doctor, unwritable home: the action" "start the container with PUID=1234 PGID=1235" "$out"

start docremap -e PUID=1 -- sleep infinity
DR="$TAG-docremap"
wait_main "$DR" || not_ok "refused-remap container reaches its main program"
out=$(dk exec "$DR" hermes-shim doctor 2>&1)
check "doctor, refused remap: exit 1" 1 "$(dk exec "$DR" hermes-shim doctor >/dev/null 2>&1; echo $?)"
check_contains "doctor, refused remap: the remap line names the refusal" \
    "FIX  remap            REFUSED: uid 1 already belongs to user 'daemon' — pick a free uid" "$out"
check_contains "doctor, refused remap: this start's repair was refused" \
    "FIX  start-up repair  ran in this container start and was REFUSED: exit 2" "$out"


echo "# attack review: the agent (uid $HERMES_UID) against root's doctor and the start record"
start attack-doc -- sleep infinity
AD="$TAG-attack-doc"
wait_main "$AD" || not_ok "attack container reaches its main program"
# A root exec left a root-owned file; the agent moves it below the doctor's depth bound (64).
dk exec "$AD" sh -c 'echo x >/opt/data/config.yaml'
# shellcheck disable=SC2016 # expanded in the container
dk exec --user hermes "$AD" sh -c \
    'd=/opt/data/deep; for i in $(seq 70); do d=$d/d; done; mkdir -p "$d" && mv /opt/data/config.yaml "$d/"'
check "attack: the sweep would change a root-owned file 70 levels deep" 1 \
    "$(dk exec "$AD" hermes-shim fix-ownership --dry-run --json 2>/dev/null | json_field changed)"
check "attack: a root-owned file 70 levels deep: doctor does not say all is well (exit 1)" 1 \
    "$(dk exec "$AD" hermes-shim doctor >/dev/null 2>&1; echo $?)"
dk exec "$AD" rm -rf --one-file-system /opt/data/deep
# Root-owned hard links: the sweep skips them (and says so), hermes cannot write them.
dk exec "$AD" sh -c 'echo x >/opt/data/linked && ln /opt/data/linked /opt/data/linked2'
check "attack: root-owned hard-linked files the repair skips: doctor does not say all is well (exit 1)" 1 \
    "$(dk exec "$AD" hermes-shim doctor >/dev/null 2>&1; echo $?)"
dk exec "$AD" rm -f /opt/data/linked /opt/data/linked2
# Read-only means no access time either (O_NOATIME: root may set it on any file).
dk exec --user hermes "$AD" sh -c 'mkdir /opt/data/adir && touch /opt/data/adir/f && touch -a -d 2020-01-01 /opt/data/adir'
dk exec "$AD" hermes-shim doctor >/dev/null 2>&1
check "attack: doctor leaves a directory's access time alone" 2020-01-01 \
    "$(dk exec "$AD" stat -c %x /opt/data/adir | cut -c1-10)"
# A FIFO, symlinks to root's terminal and to /etc/shadow, and a root-owned file renamed by the
# agent to terminal escapes.
dk exec "$AD" sh -c 'echo x >/opt/data/rootfile'
# shellcheck disable=SC2016 # expanded in the container
dk exec --user hermes "$AD" sh -c 'cd /opt/data && mkfifo fifo && ln -s /dev/tty tty && ln -s /etc/shadow shadow &&
    mv rootfile "$(printf "r\033]0;PWNED\007\033[2K\r")"'
out=$(timeout 60 docker exec "$AD" hermes-shim doctor 2>&1)
check "attack: FIFO, symlinks to /dev/tty and /etc/shadow: doctor neither hangs nor follows (exit 1: the root file)" \
    1 "$(timeout 60 docker exec "$AD" hermes-shim doctor >/dev/null 2>&1; echo $?)"
check_lacks "attack: no raw escape byte from a name under HERMES_HOME" $'\033' "$out"
check_contains "attack: the renamed root file, escaped" '/opt/data/r\u{1b}]0;PWNED\u{7}\u{1b}[2K\r' "$out"
check "attack: --json is valid JSON of printable ASCII" ok "$(dk exec "$AD" hermes-shim doctor --json 2>/dev/null |
    /usr/bin/python3 -c 'import json, sys; t = sys.stdin.read(); json.loads(t); print("ok" if all(32 <= ord(c) < 127 for c in t.strip()) else "raw")')"
check "attack: the agent cannot write the start record" refused \
    "$(dk exec --user hermes "$AD" sh -c 'echo x >/run/hermes-shim/boot || mkdir /run/hermes-shim/x' >/dev/null 2>&1 && echo written || echo refused)"

# PGID=20 (a Mac's staff, which issue 19 accepts when it grants nothing beyond the user's own
# files): hermes's own group-readable file outside HERMES_HOME must not turn gid 20 into a
# system group, nor may its name reach root's terminal raw.
start attack-gid -e PGID=20 "${FAKE[@]}" -- sleep infinity
AG="$TAG-attack-gid"
wait_main "$AG" || not_ok "PGID=20 attack container reaches its main program"
# shellcheck disable=SC2016 # expanded in the container
dk exec --user hermes "$AG" sh -c 'umask 022; touch "/tmp/$(printf "g\033]0;PWNED\007")"'
out=$(dk exec "$AG" hermes-shim doctor 2>&1)
check_lacks "attack PGID=20: doctor prints no raw escape byte from a name in /tmp" $'\033' "$out"
check_lacks "attack PGID=20: hermes's own file in /tmp does not make gid 20 refused" "system group 'dialout'" "$out"
check "attack PGID=20: root's docker exec still drops to hermes" "uid=$HERMES_UID gid=20" \
    "$(dk exec -e HERMES_SHIM_REAL_DIR=/opt/fake "$AG" hermes 2>&1 | cut -d' ' -f1-2)"
dk restart "$AG" >/dev/null 2>&1
sleep 3
check "attack PGID=20: the container still starts after hermes touched a file in /tmp" true \
    "$(dk inspect -f '{{.State.Running}}' "$AG" 2>&1)"
start attack-giddeep -e PGID=20 "${FAKE[@]}" -- sleep infinity
AGD="$TAG-attack-giddeep"
wait_main "$AGD" || not_ok "PGID=20 deep attack container reaches its main program"
# shellcheck disable=SC2016 # expanded in the container
dk exec --user hermes "$AGD" sh -c 'umask 077; d=/tmp/deep; for i in $(seq 70); do d=$d/d; done; mkdir -p "$d"'
check "attack PGID=20: a 70-deep private tree of hermes in /tmp: root's docker exec still drops to hermes" \
    "uid=$HERMES_UID gid=20" "$(dk exec -e HERMES_SHIM_REAL_DIR=/opt/fake "$AGD" hermes 2>&1 | cut -d' ' -f1-2)"

# The start record's mount-table fallback: a container sharing another's PID namespace (whose
# PID 1 is the other's dropped, undumpable entrypoint) must not take that PID 1 for its own.
if [ "$FLAVOUR" = no-s6 ]; then
    start attack-recpid --pid "container:$AD" -- sleep infinity
    ARP="$TAG-attack-recpid"
    sleep 3
    check_contains "attack: sharing another container's PID 1: no record counts for this start" \
        "note start-up repair  none recorded" "$(dk exec "$ARP" hermes-shim doctor 2>&1)"
    check_contains "attack: sharing another container's PID 1: its entrypoint repaired" \
        "no start-up repair has run in this container start; repairing now" "$(dk logs "$ARP" 2>&1)"
fi

summary
