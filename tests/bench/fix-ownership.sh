#!/usr/bin/env bash
# Benchmark (not a test): `hermes-shim fix-ownership` against the tools it replaces, in one run.
#
# On a generated tree shaped like a real HERMES_HOME (tests/bench/gen_tree.py: venv-like package
# trees, sessions/ full of JSON files, skill directories 20-40 levels deep, symlinks), all owned
# by 10000:10000, it measures with hyperfine -N (medians; the tree is in memory):
#   warm  nothing to change:  fix-ownership PATH --user 10000:10000
#                         vs  find PATH -xdev ( -uid 0 -o -gid 0 ) -print   (output dropped)
#   cold  N/10 entries root:root, re-damaged before every run (not timed):
#                             fix-ownership PATH --user 10000:10000
#                         vs  chown -R --from=0:0 10000:10000 PATH
# and our peak RSS (/usr/bin/time -v). Goals: warm <= 0.8x find, cold <= 1.0x chown -R,
# peak RSS <= 16 MiB.
#
# It changes owners as root, so the tree exists only in a private mount namespace (unshare -m),
# on a fresh tmpfs mounted over /tmp there after every other mount of that namespace was made read-only:
# whatever leaves the tree (a followed symlink, a wrong path) meets EROFS, never a host file, and
# the tree is gone with the namespace. It is generated anew each run (its time is printed).
#
# Usage: tests/bench/fix-ownership.sh [--entries N] [--runs N] [--walk auto|openat2|fallback]
#                                     [--strace]                           (as root)
#   --entries N   tree size (default 1000000; smaller for a quick run)
#   --runs N      timed runs per command (default 10 warm, half that cold)
#   --walk MODE   pass --walk MODE to fix-ownership (default: its own choice)
#   --strace      also print `strace -c -f` syscall summaries of ours and each peer
set -euo pipefail

me=tests/bench/fix-ownership.sh
self=$(readlink -f "${BASH_SOURCE[0]}")
# shellcheck source=tests/lib.sh
. "$(dirname "$self")/../lib.sh"
LOG_PREFIX=$me
entries=1000000
runs=10
walk=
strace=false
uid=10000
gid=10000
goal_warm=0.8
goal_cold=1.0
goal_rss_kib=$((16 * 1024))

usage() {
    sed -n '2,/^set -euo/{/^set/d;s/^# \{0,1\}//;p}' "$self"
}

# Owner census of the whole tree: "COUNT UID:GID" lines.
census() {
    find "$tree" -xdev -printf '%U:%G\n' | sort | uniq -c | sed 's/^ *//'
}

# The benchmark is only meaningful if each contender leaves the whole tree clean.
expect_clean() { # WHO
    local got
    got=$(census)
    [[ $got == "$entries $uid:$gid" ]] || die "after $1 the tree is not all $uid:$gid: $(tr '\n' ' ' <<<"$got")"
}

damage() {
    xargs -0 -a "$damage_list" chown -h 0:0
}

# Peak RSS in KiB of one run of "$@" (its stderr is kept in $work/last.err).
peak_rss() {
    /usr/bin/time -v -o "$work/time.txt" "$@" >"$work/last.out" 2>"$work/last.err" \
        || die "$* failed: $(tail -n 3 "$work/last.err")"
    sed -n 's/^\s*Maximum resident set size (kbytes): //p' "$work/time.txt"
}

strace_summary() { # TITLE COMMAND...
    local title=$1
    shift
    echo
    echo "== strace -c -f: $title"
    strace -c -f -o "$work/strace.txt" "$@" >/dev/null 2>"$work/last.err" \
        || die "$* failed under strace: $(tail -n 3 "$work/last.err")"
    cat "$work/strace.txt"
}

# Prints "median_s mean_s stddev_s" for each command of a hyperfine JSON export, in order.
medians() {
    /usr/bin/python3 -c '
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(r["median"], r["mean"], r["stddev"])
' "$1"
}

verdict() { # VALUE GOAL
    awk -v v="$1" -v g="$2" 'BEGIN { print (v <= g) ? "met" : "MISSED" }'
}

# Runs inside `unshare -m`: read-only mounts, the tmpfs, the tree, the measurements, the report.
in_namespace() { # MOUNTPOINT BINARY
    local mnt=$1 bin=$2
    # shellcheck disable=SC2119 # no file system type is kept writable here
    seal_mounts
    # Over /tmp itself, which hides the host's /tmp here: the tree then has no ancestor another
    # user can write (fix-ownership refuses such a root), and $mnt is made anew on it.
    mount -t tmpfs -o size=1g,mode=0755 hermes-shim-bench /tmp
    [[ $(stat -f -c %T /tmp) == tmpfs && $(findmnt -no OPTIONS --mountpoint /tmp) == rw,* ]] \
        || die "/tmp is not a writable tmpfs in the namespace"
    mkdir -m 0700 "$mnt"
    work=$mnt/work
    tree=$mnt/tree
    damage_list=$work/damage.list
    mkdir -m 0700 "$work"
    # Everything else is read-only now: sort and the rest spill here.
    export TMPDIR=$work

    local t0
    t0=$(date +%s%N)
    log "generating $entries entries in $tree (tmpfs, private mount namespace)"
    /usr/bin/python3 "$(dirname "$self")/gen_tree.py" "$tree" --entries "$entries" --uid "$uid" \
        --gid "$gid" --damage-list "$damage_list"
    local gen_ms=$((($(date +%s%N) - t0) / 1000000))
    local damaged
    damaged=$(tr -cd '\0' <"$damage_list" | wc -c)
    expect_clean "generating the tree"

    local ours=("$bin" fix-ownership "$tree" --user "$uid:$gid")
    [[ -z $walk ]] || ours+=(--walk "$walk")
    local find_cmd=(find "$tree" -xdev "(" -uid 0 -o -gid 0 ")" -print)
    local chown_cmd=(chown -R --from=0:0 "$uid:$gid" "$tree")
    local cold_runs=$(((runs + 1) / 2))

    # Correctness and peak RSS first: one run each under /usr/bin/time -v.
    local rss_warm rss_cold rss_find rss_chown summary_warm summary_cold backend scanned changed
    rss_warm=$(peak_rss "${ours[@]}" --json)
    summary_warm=$(tail -n 1 "$work/last.err")
    backend=$(/usr/bin/python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["walk"], j["scanned"], j["changed"])' \
        <"$work/last.out") || die "fix-ownership --json printed no JSON object: $(head -c 300 "$work/last.out")"
    read -r backend scanned changed <<<"$backend"
    [[ $changed == 0 ]] || die "the warm run changed $changed entries, expected 0"
    [[ $scanned == "$entries" ]] || log "note: fix-ownership scanned $scanned entries; the tree holds $entries"
    rss_find=$(peak_rss "${find_cmd[@]}")
    damage
    rss_cold=$(peak_rss "${ours[@]}")
    summary_cold=$(tail -n 1 "$work/last.err")
    expect_clean "fix-ownership"
    damage
    rss_chown=$(peak_rss "${chown_cmd[@]}")
    expect_clean "chown -R"

    log "warm: $runs runs each (2 warm-up), hyperfine -N"
    hyperfine -N --style basic --warmup 2 --runs "$runs" --export-json "$work/warm.json" \
        -n fix-ownership "${ours[*]}" -n find "${find_cmd[*]}" >&2
    log "cold: $cold_runs runs each (1 warm-up), $damaged entries made root:root before each (not timed)"
    hyperfine -N --style basic --warmup 1 --runs "$cold_runs" --export-json "$work/cold.json" \
        --prepare "xargs -0 -a $damage_list chown -h 0:0" \
        -n fix-ownership "${ours[*]}" -n "chown -R" "${chown_cmd[*]}" >&2
    expect_clean "the cold runs"

    local w_ours w_find c_ours c_chown x
    { read -r w_ours x x; read -r w_find x x; } < <(medians "$work/warm.json")
    { read -r c_ours x x; read -r c_chown x x; } < <(medians "$work/cold.json")
    local r_warm r_cold
    r_warm=$(awk -v a="$w_ours" -v b="$w_find" 'BEGIN { printf "%.2f", a / b }')
    r_cold=$(awk -v a="$c_ours" -v b="$c_chown" 'BEGIN { printf "%.2f", a / b }')
    local rss_max=$((rss_warm > rss_cold ? rss_warm : rss_cold))
    local -A mib
    for x in rss_warm rss_cold rss_find rss_chown; do
        mib[$x]=$(awk -v k="${!x}" 'BEGIN { printf "%.1f", k / 1024 }')
    done

    echo "fix-ownership benchmark: $tree (tmpfs in a private mount namespace, generated in $((gen_ms / 1000)).$((gen_ms % 1000 / 100)) s)"
    echo "  $entries entries, $damaged root:root in the cold case; walk: $backend; medians of $runs warm / $cold_runs cold runs (hyperfine -N)"
    printf '  warm  fix-ownership %8.3f s   find -uid 0 -o -gid 0 %8.3f s   ratio %sx  goal <= %sx: %s\n' \
        "$w_ours" "$w_find" "$r_warm" "$goal_warm" "$(verdict "$r_warm" "$goal_warm")"
    printf '  cold  fix-ownership %8.3f s   chown -R --from=0:0   %8.3f s   ratio %sx  goal <= %sx: %s\n' \
        "$c_ours" "$c_chown" "$r_cold" "$goal_cold" "$(verdict "$r_cold" "$goal_cold")"
    echo "  peak RSS  fix-ownership warm ${mib[rss_warm]} MiB, cold ${mib[rss_cold]} MiB  goal <= 16 MiB: $(verdict "$rss_max" "$goal_rss_kib")"
    echo "            find ${mib[rss_find]} MiB, chown -R ${mib[rss_chown]} MiB"
    echo "  ours, warm: $summary_warm"
    echo "  ours, cold: $summary_cold"

    if $strace; then
        strace_summary "fix-ownership, warm" "${ours[@]}"
        strace_summary "find, warm" "${find_cmd[@]}"
        damage
        strace_summary "fix-ownership, cold" "${ours[@]}"
        damage
        strace_summary "chown -R, cold" "${chown_cmd[@]}"
        expect_clean "the strace runs"
    fi
}

main() {
    if [[ ${1:-} == --in-namespace ]]; then
        entries=$4 runs=$5 walk=$6 strace=$7
        in_namespace "$2" "$3"
        return
    fi
    while (($#)); do
        case $1 in
        --entries) entries=${2:?--entries needs a number}; shift 2 ;;
        --runs) runs=${2:?--runs needs a number}; shift 2 ;;
        --walk) walk=${2:?--walk needs auto, openat2 or fallback}; shift 2 ;;
        --strace) strace=true; shift ;;
        -h | --help) usage; return 0 ;;
        *) die "unknown argument '$1' (try --help)" ;;
        esac
    done
    if ! [[ $entries =~ ^[1-9][0-9]*$ ]] || ((entries < 2000)); then
        die "--entries takes a whole number >= 2000"
    fi
    [[ $runs =~ ^[1-9][0-9]*$ ]] || die "--runs takes a whole number >= 1"
    [[ -z $walk || $walk =~ ^(auto|openat2|fallback)$ ]] || die "--walk takes auto, openat2 or fallback"
    [[ $(id -u) == 0 ]] || die "must run as root: fix-ownership and chown -R change owners (try: sudo $me)"

    need_pkg hyperfine hyperfine
    need_pkg /usr/bin/time time
    need_pkg /usr/bin/python3 python3
    need_pkg unshare util-linux
    if $strace; then need_pkg strace strace; fi

    cd "$(dirname "$self")/../.."
    # The binary the image ships: release, linked static (docker/build-shim.sh).
    local bin
    bin=$(docker/build-shim.sh) || die "docker/build-shim.sh failed"
    [[ -x $bin ]] || die "$bin missing after the build"

    # A name of our own for the tree's directory (made again on the namespace's /tmp), removed after.
    local mnt
    mnt=$(temp_dir /tmp hermes-shim-bench 0700) || die "cannot make a directory in /tmp"
    # shellcheck disable=SC2064  # expand now: $mnt is local
    trap "rmdir '$mnt'" EXIT
    unshare --mount --propagation private -- \
        "$BASH" "$self" --in-namespace "$mnt" "$bin" "$entries" "$runs" "$walk" "$strace"
}

main "$@"
