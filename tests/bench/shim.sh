#!/usr/bin/env bash
# Benchmark (not a test): what one `docker exec` as root pays for the privilege drop.
#
# In one run and one private mount namespace (bind-mounted passwd/group holding a `hermes` user,
# uid 10000; the machine's /etc is never edited) it times, with hyperfine -N (no shell):
#   bare     /bin/true
#   shim     a symlink `true` -> the static release hermes-shim (docker/build-shim.sh), HERMES_SHIM_REAL_DIR=/bin:
#            root drops to hermes, then execs /bin/true
#   sh-shim  the POSIX-sh shim it replaces: id -u, a case on HERMES_DOCKER_EXEC_AS_ROOT,
#            exec s6-setuidgid hermes /bin/true
#   floor    /usr/bin/env /bin/true: a C program that does nothing but exec, i.e. the least any
#            exec wrapper can cost here (a second program image), for judging the shim's own share
# in alternating rounds, and prints the mean and median per exec and the ratios against the bare
# exec. Goal: shim <= 1.5x bare (judged by the median, which other load on the machine moves least).
#
# Usage: tests/bench/shim.sh [--runs N] [--rounds N] [--warmup N] [--strace]     (as root)
#   --runs N     timed execs per command in all (default 3000)
#   --rounds N   split them into N alternating rounds (default 5)
#   --warmup N   untimed execs per command before each round (default 100)
#   --strace     also print `strace -c -f` of one exec of each (to explain a miss)
set -euo pipefail

me=tests/bench/shim.sh
self=$(readlink -f "${BASH_SOURCE[0]}")
runs=3000
warmup=100
rounds=5
strace=false
goal=1.5

die() {
    echo "$me: $*" >&2
    exit 1
}

usage() {
    sed -n '2,/^set -euo/{/^set/d;s/^# \{0,1\}//;p}' "$self"
}

need_pkg() { # COMMAND PACKAGE: install PACKAGE from Debian only when COMMAND is missing
    command -v "$1" >/dev/null 2>&1 && return 0
    echo "$me: installing Debian package $2 (for $1)" >&2
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2"; } >/dev/null; then
        die "could not install $2; install it by hand (apt-get install $2)"
    fi
}

# Runs inside `unshare -m`: mount the fake user database, sanity-check, measure, report.
in_namespace() {
    local work=$1
    mount --bind "$work/passwd" /etc/passwd
    mount --bind "$work/group" /etc/group
    unset HERMES_DOCKER_EXEC_AS_ROOT HERMES_SHIM_USER
    export HERMES_SHIM_REAL_DIR=/bin

    # The figures mean nothing unless each contender really does its job.
    local ids
    ids=$("$work/bin/id" -u):$("$work/bin/id" -g) || die "the shim failed to run id; see above"
    [[ $ids == 10000:10000 ]] || die "the shim ran id as $ids, expected 10000:10000"
    ids=$(HOME=/opt/data s6-setuidgid hermes id -u):$(s6-setuidgid hermes id -g)
    [[ $ids == 10000:10000 ]] || die "s6-setuidgid ran id as $ids, expected 10000:10000"
    local cmd
    for cmd in /bin/true "$work/bin/true" "$work/bin/true-sh"; do
        "$cmd" || die "$cmd exits $?, expected 0"
    done

    # Other work on the machine comes and goes; running the three in alternating rounds spreads
    # that noise over all of them instead of loading it onto whichever ran at the wrong moment.
    local per_round=$(((runs + rounds - 1) / rounds)) r
    echo "$me: $rounds rounds of $per_round runs each (after $warmup warm-up runs), hyperfine -N, as root, one mount namespace" >&2
    for ((r = 1; r <= rounds; r++)); do
        hyperfine -N --style none --warmup "$warmup" --runs "$per_round" \
            --export-json "$work/round-$r.json" \
            -n bare /bin/true \
            -n shim "$work/bin/true" \
            -n sh-shim "$work/bin/true-sh" \
            -n floor "/usr/bin/env /bin/true" >"$work/hyperfine.log" 2>&1 \
            || die "hyperfine failed: $(tail -n 5 "$work/hyperfine.log")"
    done

    /usr/bin/python3 - "$goal" "$work"/round-*.json <<'PY'
import json
import statistics
import sys

goal = float(sys.argv[1])
times = {"bare": [], "shim": [], "sh-shim": [], "floor": []}
for path in sys.argv[2:]:
    for r in json.load(open(path))["results"]:
        times[r["command"]] += r["times"]
mean = {k: statistics.fmean(v) for k, v in times.items()}
median = {k: statistics.median(v) for k, v in times.items()}
sd = {k: statistics.stdev(v) for k, v in times.items()}
label = {
    "bare": "/bin/true",
    "shim": "hermes-shim: root -> hermes -> /bin/true",
    "sh-shim": "sh: id -u; case; s6-setuidgid hermes /bin/true",
    "floor": "env /bin/true: an exec and nothing else",
}
print(f"shim benchmark ({len(times['bare'])} runs each in {len(sys.argv) - 2} rounds, hyperfine -N)")
for k in times:
    print(f"  {k:8} mean {mean[k] * 1e6:7.1f} us  median {median[k] * 1e6:7.1f} us  "
          f"(sd {sd[k] * 1e6:6.1f})  {label[k]}")
for a, b in (("shim", "bare"), ("sh-shim", "bare"), ("sh-shim", "shim"), ("floor", "bare"), ("shim", "floor")):
    print(f"  {a + '/' + b:13} {mean[a] / mean[b]:5.2f}x by mean, {median[a] / median[b]:5.2f}x by median")
# The median is the verdict: one stall of a few ms from other load moves a mean, not a median.
ratio = median["shim"] / median["bare"]
print(f"  goal: shim <= {goal}x bare: {'met' if ratio <= goal else 'MISSED'} ({ratio:.2f}x by median)")
PY

    if $strace; then
        for cmd in /bin/true "$work/bin/true" "$work/bin/true-sh"; do
            echo
            echo "== strace -c -f: one exec of $cmd"
            strace -c -f -o "$work/strace.txt" "$cmd" || die "$cmd failed under strace"
            cat "$work/strace.txt"
        done
    fi
}

main() {
    if [[ ${1:-} == --in-namespace ]]; then
        runs=$3 warmup=$4 rounds=$5 strace=$6
        in_namespace "$2"
        return
    fi
    while (($#)); do
        case $1 in
        --runs) runs=${2:?--runs needs a number}; shift 2 ;;
        --warmup) warmup=${2:?--warmup needs a number}; shift 2 ;;
        --rounds) rounds=${2:?--rounds needs a number}; shift 2 ;;
        --strace) strace=true; shift ;;
        -h | --help) usage; return 0 ;;
        *) die "unknown argument '$1' (try --help)" ;;
        esac
    done
    [[ $runs =~ ^[1-9][0-9]*$ && $rounds =~ ^[1-9][0-9]*$ && $warmup =~ ^[0-9]+$ ]] \
        || die "--runs, --rounds and --warmup take whole numbers (--runs and --rounds >= 1)"
    [[ $(id -u) == 0 ]] || die "must run as root: it measures root dropping to a user (try: sudo $me)"

    need_pkg hyperfine hyperfine
    need_pkg s6-setuidgid s6
    need_pkg unshare util-linux
    if $strace; then need_pkg strace strace; fi
    [[ -x /usr/bin/python3 ]] || need_pkg /usr/bin/python3 python3

    cd "$(dirname "$self")/../.."
    # The binary the image ships: release, linked static (docker/build-shim.sh).
    local bin
    bin=$(docker/build-shim.sh) || die "docker/build-shim.sh failed"
    [[ -x $bin ]] || die "$bin missing after the build"

    local work
    work=$(mktemp -d /tmp/hermes-shim-bench.XXXXXX)
    # shellcheck disable=SC2064  # expand now: $work is local
    trap "rm -rf '$work'" EXIT
    chmod 755 "$work"
    mkdir "$work/bin"
    # The machine may have its own uid 10000 or hermes; the namespace sees only ours.
    grep -Ev '^hermes:|^[^:]*:[^:]*:10000:' /etc/passwd >"$work/passwd" || true
    echo 'hermes:x:10000:10000:Hermes Agent:/opt/data:/bin/sh' >>"$work/passwd"
    grep -Ev '^hermes:|^[^:]*:[^:]*:10000:' /etc/group >"$work/group" || true
    echo 'hermes:x:10000:' >>"$work/group"
    ln -s "$bin" "$work/bin/true"
    ln -s "$bin" "$work/bin/id"
    cat >"$work/bin/true-sh" <<'SH'
#!/bin/sh
if [ "$(id -u)" = 0 ]; then
    case "${HERMES_DOCKER_EXEC_AS_ROOT:-}" in
    1 | true | TRUE | True | yes | YES | Yes) ;;
    *)
        HOME=/opt/data
        export HOME
        exec s6-setuidgid hermes /bin/true "$@"
        ;;
    esac
fi
exec /bin/true "$@"
SH
    chmod 755 "$work/bin/true-sh"

    unshare --mount --propagation private -- \
        "$BASH" "$self" --in-namespace "$work" "$runs" "$warmup" "$rounds" "$strace"
}

main "$@"
