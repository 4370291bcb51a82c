#!/usr/bin/env bash
# Compose tests: docker/compose.yaml, with docker/compose.docker-socket.yaml over it, under
# Debian 12's docker-compose (1.29, against Docker) and podman-compose (1.0.3, against rootful
# Podman 4.3.1). For each: up; the gateway runs; a root `exec … hermes config set` leaves files
# of hermes's only; the Docker socket's group is given to hermes; root-made files are healed by
# a restart (doctor says FIX before, all is well after); down -v leaves no container or volume.
# The image is HERMES_SHIM_FLAVOUR's (as in tests/container.sh), given to the compose file
# through HERMES_IMAGE; the socket is a stand-in made here (group 4997), never the host's.
# Needs root, Docker, Podman (tests/setup-podman.sh) and both compose tools
# (tests/setup-host.sh): skips with a reason otherwise, fails when $CI is set.
# Ends with `N passed, N failed`; exits non-zero on any failure.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tests/podman-lib.sh
. "$REPO/tests/podman-lib.sh"
TESTS="compose tests"
TAG="hermes-shim-cmp-$FLAVOUR$IMAGE_SUFFIX-$$"
SOCK_GID=4997
WORK=""
LISTENER=""
projects=()

# compose ENGINE ARGS...: ENGINE's compose tool (docker: docker-compose, podman: podman-compose)
# on this run's project for that engine, with the socket overlay.
compose() {
    local engine=$1 tool image
    shift
    if [ "$engine" = docker ]; then tool=docker-compose image="$IMAGE"; else tool=podman-compose image="$PIMAGE"; fi
    HERMES_IMAGE="$image" DOCKER_SOCKET="$WORK/sock/docker.sock" timeout 180 "$tool" \
        -p "$TAG-$engine" -f "$REPO/docker/compose.yaml" -f "$REPO/docker/compose.docker-socket.yaml" "$@"
}

# cexec ENGINE ARGS...: ARGS run as root in the service's container, for their output and exit
# code: through docker-compose, or through podman itself, since podman-compose 1.0.3's exec
# returns 0 whatever the command did and echoes its own diagnostics on stdout.
cexec() {
    local engine=$1
    shift
    if [ "$engine" = docker ]; then
        compose docker exec -T hermes "$@"
    else
        podman_root exec "$TAG-podman_hermes_1" "$@"
    fi
}

cleanup() {
    local p
    for p in "${projects[@]}"; do compose "$p" down -v -t 1 >/dev/null 2>&1; done
    [ -z "$LISTENER" ] || kill "$LISTENER" 2>/dev/null
    [ -z "$WORK" ] || rm -rf --one-file-system "$WORK"
}

[ "$(id -u)" -eq 0 ] || skip_all "needs root (it drives Docker and rootful Podman)"
need_s6_tarballs
need_docker
for tool in docker-compose podman-compose; do
    command -v "$tool" >/dev/null 2>&1 || skip_all "no $tool (tests/setup-host.sh installs it)"
done
"$REPO/tests/setup-podman.sh" || bail "tests/setup-podman.sh prepares Podman"

begin hermes-shim-cmp 0755
build_image || bail "docker/build-image.sh builds $IMAGE"
load_image podman_root || bail "docker save $IMAGE | podman load"
T_START=$(date +%s)

# The stand-in for the host's Docker socket: made by a process whose group is SOCK_GID, so no
# chgrp is needed, and 0660 as dockerd makes its own.
mkdir -m 0755 "$WORK/sock"
/usr/bin/python3 -c '
import os, socket, sys, time
os.setegid(int(sys.argv[2]))
os.umask(0o117)
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(8)
os.setegid(0)
print("listening", flush=True)
time.sleep(3600)
' "$WORK/sock/docker.sock" "$SOCK_GID" >"$WORK/listening" &
LISTENER=$!
for _ in $(seq 50); do [ -s "$WORK/listening" ] && break; sleep 0.1; done

# healthy ENGINE: waits up to 60 s for the doctor to find the container healthy (the start-up
# repair of this start has run and left nothing root's); its last output goes to $WORK/doctor.
healthy() {
    local i
    for i in $(seq 60); do
        cexec "$1" hermes-shim doctor >"$WORK/doctor" 2>&1 && return 0
        [ "$i" -lt 60 ] && sleep 1
    done
    return 1
}

for engine in docker podman; do
    echo "# $engine: docker/compose.yaml ($FLAVOUR)"
    projects+=("$engine")
    export CONTAINERS_CONF
    out=$(compose "$engine" up -d 2>&1)
    check "$engine compose up: exit 0" 0 "$?"
    if ! healthy "$engine"; then
        not_ok "$engine: the container starts and the doctor finds it healthy: $(tail -n 5 "$WORK/doctor") $out"
        continue
    fi
    ok "$engine: the container starts and the doctor finds it healthy"
    check_contains "$engine: this start's repair ran" "ran in this container start: exit 0" "$(cat "$WORK/doctor")"
    # shellcheck disable=SC2016 # expanded in the container
    # The real program, whose name is the console script's (s6-overlay's runner and the
    # entrypoint also hold `gateway` in their command lines, as root).
    check "$engine: the gateway runs, as hermes" "$HERMES_UID" \
        "$(cexec "$engine" sh -c 'for p in /proc/[0-9]*; do
            [ "$(cat "$p/comm" 2>/dev/null)" = hermes ] && grep -q gateway "$p/cmdline" &&
                stat -c %u "$p"; done | sort -u | paste -sd " "' 2>&1)"

    # Through the compose tool, as an operator types it (podman-compose's exit code says nothing:
    # the file's owner and, after the restart, its value do).
    compose "$engine" exec -T hermes hermes config set model.default from-compose >/dev/null 2>&1 </dev/null
    rc=$?
    [ "$engine" != docker ] || check "$engine: root exec hermes config set: exit 0" 0 "$rc"
    check "$engine: root exec hermes config set: config.yaml hermes:hermes" hermes:hermes \
        "$(cexec "$engine" stat -c %U:%G /opt/data/config.yaml 2>&1)"
    check "$engine: root exec hermes config set: nothing under /opt/data root's" "" \
        "$(cexec "$engine" find /opt/data \( -user 0 -o -group 0 \) -print 2>&1)"
    check_contains "$engine: the Docker socket's group is hermes's" "$SOCK_GID" \
        "$(cexec "$engine" id -G hermes 2>&1)"

    cexec "$engine" sh -c 'echo x >/opt/data/root-made && mkdir /opt/data/root-dir' >/dev/null 2>&1
    check "$engine: a root-made file is root's" root:root \
        "$(cexec "$engine" stat -c %U:%G /opt/data/root-made 2>&1)"
    check "$engine: the doctor says it needs fixing (exit 1)" 1 \
        "$(cexec "$engine" hermes-shim doctor >/dev/null 2>&1; echo $?)"
    compose "$engine" restart -t 1 >/dev/null 2>&1
    check "$engine compose restart: exit 0" 0 "$?"
    if healthy "$engine"; then ok "$engine: after the restart the doctor finds it healthy"; else
        not_ok "$engine: after the restart the doctor finds it healthy: $(tail -n 5 "$WORK/doctor")"; fi
    check "$engine: the restart healed root's files" "hermes:hermes hermes:hermes" \
        "$(cexec "$engine" stat -c %U:%G /opt/data/root-made /opt/data/root-dir 2>&1 | paste -sd ' ')"
    check "$engine: the value set before is still there" "from-compose" \
        "$(cexec "$engine" sh -c 'grep -o from-compose /opt/data/config.yaml' 2>&1)"

    compose "$engine" down -v -t 1 >/dev/null 2>&1
    check "$engine compose down -v: exit 0" 0 "$?"
    if [ "$engine" = docker ]; then left=(docker); else left=(podman_root); fi
    check "$engine: no container of the project left" "" \
        "$("${left[@]}" ps -a --format '{{.Names}}' | grep -F "$TAG-$engine" || true)"
    check "$engine: no volume of the project left" "" \
        "$("${left[@]}" volume ls --format '{{.Name}}' | grep -F "$TAG-$engine" || true)"
done

echo "# docker: a host directory (HERMES_DATA) with PUID/PGID: the files stay the host owner's"
# A fresh directory of this run's work tree, root's as a new host directory is; only the image's
# own repair, inside the container, changes an owner in it.
mkdir -m 0755 "$WORK/data"
export HERMES_DATA="$WORK/data" PUID=4321 PGID=4322
compose docker up -d >/dev/null 2>&1
check "host directory: compose up: exit 0" 0 "$?"
if healthy docker; then ok "host directory: the doctor finds it healthy"; else
    not_ok "host directory: the doctor finds it healthy: $(tail -n 5 "$WORK/doctor")"; fi
check_contains "host directory: the doctor names the remap in effect" "in effect: the user is 4321:4322" "$(cat "$WORK/doctor")"
cexec docker hermes config set model.default host-dir >/dev/null 2>&1
check "host directory: the directory and a root exec's config.yaml are PUID:PGID's on the host" \
    "4321:4322 4321:4322" "$(stat -c %u:%g "$WORK/data" "$WORK/data/config.yaml" 2>&1 | paste -sd ' ')"
compose docker down -v -t 1 >/dev/null 2>&1
check "host directory: compose down -v: exit 0" 0 "$?"
unset HERMES_DATA PUID PGID

summary
