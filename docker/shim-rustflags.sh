#!/usr/bin/env bash
# The rustc flags of the release shim, one a line: the one place they are written, for
# docker/build-shim.sh and the Dockerfile's builder stage (docker/build-shim.sh says why each).
#
# Usage: docker/shim-rustflags.sh [--keep-symbols] [--order FILE --strict|--lenient]
#   --keep-symbols  leave the symbols in (docker/shim-order.sh reads their names)
#   --order FILE    have lld lay the functions out in FILE's order (docker/shim-order.txt)
#   --strict        a name in FILE that the binary does not define fails the link: the list
#                   must match this toolchain and this source (docker/build-shim.sh, CI)
#   --lenient       such names are skipped in silence (the Dockerfile, whose rust image moves
#                   on and with it every symbol's hash)
set -euo pipefail
keep="" order="" mode=""
while [ $# -gt 0 ]; do
    case "$1" in
        --keep-symbols) keep=1 ;;
        --order) order="${2:?--order needs a file}"; shift ;;
        --strict | --lenient) mode="$1" ;;
        *) echo "usage: $0 [--keep-symbols] [--order FILE --strict|--lenient]" >&2; exit 2 ;;
    esac
    shift
done
if [ -n "$order" ] && [ -z "$mode" ]; then
    echo "$0: --order needs --strict or --lenient" >&2
    exit 2
fi
echo "-Ctarget-feature=+crt-static"
echo "-Crelocation-model=static"
[ -n "$keep" ] || echo "-Cstrip=symbols"
if [ -n "$order" ]; then
    echo "-Clink-arg=-Wl,--symbol-ordering-file=$order"
    case "$mode" in
        --strict) echo "-Clink-arg=-Wl,--fatal-warnings" ;;
        --lenient) echo "-Clink-arg=-Wl,--no-warn-symbol-ordering" ;;
    esac
fi
