#!/usr/bin/python3
import os, sys
roots = os.stat(sys.argv[1]).st_rdev
# The controlling terminal's device (0: none), field 7 of /proc/self/stat.
nr = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[4])
ctty = os.makedev((nr >> 8) & 0xfff, (nr & 0xff) | ((nr >> 12) & 0xfff00)) if nr else 0
stdin = os.fstat(0).st_rdev if os.isatty(0) else 0
status = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
print("WHOSE uid=%d stdin-is-roots=%s ctty=%s ctty-is-roots=%s filters=%s" % (
    os.getuid(), stdin == roots, nr != 0, ctty == roots,
    status.get("Seccomp_filters", "?").strip()), flush=True)
