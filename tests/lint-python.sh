#!/usr/bin/env bash
# The Python programs the Rust tests run (tests/py/, included with include_str!): each compiles
# under Debian's python3, and pyflakes (Debian's pyflakes3, installed if missing) finds nothing in
# them: no unused or undefined name, no import that hides another.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.sh
. tests/lib.sh
LOG_PREFIX=lint-python
/usr/bin/python3 -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("pyflakes") is None)' ||
    install_pkgs pyflakes3
files=(tests/py/*.py)
for f in "${files[@]}"; do
    /usr/bin/python3 -c 'import sys; compile(open(sys.argv[1]).read(), sys.argv[1], "exec")' "$f"
done
/usr/bin/python3 -m pyflakes "${files[@]}"
log "${#files[@]} programs compile and pyflakes finds nothing"
