#!/usr/bin/env bash
# Downloads hermes-agent and all its dependencies as wheels, so the offline image build can
# install the real Hermes CLI with `pip install --no-index`, and prints the wheelhouse's path.
#   HERMES_AGENT_VERSION  default 0.19.0
#   HERMES_SHIM_PYTHON    the image's CPython, MAJOR.MINOR: 3.11 (Debian 12, the default) or
#                         3.13 (Debian 13)
#   HERMES_SHIM_EXTRA_WHEELS  more requirements, one per line (an sdist's build backend, e.g.
#                         `setuptools>=77.0,<83`), in a wheelhouse of their own keyed by them
#   HERMES_SHIM_ARCH      x86_64 or aarch64: the image's architecture (default this machine's)
# Skipped when the wheelhouse is complete (a marker written only after a successful download).
set -euo pipefail

VERSION="${HERMES_AGENT_VERSION:-0.19.0}"
PYTHON="${HERMES_SHIM_PYTHON:-3.11}"
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../tests/lib.sh"
LOG_PREFIX=build-wheelhouse
choose_arch

case "$PYTHON" in
    3.[0-9] | 3.[0-9][0-9]) ;;
    *) log "HERMES_SHIM_PYTHON='$PYTHON' is not a CPython 3 version (3.11, 3.13)"; exit 2 ;;
esac
ABI="cp${PYTHON/./}"
# Keyed by version, interpreter and (when foreign) architecture: compiled dependencies
# (pydantic-core, …) differ per ABI and per machine.
WHEELHOUSE="$CACHE_DIR/wheelhouse-$VERSION-$ABI$ARCH_SUFFIX"
extras=()
if [ -n "${HERMES_SHIM_EXTRA_WHEELS:-}" ]; then
    mapfile -t extras < <(printf '%s\n' "$HERMES_SHIM_EXTRA_WHEELS" | sed '/^[[:space:]]*$/d')
    BASE_WHEELHOUSE="$WHEELHOUSE"
    WHEELHOUSE="$WHEELHOUSE-extra-$(printf '%s\n' "${extras[@]}" | sha256sum | cut -c1-12)"
fi

if [ -f "$WHEELHOUSE/.complete" ]; then
    printf '%s\n' "$WHEELHOUSE"
    exit 0
fi

# The image installs into Debian's CPython on glibc, x86_64 or aarch64; asking pip for exactly
# that target keeps the wheelhouse right whatever Python (and machine) runs this script. The
# manylinux tags stop at 2.28, which Debian 12's glibc (2.36) and Debian 13's (2.41) both satisfy.
# pip from the tools venv (tests/lib.sh), as tests/setup-host.sh installs hadolint.
mkdir -p "$CACHE_DIR"
tools_venv
# Download into a private directory (made 0755, as the wheelhouse is to be) and rename it into
# place only when complete, so a concurrent run or an interrupted one never leaves a half
# wheelhouse under the final name.
partial=$(temp_dir "$CACHE_DIR" "${WHEELHOUSE##*/}.partial" 0755) || die "cannot make a directory in $CACHE_DIR"
trap 'rm -rf --one-file-system "$partial"' EXIT
# With extras, start from the plain wheelhouse when it is complete (hard links): pip then fetches
# only what it lacks.
if [ "${#extras[@]}" -gt 0 ] && [ -f "$BASE_WHEELHOUSE/.complete" ]; then
    cp -al "$BASE_WHEELHOUSE/." "$partial/"
    rm -f "$partial/.complete"
fi
log "downloading hermes-agent==$VERSION wheels for CPython $PYTHON on $ARCH into $WHEELHOUSE"
start=$(date +%s)
"$TOOLS_VENV/bin/pip" download --quiet --disable-pip-version-check \
    --only-binary=:all: --python-version "$PYTHON" --implementation cp --abi "$ABI" \
    --platform "manylinux2014_$ARCH" --platform "manylinux_2_17_$ARCH" \
    --platform "manylinux_2_28_$ARCH" --platform "linux_$ARCH" \
    --dest "$partial" "hermes-agent==$VERSION" "${extras[@]}" >&2
touch "$partial/.complete"
# rename(2) refuses a non-empty target: if another run finished first, keep its copy.
if ! mv -T "$partial" "$WHEELHOUSE" 2>/dev/null && [ ! -f "$WHEELHOUSE/.complete" ]; then
    log "cannot move $partial to $WHEELHOUSE"
    exit 1
fi
log "wheelhouse for CPython $PYTHON on $ARCH took $(($(date +%s) - start)) s"
printf '%s\n' "$WHEELHOUSE"
