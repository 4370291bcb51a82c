#!/usr/bin/env bash
# Prepares a Debian 12 host (as root) for tests/podman.sh and tests/kube.sh: Debian's podman
# (4.3.1) with catatonit (`podman run --init`), uidmap and slirp4netns for rootless containers;
# /etc/hermes-shim/containers.conf and storage-rootless.conf, which make Podman work on this kind
# of machine without touching /etc/containers; kubernetes-validate for the manifests; and one
# unprivileged test account (hermes-shim-ci) with a subordinate id range and a runtime directory,
# for rootless Podman. Creating that one account is host setup, like installing a package; it
# never touches any other account. Idempotent and quiet when everything is already there.
# Prints nothing on stdout; tests/podman-lib.sh knows the names below.
set -euo pipefail

log() { printf 'setup-podman: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages and creates the test account)"

CI_USER="${HERMES_SHIM_PODMAN_USER:-hermes-shim-ci}"
CONF_DIR=/etc/hermes-shim
CACHE_DIR="${HERMES_SHIM_CACHE:-$HOME/.cache/hermes-shim}"
CONF="$CONF_DIR/containers.conf"
STORAGE_CONF="$CONF_DIR/storage-rootless.conf"

packages=(podman catatonit uidmap slirp4netns)
missing=()
for pkg in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends --no-remove "${missing[@]}" >/dev/null
fi

# Podman's default open-file ulimit (1048576) is above this machine's hard limit, so every
# container fails with "error setting rlimit type 7"; an empty default_ulimits keeps the caller's.
# There is no systemd here: no journald for logs and events, and no systemd cgroup manager.
# A file of our own, named by CONTAINERS_CONF (root and the test account alike read it), so the
# host's /etc/containers stays as the package left it.
want=$(cat <<'EOF'
# Written by hermes-shim's tests/setup-podman.sh; used through CONTAINERS_CONF.
[containers]
default_ulimits = []
log_driver = "k8s-file"

[engine]
events_logger = "file"
cgroup_manager = "cgroupfs"
EOF
)
if [ "$(cat "$CONF" 2>/dev/null)" != "$want" ]; then
    log "writing $CONF"
    mkdir -p "$CONF_DIR"
    printf '%s\n' "$want" >"$CONF.tmp"
    chmod 0644 "$CONF.tmp"
    mv -f "$CONF.tmp" "$CONF"
fi

# Rootless storage: Podman 4.3 falls back to vfs (a full copy of every layer: a 40 s load, and
# gigabytes) when fuse-overlayfs cannot be used (here /dev/fuse is root-only); the kernel's own
# overlayfs works in a user namespace (Linux >= 5.13) and is what this file asks for.
want=$(cat <<'EOF'
# Written by hermes-shim's tests/setup-podman.sh; used through CONTAINERS_STORAGE_CONF.
[storage]
driver = "overlay"
EOF
)
if [ "$(cat "$STORAGE_CONF" 2>/dev/null)" != "$want" ]; then
    log "writing $STORAGE_CONF"
    printf '%s\n' "$want" >"$STORAGE_CONF.tmp"
    chmod 0644 "$STORAGE_CONF.tmp"
    mv -f "$STORAGE_CONF.tmp" "$STORAGE_CONF"
fi

# kubernetes-validate (PyPI; it bundles the Kubernetes JSON schemas, so it validates offline)
# checks docker/kubernetes/*.yaml in tests/kube.sh; same venv of Debian's python3 as hadolint.
if ! [ -x "$CACHE_DIR/tools-venv/bin/kubernetes-validate" ]; then
    log "installing kubernetes-validate (pip, in $CACHE_DIR/tools-venv)"
    [ -x "$CACHE_DIR/tools-venv/bin/pip" ] || /usr/bin/python3 -m venv "$CACHE_DIR/tools-venv"
    "$CACHE_DIR/tools-venv/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate >/dev/null
    [ -x "$CACHE_DIR/tools-venv/bin/kubernetes-validate" ] || die "kubernetes-validate installed but not found in $CACHE_DIR/tools-venv/bin"
fi

# The rootless test account: a normal (non-system) user, so it may hold subordinate ids.
if ! id -u "$CI_USER" >/dev/null 2>&1; then
    log "creating the rootless test account $CI_USER"
    useradd --create-home --shell /bin/bash --comment "hermes-shim rootless Podman tests" "$CI_USER"
fi
uid=$(id -u "$CI_USER")
[ "$uid" -ne 0 ] || die "$CI_USER has uid 0; refusing to use it"

# A subordinate range of 65536 ids (so container uid 10000 is mapped), after every range already
# handed out, so it overlaps no other account's.
for kind in uid gid; do
    file="/etc/sub$kind"
    [ -e "$file" ] || : >"$file"
    if ! grep -q "^$CI_USER:" "$file"; then
        start=$(awk -F: 'BEGIN { m = 100000 } NF == 3 && $2 + $3 > m { m = $2 + $3 } END { print m }' \
            /etc/subuid /etc/subgid)
        log "giving $CI_USER sub${kind}s $start-$((start + 65535))"
        usermod "--add-sub${kind}s" "$start-$((start + 65535))" "$CI_USER"
    fi
done

# No logind here to make the user's runtime directory.
runtime="/run/user/$uid"
if [ "$(stat -c %u:%a "$runtime" 2>/dev/null)" != "$uid:700" ]; then
    mkdir -p /run/user
    [ ! -L "$runtime" ] || die "$runtime is a symlink; refusing to use it"
    mkdir -p "$runtime"
    chown "$uid:$(id -g "$CI_USER")" "$runtime"
    chmod 0700 "$runtime"
fi
