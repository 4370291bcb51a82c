import os, random, sys
home, out, own, status, seed = sys.argv[1:6]
random.seed(int(seed))
outs = [out, out + "/a", out + "/a/b", out + "/f", out + "/a/g", out + "/a/b/h"]
mine = [own + "/mine0", own + "/mine1"]
uid = os.getuid()
tally = {"swap": 0, "rename": 0, "link": 0, "symlink": 0, "prune": 0}
dirs = [home]

def rescan():
    found = [home]
    for dp, dns, fns in os.walk(home):
        for d in dns:
            q = os.path.join(dp, d)
            try:
                if os.lstat(q).st_uid == uid:
                    found.append(q)
            except OSError:
                pass
    return found

n = 0
while True:
    n += 1
    if n % 64 == 1:
        try:
            dirs = rescan()
        except OSError:
            dirs = [home]
        with open(status + ".tmp", "w") as f:
            f.write(" ".join("%s=%d" % kv for kv in sorted(tally.items())))
        os.rename(status + ".tmp", status)
    try:
        x = random.choice(dirs)
        names = os.listdir(x)
        op = random.randrange(8)
        if op < 4:
            subs = [m for m in names
                    if os.path.isdir(os.path.join(x, m)) and not os.path.islink(os.path.join(x, m))]
            if not subs:
                continue
            a = os.path.join(x, random.choice(subs))
            t = os.path.join(x, ".sw%d" % n)
            for _ in range(16):
                os.rename(a, t)
                os.symlink(random.choice(outs), a)
                tally["swap"] += 1
                os.unlink(a)
                os.rename(t, a)
        elif op == 4:
            if names:
                a = os.path.join(x, random.choice(names))
                os.rename(a, os.path.join(random.choice(dirs), "mv%d" % n))
                tally["rename"] += 1
        elif op == 5:
            src = random.choice(mine + outs + [os.path.join(x, m) for m in names])
            try:
                os.link(src, os.path.join(x, "hl%d" % n))
                tally["link"] += 1
            except OSError:
                pass
        elif op == 6:
            os.symlink(random.choice(outs), os.path.join(x, "ln%d" % n))
            tally["symlink"] += 1
        else:
            for m in names:
                if m.startswith(("hl", "ln")) and random.random() < 0.5:
                    os.unlink(os.path.join(x, m))
                    tally["prune"] += 1
    except OSError:
        pass
