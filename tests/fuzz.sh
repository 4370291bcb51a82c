#!/usr/bin/env bash
# The fuzz targets in fuzz/ (cargo fuzz, libFuzzer), each for a bounded time: every parser of
# outside input (passwd and group text, the user spec and --also-from, the settings table's
# environment, entry_points.txt, getdents64 records, how names are printed), each checking
# properties of its own (see the target's doc). One line per target, then `N passed, N failed`.
#
# HERMES_SHIM_FUZZ_SECONDS: seconds per target (default 5). HERMES_SHIM_FUZZ_TARGETS: which
# targets (default all). Each run starts from the seeds in fuzz/seeds/TARGET (read only; what
# it finds stays in a scratch corpus). A crash keeps its input under
# $CACHE_DIR/fuzz-artifacts/ and prints the command that replays it; fix it with a regression
# test in the unit tests and add the input to the seeds.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
export PATH="$HOME/.cargo/bin:$PATH"
# shellcheck source=tests/lib.sh
. tests/lib.sh
LOG_PREFIX=fuzz
TESTS="fuzz targets"

CARGO_FUZZ_VERSION=0.13.2
SECONDS_EACH=${HERMES_SHIM_FUZZ_SECONDS:-5}
TARGETS=${HERMES_SHIM_FUZZ_TARGETS:-passwd_group user_spec settings entry_points getdents escape}
TOOL_ROOT="$CACHE_DIR/cargo-fuzz-$CARGO_FUZZ_VERSION"
ARTIFACTS="$CACHE_DIR/fuzz-artifacts"

cleanup() { [ -z "${WORK:-}" ] || rm -rf --one-file-system "$WORK"; }
begin hermes-shim-fuzz 0700

# cargo-fuzz from crates.io, once, outside the repository; libFuzzer is C++ (libfuzzer-sys
# builds it with the system's compiler).
if [ ! -x "$TOOL_ROOT/bin/cargo-fuzz" ]; then
    log "installing cargo-fuzz $CARGO_FUZZ_VERSION into $TOOL_ROOT"
    cargo install --quiet --locked --version "$CARGO_FUZZ_VERSION" --root "$TOOL_ROOT" cargo-fuzz ||
        skip_all "cargo install cargo-fuzz $CARGO_FUZZ_VERSION failed (no crates.io?)"
fi
need_pkg c++ g++
export PATH="$TOOL_ROOT/bin:$PATH"

# No sanitizer: the parsers are safe Rust, so AddressSanitizer would find nothing the bounds
# checks do not, and without it the stable toolchain builds the targets (-Zsanitizer is
# nightly-only). Overflow checks and debug assertions stay on (cargo fuzz's default).
build_start=$(date +%s)
if ! cargo fuzz build --sanitizer none >"$WORK/build.log" 2>&1; then
    tail -n 30 "$WORK/build.log"
    bail "cargo fuzz build"
fi
echo "# built in $(($(date +%s) - build_start)) s"
bin_dir="fuzz/target/$(rustc -vV | sed -n 's/^host: //p')/release"

for t in $TARGETS; do
    corpus="$WORK/corpus-$t"
    mkdir -p "$corpus" "$ARTIFACTS/$t"
    log="$WORK/$t.log"
    # -timeout: one input taking a second is a hang here; -max_len: a few lines of /etc/passwd
    # or entry_points.txt, a few getdents records.
    # The built target itself, as cargo fuzz run would start it.
    "$bin_dir/$t" -max_total_time="$SECONDS_EACH" -timeout=1 -max_len=4096 \
        -artifact_prefix="$ARTIFACTS/$t/" "$corpus" "fuzz/seeds/$t" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^Done \([0-9]*\) runs in .*/\1/p' "$log")
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
    if [ "$rc" -eq 0 ] && [ -n "$runs" ]; then
        ok "fuzz $t: $runs runs in $SECONDS_EACH s, $corp inputs in the corpus, $cov edges covered"
    else
        grep -E -A 3 'panicked at|ERROR: libFuzzer|SUMMARY' "$log" | head -n 12
        input=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        if [ -n "$input" ]; then
            echo "  the input ($input), as hex:"
            od -An -tx1 -v "$input" | head -n 8
            echo "  replay (in the checkout): $bin_dir/$t $input"
        else
            tail -n 20 "$log"
        fi
        not_ok "fuzz $t (exit $rc)"
    fi
done
summary
