//! A model-based test of the sweep: seeded random trees (every file type, symlinks in and out,
//! hard links inside and to outside files, devices, a bind mount and a tmpfs inside, excludes,
//! mode-000 directories, `--also-from`, names with every byte but `/` and NUL), and a model
//! written from the README's rules alone that says which owner every inode must have afterwards,
//! what `--verbose` must list and what the JSON must count. Each tree is swept for real, by the
//! backend the test is named after, in a mount namespace of its own.
//!
//! `HERMES_SHIM_MODEL_TREES=N` sets how many trees each backend sweeps; a failure prints the
//! line that replays exactly its tree (`HERMES_SHIM_MODEL_SEED=…`).
//!
//! Safety: every symlink leads into the tree, into the test's own outside tree or nowhere;
//! random symlink targets hold no `/`. Mounts live in the namespace of one `unshare -m`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, lchown, symlink};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use nix::sys::stat::{Mode, SFlag, makedev, mknod};

use common::fix::{Out, PREFIX, clean_cmd, per_walk, run_cmd};
use common::report::{Counts, report, verbose};
use common::{TempDir, require};

/// The target uid; the gid varies per tree.
const TARGET_UID: u32 = 10000;
/// Ids of a user before a remap (`--also-from`); held by no account here.
const OLD: (u32, u32) = (20000, 20001);
const TREES: usize = 200;
/// Keeps every path this test builds well below `PATH_MAX` (the sweep itself works by fd).
const MAX_REL: usize = 2400;

/// splitmix64: small, seedable, and the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ty {
    Dir,
    File,
    Symlink,
    Fifo,
    Socket,
    Chr,
    Blk,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MountKind {
    /// `mount --bind` of the outside directory, or of the tree's name with this index.
    Bind(Option<usize>),
    Tmpfs,
}

struct Inode {
    ty: Ty,
    uid: u32,
    gid: u32,
    mode: u32,
    /// A symlink's target.
    target: Vec<u8>,
    /// Every name it has, in the tree and outside it.
    links: u32,
}

/// A name in the tree (relative to its root) or in the outside tree (relative to that).
struct Name {
    rel: PathBuf,
    outside: bool,
    parent: Option<usize>,
    inode: usize,
    mount: Option<MountKind>,
}

/// What the sweep must do with one name it reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Keep,
    Change(u32, u32),
    Skip(&'static str),
}

struct Tree {
    target: (u32, u32),
    also_from: Option<(Option<u32>, Option<u32>)>,
    inodes: Vec<Inode>,
    names: Vec<Name>,
    /// `--exclude` values as given, and those given through `HERMES_SHIM_EXCLUDE`.
    exclude_args: Vec<String>,
    exclude_env: Vec<String>,
    /// The excludes as the README defines them: paths relative to the root.
    excluded: BTreeSet<PathBuf>,
    dry_run_first: bool,
    /// Whether the runs list every change and skip (`--verbose`), or print the summary alone.
    verbose: bool,
}

const OUTSIDE_SECRET: usize = 1;
const OUTSIDE_BIND: usize = 2;

/// A name for a new child: mostly short, often hostile, never `.`, `..`, empty, or holding `/`
/// or NUL; unique among `taken`.
fn gen_name(rng: &mut Rng, taken: &BTreeSet<Vec<u8>>, room: usize) -> Vec<u8> {
    const HOSTILE: &[&[u8]] = &[
        b"a\nb",
        b"a\\nb",
        b"x (device)",
        b"-",
        b"--verbose",
        b" lead",
        b"trail ",
        b"\\",
        b"\\x41",
        b"A",
        b"\xc3\xa9",
        b"e\xcc\x81",
        b"\xe2\x80\xae",
        b"\xff\xfe",
        b"\xe2\x82",
        b"\xe2\x82A",
        b"\x1b[2J",
        b"\r",
        b"\t",
        b"...",
        b".hidden",
        b"y (other owner)",
        b"name:with:colons",
        b"\"q\"",
        b"\x7f",
        b"\xf0\x9f\x98\x80",
        b"\xed\xa0\x80",
        b"\xc0\xaf",
    ];
    loop {
        let name: Vec<u8> = match rng.below(10) {
            0..=4 => {
                let len = 1 + rng.below(8);
                (0..len)
                    .map(|_| rng.pick(b"abcdefghijklmnopqrstuvwxyz0123456789_-."))
                    .collect()
            }
            5..=7 => {
                let len = 1 + rng.below(24);
                (0..len)
                    .map(|_| {
                        loop {
                            let b = u8::try_from(1 + rng.below(255)).unwrap();
                            if b != b'/' {
                                break b;
                            }
                        }
                    })
                    .collect()
            }
            _ => rng.pick(HOSTILE).to_vec(),
        };
        if name.len() <= room && name != b"." && name != b".." && !taken.contains(&name) {
            return name;
        }
    }
}

fn join(parent: &Path, name: &[u8]) -> PathBuf {
    parent.join(OsStr::from_bytes(name))
}

/// Where a new entry goes, and who owns it.
#[derive(Clone, Copy)]
struct At {
    parent: usize,
    outside: bool,
    uid: u32,
    gid: u32,
}

const UIDS: [u32; 9] = [0, 0, 0, 0, TARGET_UID, TARGET_UID, 1000, 65534, OLD.0];
const GIDS: [u32; 8] = [0, 0, 0, 10000, 10001, 50, 1000, OLD.1];

impl Tree {
    fn generate(seed: u64) -> Tree {
        let mut rng = Rng(seed);
        let mut t = Tree {
            target: (TARGET_UID, rng.pick(&[10000, 10001])),
            also_from: match rng.below(10) {
                0 | 1 => Some((Some(OLD.0), Some(OLD.1))),
                2 => Some((Some(OLD.0), None)),
                3 => Some((None, Some(OLD.1))),
                _ => None,
            },
            inodes: Vec::new(),
            names: Vec::new(),
            exclude_args: Vec::new(),
            exclude_env: Vec::new(),
            excluded: BTreeSet::new(),
            dry_run_first: rng.chance(20),
            verbose: rng.chance(80),
        };
        // The root: usually root's; the parent the test gives it lets no one else write.
        let (uid, gid) = if rng.chance(80) {
            (0, 0)
        } else {
            (rng.pick(&UIDS), rng.pick(&GIDS))
        };
        let mode = rng.pick(&[0o755, 0o755, 0o700, 0o000, 0o2775]);
        t.root(false, Ty::Dir, (uid, gid, mode));
        // The outside tree: a secret file (hard links and symlinks lead to it) and a directory
        // to bind-mount into the tree. None of it may change.
        t.root(true, Ty::File, (0, 0, 0o600));
        t.root(true, Ty::Dir, (0, 0, 0o755));
        let out = At {
            parent: OUTSIDE_BIND,
            outside: true,
            uid: 0,
            gid: 0,
        };
        t.add(out, b"inner", Ty::Dir, 0o700, None);
        t.add(out, b"f", Ty::File, 0o600, None);

        let mut taken: BTreeMap<usize, BTreeSet<Vec<u8>>> = BTreeMap::new();
        let mut dirs = vec![0];
        let count = 6 + rng.below(50);
        for i in 0..=count {
            let parent = rng.pick(&dirs);
            let used = taken.entry(parent).or_default();
            let room = MAX_REL
                .saturating_sub(t.names[parent].rel.as_os_str().len() + 1)
                .min(255);
            if room < 30 {
                continue;
            }
            // Once per tree, a name holding every byte but `/` and NUL.
            let name = if i == count {
                let mut all: Vec<u8> = (1..=255u8).filter(|&b| b != b'/').collect();
                for k in (1..all.len()).rev() {
                    all.swap(k, rng.below(k + 1));
                }
                all
            } else {
                gen_name(&mut rng, used, room)
            };
            used.insert(name.clone());
            let at = At {
                parent,
                outside: false,
                uid: rng.pick(&UIDS),
                gid: rng.pick(&GIDS),
            };
            if let Some(dir) = t.add_random(&mut rng, at, &name, &dirs)
                && t.depth(dir) < 7
            {
                dirs.push(dir);
            }
        }
        // Now and then a chain deeper than the 32 directory fds a worker keeps open (the deep
        // ones are reopened through `..`), and a directory too big for one getdents buffer
        // (read in several calls, resumed by cookie), at the bottom of the chain or anywhere.
        if rng.chance(15) {
            let top = rng.pick(&dirs);
            let levels = 33 + rng.below(12);
            let bottom = t.add_chain(&mut rng, top, levels);
            if rng.chance(50) {
                t.add_big(&mut rng, bottom);
            }
        }
        if rng.chance(10) {
            let parent = rng.pick(&dirs);
            t.add_big(&mut rng, parent);
        }
        t.choose_excludes(&mut rng);
        t
    }

    /// One random entry named `name`; returns it when it is a directory to put more in.
    fn add_random(&mut self, rng: &mut Rng, at: At, name: &[u8], dirs: &[usize]) -> Option<usize> {
        let nondirs: Vec<usize> = (0..self.names.len())
            .filter(|&n| self.inodes[self.names[n].inode].ty != Ty::Dir)
            .collect();
        match rng.below(100) {
            0..=21 => {
                let mode = rng.pick(&[0o755, 0o700, 0o000, 0o2775, 0o1777, 0o555]);
                return Some(self.add(at, name, Ty::Dir, mode, None));
            }
            22..=45 => {
                let mode = rng.pick(&[0o644, 0o600, 0o000, 0o755, 0o777, 0o444]);
                self.add(at, name, Ty::File, mode, None);
            }
            46..=60 => {
                let target = self.symlink_target(rng, at.parent);
                let n = self.add(at, name, Ty::Symlink, 0o777, None);
                let ino = self.names[n].inode;
                self.inodes[ino].target = target;
            }
            61..=65 => _ = self.add(at, name, Ty::Fifo, 0o640, None),
            66..=70 => _ = self.add(at, name, Ty::Socket, 0o755, None),
            71..=73 => {
                let ty = if rng.chance(50) { Ty::Chr } else { Ty::Blk };
                self.add(at, name, ty, 0o600, None);
            }
            74..=84 if !nondirs.is_empty() => {
                // A second name for an inode: one in the tree (any type but a directory:
                // symlinks, FIFOs and devices can be hard-linked too) or the outside secret.
                let other = if rng.chance(30) {
                    OUTSIDE_SECRET
                } else {
                    rng.pick(&nondirs)
                };
                let inode = self.names[other].inode;
                self.name(at.parent, name, false, inode, None);
            }
            85..=92 => self.add_mount(rng, at.parent, dirs),
            _ => _ = self.add(at, name, Ty::File, 0o640, None),
        }
        None
    }

    /// A chain of `levels` directories below `top`, with an entry beside some of them; returns
    /// the deepest.
    fn add_chain(&mut self, rng: &mut Rng, top: usize, levels: usize) -> usize {
        let mut dir = top;
        for level in 0..levels {
            let at = At {
                parent: dir,
                outside: false,
                uid: rng.pick(&UIDS),
                gid: rng.pick(&GIDS),
            };
            if rng.chance(30) {
                self.add_random(rng, at, format!("e{level}").as_bytes(), &[dir]);
            }
            let mode = rng.pick(&[0o755, 0o700, 0o000]);
            dir = self.add(at, format!("c{level}").as_bytes(), Ty::Dir, mode, None);
        }
        dir
    }

    /// A directory of a few hundred long names in `parent`: more than one getdents buffer.
    fn add_big(&mut self, rng: &mut Rng, parent: usize) {
        let room = MAX_REL.saturating_sub(self.names[parent].rel.as_os_str().len() + 8);
        if room < 300 {
            return;
        }
        let at = At {
            parent,
            outside: false,
            uid: rng.pick(&UIDS),
            gid: rng.pick(&GIDS),
        };
        let big = self.add(
            at,
            format!("big{}", self.names.len()).as_bytes(),
            Ty::Dir,
            0o755,
            None,
        );
        for i in 0..100 + rng.below(300) {
            let mut name = format!("{i:04}-").into_bytes();
            let len = rng.below(room.min(255) - name.len());
            name.extend((0..len).map(|_| rng.pick(b"abcdefghijklmnopqrstuvwxyz")));
            let at = At {
                parent: big,
                outside: false,
                uid: rng.pick(&UIDS),
                gid: rng.pick(&GIDS),
            };
            self.add_random(rng, at, &name, &[big]);
        }
    }

    /// A mount point (a bind mount of the outside directory or of one of the tree's, or a
    /// tmpfs), with a file the mount hides; one of each kind at most. Mount points get plain
    /// names: mount(8) is not what is under test.
    fn add_mount(&mut self, rng: &mut Rng, parent: usize, dirs: &[usize]) {
        let have = |k: MountKind| {
            self.names.iter().any(|n| {
                n.mount
                    .is_some_and(|m| std::mem::discriminant(&m) == std::mem::discriminant(&k))
            })
        };
        let kinds: Vec<MountKind> = [MountKind::Tmpfs, MountKind::Bind(None)]
            .into_iter()
            .filter(|&k| !have(k))
            .collect();
        if kinds.is_empty() {
            return;
        }
        let mut kind = rng.pick(&kinds);
        if kind == MountKind::Bind(None) && rng.chance(50) {
            // A directory of the tree itself, seen a second time at the mount point. Mount
            // points hold no directory, so it is never one a mount hides.
            kind = MountKind::Bind(Some(rng.pick(dirs)));
        }
        let plain = format!("mnt-{}", self.names.len()).into_bytes();
        let root = At {
            parent,
            outside: false,
            uid: 0,
            gid: 0,
        };
        let m = self.add(root, &plain, Ty::Dir, 0o755, Some(kind));
        let hidden = At { parent: m, ..root };
        self.add(hidden, b"hidden", Ty::File, 0o600, None);
    }

    fn depth(&self, mut n: usize) -> usize {
        let mut d = 0;
        while let Some(p) = self.names[n].parent {
            d += 1;
            n = p;
        }
        d
    }

    fn inode(&mut self, ty: Ty, (uid, gid, mode): (u32, u32, u32)) -> usize {
        self.inodes.push(Inode {
            ty,
            uid,
            gid,
            mode,
            target: Vec::new(),
            links: 0,
        });
        self.inodes.len() - 1
    }

    /// The tree's root (the first call) or an entry at the top of the outside tree.
    fn root(&mut self, outside: bool, ty: Ty, owner: (u32, u32, u32)) -> usize {
        let inode = self.inode(ty, owner);
        let rel = match self.names.len() {
            0 => PathBuf::new(),
            OUTSIDE_SECRET => PathBuf::from("secret"),
            _ => PathBuf::from("bindsrc"),
        };
        self.inodes[inode].links += 1;
        self.names.push(Name {
            rel,
            outside,
            parent: None,
            inode,
            mount: None,
        });
        self.names.len() - 1
    }

    fn add(&mut self, at: At, name: &[u8], ty: Ty, mode: u32, mount: Option<MountKind>) -> usize {
        let inode = self.inode(ty, (at.uid, at.gid, mode));
        self.name(at.parent, name, at.outside, inode, mount)
    }

    fn name(
        &mut self,
        parent: usize,
        name: &[u8],
        outside: bool,
        inode: usize,
        mount: Option<MountKind>,
    ) -> usize {
        let rel = join(&self.names[parent].rel, name);
        self.inodes[inode].links += 1;
        self.names.push(Name {
            rel,
            outside,
            parent: Some(parent),
            inode,
            mount,
        });
        self.names.len() - 1
    }

    /// A symlink target for a link in `parent`: inside, out (absolute, or by `..` into the
    /// outside tree), dangling, a loop, or random bytes without `/`. Outside targets are filled
    /// in with the outside tree's path when the tree is built (`@OUT@`).
    fn symlink_target(&self, rng: &mut Rng, parent: usize) -> Vec<u8> {
        let up = "../".repeat(self.depth(parent) + 1);
        match rng.below(8) {
            0 => b"@OUT@/secret".to_vec(),
            1 => b"@OUT@/bindsrc".to_vec(),
            2 => format!("{up}@OUTNAME@/secret").into_bytes(),
            // `..` only where it stays in the tree: from the root it would name the temp
            // directory every test shares.
            3 if parent != 0 => b"..".to_vec(),
            4 => b"no/such/target".to_vec(),
            5 => b".".to_vec(),
            _ => {
                let len = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        loop {
                            let b = u8::try_from(1 + rng.below(255)).unwrap();
                            if b != b'/' {
                                break b;
                            }
                        }
                    })
                    .collect();
                if bytes == b".." { b"x".to_vec() } else { bytes }
            }
        }
    }

    /// Up to three excludes, spelt as an operator might (`./a`, `a//b`, `a/`), of names that are
    /// UTF-8 (the options are text), and at times one that names nothing.
    fn choose_excludes(&mut self, rng: &mut Rng) {
        let candidates: Vec<usize> = (1..self.names.len())
            .filter(|&n| !self.names[n].outside && self.names[n].rel.to_str().is_some())
            .collect();
        if candidates.is_empty() {
            return;
        }
        for _ in 0..rng.below(4) {
            let n = rng.pick(&candidates);
            let rel = self.names[n].rel.to_str().unwrap().to_string();
            let spelt = match rng.below(4) {
                0 => format!("./{rel}"),
                1 => format!("{rel}/"),
                2 => rel.replacen('/', "//", 1),
                _ => rel.clone(),
            };
            self.excluded.insert(self.names[n].rel.clone());
            if !spelt.contains(':') && rng.chance(40) {
                self.exclude_env.push(spelt);
            } else {
                self.exclude_args.push(spelt);
            }
        }
        if rng.chance(10) {
            self.exclude_args.push("no-such/entry".into());
        }
    }

    /// The rule of the README: a device is left alone; an entry of another uid than root, the
    /// target and the previous uid is left whole; otherwise owner uid 0 (or the previous uid)
    /// becomes the target uid and group 0 (or the previous gid) the target gid, independently;
    /// a non-directory with more than one link that would change is left alone.
    fn rule(&self, inode: &Inode) -> Verdict {
        if matches!(inode.ty, Ty::Chr | Ty::Blk) {
            return Verdict::Skip("device");
        }
        let from = self.also_from.unwrap_or((None, None));
        let moves_uid = inode.uid == 0 || Some(inode.uid) == from.0;
        if !moves_uid && inode.uid != self.target.0 {
            return Verdict::Skip("other owner");
        }
        let uid = if moves_uid { self.target.0 } else { inode.uid };
        let gid = if inode.gid == 0 || Some(inode.gid) == from.1 {
            self.target.1
        } else {
            inode.gid
        };
        if (uid, gid) == (inode.uid, inode.gid) {
            return Verdict::Keep;
        }
        if inode.ty != Ty::Dir && inode.links > 1 {
            return Verdict::Skip("hardlinked");
        }
        Verdict::Change(uid, gid)
    }

    /// The excluded entries the README says a WARNING names: ones the sweep would otherwise
    /// change (root's, or the previous ids', not already the target's), that are no mount
    /// point, below a directory the target can write once the sweep is done (its owner, or
    /// write and search for its group or for others), so that it could rename them out of the
    /// exclusion.
    fn must_warn(&self, verdicts: &BTreeMap<usize, Verdict>) -> Vec<usize> {
        let owner_after = |d: usize| {
            if let Some(Verdict::Change(uid, gid)) = verdicts.get(&d) {
                return (*uid, *gid);
            }
            let i = &self.inodes[self.names[d].inode];
            (i.uid, i.gid)
        };
        let writable = |d: usize| {
            let (uid, gid) = owner_after(d);
            let mode = self.inodes[self.names[d].inode].mode;
            let bits = if gid == self.target.1 {
                mode >> 3
            } else {
                mode
            };
            uid == self.target.0 || bits & 0o3 == 0o3
        };
        let mut out = Vec::new();
        for (&n, v) in verdicts {
            let inode = &self.inodes[self.names[n].inode];
            if *v != Verdict::Skip("excluded")
                || self.names[n].mount.is_some()
                || inode.uid == self.target.0
                || !matches!(self.rule(inode), Verdict::Change(..))
            {
                continue;
            }
            let mut up = self.names[n].parent;
            while let Some(d) = up {
                if writable(d) {
                    out.push(n);
                    break;
                }
                up = self.names[d].parent;
            }
        }
        out
    }

    /// What the sweep must do with every name it reaches: excluded and mount points are seen
    /// (and counted) but not entered; nothing outside the tree is reached.
    fn verdicts(&self) -> BTreeMap<usize, Verdict> {
        let mut out = BTreeMap::new();
        for (i, n) in self.names.iter().enumerate() {
            if n.outside {
                continue;
            }
            // A directory is entered unless it is excluded or a mount point: another
            // owner's directory is walked all the same.
            let reached = match n.parent {
                None => true,
                Some(p) => matches!(
                    out.get(&p),
                    Some(Verdict::Keep | Verdict::Change(..) | Verdict::Skip("other owner"))
                ),
            };
            if !reached {
                continue;
            }
            let v = if self.excluded.contains(&n.rel) {
                Verdict::Skip("excluded")
            } else if n.mount.is_some() {
                Verdict::Skip("mount")
            } else {
                self.rule(&self.inodes[n.inode])
            };
            out.insert(i, v);
        }
        out
    }
}

/// A name as the README says every message prints it: printable ASCII as itself, `\` as `\\`,
/// newline, tab and return as `\n`, `\t`, `\r`, any other character as `\u{hex}`, and every
/// byte that is not UTF-8 as `\xhh`.
fn escaped(p: &Path) -> String {
    let mut out = String::new();
    for chunk in p.as_os_str().as_bytes().utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                ' '..='~' => out.push(c),
                c => write!(out, "\\u{{{:x}}}", u32::from(c)).unwrap(),
            }
        }
        for b in chunk.invalid() {
            write!(out, "\\x{b:02x}").unwrap();
        }
    }
    out
}

/// A tree built on disk, with what it held before the sweep.
struct Built {
    root: TempDir,
    outside: TempDir,
    /// Inode number of every inode.
    ino: Vec<u64>,
}

impl Built {
    fn path(&self, t: &Tree, n: usize) -> PathBuf {
        let name = &t.names[n];
        let base = if name.outside {
            self.outside.path()
        } else {
            self.root.path()
        };
        base.join(&name.rel)
    }
}

fn build(t: &Tree, tag: &str) -> Built {
    let root = TempDir::new(tag);
    let outside = TempDir::new(&format!("{tag}-out"));
    let out_path = outside.path().to_str().unwrap().to_string();
    let out_name = outside
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let mut b = Built {
        root,
        outside,
        ino: vec![0; t.inodes.len()],
    };
    let mut first: Vec<Option<usize>> = vec![None; t.inodes.len()];
    for (i, n) in t.names.iter().enumerate() {
        let p = b.path(t, i);
        let ino = &t.inodes[n.inode];
        if let Some(f) = first[n.inode] {
            fs::hard_link(b.path(t, f), &p).unwrap_or_else(|e| panic!("link {}: {e}", escaped(&p)));
            continue;
        }
        first[n.inode] = Some(i);
        let mode = Mode::from_bits_truncate(ino.mode);
        match ino.ty {
            // The root exists already (TempDir).
            Ty::Dir if n.rel.as_os_str().is_empty() => {}
            Ty::Dir => fs::create_dir(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", escaped(&p))),
            Ty::File => {
                fs::write(&p, b"x\n").unwrap_or_else(|e| panic!("write {}: {e}", escaped(&p)));
            }
            Ty::Symlink => {
                let target = String::from_utf8_lossy(&ino.target).into_owned();
                let target = if target.contains("@OUT") {
                    target
                        .replace("@OUTNAME@", &out_name)
                        .replace("@OUT@", &out_path)
                } else {
                    // Raw bytes, as generated.
                    symlink(OsStr::from_bytes(&ino.target), &p)
                        .unwrap_or_else(|e| panic!("symlink {}: {e}", escaped(&p)));
                    String::new()
                };
                if !target.is_empty() {
                    symlink(&target, &p).unwrap_or_else(|e| panic!("symlink {}: {e}", escaped(&p)));
                }
            }
            Ty::Fifo => nix::unistd::mkfifo(&p, mode).unwrap(),
            Ty::Socket => mknod(&p, SFlag::S_IFSOCK, mode, 0).unwrap(),
            Ty::Chr => mknod(&p, SFlag::S_IFCHR, mode, makedev(1, 3)).unwrap(),
            Ty::Blk => mknod(&p, SFlag::S_IFBLK, mode, makedev(7, 0)).unwrap(),
        }
        if ino.ty != Ty::Symlink {
            fs::set_permissions(&p, fs::Permissions::from_mode(ino.mode)).unwrap();
        }
        lchown(&p, Some(ino.uid), Some(ino.gid)).unwrap();
        b.ino[n.inode] = fs::symlink_metadata(&p).unwrap().ino();
    }
    b
}

/// Sweeps the built tree in a mount namespace of its own, after making its mounts (the tmpfs
/// gets root-owned contents); prints on stdout whatever in the tmpfs is not root's after.
const SWEEP: &str = r#"set -e
bin=$0 root=$1 json=$2
shift 2
tmpfs=
while [ "$1" != -- ]; do
    case $1 in
        bind) mount --bind "$2" "$3"; shift 3 ;;
        tmpfs)
            mount -t tmpfs -o mode=0755,size=1m hermes-shim-model "$2"
            mkdir "$2/d"
            : >"$2/f"
            : >"$2/d/g"
            tmpfs=$2
            shift 2 ;;
        *) echo "bad mount op $1" >&2; exit 99 ;;
    esac
done
shift
rc=0
"$bin" fix-ownership "$root" "$@" >"$json" || rc=$?
if [ -n "$tmpfs" ]; then
    find "$tmpfs" \( ! -uid 0 -o ! -gid 0 \) -printf 'not root'"'"'s in the tmpfs: %p\n'
fi
exit "$rc""#;

fn sweep(t: &Tree, b: &Built, walk: &str, dry: bool, scratch: &Path) -> (Out, String) {
    let json = scratch.join(if dry { "dry.json" } else { "run.json" });
    let mut cmd = clean_cmd("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c", SWEEP])
        .arg(common::bin())
        .arg(b.root.path())
        .arg(&json);
    for (i, n) in t.names.iter().enumerate() {
        match n.mount {
            Some(MountKind::Bind(src)) => {
                let src = src.map_or_else(|| b.path(t, OUTSIDE_BIND), |s| b.path(t, s));
                cmd.arg("bind").arg(src).arg(b.path(t, i));
            }
            Some(MountKind::Tmpfs) => {
                cmd.arg("tmpfs").arg(b.path(t, i));
            }
            None => {}
        }
    }
    let user = format!("{}:{}", t.target.0, t.target.1);
    cmd.args(["--", "--user", &user, "--walk", walk, "--json"]);
    if t.verbose {
        cmd.arg("--verbose");
    }
    if dry {
        cmd.arg("--dry-run");
    }
    if let Some((u, g)) = t.also_from {
        let f = |v: Option<u32>| v.map(|n| n.to_string()).unwrap_or_default();
        cmd.arg(format!("--also-from={}:{}", f(u), f(g)));
    }
    for x in &t.exclude_args {
        cmd.arg(format!("--exclude={x}"));
    }
    if !t.exclude_env.is_empty() {
        cmd.env("HERMES_SHIM_EXCLUDE", t.exclude_env.join(":"));
    }
    let mut out = run_cmd(cmd, 60);
    let found = std::mem::take(&mut out.stdout);
    out.stdout = fs::read_to_string(&json).unwrap_or_default();
    (out, found)
}

fn count_skip(why: &str, c: &mut Counts) {
    match why {
        "device" => c.device += 1,
        "other owner" => c.other_owner += 1,
        "hardlinked" => c.hardlink += 1,
        "mount" => c.mount += 1,
        "excluded" => c.excluded += 1,
        _ => unreachable!("{why}"),
    }
}

/// What the generated trees held, summed: shows a run explored what it claims to.
#[derive(Default)]
struct Tally {
    names: usize,
    counts: Counts,
    bind_inside: usize,
    bind_outside: usize,
    tmpfs: usize,
    also_from: usize,
    excludes: usize,
    dry_runs: usize,
    deep_chains: usize,
    big_dirs: usize,
    warnings: usize,
    quiet: usize,
}

impl Tally {
    fn add(&mut self, t: &Tree) {
        self.names += t.names.len();
        for v in t.verdicts().values() {
            self.counts.scanned += 1;
            match *v {
                Verdict::Keep => {}
                Verdict::Change(..) => self.counts.changed += 1,
                Verdict::Skip(why) => count_skip(why, &mut self.counts),
            }
        }
        for n in &t.names {
            match n.mount {
                Some(MountKind::Bind(Some(_))) => self.bind_inside += 1,
                Some(MountKind::Bind(None)) => self.bind_outside += 1,
                Some(MountKind::Tmpfs) => self.tmpfs += 1,
                None => {}
            }
        }
        self.also_from += usize::from(t.also_from.is_some());
        self.excludes += t.exclude_args.len() + t.exclude_env.len();
        self.dry_runs += usize::from(t.dry_run_first);
        self.warnings += t.must_warn(&t.verdicts()).len();
        self.quiet += usize::from(!t.verbose);
        self.deep_chains += usize::from((0..t.names.len()).any(|n| t.depth(n) > 32));
        let mut children: BTreeMap<usize, usize> = BTreeMap::new();
        for n in &t.names {
            *children.entry(n.parent.unwrap_or(usize::MAX)).or_default() += 1;
        }
        self.big_dirs += children.values().filter(|&&c| c >= 100).count();
    }
}

/// What the model says one sweep of a built tree must report and leave.
struct Expected {
    counts: Counts,
    /// Escaped, as `--verbose` names them.
    changes: BTreeSet<PathBuf>,
    skips: BTreeMap<PathBuf, String>,
    /// The owner of every inode afterwards.
    after: Vec<(u32, u32)>,
    /// Excluded entries a WARNING must name (escaped).
    warnings: BTreeSet<PathBuf>,
}

fn expect(tree: &Tree, built: &Built, dry: bool) -> Expected {
    let mut want = Expected {
        counts: Counts::default(),
        changes: BTreeSet::new(),
        skips: BTreeMap::new(),
        after: tree.inodes.iter().map(|i| (i.uid, i.gid)).collect(),
        warnings: BTreeSet::new(),
    };
    let verdicts = tree.verdicts();
    for n in tree.must_warn(&verdicts) {
        want.warnings
            .insert(PathBuf::from(escaped(&built.path(tree, n))));
    }
    for (&n, v) in &verdicts {
        want.counts.scanned += 1;
        let shown = PathBuf::from(escaped(&built.path(tree, n)));
        match *v {
            Verdict::Keep => {}
            Verdict::Change(uid, gid) => {
                want.counts.changed += 1;
                want.changes.insert(shown);
                if !dry {
                    want.after[tree.names[n].inode] = (uid, gid);
                }
            }
            Verdict::Skip(why) => {
                count_skip(why, &mut want.counts);
                want.skips.insert(shown, why.to_string());
            }
        }
    }
    want
}

/// The JSON report, the summary line and the `--verbose` lines against the model.
fn check_report(
    tree: &Tree,
    built: &Built,
    want: &Expected,
    walk: &str,
    dry: bool,
    out: &Out,
) -> Vec<String> {
    let mut diffs = Vec::new();
    if out.code != Some(0) {
        diffs.push(format!("exit code {:?}, want 0", out.code));
    }
    match std::panic::catch_unwind(|| report(out, built.root.path(), Some(walk), dry, tree.target))
    {
        Ok(c) if c == want.counts => {}
        Ok(c) => diffs.push(format!("counts {c:?}\n  want {:?}", want.counts)),
        Err(_) => diffs.push("the report is malformed (see the panic above)".into()),
    }
    let Ok(v) = std::panic::catch_unwind(|| verbose(out)) else {
        diffs.push("the --verbose lines are malformed (see the panic above)".into());
        return diffs;
    };
    let (listed, other) = if dry {
        (&v.would, &v.changed)
    } else {
        (&v.changed, &v.would)
    };
    // Without --verbose, no entry is listed at all.
    let none = (BTreeSet::new(), BTreeMap::new());
    let (changes, skips) = if tree.verbose {
        (&want.changes, &want.skips)
    } else {
        (&none.0, &none.1)
    };
    for p in listed.difference(changes) {
        diffs.push(format!(
            "{}: listed as changed; the model leaves it",
            p.display()
        ));
    }
    for p in changes.difference(listed) {
        diffs.push(format!(
            "{}: not listed as changed; the model changes it",
            p.display()
        ));
    }
    for p in other {
        diffs.push(format!("{}: listed with the wrong verb", p.display()));
    }
    for (p, why) in &v.skipped {
        if skips.get(p) != Some(why) {
            diffs.push(format!(
                "{}: skipped ({why}), want {:?}",
                p.display(),
                skips.get(p)
            ));
        }
    }
    for (p, why) in skips {
        if !v.skipped.contains_key(p) {
            diffs.push(format!("{}: not listed as skipped ({why})", p.display()));
        }
    }
    // Every other line is the summary, the walk's `--verbose` line, or a warning naming an
    // excluded entry.
    let root = escaped(built.root.path());
    let head = format!("{PREFIX}{root}: ");
    let walking = format!("walking {root} by {walk}, mount ids from ");
    let listing: &[&str] = if tree.verbose {
        &["changed ", "would change ", "skipped ", &walking]
    } else {
        &[]
    };
    let excluded_warning = |w: &str| {
        want.skips.iter().any(|(p, why)| {
            why == "excluded" && w.starts_with(&format!("{} is excluded,", p.display()))
        })
    };
    for p in &want.warnings {
        let warned = format!("{PREFIX}WARNING: {} is excluded,", p.display());
        if !out.stderr.lines().any(|l| l.starts_with(&warned)) {
            diffs.push(format!(
                "{}: excluded and movable, but no WARNING",
                p.display()
            ));
        }
    }
    for l in out.stderr.lines() {
        let ok = l.starts_with(&head)
            || l.strip_prefix(PREFIX).is_some_and(|rest| {
                listing.iter().any(|s| rest.starts_with(s))
                    || rest.strip_prefix("WARNING: ").is_some_and(excluded_warning)
            });
        if !ok {
            diffs.push(format!("unexpected line {l:?}"));
        }
    }
    diffs
}

/// The files themselves: every name still there and nothing new, each with its inode and
/// mode, and the owner the model expects.
fn check_files(tree: &Tree, built: &Built, want: &Expected) -> Vec<String> {
    let mut diffs = Vec::new();
    for (i, n) in tree.names.iter().enumerate() {
        let p = built.path(tree, i);
        let shown = escaped(&p);
        let inode = &tree.inodes[n.inode];
        let Ok(m) = fs::symlink_metadata(&p) else {
            diffs.push(format!("{shown}: vanished"));
            continue;
        };
        if m.ino() != built.ino[n.inode] {
            diffs.push(format!("{shown}: another inode"));
        }
        let (uid, gid) = want.after[n.inode];
        if (m.uid(), m.gid()) != (uid, gid) {
            diffs.push(format!(
                "{shown}: owner {}:{}, want {uid}:{gid} (was {}:{})",
                m.uid(),
                m.gid(),
                inode.uid,
                inode.gid
            ));
        }
        if inode.ty != Ty::Symlink && m.mode() & 0o7777 != inode.mode {
            diffs.push(format!(
                "{shown}: mode {:o}, was {:o}",
                m.mode() & 0o7777,
                inode.mode
            ));
        }
    }
    let mut known: BTreeSet<PathBuf> = (0..tree.names.len()).map(|i| built.path(tree, i)).collect();
    known.insert(built.outside.path().to_path_buf());
    for dir in [built.root.path(), built.outside.path()] {
        for entry in walkdir::WalkDir::new(dir) {
            let p = entry.unwrap().into_path();
            if !known.contains(&p) {
                diffs.push(format!("{}: appeared", escaped(&p)));
            }
        }
    }
    diffs
}

/// The tree with `seed`, built and swept with `walk` (after a dry run, for some trees):
/// the differences from the model, with what the runs printed.
fn check_tree(seed: u64, walk: &str) -> Option<String> {
    let t = Tree::generate(seed);
    let scratch = TempDir::new(&format!("model-{walk}-scratch"));
    let b = build(&t, &format!("model-{walk}"));
    let mut report = String::new();
    let mut runs = Vec::new();
    if t.dry_run_first {
        runs.push(true);
    }
    runs.push(false);
    for dry in runs {
        let (out, found) = sweep(&t, &b, walk, dry, scratch.path());
        let e = expect(&t, &b, dry);
        let mut d = check_report(&t, &b, &e, walk, dry, &out);
        d.extend(found.lines().map(str::to_string));
        d.extend(check_files(&t, &b, &e));
        if !d.is_empty() {
            let what = if dry { "dry run" } else { "run" };
            writeln!(
                report,
                "{what} differs from the model:\n  {}\n{out}",
                d.join("\n  ")
            )
            .unwrap();
            return Some(report);
        }
    }
    None
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let parsed = v
        .strip_prefix("0x")
        .map_or_else(|| v.parse(), |h| u64::from_str_radix(h, 16));
    Some(parsed.unwrap_or_else(|_| panic!("{name}={v:?} is not a number")))
}

fn random_trees_match_the_model(walk: &str) {
    require!(root, tools: ["unshare", "mount", "sh", "find"]);
    let test = format!("random_trees_match_the_model::walk_{walk}");
    let seeds: Vec<u64> = if let Some(seed) = env_u64("HERMES_SHIM_MODEL_SEED") {
        vec![seed]
    } else {
        let n = env_u64("HERMES_SHIM_MODEL_TREES").map_or(TREES, |n| usize::try_from(n).unwrap());
        // A new set of trees every run; each tree's own seed replays it.
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let mut base = Rng(now.as_secs() ^ u64::from(now.subsec_nanos()) << 32);
        (0..n).map(|_| base.next()).collect()
    };
    let start = Instant::now();
    let mut tally = Tally::default();
    for &seed in &seeds {
        tally.add(&Tree::generate(seed));
        if let Some(report) = check_tree(seed, walk) {
            panic!(
                "tree {seed:#x}, walk {walk}: {report}\nreplay: HERMES_SHIM_MODEL_SEED={seed:#x} cargo test --test fix_model -- --exact {test}"
            );
        }
    }
    let Tally {
        names, counts: c, ..
    } = tally;
    eprintln!(
        "model: {} trees swept with {walk} as the model says, in {:.1} s: {names} names, {} \
         reached, {} changed; skipped {} hardlinked, {} devices, {} mounts, {} excluded, {} other \
         owners; {} bind mounts of the tree, {} from outside, {} tmpfs, {} excludes, {} with \
         --also-from, {} dry runs first, {} trees deeper than 32 levels, {} directories of 100 \
         entries or more, {} warnings, {} runs without --verbose",
        seeds.len(),
        start.elapsed().as_secs_f64(),
        c.scanned,
        c.changed,
        c.hardlink,
        c.device,
        c.mount,
        c.excluded,
        c.other_owner,
        tally.bind_inside,
        tally.bind_outside,
        tally.tmpfs,
        tally.excludes,
        tally.also_from,
        tally.dry_runs,
        tally.deep_chains,
        tally.big_dirs,
        tally.warnings,
        tally.quiet
    );
}
per_walk!(random_trees_match_the_model);

/// The model itself, on a hand-built tree: the generator's rule and reach give what the
/// README's examples say, so the random test cannot pass by a model that agrees with anything.
#[test]
fn the_model_follows_the_readme() {
    let mut t = Tree {
        target: (10000, 10000),
        also_from: Some((Some(OLD.0), None)),
        inodes: Vec::new(),
        names: Vec::new(),
        exclude_args: Vec::new(),
        exclude_env: Vec::new(),
        excluded: BTreeSet::new(),
        dry_run_first: false,
        verbose: true,
    };
    let root = t.root(false, Ty::Dir, (0, 0, 0o755));
    let mut put = |parent, name: &str, ty, (uid, gid), mount| {
        let at = At {
            parent,
            outside: false,
            uid,
            gid,
        };
        t.add(at, name.as_bytes(), ty, 0o755, mount)
    };
    let staff = put(root, "staff", Ty::Dir, (0, 50), None);
    let host = put(root, "host", Ty::Dir, (1000, 0), None);
    let in_host = put(host, "f", Ty::File, (0, 0), None);
    let dev = put(root, "dev", Ty::Chr, (0, 0), None);
    let one = put(root, "one", Ty::File, (0, 0), None);
    let mine = put(root, "mine", Ty::File, (10000, 10000), None);
    let old = put(root, "old", Ty::File, (OLD.0, OLD.1), None);
    let ex = put(root, "ex", Ty::Dir, (0, 0), None);
    let in_ex = put(ex, "f", Ty::File, (0, 0), None);
    let mnt = put(root, "mnt", Ty::Dir, (0, 0), Some(MountKind::Tmpfs));
    let in_mnt = put(mnt, "f", Ty::File, (0, 0), None);
    let two = t.name(staff, b"two", false, t.names[one].inode, None);
    let mine2 = t.name(root, b"mine2", false, t.names[mine].inode, None);
    t.excluded.insert(PathBuf::from("ex"));
    let v = t.verdicts();
    let want = [
        (root, Verdict::Change(10000, 10000)),
        (staff, Verdict::Change(10000, 50)),
        (host, Verdict::Skip("other owner")),
        (dev, Verdict::Skip("device")),
        (one, Verdict::Skip("hardlinked")),
        (two, Verdict::Skip("hardlinked")),
        (mine, Verdict::Keep),
        (mine2, Verdict::Keep),
        (old, Verdict::Change(10000, OLD.1)),
        (ex, Verdict::Skip("excluded")),
        (mnt, Verdict::Skip("mount")),
    ];
    for (n, verdict) in want {
        assert_eq!(v.get(&n), Some(&verdict), "{:?}", t.names[n].rel);
    }
    // Another uid's directory is still walked: a root-owned file in it is healed.
    assert_eq!(v.get(&in_host), Some(&Verdict::Change(10000, 10000)));
    for n in [in_ex, in_mnt] {
        assert_eq!(v.get(&n), None, "{:?} must not be reached", t.names[n].rel);
    }
    assert_eq!(
        escaped(Path::new(OsStr::from_bytes(
            b"a\\\n\t\r\xc3\xa9\xe2\x80\xae\xff "
        ))),
        "a\\\\\\n\\t\\r\\u{e9}\\u{202e}\\xff "
    );
}
