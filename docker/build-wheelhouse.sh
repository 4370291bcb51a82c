#!/usr/bin/env bash
# Downloads hermes-agent and all its dependencies as wheels, so the offline image build can
# install the real Hermes CLI with `pip install --no-index`. Skipped when the wheelhouse is
# complete (a marker written only after a successful download).
set -euo pipefail

VERSION="${HERMES_AGENT_VERSION:-0.19.0}"
CACHE_DIR="${HERMES_SHIM_CACHE:-$HOME/.cache/hermes-shim}"
WHEELHOUSE="$CACHE_DIR/wheelhouse-$VERSION"

log() { printf 'build-wheelhouse: %s\n' "$*" >&2; }

if [ -f "$WHEELHOUSE/.complete" ]; then
    printf '%s\n' "$WHEELHOUSE"
    exit 0
fi

# The image installs into Debian 12's CPython 3.11 on x86_64 glibc; asking pip for exactly that
# target keeps the wheelhouse right whatever Python runs this script.
# pip from a venv of Debian's python3 (the same one tests/setup-host.sh installs hadolint into):
# the python3 first on PATH may be anything, and Debian's own has no pip module.
TOOLS="$CACHE_DIR/tools-venv"
[ -x "$TOOLS/bin/pip" ] || /usr/bin/python3 -m venv "$TOOLS"
log "downloading hermes-agent==$VERSION wheels into $WHEELHOUSE"
mkdir -p "$WHEELHOUSE"
"$TOOLS/bin/pip" download --quiet --disable-pip-version-check \
    --only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux_2_28_x86_64 --platform linux_x86_64 \
    --dest "$WHEELHOUSE" "hermes-agent==$VERSION" >&2
touch "$WHEELHOUSE/.complete"
printf '%s\n' "$WHEELHOUSE"
