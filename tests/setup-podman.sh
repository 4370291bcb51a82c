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

# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
LOG_PREFIX=setup-podman

[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages and creates the test account)"

CI_USER="${HERMES_SHIM_PODMAN_USER:-hermes-shim-ci}"
CONF_DIR=/etc/hermes-shim
CONF="$CONF_DIR/containers.conf"
STORAGE_CONF="$CONF_DIR/storage-rootless.conf"

install_pkgs podman catatonit uidmap slirp4netns

# write_conf FILE CONTENT: FILE holds CONTENT, written beside it with its mode and renamed into
# place, only when it differs.
write_conf() {
    [ "$(cat "$1" 2>/dev/null)" != "$2" ] || return 0
    log "writing $1"
    mkdir -p "$(dirname "$1")"
    printf '%s\n' "$2" | install -m 0644 /dev/stdin "$1.tmp"
    mv -f "$1.tmp" "$1"
}

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
write_conf "$CONF" "$want"

# Rootless storage: Podman 4.3 falls back to vfs (a full copy of every layer: a 40 s load, and
# gigabytes) when fuse-overlayfs cannot be used (here /dev/fuse is root-only); the kernel's own
# overlayfs works in a user namespace (Linux >= 5.13) and is what this file asks for.
want=$(cat <<'EOF'
# Written by hermes-shim's tests/setup-podman.sh; used through CONTAINERS_STORAGE_CONF.
[storage]
driver = "overlay"
EOF
)
write_conf "$STORAGE_CONF" "$want"

# kubernetes-validate (PyPI; it bundles the Kubernetes JSON schemas, so it validates offline)
# checks docker/kubernetes/*.yaml in tests/kube.sh; in the tools venv, as hadolint.
pip_tool kubernetes-validate kubernetes-validate

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
# Made with its owner and mode (install -d on a new name); an existing one that is not the
# account's 0700 directory is refused, never chowned or chmodded.
runtime="/run/user/$uid"
if ! [ -e "$runtime" ] && ! [ -L "$runtime" ]; then
    mkdir -p /run/user
    install -d -m 0700 -o "$uid" -g "$(id -g "$CI_USER")" "$runtime"
fi
if [ -L "$runtime" ] || ! [ -d "$runtime" ] || [ "$(stat -c %u:%a "$runtime")" != "$uid:700" ]; then
    die "$runtime is not a directory of $CI_USER's with mode 0700 ($(stat -c '%F %U %a' "$runtime")); remove it and run again"
fi
