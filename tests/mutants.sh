#!/usr/bin/env bash
# Mutation testing: cargo mutants changes one operator or return value of src/ at a time and runs
# `cargo test`; a mutant the tests still pass is a defect they would not notice.
#
#   tests/mutants.sh                 every mutant of src/
#   tests/mutants.sh src/fix/*.rs    the mutants of the files named
#
# The root tests chown, mount and drop privileges, and a mutant can make the code under test do
# anything, so the whole run happens in a throwaway container (root in it; CAP_SYS_ADMIN for the
# tests' own namespaces and seal, CAP_LINUX_IMMUTABLE for chattr, CAP_AUDIT_READ so that root
# holds a capability above 31 for the capability tests), on a copy of the working tree; the
# toolchain is mounted read-only. It
# ends with a score per file and the mutants that survived; survivors listed with a reason in
# tests/mutants-equivalent.txt (no input can tell them apart from the original) are counted apart.
# Not part of tests/run-all.sh: over the whole crate (1,368 mutants) it takes 3 to 4 hours on
# 2 cores; HERMES_SHIM_MUTANTS_AFTER (below) runs it in parts.
#
#   HERMES_SHIM_MUTANTS_JOBS  mutants built and tested at once (default: the number of cores)
#   HERMES_SHIM_MUTANTS_TIMEOUT seconds after which a mutant's test run counts as hung, which
#                             counts as caught (default: cargo mutants' own, 5 times the
#                             unmutated run); keep it well above a survivor's run, about the
#                             unmutated run's time, or a survivor passes for caught
#   HERMES_SHIM_MUTANTS_OUT   where cargo mutants' report is kept
#                             (default ~/.cache/hermes-shim/mutants/DATE-REVISION)
#   HERMES_SHIM_MUTANTS_AFTER an earlier run's report: the mutants it caught or found unviable
#                             are not run again (cargo mutants --iterate) and count as before.
#                             A mutant is named by file, line, column and change, so one whose
#                             code moved is run again; tests only ever grow, so what was caught
#                             stays caught.
# Exit: 0 when every viable mutant was caught or is listed as equivalent, 1 when some survived,
# 2 on bad usage or a missing prerequisite.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.sh
. tests/lib.sh
LOG_PREFIX=mutants

CARGO_MUTANTS_VERSION=27.1.0
IMAGE=hermes-shim/mutants:bookworm
EQUIVALENT=tests/mutants-equivalent.txt
JOBS="${HERMES_SHIM_MUTANTS_JOBS:-$(nproc)}"

usage() {
    log "$*"
    log "usage: tests/mutants.sh [src/FILE.rs...]"
    exit 2
}

case "$JOBS" in '' | *[!0-9]* | 0) usage "HERMES_SHIM_MUTANTS_JOBS='$JOBS' is not a positive number" ;; esac
files=()
run_opts=()
timeout="${HERMES_SHIM_MUTANTS_TIMEOUT:-}"
if [ -n "$timeout" ]; then
    case "$timeout" in *[!0-9]* | 0) usage "HERMES_SHIM_MUTANTS_TIMEOUT='$timeout' is not a positive number of seconds" ;; esac
    run_opts+=(--timeout "$timeout")
fi
for f in "$@"; do
    case "$f" in
        src/*.rs) [ -f "$f" ] || usage "$f: no such file" ;;
        *) usage "$f: name a Rust file under src/" ;;
    esac
    files+=(--file "$f")
done

[ "$(id -u)" -eq 0 ] || { log "needs root, for the container engine"; exit 2; }
command -v cargo >/dev/null || { log "cargo not found on PATH; install Rust with rustup first"; exit 2; }
docker info >/dev/null 2>&1 || { log "the Docker engine is not answering; tests/setup-host.sh starts it"; exit 2; }

cargo_home="${CARGO_HOME:-$HOME/.cargo}"
rustup_home="${RUSTUP_HOME:-$HOME/.rustup}"
if [ "$(cargo mutants --version 2>/dev/null)" != "cargo-mutants $CARGO_MUTANTS_VERSION" ]; then
    log "installing cargo-mutants $CARGO_MUTANTS_VERSION into $cargo_home/bin"
    cargo install --locked --quiet "cargo-mutants@$CARGO_MUTANTS_VERSION"
fi
# The container builds offline, from the dependencies fetched here.
cargo fetch --quiet

# The image: the Debian 12 base the image build uses (the host's glibc, which the mounted
# toolchain and cargo-mutants were built against), with a linker and the tools the tests drive.
HERMES_SHIM_SUITE=bookworm docker/build-base.sh
recipe='FROM hermes-shim/debian:bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev e2fsprogs mount procps \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src'
key=$(printf '%s' "$recipe" | sha256sum | cut -c1-16)
if [ "$(docker image inspect -f '{{index .Config.Labels "org.hermes-shim.recipe"}}' "$IMAGE" 2>/dev/null)" != "$key" ]; then
    log "building $IMAGE"
    printf '%s\nLABEL org.hermes-shim.recipe=%s\n' "$recipe" "$key" |
        DOCKER_BUILDKIT=0 docker build -q -t "$IMAGE" - >/dev/null
fi

rev=$(git describe --always --dirty 2>/dev/null || echo unknown)
out="${HERMES_SHIM_MUTANTS_OUT:-$CACHE_DIR/mutants/$(date -u +%Y%m%dT%H%M%SZ)-$rev}"
mkdir -p "$out"
name="hermes-shim-mutants-$$"
carried=$(mktemp -d)
trap 'docker rm -f "$name" >/dev/null 2>&1 || true; rm -rf --one-file-system "$carried"' EXIT

# Carried over from an earlier run: the mutants of this tree it caught, and those it found
# unviable (cargo mutants --list names them without building anything).
after="${HERMES_SHIM_MUTANTS_AFTER:-}"
if [ -n "$after" ]; then
    [ -f "$after/caught.txt" ] || usage "HERMES_SHIM_MUTANTS_AFTER=$after holds no cargo mutants report (caught.txt)"
    cargo mutants --list "${files[@]}" >"$carried/all"
    for kind in caught unviable; do
        cat "$after/$kind.txt" "$after/carried-$kind.txt" 2>/dev/null | sort -u |
            grep -xFf - "$carried/all" >"$carried/carried-$kind.txt" || true
    done
    cat "$carried/carried-caught.txt" "$carried/carried-unviable.txt" >"$carried/previously_caught.txt"
    log "carried over from $after: $(wc -l <"$carried/carried-caught.txt") caught," \
        "$(wc -l <"$carried/carried-unviable.txt") unviable, of $(wc -l <"$carried/all") mutants"
    files+=(--iterate)
fi

# Inside: a writable CARGO_HOME holding a copy of the fetched registry; the race tests at 25
# sweeps per backend instead of 100 (enough for the attacker to get going), since the suite runs
# once per mutant; CI set, so a test that cannot run fails instead of skipping. cargo mutants
# copies the tree into TMPDIR, which must not be /tmp: tests/sealed.sh covers /tmp with a tmpfs.
# shellcheck disable=SC2016 # expanded by the shell in the container
# A mutant that hangs the suite has its test run killed at the timeout, but not what the tests
# started in a session of their own (the shim's relay, the entrypoint, a sweep): left spinning,
# those slow every later mutant, some into a false timeout. A process of the tests' temp trees
# or of a built hermes-shim that has lived past the longest a test run may take
# ($HERMES_SHIM_MUTANTS_REAP seconds) is such a leftover, and is killed.
inner='set -eu
mkdir -p /root/.cargo /var/tmp/mutants
export TMPDIR=/var/tmp/mutants
cp -a /opt/cargo-host/registry /root/.cargo/
export PATH="/opt/cargo-host/bin:$PATH"
(
    while sleep 30; do
        ps -eo pid=,etimes=,args= |
            awk -v l="$HERMES_SHIM_MUTANTS_REAP" -v me="$BASHPID" "\$1 != me && \$2 > l && /hermes-shim-test-|cargo-mutants-src-[^ ]*[/]target[/]debug[/]hermes-shim( |\$)/ { print \$1 }" |
            xargs -r kill -9
    done
) &
exec cargo mutants --no-shuffle --jobs "$1" --output /out --colors never "${@:2}"'
docker create --name "$name" \
    --cap-add SYS_ADMIN --cap-add LINUX_IMMUTABLE --cap-add AUDIT_READ --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
    -v "$cargo_home:/opt/cargo-host:ro" -v "$rustup_home:/opt/rustup:ro" \
    -e RUSTUP_HOME=/opt/rustup -e CARGO_HOME=/root/.cargo -e CARGO_TERM_COLOR=never -e CARGO_NET_OFFLINE=true \
    -e CI=true -e HERMES_SHIM_RACE_RUNS=25 -e HERMES_SHIM_MODEL_TREES=20 \
    -e HERMES_SHIM_MUTANTS_REAP="$((${timeout:-600} + 60))" \
    "$IMAGE" bash -c "$inner" mutants "$JOBS" "${files[@]}" "${run_opts[@]}" >/dev/null
# The working tree as it is (committed or not, untracked files included, ignored ones not).
git ls-files -z --cached --others --exclude-standard |
    tar --null -T - -cf - | docker cp - "$name:/src"
if [ -n "$after" ]; then
    tar -C "$carried" -cf - --transform 's,^,out/mutants.out/,' previously_caught.txt | docker cp - "$name:/"
fi
log "running (report kept in $out); cargo mutants' own progress follows"
start=$(date +%s)
rc=0
docker start -a "$name" || rc=$?
docker cp "$name:/out/mutants.out/." "$out/" || die "no report came out of the run (exit $rc)"
cp "$carried"/carried-*.txt "$out/" 2>/dev/null || true
log "cargo mutants exited $rc after $((($(date +%s) - start) / 60)) min"
# cargo mutants: 0 all caught, 2 some missed, 3 some timed out, 4 the baseline failed.
case "$rc" in 0 | 2 | 3) ;; *) die "the run did not complete (exit $rc); see $out/debug.log" ;; esac

/usr/bin/python3 - "$out/outcomes.json" "$EQUIVALENT" "$out" <<'PYEOF'
"""The score per file, the survivors, and the equivalent list checked against this run."""
import collections
import json
import re
import sys

outcomes = json.load(open(sys.argv[1]))["outcomes"]


def key(name):
    """A mutant's name without its line and column, which move with every edit."""
    return re.sub(r"^(\S+?):\d+:\d+: ", r"\1: ", name)


equivalent = {}
for line in open(sys.argv[2]):
    line = line.rstrip("\n")
    if not line or line.startswith("#"):
        continue
    mutant, sep, why = line.partition(" -- ")
    if not sep or not why.strip():
        sys.exit(f"{sys.argv[2]}: every entry is 'MUTANT -- why'; this one is not: {line}")
    equivalent[mutant.strip()] = why.strip()

rows = collections.defaultdict(collections.Counter)
survivors, seen = [], set()
for kind in ["caught", "unviable"]:
    try:
        for name in open(f"{sys.argv[3]}/carried-{kind}.txt").read().split("\n"):
            if name:
                rows[name.split(":", 1)[0]][kind] += 1
    except FileNotFoundError:
        pass
for o in outcomes:
    scenario = o["scenario"]
    if scenario == "Baseline":
        continue
    name = scenario["Mutant"]["name"]
    f = name.split(":", 1)[0]
    summary = o["summary"]
    if summary == "MissedMutant":
        k = key(name)
        if k in equivalent:
            seen.add(k)
            rows[f]["equivalent"] += 1
        else:
            rows[f]["missed"] += 1
            survivors.append(name)
    else:
        rows[f][{"CaughtMutant": "caught", "Timeout": "timeout", "Unviable": "unviable"}.get(summary, summary)] += 1

cols = ["caught", "timeout", "equivalent", "missed", "unviable"]
print(f"{'file':<24}" + "".join(f"{c:>11}" for c in cols) + "      score")
total = collections.Counter()
for f in sorted(rows):
    total.update(rows[f])
    r = rows[f]
    viable = r["caught"] + r["timeout"] + r["equivalent"] + r["missed"]
    score = f"{100 * (viable - r['missed']) / viable:5.1f}%" if viable else "    -"
    print(f"{f:<24}" + "".join(f"{r[c]:>11}" for c in cols) + f"     {score}")
viable = sum(total[c] for c in cols[:4])
score = 100 * (viable - total["missed"]) / viable if viable else 100.0
print(f"{'total':<24}" + "".join(f"{total[c]:>11}" for c in cols) + f"     {score:5.1f}%")
print(f"score: {score:.1f}% of {viable} viable mutants caught or equivalent "
      f"({total['caught'] + total['timeout']} caught, {total['equivalent']} equivalent, "
      f"{total['missed']} missed)")
for s in survivors:
    print(f"missed: {s}")
# An entry for a file this run covered that matched no survivor is stale: the code changed.
covered = set(rows)
for k in sorted(set(equivalent) - seen):
    if k.split(":", 1)[0] in covered:
        print(f"stale entry in {sys.argv[2]} (no such survivor now): {k}")
sys.exit(1 if survivors else 0)
PYEOF
