# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables set here are used by the scripts that source it
# Shared by tests/podman.sh and tests/kube.sh (sourced, not run; REPO set): tests/lib.sh, the
# image under Podman, Podman's environment on these machines, the rootless test account, and
# loading the image from Docker into Podman's stores.

# shellcheck source=tests/lib.sh
. "$REPO/tests/lib.sh"
choose_image
# `docker save hermes-shim:test | podman load` names it localhost/hermes-shim:test.
PIMAGE="localhost/${IMAGE#docker.io/}"
HERMES_UID=10000
CI_USER="${HERMES_SHIM_PODMAN_USER:-hermes-shim-ci}"
# Written by tests/setup-podman.sh. Without it every container fails here ("error setting rlimit
# type 7"), and there is no journald for logs and events.
export CONTAINERS_CONF=/etc/hermes-shim/containers.conf

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

# podman_suite_ready: what both suites need before anything else: root, the s6 flavour's
# tarballs, Docker (which builds the image) and tests/setup-podman.sh's host setup.
podman_suite_ready() {
    [ "$(id -u)" -eq 0 ] || skip_all "need root (they install Podman, create the rootless test account and run rootful and rootless containers)"
    need_s6_tarballs
    if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
        skip_all "the image is built with Docker and none is reachable (run tests/setup-host.sh)"
    fi
    "$REPO/tests/setup-podman.sh" || bail "tests/setup-podman.sh prepares Podman, the rootless account and kubernetes-validate"
}

# build_and_load PODMAN_COMMAND...: the image built (build_image) and in each Podman store named.
build_and_load() {
    local engine
    if ! build_image || ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
        bail "docker/build-image.sh builds $IMAGE"
    fi
    for engine in "$@"; do
        load_image "$engine" || not_ok "docker save $IMAGE | podman load ($engine)"
    done
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
