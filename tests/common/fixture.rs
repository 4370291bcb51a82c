//! Temporary trees for fix-ownership, with the outcome the contract demands for every entry,
//! computed here from the contract's rule (uid 0 -> target uid, gid 0 -> target gid, any other
//! uid untouched), independently of the binary; and snapshots to show that nothing changed.
//!
//! Safety: no fixture may give the binary a way out of the temporary trees (no symlink reaching
//! `/`): a binary that followed one would re-own the host.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt, lchown, symlink};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{Mode, SFlag, makedev, mknod};

use super::TempDir;
use super::fix::{Out, T, fo};
use super::report::{Counts, report};

/// Exactly what `hermes config set` as root creates in an empty `HERMES_HOME` (ENVIRONMENT.md).
pub const HERMES_DIRS: [&str; 9] = [
    "cron",
    "hooks",
    "logs",
    "memories",
    "pairing",
    "sessions",
    "skills",
    "image_cache",
    "audio_cache",
];

/// The entry itself, never a symlink's target.
pub fn lstat(p: &Path) -> fs::Metadata {
    fs::symlink_metadata(p).unwrap_or_else(|e| panic!("lstat {}: {e}", p.display()))
}

/// (uid, gid) of the entry itself.
pub fn owner(p: &Path) -> (u32, u32) {
    let m = lstat(p);
    (m.uid(), m.gid())
}

/// (inode, uid, gid, mode) of every entry under a root, by path.
pub type Snapshot = BTreeMap<PathBuf, (u64, u32, u32, u32)>;

/// The [`Snapshot`] of `root`, found without following symlinks.
pub fn snapshot(root: &Path) -> Snapshot {
    walkdir::WalkDir::new(root)
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            (e.into_path(), (m.ino(), m.uid(), m.gid(), m.mode()))
        })
        .collect()
}

/// Fails naming every entry that changed, vanished or appeared between two snapshots.
pub fn assert_same_snapshot(before: &Snapshot, after: &Snapshot, ctx: &str) {
    let mut diffs = Vec::new();
    for (p, b) in before {
        match after.get(p) {
            Some(a) if a == b => {}
            Some(a) => diffs.push(format!(
                "{}: (ino, uid, gid, mode) {b:?} -> {a:?}",
                p.display()
            )),
            None => diffs.push(format!("{}: vanished", p.display())),
        }
    }
    for p in after.keys().filter(|p| !before.contains_key(*p)) {
        diffs.push(format!("{}: appeared", p.display()));
    }
    assert!(diffs.is_empty(), "{ctx}: changed:\n{}", diffs.join("\n"));
}

/// Why an entry is expected to be skipped.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Skip {
    Hardlink,
    Device,
    Excluded,
}

impl Skip {
    fn reason(self) -> &'static str {
        match self {
            Skip::Hardlink => "hardlinked",
            Skip::Device => "device",
            Skip::Excluded => "excluded",
        }
    }
}

struct Entry {
    ino: u64,
    mode: u32,
    before: (u32, u32),
    after: (u32, u32),
}

/// A temporary tree plus the outcome the contract demands for every entry in it.
pub struct Fx {
    dir: TempDir,
    target: (u32, u32),
    /// Every entry on disk under `dir` and outside trees tied to it, with its expected owner.
    entries: BTreeMap<PathBuf, Entry>,
    /// Entries a run must change.
    pub changes: BTreeSet<PathBuf>,
    /// Entries a run must report as skipped, with the reason word.
    pub skips: BTreeMap<PathBuf, String>,
    /// What a run must report.
    pub counts: Counts,
    outside: Vec<TempDir>,
}

impl Fx {
    /// A fresh root-owned PATH (0:0, mode 0755), itself an entry to change.
    pub fn new(tag: &str) -> Fx {
        Fx::with_target(tag, (T, T))
    }

    pub fn with_target(tag: &str, target: (u32, u32)) -> Fx {
        let dir = TempDir::new(tag);
        let mut fx = Fx {
            dir,
            target,
            entries: BTreeMap::new(),
            changes: BTreeSet::new(),
            skips: BTreeMap::new(),
            counts: Counts::default(),
            outside: Vec::new(),
        };
        let root = fx.path().to_path_buf();
        fx.record(&root);
        fx
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn abs(&self, rel: &str) -> PathBuf {
        self.path().join(rel)
    }

    /// Records an entry that the walk sees and to which the ownership rule applies.
    fn record(&mut self, p: &Path) {
        let m = lstat(p);
        let before = (m.uid(), m.gid());
        let after = if before.0 == 0 || before.0 == self.target.0 {
            (
                self.target.0,
                if before.1 == 0 {
                    self.target.1
                } else {
                    before.1
                },
            )
        } else {
            self.counts.other_owner += 1;
            self.skips.insert(p.into(), "other owner".into());
            before
        };
        if after != before {
            self.changes.insert(p.into());
            self.counts.changed += 1;
        }
        self.counts.scanned += 1;
        self.insert(p, &m, after);
    }

    /// Records an entry that the walk sees but must skip.
    fn record_skip(&mut self, p: &Path, why: Skip) {
        let m = lstat(p);
        match why {
            Skip::Hardlink => self.counts.hardlink += 1,
            Skip::Device => self.counts.device += 1,
            Skip::Excluded => self.counts.excluded += 1,
        }
        self.counts.scanned += 1;
        self.skips.insert(p.into(), why.reason().into());
        let before = (m.uid(), m.gid());
        self.insert(p, &m, before);
    }

    /// Records an entry that the walk must never reach (inside an excluded directory, outside PATH).
    fn record_unreached(&mut self, p: &Path) {
        let m = lstat(p);
        let before = (m.uid(), m.gid());
        self.insert(p, &m, before);
    }

    fn insert(&mut self, p: &Path, m: &fs::Metadata, after: (u32, u32)) {
        let e = Entry {
            ino: m.ino(),
            mode: m.mode(),
            before: (m.uid(), m.gid()),
            after,
        };
        assert!(
            self.entries.insert(p.into(), e).is_none(),
            "fixture bug: {} twice",
            p.display()
        );
    }

    pub fn set(p: &Path, mode: Option<u32>, uid: u32, gid: u32) {
        if let Some(mode) = mode {
            fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
        }
        lchown(p, Some(uid), Some(gid)).unwrap();
    }

    pub fn make_dir(p: &Path, mode: u32, uid: u32, gid: u32) {
        fs::create_dir(p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
        Fx::set(p, Some(mode), uid, gid);
    }

    pub fn make_file(p: &Path, mode: u32, uid: u32, gid: u32) {
        fs::write(p, b"x\n").unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        Fx::set(p, Some(mode), uid, gid);
    }

    pub fn dir(&mut self, rel: &str, mode: u32, uid: u32, gid: u32) -> &mut Fx {
        let p = self.abs(rel);
        Fx::make_dir(&p, mode, uid, gid);
        self.record(&p);
        self
    }

    pub fn file(&mut self, rel: &str, mode: u32, uid: u32, gid: u32) -> &mut Fx {
        let p = self.abs(rel);
        Fx::make_file(&p, mode, uid, gid);
        self.record(&p);
        self
    }

    pub fn fifo(&mut self, rel: &str, uid: u32, gid: u32) -> &mut Fx {
        let p = self.abs(rel);
        nix::unistd::mkfifo(&p, Mode::from_bits_truncate(0o640)).unwrap();
        Fx::set(&p, Some(0o640), uid, gid);
        self.record(&p);
        self
    }

    pub fn socket(&mut self, rel: &str, uid: u32, gid: u32) -> &mut Fx {
        let p = self.abs(rel);
        drop(UnixListener::bind(&p).unwrap_or_else(|e| panic!("bind {}: {e}", p.display())));
        Fx::set(&p, None, uid, gid);
        self.record(&p);
        self
    }

    pub fn symlink(&mut self, rel: &str, target: &str, uid: u32, gid: u32) -> &mut Fx {
        let p = self.abs(rel);
        symlink(target, &p).unwrap();
        Fx::set(&p, None, uid, gid);
        self.record(&p);
        self
    }

    /// A char device (like /dev/null) and a block device (like /dev/loop0), root-owned.
    pub fn devices(&mut self, chr: &str, blk: &str) -> &mut Fx {
        for (rel, kind, dev) in [
            (chr, SFlag::S_IFCHR, makedev(1, 3)),
            (blk, SFlag::S_IFBLK, makedev(7, 0)),
        ] {
            let p = self.abs(rel);
            mknod(&p, kind, Mode::from_bits_truncate(0o600), dev).unwrap();
            self.record_skip(&p, Skip::Device);
        }
        self
    }

    /// A root-owned file outside PATH, in a tree that lives as long as the fixture.
    pub fn outside_file(&mut self, tag: &str) -> PathBuf {
        let d = TempDir::new(tag);
        let f = d.path().join("secret");
        Fx::make_file(&f, 0o600, 0, 0);
        let root = d.path().to_path_buf();
        self.outside.push(d);
        self.record_unreached(&root);
        self.record_unreached(&f);
        f
    }

    /// `rel` hardlinked to a root-owned file outside PATH: neither may change.
    pub fn hardlink_outside(&mut self, rel: &str) -> &mut Fx {
        let f = self.outside_file("fo-hardlink-out");
        let p = self.abs(rel);
        fs::hard_link(&f, &p).unwrap();
        self.record_skip(&p, Skip::Hardlink);
        self
    }

    /// A root-owned directory `rel` with root-owned contents, to be passed to --exclude.
    pub fn excluded_dir(&mut self, rel: &str) -> &mut Fx {
        let p = self.abs(rel);
        Fx::make_dir(&p, 0o755, 0, 0);
        self.record_skip(&p, Skip::Excluded);
        Fx::make_dir(&p.join("inner"), 0o700, 0, 0);
        Fx::make_file(&p.join("inner/f"), 0o600, 0, 0);
        Fx::make_file(&p.join("g"), 0o644, 0, 0);
        for q in ["inner", "inner/f", "g"] {
            self.record_unreached(&p.join(q));
        }
        self
    }

    pub fn excluded_file(&mut self, rel: &str) -> &mut Fx {
        let p = self.abs(rel);
        Fx::make_file(&p, 0o644, 0, 0);
        self.record_skip(&p, Skip::Excluded);
        self
    }

    /// Everything on disk (under PATH and the outside trees), as a list of surprises.
    fn diffs(&self, after: bool) -> Vec<String> {
        let mut d = Vec::new();
        for (p, e) in &self.entries {
            let Ok(m) = fs::symlink_metadata(p) else {
                d.push(format!("{}: vanished", p.display()));
                continue;
            };
            let want = if after { e.after } else { e.before };
            if (m.uid(), m.gid()) != want {
                d.push(format!(
                    "{}: owner {}:{}, want {}:{} (was {}:{})",
                    p.display(),
                    m.uid(),
                    m.gid(),
                    want.0,
                    want.1,
                    e.before.0,
                    e.before.1
                ));
            }
            if m.ino() != e.ino {
                d.push(format!("{}: inode replaced", p.display()));
            }
            // chown may clear set-id bits; the fixture has none, so the mode must stay put.
            if m.mode() != e.mode {
                d.push(format!(
                    "{}: mode {:o} -> {:o}",
                    p.display(),
                    e.mode,
                    m.mode()
                ));
            }
        }
        for e in walkdir::WalkDir::new(self.path()) {
            let p = e.unwrap().into_path();
            if !self.entries.contains_key(&p) {
                d.push(format!("{}: appeared", p.display()));
            }
        }
        d
    }

    /// Every entry has exactly the owner the contract demands after a real run.
    pub fn check_fixed(&self, ctx: &Out) {
        let d = self.diffs(true);
        assert!(d.is_empty(), "after the run:\n{}\n{ctx}", d.join("\n"));
    }

    /// Nothing changed at all.
    pub fn check_untouched(&self, ctx: &Out) {
        let d = self.diffs(false);
        assert!(d.is_empty(), "expected no change:\n{}\n{ctx}", d.join("\n"));
    }

    /// Runs fix-ownership with --json, checks exit 0, the report, and the resulting tree.
    pub fn run_and_check(&self, walk: &str, extra: &[&str]) -> Out {
        let mut args = vec!["--json"];
        args.extend_from_slice(extra);
        let out = fo(self.path(), walk, &args);
        assert_eq!(out.code, Some(0), "exit code\n{out}");
        let counts = report(&out, self.path(), Some(walk), false, self.target);
        assert_eq!(counts, self.counts, "reported counts vs fixture\n{out}");
        self.check_fixed(&out);
        out
    }
}

/// Every kind of entry at depths 0..5, the damage `hermes config set` as root leaves, partial
/// root ownership, other owners, a hardlink to an outside file and two devices.
pub fn main_fixture(tag: &str) -> Fx {
    let mut fx = Fx::new(tag);
    let mut level = String::new();
    for depth in 0..=5 {
        if depth > 0 {
            write!(level, "d{depth}/").unwrap();
            fx.dir(level.trim_end_matches('/'), 0o755, 0, 0);
        }
        fx.file(&format!("{level}file"), 0o644, 0, 0)
            .fifo(&format!("{level}fifo"), 0, 0)
            .socket(&format!("{level}sock"), 0, 0)
            .symlink(&format!("{level}link"), "file", 0, 0)
            .symlink(&format!("{level}dangling"), "no/such/target", 0, 0)
            .dir(&format!("{level}empty"), 0o700, 0, 0);
    }
    fx.file("config.yaml", 0o600, 0, 0)
        .file("SOUL.md", 0o644, 0, 0);
    for d in HERMES_DIRS {
        fx.dir(d, 0o700, 0, 0);
    }
    fx.file("logs/agent.log", 0o644, 0, 0)
        .file("logs/errors.log", 0o644, 0, 0)
        // root:staff -> 10000:staff
        .dir("staffdir", 0o2775, 0, 50)
        .file("staffdir/notes.md", 0o664, 0, 50)
        .symlink("staffdir/link", "notes.md", 0, 50)
        // 10000:0 -> 10000:10000
        .file("halfgid", 0o644, T, 0)
        .dir("halfdir", 0o755, T, 0)
        .fifo("halfdir/fifo", T, 0)
        // already right: left alone, not counted as changed
        .dir("good", 0o755, T, T)
        .file("good/ok", 0o644, T, T)
        .file("good/rootfile", 0o644, 0, 0)
        .symlink("good/rootlink", "ok", 0, 0)
        // other owners, even with gid 0
        .dir("host", 0o755, 1000, 1000)
        .file("host/a", 0o644, 1000, 1000)
        .file("host/b", 0o644, 1000, 0)
        .file("host0", 0o644, 1000, 0)
        .symlink("hostlink", "host0", 1000, 0)
        .hardlink_outside("skills/hardlinked")
        .devices("null-like", "loop-like");
    fx
}

/// A small root-owned tree that a refused run must leave alone.
pub fn victim(tag: &str) -> Fx {
    let mut fx = Fx::new(tag);
    fx.file("config.yaml", 0o600, 0, 0)
        .dir("logs", 0o700, 0, 0)
        .file("logs/agent.log", 0o644, 0, 0)
        .file("half", 0o644, T, 0);
    fx
}

/// The directory `name` in `parent`, never through a symlink.
pub fn open_dir_at(parent: impl AsFd, name: &str) -> nix::Result<OwnedFd> {
    openat(
        parent,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// A directory holding `passwd` and `group` with these texts: an /etc of the test's own, to
/// bind-mount over the real one (or over its two files) in a private mount namespace.
/// `chattr FLAG PATH` (`+i`, `-i`): whether it worked (file systems without the flag refuse).
pub fn chattr(flag: &str, path: &Path) -> bool {
    std::process::Command::new("chattr")
        .arg(flag)
        .arg(path)
        .status()
        .is_ok_and(|s| s.success())
}

pub fn etc_dir(tag: &str, passwd: &str, group: &str) -> TempDir {
    let etc = TempDir::new(tag);
    fs::write(etc.path().join("passwd"), passwd).unwrap();
    fs::write(etc.path().join("group"), group).unwrap();
    etc
}
