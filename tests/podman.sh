#!/usr/bin/env bash
# Podman tests: the image (HERMES_SHIM_FLAVOUR no-s6 or s6, as in tests/container.sh) under
# `podman run` with Debian 12's Podman 4.3.1, rootful and rootless.
#
# Rootful: tests/container.sh itself, the Docker suite's whole table, with a `docker` first on its
# PATH that is Podman (`docker save IMAGE | podman load` gives it localhost/IMAGE). Every check
# applies unchanged; its lines are shown prefixed `podman: `, after the rootless ones (the two
# run at once).
# Rootless, as the unprivileged account hermes-shim-ci with a subordinate id range
# (tests/setup-podman.sh): the seed contract, self-heal on restart, the manual repair and exit
# codes as far as they differ from rootful; the recipes for bind mounts (the default user
# namespace, `:U`, `--userns=keep-id:uid=10000,gid=10000`, keep-id with PUID/PGID); and the
# places where chown cannot work (a bind mount whose group or owner is unmapped) or the hermes
# uid itself is unmapped. Rootless containers run with --network none: slirp4netns needs
# /dev/net/tun, which only root may open on these machines (no check needs a network).
#
# Nothing here chowns a host path: the image's repair runs inside containers (rootless ones can
# only change ids of the test account's own range), and the one fixture that needs a host group
# the account does not have is made by `chown` inside a throwaway rootful container, on a
# directory that the test account just created.
# Needs root (it installs Podman and makes the test account): skips with a reason otherwise,
# fails when $CI is set. Ends with `N passed, N failed`; exits non-zero on any failure.
# shellcheck disable=SC2016 # single-quoted scripts are expanded by the sh -c they are given to
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tests/podman-lib.sh
. "$REPO/tests/podman-lib.sh"
TESTS="podman tests"
TAG="hermes-shim-pm-$FLAVOUR-$$"
LABEL="hermes-shim-pm=$TAG"
# dk, start, volume, wait_main, owner…: the rootless Podman of the test account, and its image.
ENGINE=(podman_rl)
RUN_OPTS=(--network none)
RUN_IMAGE="$PIMAGE"
WORK=""
RLWORK=""
ct_pid=""

cleanup() {
    # The rootful table, if still running, cleans up after itself on TERM.
    if [ -n "$ct_pid" ]; then
        kill "$ct_pid" 2>/dev/null
        wait "$ct_pid" 2>/dev/null
    fi
    podman_root ps -aq --filter "label=$LABEL" | xargs -r podman rm -f -v >/dev/null 2>&1
    id -u "$CI_USER" >/dev/null 2>&1 && remove_labelled
    # RLWORK holds files of the account's subordinate ids and one root-owned fixture: only root
    # can remove all of it. Both are temp trees this script made.
    [ -z "$RLWORK" ] || rm -rf --one-file-system "$RLWORK"
    [ -z "$WORK" ] || rm -rf --one-file-system "$WORK"
}

podman_suite_ready

begin hermes-shim-pm 0700

t_load=$(date +%s)
build_and_load podman_root podman_rl
echo "# building and loading $IMAGE into both Podman stores took $(($(date +%s) - t_load)) s"

echo "# flavour $FLAVOUR on Debian $SUITE ($PIMAGE)"
# The rootful table runs in the background while the rootless checks run: they share nothing
# (root's Podman store and the account's), and both spend most of their time waiting on
# containers. Its lines are shown after the rootless ones.
mkdir -m 0755 "$WORK/bin"
printf '#!/bin/sh\nexec podman "$@"\n' | install -m 0755 /dev/stdin "$WORK/bin/docker"
PATH="$WORK/bin:$PATH" HERMES_SHIM_FLAVOUR="$FLAVOUR" HERMES_SHIM_IMAGE="$PIMAGE" \
    HERMES_SHIM_SKIP_BUILD=1 "$REPO/tests/container.sh" >"$WORK/rootful.log" 2>&1 </dev/null &
ct_pid=$!
t_rootless=$(date +%s)

echo "# rootless, as $CI_USER"
ci_uid=$(id -u "$CI_USER")
ci_gid=$(id -g "$CI_USER")
sub_uid=$(awk -F: -v u="$CI_USER" '$1 == u { print $2; exit }' /etc/subuid)
sub_gid=$(awk -F: -v u="$CI_USER" '$1 == u { print $2; exit }' /etc/subgid)
# Container uid N >= 1 is host uid SUB + N - 1 (container root is the account itself).
HOST_HERMES="$((sub_uid + HERMES_UID - 1)):$((sub_gid + HERMES_UID - 1))"
RLWORK=$(as_ci mktemp -d /tmp/hermes-shim-rl.XXXXXX)

host_owner() { stat -c %u:%g "$1" 2>&1; }

# rl_dir NAME: a directory of the test account's own, with one file in it, for a bind mount.
rl_dir() {
    as_ci sh -c 'mkdir "$1" && echo data >"$1/f"' sh "$RLWORK/$1"
    echo "$RLWORK/$1"
}

echo "# rootless: the seed contract"
volume data
C="$TAG-seed"
start seed -v "$TAG-data:/opt/data" -- sleep infinity
wait_main "$C" || not_ok "rootless container reaches its main program"
mp=$(podman_rl volume inspect -f '{{.Mountpoint}}' "$TAG-data")
check "rootless: the main program runs as hermes" \
    "Uid: $HERMES_UID $HERMES_UID $HERMES_UID $HERMES_UID|Gid: $HERMES_UID $HERMES_UID $HERMES_UID $HERMES_UID" \
    "$(main_status "$C" "Uid|Gid")"
podman_rl exec "$C" hermes config set model.default from-root >/dev/null 2>&1
check "rootless: root podman exec hermes config set: exit 0" 0 $?
check "rootless: root podman exec: config.yaml hermes:hermes" hermes:hermes "$(owner "$C" /opt/data/config.yaml)"
check "rootless: on the host, config.yaml belongs to the subordinate uid of 10000 ($HOST_HERMES)" \
    "$HOST_HERMES" "$(host_owner "$mp/config.yaml")"
check "rootless: nothing under /opt/data owned by root" "" \
    "$(podman_rl exec "$C" find /opt/data \( -user 0 -o -group 0 \) -print 2>&1)"
podman_rl exec --user hermes "$C" hermes config set model.default from-hermes >/dev/null 2>&1
check "rootless: podman exec --user hermes hermes config set: exit 0" 0 $?
# The shim in front of /usr/bin/id: it drops unless the opt-out is set.
check "rootless: the shim drops root to hermes" "$HERMES_UID" \
    "$(podman_rl exec -e HERMES_SHIM_REAL_DIR=/usr/bin "$C" hermes-shim exec id -u 2>&1)"
check "rootless: HERMES_DOCKER_EXEC_AS_ROOT=1 keeps root" 0 \
    "$(podman_rl exec -e HERMES_DOCKER_EXEC_AS_ROOT=1 -e HERMES_SHIM_REAL_DIR=/usr/bin "$C" hermes-shim exec id -u 2>/dev/null)"
# The damage the opt-out (or any root tool) leaves: root inside is the account itself outside.
podman_rl exec -e HERMES_DOCKER_EXEC_AS_ROOT=1 -e HERMES_HOME=/opt/data/rootprofile "$C" \
    hermes config set model.default planted >/dev/null 2>&1
podman_rl exec "$C" sh -c 'echo "{}" >/opt/data/auth.json && chmod 0600 /opt/data/auth.json'
check "rootless: planted damage is root-owned inside" root:root "$(owner "$C" /opt/data/rootprofile/config.yaml)"
check "rootless: ... and the account's own ids on the host" "$ci_uid:$ci_gid" "$(host_owner "$mp/auth.json")"

echo "# rootless: self-heal on restart"
podman_rl restart -t 1 "$C" >/dev/null
wait_main "$C" || not_ok "rootless container restarts"
check "rootless, after restart: nothing under /opt/data owned by root" "" \
    "$(podman_rl exec "$C" find /opt/data \( -user 0 -o -group 0 \) -print 2>&1)"
check "rootless, after restart: hermes reads everything" "" \
    "$(podman_rl exec --user hermes "$C" find /opt/data ! -readable -print 2>&1)"
check "rootless, after restart: auth.json is $HOST_HERMES on the host" "$HOST_HERMES" "$(host_owner "$mp/auth.json")"
check "rootless: one repair summary per container start (2 starts)" 2 "$(summaries "$C" 2)"

echo "# rootless: manual repair"
podman_rl exec "$C" sh -c 'mkdir -p /opt/data/new/deeper && : >/opt/data/new/deeper/f'
out=$(podman_rl exec "$C" hermes-shim fix-ownership --json 2>/dev/null)
check "rootless: podman exec hermes-shim fix-ownership --json: changed the 3 new entries" 3 \
    "$(printf '%s' "$out" | json_field changed 2>&1)"
echo "# rootless: the sweep used the $(printf '%s' "$out" | json_field walk 2>&1) walk"
check "rootless: fix-ownership healed them" "" \
    "$(podman_rl exec "$C" find /opt/data ! -user hermes -print 2>&1)"

echo "# rootless: main program and exit codes"
check "rootless: exit code 42 propagates" 42 \
    "$(dk run --rm "$PIMAGE" bash -c 'exit 42' >/dev/null 2>&1; echo $?)"
check "rootless: exit code 42 propagates with --init (catatonit)" 42 \
    "$(dk run --rm --init "$PIMAGE" bash -c 'exit 42' >/dev/null 2>&1; echo $?)"
out=$(dk run --rm "$PIMAGE" chat --help 2>&1)
check "rootless: podman run IMAGE chat --help: exit 0" 0 $?
check_contains "rootless: chat --help shows chat usage" usage "$out"
check "rootless: podman run --user hermes: no repair, runs as hermes" "$HERMES_UID" \
    "$(dk run --rm --user hermes "$PIMAGE" id -u 2>/dev/null)"

echo "# rootless: bind mounts"
# Default user namespace: your files are root's inside; the start-up repair gives them to hermes,
# which on the host is a subordinate uid (edit them with `podman unshare`).
d=$(rl_dir plain)
out=$(dk run --rm -v "$d:/opt/data" "$PIMAGE" stat -c %u:%g /opt/data /opt/data/f 2>/dev/null | paste -sd ' ')
check "rootless, bind mount of your directory: the start-up repair gives it to hermes" \
    "$HERMES_UID:$HERMES_UID $HERMES_UID:$HERMES_UID" "$out"
check "rootless, bind mount of your directory: on the host it is $HOST_HERMES" "$HOST_HERMES" "$(host_owner "$d/f")"

# `:U` with --user hermes: Podman itself chowns the volume to the container's user; nothing runs
# as root, so there is no repair and no drop.
d=$(rl_dir chown-u)
out=$(dk run --rm --user "$HERMES_UID:$HERMES_UID" -v "$d:/opt/data:U" "$PIMAGE" \
    sh -c 'echo "$(id -u) $(stat -c %u:%g /opt/data/f)"' 2>&1)
check "rootless, --user 10000:10000 and :U: runs as hermes, the volume is hermes's" \
    "$HERMES_UID $HERMES_UID:$HERMES_UID" "$out"
check_lacks "rootless, --user 10000:10000 and :U: no start-up repair" "fix-ownership" "$out"
check "rootless, --user 10000:10000 and :U: on the host it is $HOST_HERMES" "$HOST_HERMES" "$(host_owner "$d/f")"

# keep-id:uid=10000,gid=10000: your host uid *is* hermes inside, so files stay yours on the host.
d=$(rl_dir keep-id)
K="$TAG-keepid"
start keepid --userns=keep-id:uid="$HERMES_UID",gid="$HERMES_UID" -v "$d:/opt/data" -- sleep infinity
wait_main "$K" || not_ok "keep-id container reaches its main program"
check "rootless, keep-id:uid=10000: the main program runs as hermes" \
    "Uid: $HERMES_UID $HERMES_UID $HERMES_UID $HERMES_UID|Gid: $HERMES_UID $HERMES_UID $HERMES_UID $HERMES_UID" \
    "$(main_status "$K" "Uid|Gid")"
check "rootless, keep-id:uid=10000: your file is hermes's inside" "$HERMES_UID:$HERMES_UID" \
    "$(podman_rl exec "$K" stat -c %u:%g /opt/data/f 2>&1)"
podman_rl exec "$K" hermes config set model.default keep-id >/dev/null 2>&1
check "rootless, keep-id:uid=10000: podman exec hermes config set: exit 0" 0 $?
check "rootless, keep-id:uid=10000: config.yaml is yours on the host ($ci_uid:$ci_gid)" "$ci_uid:$ci_gid" \
    "$(host_owner "$d/config.yaml")"
check_lacks "rootless, keep-id:uid=10000: no start-up repair (not root)" "fix-ownership" \
    "$(podman_rl logs "$K" 2>&1)"

# keep-id with the root path kept: start as root, remap hermes to your ids (PUID/PGID).
d=$(rl_dir keep-id-puid)
out=$(dk run --rm --userns=keep-id --user 0 --passwd=false -e PUID="$ci_uid" -e PGID="$ci_gid" \
    -v "$d:/opt/data" "$PIMAGE" sh -c 'echo "$(id -u):$(id -g)"; : >/opt/data/made' 2>&1)
check_contains "rootless, keep-id --user 0 --passwd=false PUID/PGID: the program runs as your ids" \
    "$ci_uid:$ci_gid" "$out"
check "rootless, keep-id PUID/PGID: what it writes is yours on the host" "$ci_uid:$ci_gid" \
    "$(host_owner "$d/made")"
# Without --passwd=false, Podman adds a passwd line for your uid, so the remap is refused.
out=$(dk run --rm --userns=keep-id --user 0 -e PUID="$ci_uid" -e PGID="$ci_gid" "$PIMAGE" id -u 2>&1)
check_contains "rootless, keep-id PUID without --passwd=false: the remap is refused, loudly" \
    "already belongs to user '$CI_USER'" "$out"

echo "# rootless: where chown cannot work"
# Your directory with a group you do not map (here root's): entries are root's but their group
# is unmapped inside, and the kernel refuses chown on them. The group is set from a throwaway
# rootful container on the directory the account just made.
d="$RLWORK/unmapped-group"
as_ci sh -c 'mkdir "$1" && for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo x >"$1/f$i"; done' sh "$d"
# A root chown -R goes wherever the mount source leads: only into the account's own directory,
# reached through no symlink (the path resolves to itself).
if [ "$(realpath -e "$d" 2>&1)" = "$d" ] && [ "$(stat -c %u "$d")" = "$ci_uid" ]; then
    podman_root run --rm --label "$LABEL" --network none --user 0 --entrypoint /bin/chown \
        -v "$d:/fixture" "$PIMAGE" -R "$ci_uid:0" /fixture
fi
check "fixture: 13 entries of uid $ci_uid, group 0" 13 "$(find "$d" -uid "$ci_uid" -gid 0 | wc -l)"
G="$TAG-unmapped"
start unmapped -v "$d:/opt/data" -- sleep infinity
if wait_main "$G"; then ok "rootless, unmapped group: the container still starts"; else
    not_ok "rootless, unmapped group: the container still starts"; fi
log=$(podman_rl logs "$G" 2>&1)
check "rootless, unmapped group: the sweep says once that chown is not permitted" 1 \
    "$(printf '%s\n' "$log" | grep -c 'chown is not permitted here')"
check "rootless, unmapped group: no per-entry error flood" 0 \
    "$(printf '%s\n' "$log" | grep -c '/opt/data/f[0-9]')"
check "rootless, unmapped group: the main program runs as hermes" \
    "Uid: $HERMES_UID $HERMES_UID $HERMES_UID $HERMES_UID|Gid: $HERMES_UID $HERMES_UID $HERMES_UID $HERMES_UID" \
    "$(main_status "$G" "Uid|Gid")"
check "rootless, unmapped group: entries unchanged on the host" 13 "$(find "$d" -uid "$ci_uid" -gid 0 | wc -l)"

# A host directory of a user you do not map (root's): nobody:nogroup inside; nothing to change.
d="$RLWORK/host-root"
mkdir "$d" && echo x >"$d/f"
out=$(dk run --rm -v "$d:/opt/data" "$PIMAGE" sh -c 'stat -c %u:%g /opt/data/f; touch /opt/data/new 2>/dev/null || echo not-writable' 2>&1)
check_contains "rootless, host root's directory: nobody's inside" "65534:65534" "$out"
check_contains "rootless, host root's directory: the sweep counts it as other owners" "2 other owners; 0 errors" "$out"
check_contains "rootless, host root's directory: the container starts; hermes cannot write there" "not-writable" "$out"
check "rootless, host root's directory: untouched on the host" 0:0 "$(host_owner "$d/f")"

# Fewer than 10001 ids mapped: hermes's uid does not exist in the container. The drop refuses
# rather than run the program as root. (--workdir /: else runc fails before the entrypoint,
# unable to enter /opt/data, 0700 and owned by the unmapped uid.)
out=$(dk run --rm --workdir / --uidmap 0:0:5000 --gidmap 0:0:5000 "$PIMAGE" true 2>&1)
rc=$?
check "rootless, uid 10000 unmapped (--uidmap 0:0:5000): exit 126" 126 "$rc"
check_contains "rootless, uid 10000 unmapped: the refusal names the drop" "cannot drop to user 'hermes'" "$out"

echo "# rootless checks took $(($(date +%s) - t_rootless)) s"

echo "# rootful: tests/container.sh with Podman as its engine"
wait "$ct_pid"
ct_pid=""
ct_summary=""
while IFS= read -r line; do
    case "$line" in
        "ok   "*) ok "podman: ${line#ok   }" ;;
        "FAIL "*) not_ok "podman: ${line#FAIL }" ;;
        [0-9]*" passed, "[0-9]*" failed") ct_summary=$line ;;
        *) echo "$line" ;;
    esac
done <"$WORK/rootful.log"
[ -n "$ct_summary" ] || not_ok "tests/container.sh under Podman ran to its end (no closing count)"

summary
