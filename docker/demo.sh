#!/usr/bin/env bash
# The demo: build the image offline, start a container, show that a root `docker exec ... hermes`
# leaves hermes-owned files, plant the root-owned damage an unshimmed image gets, restart the
# container and show it healed, and end with `hermes-shim doctor`'s checklist (which must find all
# well). Cleans up its container and volume. Needs root.
# It shows the production flavour (s6-overlay's /init as PID 1) when s6-overlay's release
# tarballs are at hand (HERMES_SHIM_S6_TARBALLS, else ../shared/s6-overlay beside the checkout),
# and the flavour without s6-overlay otherwise.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tests/lib.sh
. "$REPO/tests/lib.sh"
LOG_PREFIX=demo
if [ -z "${HERMES_SHIM_S6_TARBALLS:-}" ] && [ -d "$REPO/../shared/s6-overlay" ]; then
    HERMES_SHIM_S6_TARBALLS=$(cd "$REPO/../shared/s6-overlay" && pwd)
fi
if [ -f "${HERMES_SHIM_S6_TARBALLS:-/nonexistent}/s6-overlay-noarch.tar.xz" ]; then
    export HERMES_SHIM_FLAVOUR=s6 HERMES_SHIM_S6_TARBALLS
else
    export HERMES_SHIM_FLAVOUR=no-s6
fi
choose_image
NAME="hermes-shim-demo-$$"
LABEL="hermes-shim-demo=$NAME"

say() { printf 'demo: %s\n' "$*"; }

"$REPO/tests/setup-host.sh"
build_image 2>&1 | sed -n 's/^build-image: built/demo: built/p'

trap remove_labelled EXIT
volumes=("$NAME")
dk volume create "$NAME" >/dev/null
dk run -d --name "$NAME" -v "$NAME:/opt/data" "$IMAGE" sleep infinity >/dev/null

state() {
    local root unreadable
    root=$(docker exec "$NAME" find /opt/data \( -user 0 -o -group 0 \) -print | wc -l)
    # find exits non-zero when it cannot enter a directory: exactly the damage being counted.
    unreadable=$({ docker exec --user hermes "$NAME" find /opt/data ! -readable -print 2>/dev/null || true; } | wc -l)
    say "   /opt/data: $root root-owned entries, $unreadable unreadable by hermes"
}

wait_main "$NAME" || die "container did not reach its main program"
say "0. $IMAGE: PID 1 is $(docker exec "$NAME" cat /proc/1/comm) (flavour $FLAVOUR)"
say "1. as root: docker exec $NAME hermes config set model.default demo"
docker exec "$NAME" hermes config set model.default demo >/dev/null
say "   config.yaml is $(docker exec "$NAME" stat -c %U:%G /opt/data/config.yaml): the shim ran hermes as the hermes user"
state

say "2. the damage a root docker exec did before the shim: empty the volume, then as root with"
say "   HERMES_DOCKER_EXEC_AS_ROOT=1: hermes config set model.default damaged; a root tool writes auth.json"
docker exec "$NAME" find /opt/data -mindepth 1 -delete
docker exec -e HERMES_DOCKER_EXEC_AS_ROOT=1 "$NAME" hermes config set model.default damaged >/dev/null
docker exec "$NAME" sh -c 'echo "{}" >/opt/data/auth.json && chmod 0600 /opt/data/auth.json'
say "   config.yaml is $(docker exec "$NAME" stat -c %U:%G /opt/data/config.yaml), auth.json is $(docker exec "$NAME" stat -c %U:%G:%a /opt/data/auth.json)"
state
say "   hermes-shim doctor: $(docker exec "$NAME" hermes-shim doctor | grep -m1 'FIX  ownership' | sed 's/^ *//')"

say "3. docker restart $NAME: the start-up repair heals the volume"
docker restart -t 1 "$NAME" >/dev/null
wait_main "$NAME" || die "container did not reach its main program"
say "   $(docker logs "$NAME" 2>&1 | grep '^hermes-shim fix-ownership: /opt/data:' | tail -n 1)"
say "   config.yaml is $(docker exec "$NAME" stat -c %U:%G /opt/data/config.yaml), auth.json is $(docker exec "$NAME" stat -c %U:%G:%a /opt/data/auth.json)"
state

say "4. docker exec $NAME hermes-shim doctor: the checklist an operator runs (read-only)"
rc=0
docker exec "$NAME" hermes-shim doctor | sed 's/^/demo:    /' || rc=$?
[ "$rc" -eq 0 ] || die "hermes-shim doctor found something to fix (exit $rc)"
