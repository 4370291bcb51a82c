#!/usr/bin/env bash
# The whole test suite, as the README gives it and as .ci/run calls it: host setup, lints,
# unit and root integration tests (cargo test), and the container tests in a real engine, once
# per image flavour.
# Closes with one line `total: N passed, N failed` counting every test that ran.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
export PATH="$HOME/.cargo/bin:$PATH"
# s6-overlay's release tarballs cannot be downloaded here: use the local build beside the
# checkout unless told otherwise.
if [ -z "${HERMES_SHIM_S6_TARBALLS:-}" ] && [ -d ../shared/s6-overlay ]; then
  HERMES_SHIM_S6_TARBALLS=$(cd ../shared/s6-overlay && pwd)
  export HERMES_SHIM_S6_TARBALLS
fi
logs=$(mktemp -d)
trap '[ -z "${arm64_prep:-}" ] || kill "$arm64_prep" 2>/dev/null; rm -rf "$logs"' EXIT
passed=0
failed=0
broken=()
times=()

# step NAME CMD...: runs one step, keeps its output, and counts its tests (or the step itself).
step() {
  local name=$1
  shift
  echo "== $name"
  local log="$logs/$name.log" rc start
  start=$(date +%s)
  "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  times+=("$name $(($(date +%s) - start))")
  local p f
  # cargo's `test result: ok. N passed; N failed` and the shell suites' `N passed, N failed`.
  local counts
  counts=$(grep -E '^(test result: [A-Za-z]+\. )?[0-9]+ passed[;,] [0-9]+ failed' "$log")
  p=$(grep -oE '[0-9]+ passed' <<<"$counts" | awk '{s+=$1} END {print s+0}')
  f=$(grep -oE '[0-9]+ failed' <<<"$counts" | awk '{s+=$1} END {print s+0}')
  if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
    if [ "$rc" -eq 0 ]; then p=1; else f=1; fi
  elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1
  fi
  passed=$((passed + p))
  failed=$((failed + f))
  [ "$rc" -eq 0 ] || broken+=("$name")
}

step setup tests/setup-host.sh
# The arm64 side's builds (mostly emulated, one core at a time) overlap the x86_64 steps below;
# the arm64 steps wait for them (tests/arm64-prep.sh).
tests/arm64-prep.sh >"$logs/arm64-prep.out" 2>&1 &
arm64_prep=$!
step fmt cargo fmt --check
step clippy cargo clippy --all-targets --quiet -- -D warnings
step cargo-test cargo test --quiet --no-fail-fast
# Every parser of outside input under libFuzzer, a few seconds per target (fuzz/).
step fuzz tests/fuzz.sh
mapfile -t scripts < <(find . -path ./target -prune -o -path ./.git -prune -o \
    \( -name '*.sh' -o -path ./.ci/run \) -type f -print | sort)
# The upstream-shaped test image's hook, wrapper and run script have fixed names, no .sh.
mapfile -t -O "${#scripts[@]}" scripts < <(find tests/upstream -type f \
    -exec awk 'FNR == 1 && /^#!/ { print FILENAME } { nextfile }' {} + | sort)
step shellcheck shellcheck "${scripts[@]}"
# The Python programs the Rust tests and the container suite run (tests/py/).
step lint-python tests/lint-python.sh
step hadolint hadolint Dockerfile tests/upstream/Dockerfile
# Both image flavours through the whole container suite: without s6-overlay, and the production
# one under s6-overlay's /init (its release tarballs from HERMES_SHIM_S6_TARBALLS; without them
# the s6 run says so and skips, or fails under CI).
# Debian 13 (the base upstream uses) for both; Debian 12 keeps the flavour without s6-overlay.
step container-no-s6 env HERMES_SHIM_FLAVOUR=no-s6 tests/container.sh
step container-s6 env HERMES_SHIM_FLAVOUR=s6 tests/container.sh
step container-no-s6-debian12 env HERMES_SHIM_FLAVOUR=no-s6 HERMES_SHIM_SUITE=bookworm tests/container.sh
# Both flavours again with hermes-agent built from PyPI's 0.19.0 sdist (VENV_FROM=venv-source).
step container-no-s6-sdist env HERMES_SHIM_FLAVOUR=no-s6 HERMES_SHIM_AGENT_SOURCE=sdist \
    HERMES_SHIM_IMAGE=hermes-shim:test-sdist tests/container.sh
step container-s6-sdist env HERMES_SHIM_FLAVOUR=s6 HERMES_SHIM_AGENT_SOURCE=sdist \
    HERMES_SHIM_IMAGE=hermes-shim:test-s6-sdist tests/container.sh
step upstream tests/upstream.sh
# The same images under Podman (rootful: the container suite's table again; rootless) and the
# Kubernetes manifests under `podman kube play`; tests/setup-podman.sh is their host setup.
step podman-no-s6 env HERMES_SHIM_FLAVOUR=no-s6 tests/podman.sh
step podman-s6 env HERMES_SHIM_FLAVOUR=s6 tests/podman.sh
step kube-no-s6 env HERMES_SHIM_FLAVOUR=no-s6 tests/kube.sh
step kube-s6 env HERMES_SHIM_FLAVOUR=s6 tests/kube.sh
# docker/compose.yaml under Debian's docker-compose and podman-compose, both flavours.
step compose-no-s6 env HERMES_SHIM_FLAVOUR=no-s6 tests/compose.sh
step compose-s6 env HERMES_SHIM_FLAVOUR=s6 tests/compose.sh
# arm64 without an arm64 machine (tests/setup-arm64.sh): the static aarch64 binary in its FROM
# scratch image, both flavours' arm64 images through the container suite under qemu-user (side by
# side, tests/arm64.sh), then one boot of Debian's arm64 kernel for what qemu-user cannot show
# (tests/emulation-skips.txt).
step hadolint-arm64 hadolint docker/cross/Dockerfile tests/vm/Dockerfile
wait "$arm64_prep"
echo "$?" >"$logs/arm64-prep.rc"
prep_result() { cat "$logs/arm64-prep.out"; return "$(cat "$logs/arm64-prep.rc")"; }
step arm64-prep prep_result
step binary-image-arm64 env HERMES_SHIM_ARCH=aarch64 docker/build-binary-image.sh
step container-arm64 tests/arm64.sh
step arm64-vm tests/arm64-vm.sh

echo "time per step (s): ${times[*]/%/;}"
if [ "${#broken[@]}" -gt 0 ]; then
  echo "failing steps: ${broken[*]}"
fi
echo "total: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "${#broken[@]}" -eq 0 ]
