import os, sys
home, status = sys.argv[1:3]
names = [os.path.join(home, "d%d" % i) for i in range(64)]
n = 0
while True:
    n += 1
    for d in names:
        try:
            os.mkdir(d)
            os.mkdir(d + "/e")
        except OSError:
            pass
    for d in names:
        try:
            os.rmdir(d + "/e")
            os.rmdir(d)
        except OSError:
            pass
    if n == 3:
        open(status, "w").close()
