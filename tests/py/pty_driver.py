import fcntl, os, pty, select, struct, sys, termios, time
pid, fd = pty.fork()
if pid == 0:
    os.execv("/bin/sh", ["sh", "-i"])
seen = bytearray()
def drain(secs):
    end = time.time() + secs
    while True:
        left = end - time.time()
        if left <= 0:
            return
        if select.select([fd], [], [], left)[0]:
            try:
                data = os.read(fd, 4096)
            except OSError:
                return
            if not data:
                return
            seen.extend(data)
for step in sys.argv[2:]:
    kind, _, arg = step.partition(":")
    if kind == "type":
        os.write(fd, arg.encode() + b"\n")
    elif kind == "wait":
        drain(float(arg))
    elif kind == "winsize":
        rows, cols = (int(n) for n in arg.split("x"))
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    elif kind == "intr":
        os.write(fd, b"\x03")
    elif kind == "susp":
        os.write(fd, b"\x1a")
os.write(fd, b"exit\n")
drain(1.0)
try:
    os.kill(pid, 9)
except ProcessLookupError:
    pass
os.waitpid(pid, 0)
with open(sys.argv[1], "wb") as f:
    f.write(seen)
