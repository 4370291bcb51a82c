#!/usr/bin/env bash
# Builds the hermes-shim image offline from the repository's Dockerfile: local Debian base
# (docker/build-base.sh; HERMES_SHIM_SUITE=trixie, Debian 13 as upstream, the default, or
# bookworm, Debian 12), the cached wheelhouse for that Debian's python3 (docker/build-wheelhouse.sh),
# the release binary built here on the host. Two flavours of the same Dockerfile:
#   HERMES_SHIM_FLAVOUR=no-s6  (default) no s6-overlay; the entrypoint applet is PID 1
#   HERMES_SHIM_FLAVOUR=s6     the production flavour: s6-overlay's /init as PID 1, from the
#                              release tarballs in $HERMES_SHIM_S6_TARBALLS (a directory holding
#                              s6-overlay-noarch.tar.xz and s6-overlay-x86_64.tar.xz, as published;
#                              if it also holds a SHA256SUMS, those sums replace the release pins,
#                              which is how a local build of s6-overlay passes the check)
#   HERMES_SHIM_ARCH=aarch64   (on an x86_64 host) the arm64 image: an arm64 base debootstrapped
#                              under qemu-user, an aarch64 wheelhouse, the aarch64 binary from
#                              Debian's cross Rust, s6-overlay-aarch64.tar.xz; the Dockerfile's
#                              RUN steps run under qemu-user (tests/setup-arm64.sh), all but
#                              the venv's: VENV_FROM=venv-cross installs the aarch64 wheels with
#                              this machine's pip, in the same Debian's x86_64 base (pip under
#                              qemu-user took 15 minutes and more)
# HERMES_SHIM_AGENT_SOURCE builds hermes-agent from its source instead of PyPI's wheel
# (VENV_FROM=venv-source): `sdist` (PyPI's sdist of HERMES_AGENT_VERSION, fetched once into the
# cache), or the path of an sdist (*.tar.gz) or of a source tree; the wheelhouse then also holds
# the build backend its pyproject.toml asks for.
# Idempotent: docker's layer cache makes an unchanged rebuild take seconds.
#   usage: docker/build-image.sh     (tag: $HERMES_SHIM_IMAGE, default hermes-shim:test or
#                                     hermes-shim:test-s6, with -bookworm appended for Debian 12
#                                     and -arm64 for arm64 on an x86_64 host)
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tests/lib.sh
. "$REPO/tests/lib.sh"
LOG_PREFIX=build-image
choose_image
BASE_TAG="${HERMES_SHIM_BASE_TAG:-hermes-shim/debian:$SUITE$ARCH_SUFFIX}"

start=$(date +%s)
args=(--build-arg SHIM_FROM=host-binary)
venv_from=venv-wheelhouse
agent_source="${HERMES_SHIM_AGENT_SOURCE:-}"
build_requires=""
if [ "$agent_source" = sdist ]; then
    version="${HERMES_AGENT_VERSION:-0.19.0}"
    sdist_dir="$CACHE_DIR/sdist-hermes-agent-$version"
    if [ ! -f "$sdist_dir/.complete" ]; then
        log "downloading the hermes-agent==$version sdist into $sdist_dir"
        mkdir -p "$sdist_dir"
        tools_venv
        "$TOOLS_VENV/bin/pip" download --quiet --disable-pip-version-check --no-deps \
            --no-binary :all: --dest "$sdist_dir" "hermes-agent==$version" >&2 ||
            { log "pip download of the hermes-agent==$version sdist failed"; exit 1; }
        touch "$sdist_dir/.complete"
    fi
    agent_source=$(find "$sdist_dir" -maxdepth 1 -name 'hermes_agent-*.tar.gz' | head -n 1)
fi
if [ -n "$agent_source" ]; then
    if [ ! -e "$agent_source" ]; then
        log "HERMES_SHIM_AGENT_SOURCE=$agent_source: no such sdist or source tree (give sdist, a *.tar.gz or a directory)"
        exit 2
    fi
    # The build backend, from the source's own pyproject.toml (Debian's python3 has tomllib).
    build_requires=$(/usr/bin/python3 - "$agent_source" <<'PYEOF'
import os, sys, tarfile, tomllib
src = sys.argv[1]
if os.path.isdir(src):
    with open(os.path.join(src, "pyproject.toml"), "rb") as f:
        data = tomllib.load(f)
else:
    with tarfile.open(src) as t:
        member = min((m for m in t.getmembers() if m.name.endswith("/pyproject.toml")),
                     key=lambda m: m.name.count("/"))
        data = tomllib.load(t.extractfile(member))
print("\n".join(data.get("build-system", {}).get("requires", ["setuptools>=40.8.0"])))
PYEOF
    ) || { log "cannot read the build backend from $agent_source's pyproject.toml"; exit 2; }
    venv_from=venv-source
fi
if [ "$FLAVOUR" = s6 ]; then
    tarballs="${HERMES_SHIM_S6_TARBALLS:-}"
    arch=$ARCH
    for f in s6-overlay-noarch.tar.xz "s6-overlay-$arch.tar.xz"; do
        if [ -z "$tarballs" ] || [ ! -f "$tarballs/$f" ]; then
            log "the s6 flavour needs s6-overlay's release tarballs: set HERMES_SHIM_S6_TARBALLS to a directory holding $f"
            exit 3
        fi
    done
    args+=(--build-arg S6_FROM=s6-overlay --build-arg S6_TARBALLS=s6-tarballs-context)
    if [ -f "$tarballs/SHA256SUMS" ]; then
        sum() { awk -v f="$1" '$2 == f { print $1 }' "$tarballs/SHA256SUMS"; }
        noarch_sum=$(sum s6-overlay-noarch.tar.xz)
        arch_sum=$(sum "s6-overlay-$arch.tar.xz")
        if [ -z "$noarch_sum" ] || [ -z "$arch_sum" ]; then
            log "$tarballs/SHA256SUMS lacks a sum for one of the tarballs"
            exit 3
        fi
        arch_arg=$(printf '%s' "$arch" | tr '[:lower:]' '[:upper:]')
        args+=(--build-arg "S6_OVERLAY_NOARCH_SHA256=$noarch_sum"
            --build-arg "S6_OVERLAY_${arch_arg}_SHA256=$arch_sum")
    fi
else
    args+=(--build-arg S6_FROM=no-s6-overlay)
fi

export HERMES_SHIM_ARCH="$ARCH"
HERMES_SHIM_SUITE="$SUITE" HERMES_SHIM_BASE_TAG="$BASE_TAG" "$REPO/docker/build-base.sh"
if [ "$ARCH" != "$(uname -m)" ] && [ -z "$agent_source" ]; then
    build_base="hermes-shim/debian:$SUITE"
    HERMES_SHIM_SUITE="$SUITE" HERMES_SHIM_ARCH="$(uname -m)" HERMES_SHIM_BASE_TAG="$build_base" \
        "$REPO/docker/build-base.sh"
    venv_from=venv-cross
    args+=(--build-arg BUILD_BASE_IMAGE="$build_base")
fi
args+=(--build-arg VENV_FROM="$venv_from")
wheelhouse=$(HERMES_SHIM_PYTHON="$PYTHON" HERMES_SHIM_EXTRA_WHEELS="$build_requires" \
    "$REPO/docker/build-wheelhouse.sh")

binary=$("$REPO/docker/build-shim.sh")
[ -x "$binary" ] || { log "no release binary at $binary"; exit 1; }

# The context lives outside the repository and holds exactly what the Dockerfile copies; one per
# build, so two builds (two image tags) can run at once.
mkdir -p "$CACHE_DIR"
CONTEXT=$(mktemp -d "$CACHE_DIR/context.XXXXXX")
trap 'rm -rf --one-file-system "$CONTEXT"' EXIT
mkdir -p "$CONTEXT/dist" "$CONTEXT/docker"
cp "$REPO/Dockerfile" "$REPO/.dockerignore" "$CONTEXT/"
cp -a "$REPO/s6-overlay" "$CONTEXT/s6-overlay"
cp -a "$REPO/docker/entrypoint.sh" "$CONTEXT/docker/"
cp -a "$binary" "$CONTEXT/dist/hermes-shim"
# Check the copy, not the target dir: another cargo run may rewrite the binary at any moment,
# and a binary that cannot even print its version makes every container test fail obscurely.
"$CONTEXT/dist/hermes-shim" --version >/dev/null 2>&1 ||
    { log "$binary does not run on the host (hermes-shim --version failed); not building"; exit 1; }
# Hard links: same filesystem as the cache, no 38 MB copy per build.
cp -al "$wheelhouse" "$CONTEXT/dist/wheelhouse"
mkdir "$CONTEXT/dist/agent"
if [ -d "$agent_source" ]; then
    cp -a "$agent_source/." "$CONTEXT/dist/agent/"
elif [ -n "$agent_source" ]; then
    cp "$agent_source" "$CONTEXT/dist/agent/"
fi
if [ "$FLAVOUR" = s6 ]; then
    mkdir "$CONTEXT/dist/s6"
    cp "$tarballs/s6-overlay-noarch.tar.xz" "$tarballs/s6-overlay-$arch.tar.xz" "$CONTEXT/dist/s6/"
fi

log "building $IMAGE (offline, $PLATFORM, flavour $FLAVOUR: base $BASE_TAG, host binary, local wheelhouse${agent_source:+, hermes-agent from $agent_source})"
offline_build "$CONTEXT" --platform "$PLATFORM" --build-arg BASE_IMAGE="$BASE_TAG" "${args[@]}" \
    -t "$IMAGE" || exit 1
log "built $IMAGE in $(($(date +%s) - start)) s"
