#!/usr/bin/python3
"""Generate a benchmark tree shaped like a real HERMES_HOME, for tests/bench/fix-ownership.sh.

The tree holds exactly --entries entries (the root included): venv-like package trees of many
small files, sessions/ with many JSON files, skill directories 20-40 levels deep, caches and
logs, and symlinks (inside and outside the tree, some dangling). No hardlinks and no devices,
so fix-ownership and `chown -R` have exactly the same work to do.

Everything is created owned by UID:GID (we run with that effective uid/gid, which is much
faster than a chown per entry). The tree is left clean; --damage-list receives, NUL-separated,
the absolute paths of --damage entries picked uniformly at random (fixed seed) that the
benchmark turns root:root before each cold run. Files are empty: the sweep only reads
metadata, and empty files cost no data blocks, so generation stays fast and small on disk.

Run it only where a mistake cannot reach the host: the benchmark runs it in a private mount
namespace, on a fresh tmpfs, with every other mount read-only. It changes the owner of nothing
but the ROOT it creates, and then creates everything as UID:GID.

GENERATOR_VERSION names the shape (--version); bump it whenever the shape changes.
"""

import argparse
import os
import random
import sys
import time

GENERATOR_VERSION = 1


class Full(Exception):
    """The current section has used up its share of entries."""


class Tree:
    """Creates entries relative to the current directory (the tree root), counting each."""

    def __init__(self, entries, damage, seed):
        self.entries = entries
        self.limit = 0
        self.count = 0
        self.rng = random.Random(seed)
        self.damaged = set(self.rng.sample(range(entries), damage))
        self.damage_paths = []
        self.stats = {"dirs": 0, "files": 0, "symlinks": 0, "max_depth": 0}

    def _take(self, rel, kind):
        if self.count >= self.limit:
            raise Full
        if self.count in self.damaged:
            self.damage_paths.append(rel)
        self.count += 1
        self.stats[kind] += 1
        depth = rel.count("/") + 1
        if depth > self.stats["max_depth"]:
            self.stats["max_depth"] = depth

    def dir(self, rel, mode=0o755):
        self._take(rel, "dirs")
        os.mkdir(rel, mode)

    def file(self, rel, mode=0o644):
        self._take(rel, "files")
        os.close(os.open(rel, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))

    def link(self, target, rel):
        self._take(rel, "symlinks")
        os.symlink(target, rel)

    def section(self, share, fill):
        """Run fill(self) until the running total reaches `share` of all entries."""
        self.limit = min(self.entries, max(self.count, round(self.entries * share)))
        try:
            fill(self)
        except Full:
            pass
        if self.count < self.limit:
            raise SystemExit(f"gen_tree: section {fill.__name__} stopped early")


WORDS = (
    "core utils http client server parse model agent tool cache auth token stream json yaml "
    "config schema types proto event loop task queue worker plugin hook memory session skill "
    "render text image audio vector index store query codec crypto hash signal retry pool"
).split()


def ident(rng):
    return "_".join(rng.sample(WORDS, rng.randint(1, 2)))


def package(t, base, name, depth):
    """A Python package: modules, __pycache__, and nested subpackages."""
    rng = t.rng
    pkg = f"{base}/{name}"
    t.dir(pkg)
    t.file(f"{pkg}/__init__.py")
    mods = list(dict.fromkeys(ident(rng) for _ in range(rng.randint(2, 12))))
    for m in mods:
        t.file(f"{pkg}/{m}.py")
    if rng.random() < 0.1:
        t.file(f"{pkg}/py.typed")
    t.dir(f"{pkg}/__pycache__")
    for m in ["__init__", *mods]:
        t.file(f"{pkg}/__pycache__/{m}.cpython-311.pyc")
    if depth < 4:
        for i in range(rng.choice((0, 0, 1, 2, 3))):
            package(t, pkg, f"{ident(rng)}{i}", depth + 1)


def venv(t, base):
    rng = t.rng
    t.dir(base)
    t.file(f"{base}/pyvenv.cfg")
    t.dir(f"{base}/bin")
    for s in ("activate", "activate.csh", "activate.fish", "Activate.ps1", "pip", "pip3"):
        t.file(f"{base}/bin/{s}", 0o755)
    t.link("/usr/bin/python3", f"{base}/bin/python3")
    t.link("python3", f"{base}/bin/python")
    t.link("python3", f"{base}/bin/python3.11")
    t.dir(f"{base}/include")
    t.dir(f"{base}/lib")
    t.link("lib", f"{base}/lib64")
    t.dir(f"{base}/lib/python3.11")
    sp = f"{base}/lib/python3.11/site-packages"
    t.dir(sp)
    for i in range(rng.randint(60, 220)):
        name = f"{ident(rng)}{i}"
        dist = f"{sp}/{name}-{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}.dist-info"
        t.dir(dist)
        for f in ("METADATA", "RECORD", "WHEEL", "INSTALLER", "top_level.txt"):
            t.file(f"{dist}/{f}")
        if rng.random() < 0.3:
            t.file(f"{dist}/entry_points.txt")
            t.file(f"{base}/bin/{name}", 0o755)
        package(t, sp, name, 1)


def venvs(t):
    n = 0
    while True:
        venv(t, f"venvs/env-{n:03d}")
        n += 1


def sessions(t):
    rng = t.rng
    t.file("sessions/index.json", 0o600)
    shard = 0
    while True:
        d = f"sessions/2025-{shard % 12 + 1:02d}-{shard // 12:02d}"
        t.dir(d, 0o700)
        for i in range(rng.randint(3000, 8000)):
            t.file(f"{d}/session_{shard:03d}{i:05d}_{rng.getrandbits(24):06x}.json", 0o600)
        shard += 1


def deep_skills(t):
    """Skills whose directories nest 20-40 levels below the tree root."""
    rng = t.rng
    for c in range(1, 10**9):
        cat = f"skills/category-{c:03d}"
        t.dir(cat)
        for s in range(rng.randint(3, 8)):
            skill = f"{cat}/skill-{s:02d}"
            t.dir(skill)
            t.file(f"{skill}/SKILL.md")
            t.link("lvl", f"{skill}/latest")
            if rng.random() < 0.2:
                t.link("/nonexistent/hermes/asset", f"{skill}/broken")
            d = skill
            for lvl in range(rng.randint(20, 40) - 3):
                d = f"{d}/lvl"
                t.dir(d)
                for f in range(rng.randint(1, 4)):
                    t.file(f"{d}/step{f}.md")
                if rng.random() < 0.3:
                    side = f"{d}/side{lvl}"
                    t.dir(side)
                    for f in range(rng.randint(1, 6)):
                        t.file(f"{side}/data{f}.json")
                if rng.random() < 0.05:
                    t.link("..", f"{d}/up")


def misc(t):
    rng = t.rng
    for i in range(rng.randint(1, 30)):
        t.file(f"logs/agent.log.{i}", 0o600)
    for i in range(rng.randint(10, 200)):
        t.file(f"memories/memory-{i:04d}.md", 0o600)
    for i in range(rng.randint(5, 50)):
        t.file(f"cron/job-{i:03d}.json", 0o600)
    for i in range(rng.randint(1, 20)):
        t.file(f"pairing/device-{i:03d}.json", 0o600)
    for i in range(rng.randint(1, 20)):
        t.file(f"hooks/hook-{i:03d}.py", 0o700)
    shards = [f"{a:02x}" for a in range(256)]
    for cache in ("image_cache", "audio_cache"):
        for s in shards:
            t.dir(f"{cache}/{s}", 0o700)
    ext = {"image_cache": "png", "audio_cache": "ogg"}
    n = 0
    while True:
        cache = "image_cache" if n % 4 else "audio_cache"
        t.file(f"{cache}/{rng.choice(shards)}/{n:08x}.{ext[cache]}", 0o600)
        n += 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", help="directory to create (must not exist)")
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--damage", type=int, help="entries listed for damage (default entries/10)")
    ap.add_argument("--damage-list", required=True, help="file receiving NUL-separated paths")
    ap.add_argument("--uid", type=int, default=10000)
    ap.add_argument("--gid", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=20250101)
    ap.add_argument("--version", action="version", version=str(GENERATOR_VERSION))
    a = ap.parse_args()
    if a.entries < 2000:
        ap.error("--entries must be at least 2000")
    damage = a.entries // 10 if a.damage is None else a.damage
    if not 0 <= damage <= a.entries:
        ap.error("--damage must be between 0 and --entries")

    root = os.path.abspath(a.root)
    if os.path.lexists(root):
        raise SystemExit(f"gen_tree: {root} already exists")
    t0 = time.monotonic()
    listing = open(a.damage_list, "wb")
    t = Tree(a.entries, damage, a.seed)
    t.limit = 1
    t._take(".", "dirs")
    os.mkdir(root, 0o755)
    os.chown(root, a.uid, a.gid)
    # Every path below is relative to the root, so once we run as uid 10000 nothing above it
    # (such as root's 0700 home holding ~/.cache) has to be searchable by that uid.
    os.chdir(root)
    os.umask(0o022)
    if os.geteuid() == 0 and (a.uid, a.gid) != (0, 0):
        # Creating as the owner is several times faster than a chown per entry.
        os.setegid(a.gid)
        os.seteuid(a.uid)
    base_entries(t)
    t.section(0.52, venvs)
    t.section(0.77, sessions)
    t.section(0.90, deep_skills)
    t.section(1.0, misc)
    assert t.count == a.entries, (t.count, a.entries)
    for rel in t.damage_paths:
        p = root if rel == "." else f"{root}/{rel}"
        listing.write(p.encode() + b"\0")
    listing.close()
    s = t.stats
    print(f"gen_tree v{GENERATOR_VERSION}: {root}: {t.count} entries ({s['dirs']} dirs, "
          f"{s['files']} files, {s['symlinks']} symlinks), max depth {s['max_depth']}, "
          f"{len(t.damage_paths)} listed for damage; {time.monotonic() - t0:.1f} s",
          file=sys.stderr)


def base_entries(t):
    """The top-level files and directories (the root itself is already made)."""
    t.limit = t.entries
    try:
        base_files(t)
    except Full:
        raise SystemExit("gen_tree: too few entries for the base layout")


def base_files(t):
    for f, mode in (("config.yaml", 0o600), ("SOUL.md", 0o644), ("auth.json", 0o600),
                    ("state.db", 0o644), ("state.db-wal", 0o644), ("gateway.lock", 0o644),
                    (".env", 0o600)):
        t.file(f, mode)
    for d in ("cron", "hooks", "logs", "memories", "pairing", "sessions", "skills",
              "image_cache", "audio_cache"):
        t.dir(d, 0o700)
    t.dir("venvs", 0o755)
    t.file("logs/agent.log", 0o600)
    t.file("logs/errors.log", 0o600)


if __name__ == "__main__":
    main()
