#!/usr/bin/env bash
# Kubernetes manifests (docker/kubernetes/*.yaml): each is validated against the Kubernetes schema
# (kubernetes-validate --strict, offline) and run with `podman kube play` (Podman 4.3.1, rootful),
# with the image (HERMES_SHIM_FLAVOUR no-s6 or s6, as in tests/container.sh) and the gateway
# (`hermes gateway run`, which idles without messaging platforms) as shipped. Before playing, a
# copy gets the image under test and names suffixed with this run's id (metadata names and
# claimNames only; a check asserts nothing else differs), so runs never collide.
#   hermes-root.yaml                the image as is: root start, repair, `kubectl exec` drops
#   hermes-nonroot.yaml             no root at all: pass-through, no repair, no capabilities
#   hermes-init-fix-ownership.yaml  root only in an init container with CHOWN + DAC_OVERRIDE
# A pod "rescheduled" onto the same claim is `podman kube down` (the claim's volume stays) and a
# new `podman kube play` of the manifest's Pod alone. What only a real cluster shows (the kubelet's
# fsGroup handling: podman kube play ignores fsGroup) is named in the README ("Run it on…").
# Needs root: skips with a reason otherwise, fails when $CI is set. Ends with `N passed, N failed`.
# shellcheck disable=SC2016 # single-quoted scripts are expanded by the sh -c they are given to
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tests/podman-lib.sh
. "$REPO/tests/podman-lib.sh"
TESTS="kube tests"
MANIFESTS="$REPO/docker/kubernetes"
RUN="k$$"
WORK=""
rendered=()
claims=()
# dk, wait_main, log_count…: root's Podman.
ENGINE=(podman_root)

cleanup() {
    local f
    for f in "${rendered[@]}"; do
        podman_root kube down "$f" >/dev/null 2>&1
    done
    [ "${#claims[@]}" -eq 0 ] || podman_root volume rm -f "${claims[@]}" >/dev/null 2>&1
    [ -z "$WORK" ] || rm -rf --one-file-system "$WORK"
}

podman_suite_ready

begin hermes-shim-kube 0700

echo "# schema: kubernetes-validate --strict"
for f in "$MANIFESTS"/*.yaml; do
    out=$("$TOOLS_VENV/bin/kubernetes-validate" --strict "$f" 2>&1)
    rc=$?
    check "$(basename "$f"): valid Kubernetes (exit 0)" 0 "$rc"
    check_lacks "$(basename "$f"): no schema error" ERROR "$out"
    check "$(basename "$f"): a PersistentVolumeClaim and a Pod" \
        "persistentvolumeclaim pod" \
        "$(printf '%s\n' "$out" | sed -n 's/.*passed for resource \([a-z]*\)\/.*/\1/p' | paste -sd ' ')"
done

build_and_load podman_root
echo "# flavour $FLAVOUR on Debian $SUITE ($PIMAGE)"

# render NAME: a copy of docker/kubernetes/NAME.yaml to play here, as $WORK/NAME.yaml. Changes
# only the image and the names (top-level metadata names, at two spaces, and claimNames). Not in
# a subshell: it records what cleanup must remove.
render() {
    local src="$MANIFESTS/$1.yaml" dst="$WORK/$1.yaml"
    sed -E -e "s#^( +image:) hermes-shim:latest\$#\1 $PIMAGE#" \
        -e "s#^(  name:) (.*)\$#\1 \2-$RUN#" \
        -e "s#^( +claimName:) (.*)\$#\1 \2-$RUN#" "$src" >"$dst"
    rendered+=("$dst")
    claims+=("$(sed -n 's/^ *claimName: //p' "$dst")")
}

# pod_only FILE: FILE's Pod document alone (its claim already exists), as FILE.pod.yaml.
pod_only() {
    awk 'BEGIN { RS = "\n---\n" } /\nkind: Pod\n/ { print }' "$1" >"${1%.yaml}.pod.yaml"
    rendered+=("${1%.yaml}.pod.yaml")
}

# The gateway: `hermes gateway run`, once the start-up work (repair, init container) is done.
wait_gateway() {
    local i
    for i in $(seq 90); do
        podman_root exec "$1" sh -c 'for p in /proc/[0-9]*; do
                [ "$(cat "$p/comm" 2>/dev/null)" = hermes ] &&
                    tr "\0" " " <"$p/cmdline" | grep -q " gateway run" && exit 0
            done; exit 1' 2>/dev/null && return 0
        [ "$i" -lt 90 ] && sleep 0.5
    done
    echo "# $1: no gateway; state $(podman_root inspect -f '{{.State.Status}}' "$1" 2>&1);" \
        "last log lines: $(podman_root logs --tail 3 "$1" 2>&1 | tr '\n' ' ')"
    return 1
}

# gateway_status CONTAINER: ids, capabilities and no_new_privs of the gateway process.
gateway_status() {
    podman_root exec "$1" sh -c 'for p in /proc/[0-9]*; do
        [ "$(cat "$p/comm" 2>/dev/null)" = hermes ] || continue
        tr "\0" " " <"$p/cmdline" | grep -q " gateway run" || continue
        grep -E "^(Uid|Gid|CapEff|CapPrm|CapBnd|NoNewPrivs):" "$p/status" | tr -s "\t " " " | paste -sd "|"
      done'
}

# play FILE: podman kube play, quiet unless it fails. (Podman 4.3 logs an error while removing a
# finished "once" init container that it has already removed; harmless.)
play() {
    local out rc
    out=$(podman_root kube play "$1" 2>&1)
    rc=$?
    [ "$rc" -eq 0 ] || echo "# podman kube play $(basename "$1"): $out"
    return "$rc"
}

not_hermes() {
    podman_root exec "$1" find /opt/data \( ! -user "$HERMES_UID" -o ! -group "$HERMES_UID" \) -print 2>&1
}

# damage CLAIM: what a root-run pod leaves on a claim (with the pod gone): the volume's root and
# new files root's, root files inside hermes's 0700 directories. Done in a throwaway container.
damage() {
    podman_root run --rm --network none --user 0 --entrypoint /bin/sh -v "$1:/opt/data" "$PIMAGE" -c '
        cd /opt/data && chown 0:0 . &&
        echo "{}" >auth.json && chmod 0600 auth.json &&
        mkdir -p sessions logs && chown 10000:10000 sessions logs && chmod 0700 sessions logs &&
        echo "{}" >sessions/root-session.json && chmod 0600 sessions/root-session.json &&
        : >logs/root.log && find . \( -user 0 -o -group 0 \) | wc -l'
}

IDS_HERMES="Uid: $HERMES_UID $HERMES_UID $HERMES_UID $HERMES_UID|Gid: $HERMES_UID $HERMES_UID $HERMES_UID $HERMES_UID"

echo "# rendering"
for m in hermes-root hermes-nonroot hermes-init-fix-ownership; do
    render "$m"
    f="$WORK/$m.yaml"
    check "$m: the rendered copy differs only in image and names" "" \
        "$(diff <(grep -vE '^( +image:|  name:| +claimName:)' "$MANIFESTS/$m.yaml") \
            <(grep -vE '^( +image:|  name:| +claimName:)' "$f"))"
done

echo "# hermes-root.yaml: the image as is"
f="$WORK/hermes-root.yaml"
P="hermes-root-$RUN"
C="$P-hermes"
V="hermes-root-data-$RUN"
play "$f"
check "hermes-root: podman kube play: exit 0" 0 $?
check "hermes-root: the claim is a Podman volume" "$V" "$(podman_root volume inspect -f '{{.Name}}' "$V" 2>&1)"
wait_gateway "$C" || not_ok "hermes-root: the gateway starts"
st=$(gateway_status "$C")
check_contains "hermes-root: the gateway runs as hermes" "$IDS_HERMES" "$st"
check_contains "hermes-root: the gateway has no capabilities" "CapPrm: 0000000000000000|CapEff: 0000000000000000" "$st"
check "hermes-root: one start-up repair" 1 "$(summaries "$C" 1)"
if [ "$FLAVOUR" = s6 ]; then
    check "hermes-root: PID 1 is s6-svscan" s6-svscan "$(podman_root exec "$C" cat /proc/1/comm 2>&1)"
fi
podman_root exec "$C" hermes config set model.default from-kubectl-exec >/dev/null 2>&1
check "hermes-root: root exec hermes config set (kubectl exec): exit 0" 0 $?
check "hermes-root: ... config.yaml is hermes's" hermes:hermes \
    "$(podman_root exec "$C" stat -c %U:%G /opt/data/config.yaml 2>&1)"
check "hermes-root: everything on the claim is hermes's" "" "$(not_hermes "$C")"
podman_root kube down "$f" >/dev/null
check "hermes-root: podman kube down keeps the claim" "$V" "$(podman_root volume inspect -f '{{.Name}}' "$V" 2>&1)"
n=$(damage "$V")
check "hermes-root: damage planted on the claim (4 root entries)" 4 "$n"
pod_only "$f"
play "${f%.yaml}.pod.yaml"
check "hermes-root: the pod comes back on the same claim" 0 $?
wait_gateway "$C" || not_ok "hermes-root: the gateway starts again"
check "hermes-root, rescheduled: the start-up repair healed the claim" "" "$(not_hermes "$C")"
check "hermes-root, rescheduled: hermes reads everything" "" \
    "$(podman_root exec --user hermes "$C" find /opt/data ! -readable -print 2>&1)"
check_contains "hermes-root, rescheduled: the gateway runs as hermes" "$IDS_HERMES" "$(gateway_status "$C")"
podman_root kube down "$f" >/dev/null

echo "# hermes-nonroot.yaml: no root at all"
f="$WORK/hermes-nonroot.yaml"
C="hermes-nonroot-$RUN-hermes"
play "$f"
check "hermes-nonroot: podman kube play: exit 0" 0 $?
wait_gateway "$C" || not_ok "hermes-nonroot: the gateway starts"
st=$(gateway_status "$C")
check_contains "hermes-nonroot: the gateway runs as 10000:10000 (runAsUser, runAsGroup)" "$IDS_HERMES" "$st"
check_contains "hermes-nonroot: capabilities dropped, bounding set empty, no_new_privs" \
    "CapPrm: 0000000000000000|CapEff: 0000000000000000|CapBnd: 0000000000000000|NoNewPrivs: 1" "$st"
check "hermes-nonroot: no start-up repair (not root)" 0 "$(summaries "$C" 0)"
check "hermes-nonroot: exec runs as 10000 (kubectl exec)" "$HERMES_UID" "$(podman_root exec "$C" id -u 2>&1)"
# A drop would fail here (no CAP_SETGID): exit 0 shows the shim passed straight through.
podman_root exec "$C" hermes config set model.default from-nonroot >/dev/null 2>&1
check "hermes-nonroot: exec hermes config set passes straight through: exit 0" 0 $?
check "hermes-nonroot: ... config.yaml is 10000:10000" "$HERMES_UID:$HERMES_UID" \
    "$(podman_root exec "$C" stat -c %u:%g /opt/data/config.yaml 2>&1)"
check "hermes-nonroot: fix-ownership refuses without root (exit 2)" 2 \
    "$(podman_root exec "$C" hermes-shim fix-ownership >/dev/null 2>&1; echo $?)"
podman_root kube down "$f" >/dev/null

echo "# hermes-init-fix-ownership.yaml: root only in the init container"
f="$WORK/hermes-init-fix-ownership.yaml"
P="hermes-init-$RUN"
C="$P-hermes"
V="hermes-init-data-$RUN"
play "$f"
check "hermes-init: podman kube play: exit 0" 0 $?
wait_gateway "$C" || not_ok "hermes-init: the gateway starts"
st=$(gateway_status "$C")
check_contains "hermes-init: the gateway runs as 10000:10000" "$IDS_HERMES" "$st"
check_contains "hermes-init: the gateway has no capabilities, no_new_privs" \
    "CapPrm: 0000000000000000|CapEff: 0000000000000000|CapBnd: 0000000000000000|NoNewPrivs: 1" "$st"
check "hermes-init: the init container ran once and is gone" "$C" \
    "$(podman_root ps -a --filter "pod=$P" --format '{{.Names}}' | grep -v -- -infra | paste -sd ' ')"
podman_root kube down "$f" >/dev/null
n=$(damage "$V")
check "hermes-init: damage planted on the claim (4 root entries)" 4 "$n"
pod_only "$f"
play "${f%.yaml}.pod.yaml"
check "hermes-init: the pod comes back on the same claim" 0 $?
wait_gateway "$C" || not_ok "hermes-init: the gateway starts again"
# The gateway cannot chown (no capabilities, not root): only the init container can have done it,
# with nothing but CAP_CHOWN and CAP_DAC_OVERRIDE.
check "hermes-init, rescheduled: the init container healed the claim" "" "$(not_hermes "$C")"
check "hermes-init, rescheduled: the gateway reads everything" "" \
    "$(podman_root exec "$C" find /opt/data ! -readable -print 2>&1)"
podman_root kube down "$f" >/dev/null

summary
