#!/usr/bin/python3
# Listens on each socket path given, as dockerd would, for an hour.
import os, socket, sys, time
socks = []
for path in sys.argv[1:]:
    s = socket.socket(socket.AF_UNIX)
    os.umask(0o117)  # the socket is made 0660, as dockerd makes its own
    s.bind(path)
    s.listen(8)
    socks.append(s)
print("listening", flush=True)
time.sleep(3600)
