#!/usr/bin/python3
# Records whether stdin is a terminal and, if so, whether this process's group is its foreground.
import os, sys
out = sys.argv[1]
tty = os.isatty(0)
fg = tty and os.tcgetpgrp(0) == os.getpgrp()
with open(out + "/fg", "w") as f:
    f.write("tty=%d fg=%d" % (tty, fg))
