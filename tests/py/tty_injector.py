#!/usr/bin/python3
import errno, fcntl, os, sys, termios
out = sys.argv[1]
with open(out + "/seccomp", "w") as f:
    f.write([l for l in open("/proc/self/status") if l.startswith("Seccomp:")][0].split()[1])
try:
    fd = os.open("/dev/tty", os.O_RDWR)
    for b in ("id -u > %s/pwned\n" % out).encode():
        fcntl.ioctl(fd, termios.TIOCSTI, bytes([b]))
    result = "injected"
except OSError as e:
    result = errno.errorcode.get(e.errno, str(e.errno))
with open(out + "/tiocsti", "w") as f:
    f.write(result)
