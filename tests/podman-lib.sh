# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables set here are used by the scripts that source it
# Shared by tests/podman.sh and tests/kube.sh (sourced, not run): the result lines of
# tests/container.sh (`ok   NAME`, `FAIL NAME: …`, a closing `N passed, N failed`), the flavour and
# image choice, Podman's environment on these machines, the rootless test account, and loading
# the image from Docker into Podman's stores.

# The same choice of image as tests/container.sh and docker/build-image.sh make.
SUITE="${HERMES_SHIM_SUITE:-trixie}"
case "$SUITE" in
    trixie) suffix="" ;;
    bookworm) suffix="-bookworm" ;;
    *) echo "HERMES_SHIM_SUITE=$SUITE: give trixie or bookworm" >&2; exit 2 ;;
esac
FLAVOUR="${HERMES_SHIM_FLAVOUR:-no-s6}"
case "$FLAVOUR" in
    no-s6) IMAGE="${HERMES_SHIM_IMAGE:-hermes-shim:test$suffix}" ;;
    s6) IMAGE="${HERMES_SHIM_IMAGE:-hermes-shim:test-s6$suffix}" ;;
    *) echo "HERMES_SHIM_FLAVOUR=$FLAVOUR: give no-s6 or s6" >&2; exit 2 ;;
esac
# `docker save hermes-shim:test | podman load` names it localhost/hermes-shim:test.
PIMAGE="localhost/${IMAGE#docker.io/}"
HERMES_UID=10000
CI_USER="${HERMES_SHIM_PODMAN_USER:-hermes-shim-ci}"
# Written by tests/setup-podman.sh. Without it every container fails here ("error setting rlimit
# type 7"), and there is no journald for logs and events.
export CONTAINERS_CONF=/etc/hermes-shim/containers.conf

passed=0
failed=0

# skip_all SUITE WHY
skip_all() {
    if [ -n "${CI:-}" ]; then
        echo "FAIL $1 cannot run under CI: $2"
        echo "0 passed, 1 failed"
        exit 1
    fi
    echo "SKIP $1: $2"
    echo "0 passed, 0 failed"
    exit 0
}

ok() {
    passed=$((passed + 1))
    echo "ok   $1"
}

not_ok() {
    failed=$((failed + 1))
    echo "FAIL $1"
}

# check NAME EXPECTED ACTUAL
check() {
    if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1: expected [$2], got [$3]"; fi
}

# check_contains NAME NEEDLE HAYSTACK
check_contains() {
    case "$3" in
        *"$2"*) ok "$1" ;;
        *) not_ok "$1: [$2] not in output: $(printf '%s' "$3" | tail -n 5)" ;;
    esac
}

# check_lacks NAME NEEDLE HAYSTACK
check_lacks() {
    case "$3" in
        *"$2"*) not_ok "$1: unexpected [$2] in output: $(printf '%s' "$3" | tail -n 5)" ;;
        *) ok "$1" ;;
    esac
}

finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

# as_ci CMD...: runs CMD as the rootless test account, with the environment a login would give
# it (no logind here, so XDG_RUNTIME_DIR is the directory tests/setup-podman.sh made), in its home.
as_ci() {
    local uid
    uid=$(id -u "$CI_USER")
    (cd "$(getent passwd "$CI_USER" | cut -d: -f6)" &&
        runuser -u "$CI_USER" -- env -i HOME="$PWD" USER="$CI_USER" LOGNAME="$CI_USER" \
            PATH=/usr/local/bin:/usr/bin:/bin XDG_RUNTIME_DIR="/run/user/$uid" \
            CONTAINERS_CONF="$CONTAINERS_CONF" \
            CONTAINERS_STORAGE_CONF=/etc/hermes-shim/storage-rootless.conf "$@")
}

# Podman as root and as the test account. --log-level=error: rootless Podman warns on every call
# that / is not a shared mount, which is true here and harmless for these tests.
podman_root() { timeout 180 podman --log-level=error "$@"; }
podman_rl() { as_ci timeout 180 podman --log-level=error "$@"; }

# build_image: the image from this checkout (docker/build-image.sh is idempotent), unless
# HERMES_SHIM_SKIP_BUILD is set. Returns non-zero when it cannot be had.
build_image() {
    if [ -z "${HERMES_SHIM_SKIP_BUILD:-}" ]; then
        HERMES_SHIM_FLAVOUR="$FLAVOUR" HERMES_SHIM_SUITE="$SUITE" HERMES_SHIM_IMAGE="$IMAGE" \
            "$REPO/docker/build-image.sh" || return 1
    fi
    docker image inspect "$IMAGE" >/dev/null 2>&1
}

# load_image PODMAN_COMMAND...: Docker's $IMAGE into that Podman store as $PIMAGE, unless the store already
# has that very image (same id). The copy this suite loaded before is removed first, so rebuilt
# images do not pile up as dangling ones.
load_image() {
    local want have
    want=$(docker image inspect -f '{{.Id}}' "$IMAGE") || return 1
    have=$("$@" image inspect -f '{{.Id}}' "$PIMAGE" 2>/dev/null) || have=""
    [ "sha256:$have" != "$want" ] || return 0
    [ -z "$have" ] || "$@" rmi "$PIMAGE" >/dev/null 2>&1 || true
    docker save "$IMAGE" | "$@" load -q >/dev/null
}
