# Root's interactive `sh -i` on a fresh pty, driven by the steps in argv[2:]; the whole terminal
# transcript goes to argv[1]. Steps:
#   type:TEXT   types TEXT and Enter
#   until:TEXT  reads the terminal until TEXT shows in what it printed since the step began
#   prompt      the same for the shell's prompt: the shell is back, reading commands
#   file:PATH   reads the terminal until PATH exists and is not empty
#   raw, cooked reads the terminal until its modes are raw (no ICANON, no ECHO) or cooked (both)
#   winsize:RxC, intr (Ctrl-C), susp (Ctrl-Z)
# The terminal echoes what is typed, so a marker for `until` must be one only the command prints
# (`echo end-$((1+1))`, then `until:end-2`). A wait that times out says so on stderr and leaves
# the later steps out: the run has already gone wrong, and the test's own checks say how.
import fcntl, os, pty, select, struct, sys, termios, time
# A prompt of the driver's own, which no test types and no program prints.
PROMPT = "[root-prompt]# "
LIMIT = 20.0
for step in sys.argv[2:]:
    if step.partition(":")[0] not in ("type", "until", "prompt", "file", "raw", "cooked", "winsize", "intr", "susp"):
        sys.exit("pty_driver: unknown step %r" % step)
pid, fd = pty.fork()
if pid == 0:
    os.environ["PS1"] = PROMPT
    os.execv("/bin/sh", ["sh", "-i"])
seen = bytearray()
def drain(secs, done=lambda since: False):
    # Reads the terminal into `seen` until done(where this call began reading) holds (checked
    # at least every 20 ms, for files that nothing printed announces), until secs pass, or until
    # the terminal closes; returns whether done held.
    since = len(seen)
    end = time.monotonic() + secs
    while not done(since):
        left = end - time.monotonic()
        if left <= 0:
            return False
        if select.select([fd], [], [], min(left, 0.02))[0]:
            try:
                data = os.read(fd, 4096)
            except OSError:
                return done(since)
            if not data:
                return done(since)
            seen.extend(data)
    return True
def shows(text):
    return lambda since: text.encode() in seen[since:]
def written(path):
    def done(_):
        try:
            return os.stat(path).st_size > 0
        except OSError:
            return False
    return done
def modes(raw):
    # The master's termios calls act on the slave: root's terminal as its programs see it.
    both = termios.ICANON | termios.ECHO
    def done(_):
        return termios.tcgetattr(fd)[3] & both == (0 if raw else both)
    return done
def timed_out(what):
    sys.stderr.write("pty_driver: %s: not there after %g s; later steps left out\n" % (what, LIMIT))
# The shell's first prompt, before any step: typed at once, a first line would be echoed
# before it, and a `prompt` step after that line would take this one for the line's end.
if not drain(LIMIT, shows(PROMPT)):
    timed_out("the first prompt")
else:
    for step in sys.argv[2:]:
        kind, _, arg = step.partition(":")
        done = None
        if kind == "type":
            os.write(fd, arg.encode() + b"\n")
        elif kind == "until":
            done = shows(arg)
        elif kind == "prompt":
            done = shows(PROMPT)
        elif kind == "file":
            done = written(arg)
        elif kind in ("raw", "cooked"):
            done = modes(kind == "raw")
        elif kind == "winsize":
            rows, cols = (int(n) for n in arg.split("x"))
            fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        elif kind == "intr":
            os.write(fd, b"\x03")
        elif kind == "susp":
            os.write(fd, b"\x1a")
        if done and not drain(LIMIT, done):
            timed_out(step)
            break
os.write(fd, b"exit\n")
# Until the shell's end closes the terminal (or a process left behind holds it for a second).
drain(1.0)
try:
    os.kill(pid, 9)
except ProcessLookupError:
    pass
os.waitpid(pid, 0)
with open(sys.argv[1], "wb") as f:
    f.write(seen)
