#!/usr/bin/env bash
# Benchmark (not a test): what one `docker exec` as root pays for the privilege drop.
#
# In one run and one private mount namespace (bind-mounted passwd/group holding a `hermes` user,
# uid 10000; the machine's /etc is never edited) it times, with hyperfine -N (no shell), as root,
# every contender ending in an exec of /bin/true:
#   bare     /bin/true
#   floor    a static C program (gcc -static -O2, built here) that does nothing but execv its
#            arguments: the least any exec wrapper can cost here (a second program image)
#   shim     a symlink `true` -> the static release hermes-shim (docker/build-shim.sh),
#            HERMES_SHIM_REAL_DIR=/bin: root drops to hermes, verifies, execs /bin/true
#   s6       s6-setuidgid hermes /bin/true                                   (Debian's s6)
#   setpriv  setpriv --reuid=hermes --regid=hermes --init-groups /bin/true   (util-linux)
#   gosu     gosu hermes /bin/true                                           (Debian's gosu)
#   sh-shim  the POSIX-sh shim it replaces: id -u, a case on HERMES_DOCKER_EXEC_AS_ROOT,
#            exec s6-setuidgid hermes /bin/true
# in alternating rounds, after checking that each dropping contender really runs its program as
# 10000:10000 with groups 10000. It prints the median per exec, the ratios to the bare exec and
# to the floor and, when `perf stat` works, the page faults per exec. Goal: shim <= 1.10x floor
# (by the median, which other load on the machine moves least).
#
# Usage: tests/bench/shim.sh [--runs N] [--rounds N] [--warmup N] [--strace] [--shim BIN]
#                            [--also NAME=BIN]…                               (as root)
#   --runs N         timed execs per contender in all (default 3000)
#   --rounds N       split them into N alternating rounds (default 30: other load on a shared
#                    machine drifts within seconds, so short rounds spread it over everyone)
#   --warmup N       untimed execs per contender before each round (default 10)
#   --strace         also print `strace -c -f` of one exec of each (to explain a miss)
#   --shim BIN       time this hermes-shim binary instead of building the release one
#   --also NAME=BIN  also time another hermes-shim binary as NAME, in the same rounds
#                    (repeatable; for judging a build flag or a code change by ratio)
set -euo pipefail

me=tests/bench/shim.sh
self=$(readlink -f "${BASH_SOURCE[0]}")
# shellcheck source=tests/lib.sh
. "$(dirname "$self")/../lib.sh"
LOG_PREFIX=$me
runs=3000
warmup=10
rounds=30
strace=false
shim=
also=()
goal=1.10

usage() {
    sed -n '2,/^set -euo/{/^set/d;s/^# \{0,1\}//;p}' "$self"
}

# The hermes-shim contenders: "shim" and each --also NAME, as "NAME=BINARY" words.
shims() {
    printf '%s\n' "shim=$shim" "${also[@]}"
}

# COMMAND… (ending in an id program) must print uid 10000, gid 10000 and groups 10000.
drops_to_hermes() { # NAME COMMAND…
    local name=$1 u g groups
    shift
    if ! { u=$("$@" -u) && g=$("$@" -g) && groups=$("$@" -G); }; then
        die "$name failed to run id; see above"
    fi
    [[ $u:$g:$groups == 10000:10000:10000 ]] \
        || die "$name ran id as uid $u, gid $g, groups $groups; expected 10000, 10000, 10000"
}

# Runs inside `unshare -m`: mount the fake user database, sanity-check, measure, report.
in_namespace() {
    local work=$1
    mount --bind "$work/passwd" /etc/passwd
    mount --bind "$work/group" /etc/group
    unset HERMES_DOCKER_EXEC_AS_ROOT HERMES_SHIM_USER
    export HERMES_SHIM_REAL_DIR=/bin

    # name, then the command hyperfine runs (split on spaces: no path here holds one).
    local -a names=(bare floor) cmds=(/bin/true "$work/bin/floor /bin/true")
    local line name
    while IFS= read -r line; do
        [[ -n $line ]] || continue
        name=${line%%=*}
        names+=("$name")
        cmds+=("$work/$name/true")
    done < <(shims)
    names+=(s6 setpriv gosu sh-shim)
    cmds+=("s6-setuidgid hermes /bin/true"
        "setpriv --reuid=hermes --regid=hermes --init-groups /bin/true"
        "gosu hermes /bin/true"
        "$work/bin/true-sh")

    # The figures mean nothing unless each contender really does its job.
    local i u
    u=$("$work/bin/floor" /bin/id -u) || die "the floor failed to exec id"
    [[ $u == 0 ]] || die "the floor ran id as uid $u, expected 0 (it must only exec)"
    while IFS= read -r line; do
        [[ -n $line ]] || continue
        name=${line%%=*}
        drops_to_hermes "$name" "$work/$name/id"
    done < <(shims)
    drops_to_hermes s6-setuidgid s6-setuidgid hermes /bin/id
    drops_to_hermes setpriv setpriv --reuid=hermes --regid=hermes --init-groups /bin/id
    drops_to_hermes gosu gosu hermes /bin/id
    drops_to_hermes sh-shim "$work/bin/id-sh"
    for i in "${!cmds[@]}"; do
        # shellcheck disable=SC2086  # word splitting wanted, as hyperfine -N does it
        ${cmds[i]} || die "${names[i]} (${cmds[i]}) exits $?, expected 0"
    done

    # Other work on the machine comes and goes; running all of them in alternating rounds spreads
    # that noise over all of them instead of loading it onto whichever ran at the wrong moment.
    local per_round=$(((runs + rounds - 1) / rounds)) r
    local -a hf=()
    for i in "${!cmds[@]}"; do
        hf+=(-n "${names[i]}" "${cmds[i]}")
    done
    log "${#names[@]} contenders, $rounds rounds of $per_round runs each (after $warmup warm-up runs), hyperfine -N, as root, one mount namespace"
    for ((r = 1; r <= rounds; r++)); do
        hyperfine -N --style none --warmup "$warmup" --runs "$per_round" \
            --export-json "$work/round-$r.json" "${hf[@]}" >"$work/hyperfine.log" 2>&1 \
            || die "hyperfine failed: $(tail -n 5 "$work/hyperfine.log")"
    done

    # Page faults explain most of an exec's cost here; counted, not timed, so one pass suffices.
    : >"$work/faults"
    if perf stat -e page-faults -- /bin/true >/dev/null 2>&1; then
        for i in "${!cmds[@]}"; do
            # shellcheck disable=SC2086  # word splitting wanted, as above
            perf stat -x, -e page-faults -r 200 -- ${cmds[i]} 2>&1 >/dev/null \
                | awk -F, -v n="${names[i]}" '$3 == "page-faults" { print n, $1 }' >>"$work/faults"
        done
    fi

    /usr/bin/python3 - "$goal" "$work/faults" "$work"/round-*.json <<'PY'
import json
import statistics
import sys

goal = float(sys.argv[1])
faults = dict(line.split() for line in open(sys.argv[2]))
times = {}
for path in sys.argv[3:]:
    for r in json.load(open(path))["results"]:
        times.setdefault(r["command"], []).extend(r["times"])
median = {k: statistics.median(v) for k, v in times.items()}
print(f"shim benchmark: {len(times['bare'])} runs each in {len(sys.argv) - 3} alternating rounds, "
      "hyperfine -N, as root, medians")
w = max(map(len, median))
print(f"  {'':{w}}  {'per exec':>9}  {'x bare':>6}  {'x floor':>7}  {'faults':>6}")
for k, m in median.items():
    print(f"  {k:{w}}  {m * 1e6:6.0f} us  {m / median['bare']:6.2f}  {m / median['floor']:7.2f}"
          f"  {faults.get(k, '-'):>6}")
# The median is the verdict: one stall of a few ms from other load moves a mean, not a median.
for k in median:
    if k.startswith("shim"):
        ratio = median[k] / median["floor"]
        print(f"  goal: {k} <= {goal:.2f}x floor: {'met' if ratio <= goal else 'MISSED'} ({ratio:.2f}x)")
PY

    if $strace; then
        need_pkg strace strace
        for i in "${!cmds[@]}"; do
            echo
            echo "== strace -c -f: one exec of ${names[i]}"
            # shellcheck disable=SC2086  # word splitting wanted, as above
            strace -c -f -o "$work/strace.txt" ${cmds[i]} || die "${names[i]} failed under strace"
            cat "$work/strace.txt"
        done
    fi
}

# Writes the POSIX-sh shim that hermes-shim replaces, for PROGRAM, to FILE (mode 0755).
write_sh_shim() { # FILE PROGRAM
    install -m 0755 /dev/stdin "$1" <<SH
#!/bin/sh
if [ "\$(id -u)" = 0 ]; then
    case "\${HERMES_DOCKER_EXEC_AS_ROOT:-}" in
    1 | true | TRUE | True | yes | YES | Yes) ;;
    *)
        HOME=/opt/data
        export HOME
        exec s6-setuidgid hermes $2 "\$@"
        ;;
    esac
fi
exec $2 "\$@"
SH
}

main() {
    if [[ ${1:-} == --in-namespace ]]; then
        local work=$2
        runs=$3 warmup=$4 rounds=$5 strace=$6 shim=$7
        shift 7
        also=("$@")
        in_namespace "$work"
        return
    fi
    while (($#)); do
        case $1 in
        --runs) runs=${2:?--runs needs a number}; shift 2 ;;
        --warmup) warmup=${2:?--warmup needs a number}; shift 2 ;;
        --rounds) rounds=${2:?--rounds needs a number}; shift 2 ;;
        --strace) strace=true; shift ;;
        --shim) shim=${2:?--shim needs a binary}; shift 2 ;;
        --also) also+=("${2:?--also needs NAME=BINARY}"); shift 2 ;;
        -h | --help) usage; return 0 ;;
        *) die "unknown argument '$1' (try --help)" ;;
        esac
    done
    [[ $runs =~ ^[1-9][0-9]*$ && $rounds =~ ^[1-9][0-9]*$ && $warmup =~ ^[0-9]+$ ]] \
        || die "--runs, --rounds and --warmup take whole numbers (--runs and --rounds >= 1)"
    local a
    for a in "${also[@]}"; do
        [[ $a =~ ^shim[a-z0-9-]*=/ && ! $a =~ ^shim= ]] \
            || die "--also $a: give NAME=/ABSOLUTE/BINARY, NAME starting with 'shim' (not 'shim' itself)"
        [[ -x ${a#*=} ]] || die "--also $a: ${a#*=} is not an executable"
    done
    [[ $(id -u) == 0 ]] || die "must run as root: it measures root dropping to a user (try: sudo $me)"

    need_pkg hyperfine hyperfine
    need_pkg s6-setuidgid s6
    need_pkg gosu gosu
    need_pkg setpriv util-linux
    need_pkg unshare util-linux
    need_pkg gcc gcc
    # gcc -static needs libc.a.
    [[ $(gcc -print-file-name=libc.a) == /* ]] || install_pkgs libc6-dev
    need_pkg /usr/bin/python3 python3

    cd "$(dirname "$self")/../.."
    if [[ -z $shim ]]; then
        # The binary the image ships: release, linked static (docker/build-shim.sh).
        shim=$(docker/build-shim.sh) || die "docker/build-shim.sh failed"
    fi
    [[ $shim == /* ]] || shim=$PWD/$shim
    [[ -x $shim ]] || die "$shim missing or not executable"

    # 0755 from its creation: hermes (uid 10000) runs the programs in it.
    local work
    work=$(temp_dir /tmp hermes-shim-bench 0755) || die "cannot make a directory in /tmp"
    # shellcheck disable=SC2064  # expand now: $work is local
    trap "rm -rf --one-file-system '$work'" EXIT
    mkdir "$work/bin"
    # The machine may have its own uid 10000 or hermes; the namespace sees only ours.
    grep -Ev '^hermes:|^[^:]*:[^:]*:10000:' /etc/passwd >"$work/passwd" || true
    echo 'hermes:x:10000:10000:Hermes Agent:/opt/data:/bin/sh' >>"$work/passwd"
    grep -Ev '^hermes:|^[^:]*:[^:]*:10000:' /etc/group >"$work/group" || true
    echo 'hermes:x:10000:' >>"$work/group"

    # The floor: static like the shim, and doing nothing but the exec every wrapper ends with.
    cat >"$work/floor.c" <<'C'
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2)
        return 127;
    execv(argv[1], argv + 1);
    return 127;
}
C
    gcc -static -O2 -o "$work/bin/floor" "$work/floor.c" || die "gcc -static failed on the floor program"

    # Each hermes-shim binary gets its own directory of symlinks: the shim dispatches on its name.
    local name bin
    for a in "shim=$shim" "${also[@]}"; do
        name=${a%%=*} bin=${a#*=}
        mkdir "$work/$name"
        ln -s "$bin" "$work/$name/true"
        ln -s "$bin" "$work/$name/id"
    done
    write_sh_shim "$work/bin/true-sh" /bin/true
    write_sh_shim "$work/bin/id-sh" /bin/id

    unshare --mount --propagation private -- \
        "$BASH" "$self" --in-namespace "$work" "$runs" "$warmup" "$rounds" "$strace" "$shim" "${also[@]}"
}

main "$@"
