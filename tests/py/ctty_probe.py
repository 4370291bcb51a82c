#!/usr/bin/python3
import errno, os, sys
try:
    os.close(os.open("/dev/tty", os.O_RDWR))
    result = "opened"
except OSError as e:
    result = errno.errorcode.get(e.errno, str(e.errno))
with open(sys.argv[1] + "/ctty", "w") as f:
    f.write(result)
