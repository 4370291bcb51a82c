#!/usr/bin/python3
import sys
out = sys.argv[1]
for name in ("first", "second"):
    print("want-" + name, flush=True)
    line = sys.stdin.readline()
    with open(out + "/" + name, "w") as f:
        f.write(line)
sys.exit(42)
