//! Root integration tests for `hermes-shim fix-ownership`, driving the built binary as a black box
//! on temporary trees: what it changes (every depth, every file type, the damage `hermes config set`
//! leaves), what it must never change (other owners, devices, hardlinks, mounts, excluded paths,
//! symlink targets), every refusal, dry-run honesty, both walk backends, a 10,000-level tree under a
//! small fd limit, and a race against a uid-10000 attacker swapping directories for symlinks.
//!
//! The expected outcome of each fixture is computed here from the contract's rule (uid 0 -> target
//! uid, gid 0 -> target gid, any other uid untouched), independently of the binary.
//!
//! Safety: these tests run as root against a binary that may be wrong. No fixture may give it a
//! way out of the temporary trees (no symlink reaching `/`), and runs on system directories happen
//! only in a user namespace where only uid 0 is mapped, so chown to 10000 fails with EINVAL.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, File};
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt, lchown, symlink};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{TempDir, require};
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{Mode, SFlag, fstat, makedev, mkdirat, mknod};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The target user of almost every test: numeric, so no passwd entry is needed.
const T: u32 = 10000;
const USER: &str = "10000:10000";
const PREFIX: &str = "hermes-shim fix-ownership: ";
const WALKS: [&str; 2] = ["openat2", "fallback"];
/// Exactly what `hermes config set` as root creates in an empty HERMES_HOME (ENVIRONMENT.md).
const HERMES_DIRS: [&str; 9] = [
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

// ---------------------------------------------------------------------------------------------
// Running things
// ---------------------------------------------------------------------------------------------

/// What a finished process left behind.
struct Out {
    what: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl fmt::Display for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "command: {}\nexit: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what,
            self.code,
            truncate(&self.stdout),
            truncate(&self.stderr)
        )
    }
}

fn truncate(s: &str) -> String {
    const MAX: usize = 6000;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut cut = MAX;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… ({} bytes more)", &s[..cut], s.len() - cut)
}

/// Runs `cmd` to completion, killing it (and failing the test) after `secs` seconds, so a hung
/// binary fails one test instead of hanging the suite.
fn run_cmd(mut cmd: Command, secs: u64) -> Out {
    let what = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let to = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let te = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let status = common::wait_timeout(&mut child, secs, &what);
    Out {
        what,
        code: status.code(),
        stdout: String::from_utf8_lossy(&to.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&te.join().unwrap()).into_owned(),
    }
}

/// Removes every variable the binary reads, so tests do not leak the caller's settings.
fn clean_env(cmd: &mut Command) -> &mut Command {
    for v in [
        "HERMES_HOME",
        "HERMES_SHIM_USER",
        "HERMES_SHIM_REAL_DIR",
        "HERMES_DOCKER_EXEC_AS_ROOT",
        "HERMES_SHIM_EXCLUDE",
        "HERMES_SHIM_WALK",
    ] {
        cmd.env_remove(v);
    }
    cmd
}

/// `hermes-shim fix-ownership ARGS…` with a clean environment.
fn fo_cmd<S: AsRef<OsStr>>(args: &[S]) -> Command {
    let mut c = Command::new(common::bin());
    clean_env(&mut c);
    c.arg("fix-ownership").args(args);
    c
}

/// `hermes-shim fix-ownership PATH --user 10000:10000 --walk WALK EXTRA…`.
fn fo(path: &Path, walk: &str, extra: &[&str]) -> Out {
    let mut args: Vec<&OsStr> = vec![path.as_os_str()];
    args.extend(["--user", USER, "--walk", walk].map(OsStr::new));
    args.extend(extra.iter().map(OsStr::new));
    run_cmd(fo_cmd(&args), 60)
}

/// Turns `fn NAME(walk: &str)`, defined just above, into one test per walk backend,
/// `NAME::walk_openat2` and `NAME::walk_fallback`, so each backend can be run alone
/// (`cargo test -- _fallback`) and a failure names its backend.
macro_rules! per_walk {
    ($name:ident) => {
        mod $name {
            #[test]
            fn walk_openat2() {
                super::$name("openat2");
            }

            #[test]
            fn walk_fallback() {
                super::$name("fallback");
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Reading the report: the JSON on stdout, the summary line and the --verbose lines
// ---------------------------------------------------------------------------------------------

/// The counts a run reports, from its JSON or from its summary line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    scanned: u64,
    changed: u64,
    hardlink: u64,
    device: u64,
    mount: u64,
    excluded: u64,
    other_owner: u64,
    errors: u64,
}

/// Any JSON document in which no object has a key twice: `serde_json::Value` would silently
/// keep the last of two, and a report must not say two things.
struct NoDuplicateKeys;

impl<'de> Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoDuplicateKeys)
    }
}

impl<'de> Visitor<'de> for NoDuplicateKeys {
    type Value = NoDuplicateKeys;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(self)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        let mut seen = BTreeSet::new();
        while let Some(k) = map.next_key::<String>()? {
            map.next_value::<NoDuplicateKeys>()?;
            if !seen.insert(k.clone()) {
                return Err(de::Error::custom(format!("duplicate key {k:?}")));
            }
        }
        Ok(self)
    }
}

/// Stdout of `out` as exactly one JSON object, with no key twice.
fn json_object(out: &Out) -> Map<String, Value> {
    let text = out.stdout.trim();
    let parsed = serde_json::from_str::<NoDuplicateKeys>(text)
        .and_then(|_| serde_json::from_str::<Value>(text));
    match parsed {
        Ok(Value::Object(obj)) => obj,
        Ok(_) => panic!("stdout JSON is not an object\n{out}"),
        Err(e) => panic!("stdout is not one JSON object ({e})\n{out}"),
    }
}

fn json_u64(obj: &Map<String, Value>, key: &str, ctx: &Out) -> u64 {
    obj.get(key)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("JSON key {key:?} is not a count: {:?}\n{ctx}", obj.get(key)))
}

/// Validates the JSON on stdout against the contract (every documented key, root, dry_run, walk,
/// uid, gid) and the summary line on stderr, checks both agree, and returns the counts.
fn report(out: &Out, root: &Path, walk: Option<&str>, dry: bool, target: (u32, u32)) -> Counts {
    let obj = json_object(out);
    for k in [
        "root",
        "dry_run",
        "walk",
        "uid",
        "gid",
        "scanned",
        "changed",
        "skipped",
        "errors",
        "elapsed_ms",
    ] {
        assert!(obj.contains_key(k), "JSON lacks key {k:?}\n{out}");
    }
    assert_eq!(
        obj["root"],
        Value::from(root.to_str().unwrap()),
        "JSON root\n{out}"
    );
    assert_eq!(obj["dry_run"], Value::Bool(dry), "JSON dry_run\n{out}");
    match (walk, &obj["walk"]) {
        (Some(w), j) => assert_eq!(j, &Value::from(w), "JSON walk\n{out}"),
        (None, Value::String(s)) if WALKS.contains(&s.as_str()) => {}
        (None, j) => panic!("JSON walk is {j:?}, not one of {WALKS:?}\n{out}"),
    }
    assert_eq!(
        json_u64(&obj, "uid", out),
        u64::from(target.0),
        "JSON uid\n{out}"
    );
    assert_eq!(
        json_u64(&obj, "gid", out),
        u64::from(target.1),
        "JSON gid\n{out}"
    );
    json_u64(&obj, "elapsed_ms", out);
    let Some(Value::Object(sk)) = obj.get("skipped") else {
        panic!("JSON skipped is not an object\n{out}")
    };
    for k in ["other_owner", "device", "hardlink", "mount", "excluded"] {
        assert!(sk.contains_key(k), "JSON skipped lacks key {k:?}\n{out}");
    }
    let counts = Counts {
        scanned: json_u64(&obj, "scanned", out),
        changed: json_u64(&obj, "changed", out),
        hardlink: json_u64(sk, "hardlink", out),
        device: json_u64(sk, "device", out),
        mount: json_u64(sk, "mount", out),
        excluded: json_u64(sk, "excluded", out),
        other_owner: json_u64(sk, "other_owner", out),
        errors: json_u64(&obj, "errors", out),
    };
    let summary = summary(out, root, dry);
    assert_eq!(summary, counts, "summary line and JSON disagree\n{out}");
    counts
}

/// Parses the one summary line on stderr:
/// `hermes-shim fix-ownership: ROOT: changed 12 of 48210 entries; skipped 1 hardlinked, 0 devices,
/// 2 mounts, 0 excluded, 3 other owners; 0 errors; 41 ms`.
fn summary(out: &Out, root: &Path, dry: bool) -> Counts {
    let head = format!("{PREFIX}{}: ", root.display());
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with(&head))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "want exactly one summary line starting {head:?}\n{out}"
    );
    let rest = &lines[0][head.len()..];
    let verb = if dry { "would change" } else { "changed" };
    let nums: Vec<u64> = rest
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(
        nums.len(),
        9,
        "summary line has {} numbers\n{out}",
        nums.len()
    );
    let want = format!(
        "{verb} {} of {} entries; skipped {} hardlinked, {} devices, {} mounts, {} excluded, {} other owners; {} errors; {} ms",
        nums[0], nums[1], nums[2], nums[3], nums[4], nums[5], nums[6], nums[7], nums[8]
    );
    // Singular forms for a count of 1 are accepted; the rest of the wording is the contract's.
    let got = format!("{rest};")
        .replace(" 1 entry;", " 1 entries;")
        .replace(" 1 device,", " 1 devices,")
        .replace(" 1 mount,", " 1 mounts,")
        .replace(" 1 other owner;", " 1 other owners;")
        .replace(" 1 error;", " 1 errors;");
    assert_eq!(
        got.strip_suffix(';').unwrap(),
        want,
        "summary line wording\n{out}"
    );
    Counts {
        changed: nums[0],
        scanned: nums[1],
        hardlink: nums[2],
        device: nums[3],
        mount: nums[4],
        excluded: nums[5],
        other_owner: nums[6],
        errors: nums[7],
    }
}

/// The per-entry `--verbose` lines: (changed, would change, skipped with reason).
struct Verbose {
    changed: BTreeSet<PathBuf>,
    would: BTreeSet<PathBuf>,
    skipped: BTreeMap<PathBuf, String>,
}

fn verbose(out: &Out) -> Verbose {
    let mut v = Verbose {
        changed: BTreeSet::new(),
        would: BTreeSet::new(),
        skipped: BTreeMap::new(),
    };
    for l in out.stderr.lines() {
        let Some(rest) = l.strip_prefix(PREFIX) else {
            continue;
        };
        if let Some(p) = rest.strip_prefix("changed ") {
            assert!(v.changed.insert(p.into()), "{p} reported twice\n{out}");
        } else if let Some(p) = rest.strip_prefix("would change ") {
            assert!(v.would.insert(p.into()), "{p} reported twice\n{out}");
        } else if let Some(s) = rest.strip_prefix("skipped ") {
            let (p, why) = s
                .strip_suffix(')')
                .and_then(|s| s.rsplit_once(" ("))
                .unwrap_or_else(|| panic!("malformed skip line {l:?}\n{out}"));
            assert!(
                v.skipped.insert(p.into(), why.into()).is_none(),
                "{p} skipped twice\n{out}"
            );
        }
    }
    v
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

fn lstat(p: &Path) -> fs::Metadata {
    fs::symlink_metadata(p).unwrap_or_else(|e| panic!("lstat {}: {e}", p.display()))
}

fn owner(p: &Path) -> (u32, u32) {
    let m = lstat(p);
    (m.uid(), m.gid())
}

/// (inode, uid, gid, mode) of every entry under `root`, found without following symlinks.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (u64, u32, u32, u32)> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            (e.into_path(), (m.ino(), m.uid(), m.gid(), m.mode()))
        })
        .collect()
}

fn assert_same_snapshot(
    before: &BTreeMap<PathBuf, (u64, u32, u32, u32)>,
    after: &BTreeMap<PathBuf, (u64, u32, u32, u32)>,
    ctx: &str,
) {
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
struct Fx {
    dir: TempDir,
    target: (u32, u32),
    /// Every entry on disk under `dir` and outside trees tied to it, with its expected owner.
    entries: BTreeMap<PathBuf, Entry>,
    /// Entries a run must change.
    changes: BTreeSet<PathBuf>,
    /// Entries a run must report as skipped, with the reason word.
    skips: BTreeMap<PathBuf, String>,
    counts: Counts,
    outside: Vec<TempDir>,
}

impl Fx {
    /// A fresh root-owned PATH (0:0, mode 0755), itself an entry to change.
    fn new(tag: &str) -> Fx {
        Fx::with_target(tag, (T, T))
    }

    fn with_target(tag: &str, target: (u32, u32)) -> Fx {
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

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn abs(&self, rel: &str) -> PathBuf {
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
        self.insert(p, m, after);
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
        self.insert(p, m, before);
    }

    /// Records an entry that the walk must never reach (inside an excluded directory, outside PATH).
    fn record_unreached(&mut self, p: &Path) {
        let m = lstat(p);
        let before = (m.uid(), m.gid());
        self.insert(p, m, before);
    }

    fn insert(&mut self, p: &Path, m: fs::Metadata, after: (u32, u32)) {
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

    fn set(p: &Path, mode: Option<u32>, uid: u32, gid: u32) {
        if let Some(mode) = mode {
            fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
        }
        lchown(p, Some(uid), Some(gid)).unwrap();
    }

    fn make_dir(p: &Path, mode: u32, uid: u32, gid: u32) {
        fs::create_dir(p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
        Fx::set(p, Some(mode), uid, gid);
    }

    fn make_file(p: &Path, mode: u32, uid: u32, gid: u32) {
        fs::write(p, b"x\n").unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        Fx::set(p, Some(mode), uid, gid);
    }

    fn dir(&mut self, rel: &str, mode: u32, uid: u32, gid: u32) -> &mut Fx {
        let p = self.abs(rel);
        Fx::make_dir(&p, mode, uid, gid);
        self.record(&p);
        self
    }

    fn file(&mut self, rel: &str, mode: u32, uid: u32, gid: u32) -> &mut Fx {
        let p = self.abs(rel);
        Fx::make_file(&p, mode, uid, gid);
        self.record(&p);
        self
    }

    fn fifo(&mut self, rel: &str, uid: u32, gid: u32) -> &mut Fx {
        let p = self.abs(rel);
        nix::unistd::mkfifo(&p, Mode::from_bits_truncate(0o640)).unwrap();
        Fx::set(&p, Some(0o640), uid, gid);
        self.record(&p);
        self
    }

    fn socket(&mut self, rel: &str, uid: u32, gid: u32) -> &mut Fx {
        let p = self.abs(rel);
        drop(UnixListener::bind(&p).unwrap_or_else(|e| panic!("bind {}: {e}", p.display())));
        Fx::set(&p, None, uid, gid);
        self.record(&p);
        self
    }

    fn symlink(&mut self, rel: &str, target: &str, uid: u32, gid: u32) -> &mut Fx {
        let p = self.abs(rel);
        symlink(target, &p).unwrap();
        Fx::set(&p, None, uid, gid);
        self.record(&p);
        self
    }

    /// A char device (like /dev/null) and a block device (like /dev/loop0), root-owned.
    fn devices(&mut self, chr: &str, blk: &str) -> &mut Fx {
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
    fn outside_file(&mut self, tag: &str) -> PathBuf {
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
    fn hardlink_outside(&mut self, rel: &str) -> &mut Fx {
        let f = self.outside_file("fo-hardlink-out");
        let p = self.abs(rel);
        fs::hard_link(&f, &p).unwrap();
        self.record_skip(&p, Skip::Hardlink);
        self
    }

    /// A root-owned directory `rel` with root-owned contents, to be passed to --exclude.
    fn excluded_dir(&mut self, rel: &str) -> &mut Fx {
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

    fn excluded_file(&mut self, rel: &str) -> &mut Fx {
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
    fn check_fixed(&self, ctx: &Out) {
        let d = self.diffs(true);
        assert!(d.is_empty(), "after the run:\n{}\n{ctx}", d.join("\n"));
    }

    /// Nothing changed at all.
    fn check_untouched(&self, ctx: &Out) {
        let d = self.diffs(false);
        assert!(d.is_empty(), "expected no change:\n{}\n{ctx}", d.join("\n"));
    }

    /// Runs fix-ownership with --json, checks exit 0, the report, and the resulting tree.
    fn run_and_check(&self, walk: &str, extra: &[&str]) -> Out {
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
fn main_fixture(tag: &str) -> Fx {
    let mut fx = Fx::new(tag);
    let mut level = String::new();
    for depth in 0..=5 {
        if depth > 0 {
            level.push_str(&format!("d{depth}/"));
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

// ---------------------------------------------------------------------------------------------
// What changes
// ---------------------------------------------------------------------------------------------

fn fixes_every_depth_and_the_hermes_config_set_damage(walk: &str) {
    require!(root);
    let fx = main_fixture(&format!("fo-main-{walk}"));
    // The fixture itself must be as damaged as claimed, or the test proves nothing.
    assert!(
        fx.counts.changed >= 60,
        "fixture too small: {:?}",
        fx.counts
    );
    let out = fx.run_and_check(walk, &[]);
    // Without --verbose the report is exactly the summary line.
    assert_eq!(out.stderr.lines().count(), 1, "stderr lines\n{out}");
}
per_walk!(fixes_every_depth_and_the_hermes_config_set_damage);

fn exact_hermes_config_set_damage_alone(walk: &str) {
    require!(root);
    let mut fx = Fx::new(&format!("fo-damage-{walk}"));
    fx.file("config.yaml", 0o600, 0, 0)
        .file("SOUL.md", 0o644, 0, 0);
    for d in HERMES_DIRS {
        fx.dir(d, 0o700, 0, 0);
    }
    fx.file("logs/agent.log", 0o644, 0, 0)
        .file("logs/errors.log", 0o644, 0, 0);
    fx.run_and_check(walk, &[]);
    // After the run, the hermes user owns its whole home; spot-check what broke the gateway.
    for rel in ["", "config.yaml", "SOUL.md", "logs/agent.log", "sessions"] {
        assert_eq!(owner(&fx.abs(rel)), (T, T), "{rel}");
    }
}
per_walk!(exact_hermes_config_set_damage_alone);

fn other_owners_are_untouched_but_their_directories_are_walked(walk: &str) {
    require!(root);
    let mut fx = Fx::new(&format!("fo-other-{walk}"));
    fx.dir("host", 0o755, 1000, 1000)
        .file("host/mine", 0o644, 1000, 1000)
        .file("host/rootgroup", 0o644, 1000, 0)
        .symlink("host/link", "mine", 1000, 0)
        .dir("host/sub", 0o700, 1000, 0)
        // The rule is per entry: a root-owned file in a host user's directory is still healed.
        .file("host/rootfile", 0o644, 0, 0)
        .file("top", 0o644, 1000, 0)
        .file("staff", 0o644, 1000, 50);
    assert_eq!(fx.counts.other_owner, 7);
    let out = fx.run_and_check(walk, &["--verbose"]);
    let v = verbose(&out);
    for rel in [
        "host",
        "host/mine",
        "host/rootgroup",
        "host/link",
        "host/sub",
        "top",
    ] {
        assert_eq!(
            v.skipped.get(&fx.abs(rel)).map(String::as_str),
            Some("other owner"),
            "--verbose skip line for {rel}\n{out}"
        );
    }
}
per_walk!(other_owners_are_untouched_but_their_directories_are_walked);

fn symlink_to_outside_root_file_changes_only_the_link(walk: &str) {
    require!(root);
    let mut fx = Fx::new(&format!("fo-symlink-{walk}"));
    let secret = fx.outside_file("fo-symlink-out");
    let outdir = secret.parent().unwrap().to_str().unwrap().to_string();
    // A relative escape too, but only ever into the temporary outside tree: a link that
    // reached `/` would let a symlink-following binary re-own the whole host.
    let escape = format!(
        "../../{}",
        Path::new(&outdir).file_name().unwrap().to_str().unwrap()
    );
    fx.symlink("to-file", secret.to_str().unwrap(), 0, 0)
        .symlink("to-dir", &outdir, 0, 0)
        .dir("a", 0o755, 0, 0)
        .symlink("a/deep-to-dir", &outdir, 0, 0)
        .symlink("a/relative-escape", &escape, 0, 0);
    fx.run_and_check(walk, &[]);
    assert_eq!(owner(&secret), (0, 0), "outside file");
    assert_eq!(owner(Path::new(&outdir)), (0, 0), "outside dir");
    assert_eq!(owner(&fx.abs("to-file")), (T, T), "the link itself (lstat)");
}
per_walk!(symlink_to_outside_root_file_changes_only_the_link);

fn hardlink_to_outside_file_is_skipped(walk: &str) {
    require!(root);
    let mut fx = Fx::new(&format!("fo-hardlink-{walk}"));
    fx.hardlink_outside("hl").dir("d", 0o755, 0, 0);
    fx.hardlink_outside("d/hl2");
    assert_eq!(fx.counts.hardlink, 2);
    let out = fx.run_and_check(walk, &["--verbose"]);
    let v = verbose(&out);
    assert_eq!(
        v.skipped.get(&fx.abs("hl")).map(String::as_str),
        Some("hardlinked"),
        "{out}"
    );
    assert_eq!(owner(&fx.abs("hl")), (0, 0));
}
per_walk!(hardlink_to_outside_file_is_skipped);

fn device_nodes_are_skipped(walk: &str) {
    require!(root);
    let mut fx = Fx::new(&format!("fo-dev-{walk}"));
    fx.dir("dev", 0o755, 0, 0).devices("dev/chr", "dev/blk");
    assert_eq!(fx.counts.device, 2);
    let out = fx.run_and_check(walk, &["--verbose"]);
    let v = verbose(&out);
    for rel in ["dev/chr", "dev/blk"] {
        assert_eq!(
            v.skipped.get(&fx.abs(rel)).map(String::as_str),
            Some("device"),
            "{rel}\n{out}"
        );
        assert_eq!(owner(&fx.abs(rel)), (0, 0), "{rel}");
    }
}
per_walk!(device_nodes_are_skipped);

fn bind_mount_and_tmpfs_inside_path_are_not_entered(walk: &str) {
    require!(root, tools: ["unshare", "mount", "sh", "stat"]);
    let mut fx = Fx::new(&format!("fo-mnt-{walk}"));
    fx.file("a", 0o644, 0, 0)
        .dir("sub", 0o755, 0, 0)
        .dir("t", 0o755, 0, 0);
    // The bind source sits on the same filesystem as PATH (/tmp): only the mount id tells.
    let src = TempDir::new(&format!("fo-mnt-src-{walk}"));
    Fx::make_dir(&src.path().join("inner"), 0o700, 0, 0);
    Fx::make_file(&src.path().join("inner/f"), 0o600, 0, 0);
    Fx::make_file(&src.path().join("g"), 0o644, 0, 0);
    let src_before = snapshot(src.path());
    let outdir = TempDir::new(&format!("fo-mnt-out-{walk}"));
    let json_file = outdir.path().join("report.json");
    let script = r#"set -e
mount --bind "$1" "$2/sub"
mount -t tmpfs none "$2/t"
mkdir "$2/t/d"
touch "$2/t/f" "$2/t/d/g"
rc=0
"$3" fix-ownership "$2" --user 10000:10000 --walk "$4" --json >"$5" || rc=$?
stat -c '%u:%g %n' "$2/sub" "$2/sub/g" "$2/sub/inner/f" "$2/t" "$2/t/f" "$2/t/d" "$2/t/d/g"
exit "$rc""#;
    let mut cmd = Command::new("unshare");
    clean_env(&mut cmd);
    cmd.args(["-m", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(src.path())
        .arg(fx.path())
        .arg(common::bin())
        .arg(walk)
        .arg(&json_file);
    let mut out = run_cmd(cmd, 60);
    let stats = std::mem::take(&mut out.stdout);
    out.stdout = fs::read_to_string(&json_file).unwrap_or_default();
    assert_eq!(out.code, Some(0), "exit code\n{out}\n--- stat ---\n{stats}");
    // Inside the namespace, every entry of both mounts kept root ownership.
    let lines: Vec<&str> = stats.lines().collect();
    assert_eq!(lines.len(), 7, "stat output:\n{stats}\n{out}");
    for l in &lines {
        assert!(l.starts_with("0:0 "), "changed inside a mount: {l}\n{out}");
    }
    // PATH and `a` changed; the two mount points are seen and skipped, nothing below them.
    let want = Counts {
        scanned: 4,
        changed: 2,
        mount: 2,
        ..Counts::default()
    };
    let counts = report(&out, fx.path(), Some(walk), false, (T, T));
    assert_eq!(counts, want, "counts\n{out}");
    assert_same_snapshot(&src_before, &snapshot(src.path()), "bind mount source");
    assert_eq!(owner(&fx.abs("a")), (T, T), "{out}");
    assert_eq!(owner(fx.path()), (T, T), "{out}");
}
per_walk!(bind_mount_and_tmpfs_inside_path_are_not_entered);

// ---------------------------------------------------------------------------------------------
// Refusals
// ---------------------------------------------------------------------------------------------

/// Exit 2 and exactly one stderr line starting with the prefix; returns that line.
fn assert_refused(out: &Out) -> String {
    assert_eq!(out.code, Some(2), "expected a refusal (exit 2)\n{out}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "refusal must be one stderr line\n{out}");
    assert!(
        lines[0].starts_with(PREFIX),
        "refusal line must start with {PREFIX:?}\n{out}"
    );
    lines[0].to_string()
}

/// A small root-owned tree that a refused run must leave alone.
fn victim(tag: &str) -> Fx {
    let mut fx = Fx::new(tag);
    fx.file("config.yaml", 0o600, 0, 0)
        .dir("logs", 0o700, 0, 0)
        .file("logs/agent.log", 0o644, 0, 0)
        .file("half", 0o644, T, 0);
    fx
}

#[test]
fn refuses_relative_path() {
    require!(root);
    let fx = victim("fo-ref-rel");
    for rel in [".", "logs", "./logs"] {
        let mut cmd = fo_cmd(&[rel, "--user", USER]);
        cmd.current_dir(fx.path());
        let out = run_cmd(cmd, 30);
        assert_refused(&out);
        fx.check_untouched(&out);
    }
}

#[test]
fn refuses_root_and_system_directories() {
    require!(root, tools: ["unshare"]);
    // A binary that failed to refuse would chown the host, so each attempt runs in a user
    // namespace where only uid 0 is mapped: there chown to 10000 is EINVAL, and the refusal,
    // which looks only at the path, is unaffected. The control run proves the sandbox itself is
    // not what makes it refuse.
    let sandboxed = |args: &[&OsStr]| {
        let mut cmd = Command::new("unshare");
        clean_env(&mut cmd);
        cmd.args(["--user", "--map-root-user"])
            .arg(common::bin())
            .arg("fix-ownership")
            .args(args);
        run_cmd(cmd, 30)
    };
    let control = victim("fo-ref-sys-control");
    let out = sandboxed(&[
        control.path().as_os_str(),
        OsStr::new("--user"),
        OsStr::new(USER),
        OsStr::new("--dry-run"),
    ]);
    assert_eq!(
        out.code,
        Some(0),
        "control: a dry run of a temp tree in the sandbox must succeed\n{out}"
    );
    control.check_untouched(&out);
    for dir in [
        "/",
        "/etc",
        "/usr",
        "/tmp",
        "/var",
        "/home",
        "/root",
        "/bin",
        "/sbin",
        "/lib",
        "/boot",
        "/dev",
        "/proc",
        "/run",
        "/srv",
        "/sys",
        "/etc/",
        "/etc/ssl",
        "/usr/local",
        "/opt",
        "/var/lib",
        "/var/log",
        "/root/.cache",
    ] {
        let out = sandboxed(&[dir, "--user", USER].map(OsStr::new));
        let line = assert_refused(&out);
        assert!(
            line.contains(dir.trim_end_matches('/')),
            "names {dir}\n{out}"
        );
    }
    // Never run these outside the sandbox, not even with --dry-run: a binary that both ignored
    // --dry-run and failed to refuse would re-own the host (a test-suite mutant did exactly that).
}

#[test]
fn roots_holding_what_root_runs_are_refused_and_data_homes_accepted() {
    require!(root, tools: ["unshare"]);
    // The image's layout, rebuilt on tmpfs in a user and mount namespace of its own (only uid 0
    // mapped, so no chown can succeed): the shim runs from /opt/hermes/bin, the real programs
    // are in a venv at /opt/hermes/.venv, both on PATH. Each root is tried with --dry-run and
    // its exit code printed.
    let script = r#"set -e
for d in /opt /mnt /srv /home /var/lib; do mount -t tmpfs tmpfs "$d"; done
mkdir -p /opt/hermes/bin /opt/hermes/.venv/bin /opt/hermes/.venv/lib /opt/data /mnt/x \
    /srv/hermes /home/hermes/.hermes /var/lib/hermes
: > /opt/hermes/.venv/pyvenv.cfg
cp "$1" /opt/hermes/bin/hermes-shim
shift
export PATH=/opt/hermes/bin:/opt/hermes/.venv/bin:/usr/bin:/bin
export HERMES_SHIM_REAL_DIR=/opt/hermes/.venv/bin
for root in "$@"; do
    rc=0
    /opt/hermes/bin/hermes-shim fix-ownership "$root" --user 10000:10000 --dry-run \
        >/dev/null 2>"/tmp/err" || rc=$?
    echo "$root $rc $(head -n 1 /tmp/err)"
done
"#;
    let refused = [
        "/opt",
        "/opt/hermes",
        "/opt/hermes/bin",
        "/opt/hermes/.venv",
        "/opt/hermes/.venv/bin",
        "/opt/hermes/.venv/lib",
    ];
    let accepted = [
        "/opt/data",
        "/mnt/x",
        "/srv/hermes",
        "/home/hermes/.hermes",
        "/var/lib/hermes",
    ];
    let mut cmd = Command::new("unshare");
    clean_env(&mut cmd);
    cmd.args([
        "--user",
        "--map-root-user",
        "--mount",
        "sh",
        "-c",
        script,
        "sh",
    ])
    .arg(common::bin())
    .args(refused)
    .args(accepted);
    let out = run_cmd(cmd, 60);
    assert_eq!(out.code, Some(0), "{out}");
    let results: BTreeMap<&str, (&str, &str)> = out
        .stdout
        .lines()
        .filter_map(|l| {
            let (root, rest) = l.split_once(' ')?;
            Some((root, rest.split_once(' ').unwrap_or((rest, ""))))
        })
        .collect();
    for root in refused {
        let (rc, msg) = results
            .get(root)
            .unwrap_or_else(|| panic!("{root}: no result\n{out}"));
        assert_eq!(*rc, "2", "{root} must be refused: {msg}");
        assert!(msg.starts_with(PREFIX), "{root}: {msg}");
    }
    for root in accepted {
        let (rc, msg) = results
            .get(root)
            .unwrap_or_else(|| panic!("{root}: no result\n{out}"));
        assert_eq!(*rc, "0", "{root} must be accepted: {msg}");
    }
}

#[test]
fn refuses_path_that_is_a_symlink_and_names_the_real_path() {
    require!(root);
    let fx = victim("fo-ref-link");
    let holder = TempDir::new("fo-ref-link-holder");
    let link = holder.path().join("home");
    symlink(fx.path(), &link).unwrap();
    let link_before = owner(&link);
    let out = run_cmd(
        fo_cmd(&[link.as_os_str(), OsStr::new("--user"), OsStr::new(USER)]),
        30,
    );
    let line = assert_refused(&out);
    assert!(
        line.contains(fx.path().to_str().unwrap()),
        "refusal must suggest the real path {}\n{out}",
        fx.path().display()
    );
    assert!(
        line.contains("symlink") || line.contains("symbolic link"),
        "{out}"
    );
    fx.check_untouched(&out);
    assert_eq!(owner(&link), link_before, "the PATH symlink itself\n{out}");
}

#[test]
fn refuses_symlinks_anywhere_in_path_even_with_a_trailing_slash() {
    require!(root);
    // `lstat("link/")` and `open("link/", O_NOFOLLOW)` both follow the link: the trailing slash
    // must not smuggle a symlink past the check, and neither may a symlink earlier in PATH.
    let fx = victim("fo-ref-slash");
    fs::create_dir(fx.path().join("sub")).unwrap();
    Fx::set(&fx.path().join("sub"), None, 0, 0);
    let holder = TempDir::new("fo-ref-slash-holder");
    let link = holder.path().join("home");
    symlink(fx.path(), &link).unwrap();
    let before = snapshot(fx.path());
    for path in [
        format!("{}/", link.display()),
        format!("{}/.", link.display()),
        format!("{}/sub", link.display()),
        format!("{}/sub/", link.display()),
    ] {
        let out = run_cmd(fo_cmd(&[path.as_str(), "--user", USER]), 30);
        let line = assert_refused(&out);
        assert!(line.contains("symlink"), "{path}: names the symlink\n{out}");
        assert!(
            line.contains(fx.path().to_str().unwrap()),
            "{path}: suggests the real path\n{out}"
        );
        assert_same_snapshot(&before, &snapshot(fx.path()), &out.to_string());
    }
}

#[test]
fn no_applet_runs_setuid() {
    require!(root);
    // Installed setuid root, fix-ownership would let any user chown as root: every applet refuses.
    let fx = victim("fo-setuid");
    let dir = TempDir::new("fo-setuid-bin");
    let copy = dir.path().join("hermes-shim");
    for mode in [0o4755, 0o2755] {
        common::copy_bin(&copy, mode);
        let mut cmd = Command::new(&copy);
        clean_env(&mut cmd);
        cmd.arg("fix-ownership")
            .arg(fx.path())
            .args(["--user", USER]);
        let out = run_cmd(cmd, 30);
        assert_eq!(out.code, Some(126), "mode {mode:o}\n{out}");
        assert!(out.stderr.contains("setuid"), "mode {mode:o}\n{out}");
        fx.check_untouched(&out);
    }
}

#[test]
fn refuses_non_directory_and_nonexistent_path() {
    require!(root);
    let fx = victim("fo-ref-notdir");
    for rel in ["config.yaml", "missing", "logs/missing/deeper"] {
        let out = run_cmd(
            fo_cmd(&[
                fx.abs(rel).as_os_str(),
                OsStr::new("--user"),
                OsStr::new(USER),
            ]),
            30,
        );
        assert_refused(&out);
        fx.check_untouched(&out);
    }
}

#[test]
fn refuses_caller_that_is_not_root() {
    require!(root, tools: ["setpriv"]);
    let fx = victim("fo-ref-nonroot");
    // A copy other uids can certainly execute, whatever the target directory's permissions.
    let bindir = TempDir::new("fo-ref-nonroot-bin");
    let bin = bindir.path().join("hermes-shim");
    common::copy_bin(&bin, 0o755);
    let mut cmd = Command::new("setpriv");
    clean_env(&mut cmd);
    cmd.args(["--reuid=10000", "--regid=10000", "--clear-groups"])
        .arg(&bin)
        .arg("fix-ownership")
        .arg(fx.path())
        .args(["--user", USER]);
    let out = run_cmd(cmd, 30);
    let line = assert_refused(&out);
    assert!(line.contains("root"), "must say it needs root\n{out}");
    fx.check_untouched(&out);
}

#[test]
fn refuses_unknown_user_and_uid_zero() {
    require!(root);
    let fx = victim("fo-ref-user");
    for user in [
        "no-such-user-hermes-shim-test",
        "0",
        "root",
        "0:10000",
        "0:0",
    ] {
        let out = run_cmd(
            fo_cmd(&[
                fx.path().as_os_str(),
                OsStr::new("--user"),
                OsStr::new(user),
            ]),
            30,
        );
        assert_refused(&out);
        fx.check_untouched(&out);
    }
    // The same through HERMES_SHIM_USER.
    for user in ["no-such-user-hermes-shim-test", "0"] {
        let mut cmd = fo_cmd(&[fx.path()]);
        cmd.env("HERMES_SHIM_USER", user);
        let out = run_cmd(cmd, 30);
        assert_refused(&out);
        fx.check_untouched(&out);
    }
}

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

fn exclude_fixture(tag: &str) -> Fx {
    let mut fx = Fx::new(tag);
    fx.dir("skills", 0o700, 0, 0)
        .file("skills/keep", 0o644, 0, 0)
        .excluded_dir("skills/vendored")
        .excluded_file("auth.json")
        .file("other", 0o600, 0, 0);
    fx
}

fn exclude_flag_leaves_subtrees_alone(walk: &str) {
    require!(root);
    let fx = exclude_fixture(&format!("fo-excl-{walk}"));
    assert_eq!(fx.counts.excluded, 2);
    let out = fx.run_and_check(
        walk,
        &[
            "--exclude",
            "skills/vendored",
            "--exclude",
            "auth.json",
            "--verbose",
        ],
    );
    let v = verbose(&out);
    assert_eq!(
        v.skipped
            .get(&fx.abs("skills/vendored"))
            .map(String::as_str),
        Some("excluded"),
        "{out}"
    );
    assert_eq!(owner(&fx.abs("skills/vendored/inner/f")), (0, 0));
}
per_walk!(exclude_flag_leaves_subtrees_alone);

fn exclude_from_environment_with_two_entries(walk: &str) {
    require!(root);
    let fx = exclude_fixture(&format!("fo-exclenv-{walk}"));
    let mut cmd = fo_cmd(&[fx.path().as_os_str()]);
    cmd.args(["--user", USER, "--walk", walk, "--json"])
        .env("HERMES_SHIM_EXCLUDE", "skills/vendored:auth.json");
    let out = run_cmd(cmd, 60);
    assert_eq!(out.code, Some(0), "{out}");
    let counts = report(&out, fx.path(), Some(walk), false, (T, T));
    assert_eq!(counts, fx.counts, "{out}");
    fx.check_fixed(&out);
}
per_walk!(exclude_from_environment_with_two_entries);

fn dry_run_changes_nothing_and_lists_exactly_what_the_real_run_changes(walk: &str) {
    require!(root);
    let fx = main_fixture(&format!("fo-dry-{walk}"));
    let dry = fo(fx.path(), walk, &["--dry-run", "--verbose", "--json"]);
    assert_eq!(dry.code, Some(0), "{dry}");
    fx.check_untouched(&dry);
    let dry_counts = report(&dry, fx.path(), Some(walk), true, (T, T));
    assert_eq!(dry_counts, fx.counts, "dry-run counts\n{dry}");
    let dv = verbose(&dry);
    assert!(
        dv.changed.is_empty(),
        "a dry run claims real changes\n{dry}"
    );
    assert_eq!(dv.would, fx.changes, "dry run's would-change set\n{dry}");
    assert_eq!(dv.skipped, fx.skips, "dry run's skip lines\n{dry}");

    let real = fo(fx.path(), walk, &["--verbose", "--json"]);
    assert_eq!(real.code, Some(0), "{real}");
    fx.check_fixed(&real);
    let rv = verbose(&real);
    assert!(
        rv.would.is_empty(),
        "a real run says 'would change'\n{real}"
    );
    assert_eq!(dv.would, rv.changed, "dry run vs real run\n{dry}\n{real}");
    assert_eq!(rv.skipped, fx.skips, "real run's skip lines\n{real}");
    let counts = report(&real, fx.path(), Some(walk), false, (T, T));
    assert_eq!(counts.changed, rv.changed.len() as u64, "{real}");
}
per_walk!(dry_run_changes_nothing_and_lists_exactly_what_the_real_run_changes);

#[test]
fn names_print_unambiguously_in_verbose_and_json() {
    require!(root);
    use std::os::unix::ffi::OsStrExt;
    let base = TempDir::new("fo-names");
    // The sweep root itself has a byte that is not UTF-8 in its name.
    let root = base.path().join(OsStr::from_bytes(b"r\xff"));
    Fx::make_dir(&root, 0o755, T, T);
    let names: [(&[u8], &str); 7] = [
        (b"a\nb", "a\\nb"),
        (b"a\\nb", "a\\\\nb"),
        (b"\xff", "\\xff"),
        (b"\xfe", "\\xfe"),
        ("evil\u{202e}gpj.exe".as_bytes(), "evil\\u{202e}gpj.exe"),
        ("line\u{2028}sep".as_bytes(), "line\\u{2028}sep"),
        (b"tab\there", "tab\\there"),
    ];
    for (name, _) in names {
        Fx::make_file(&root.join(OsStr::from_bytes(name)), 0o600, 0, 0);
    }
    let out = fo(&root, "openat2", &["--dry-run", "--verbose", "--json"]);
    assert_eq!(out.code, Some(0), "{out}");
    let shown_root = format!("{}/r\\xff", base.path().display());
    let v = verbose(&out);
    let want: BTreeSet<PathBuf> = names
        .iter()
        .map(|(_, shown)| PathBuf::from(format!("{shown_root}/{shown}")))
        .collect();
    assert_eq!(v.would, want, "every name, escaped, each once\n{out}");
    for bad in ['\u{202e}', '\u{2028}', '\u{fffd}'] {
        assert!(!out.stderr.contains(bad), "{bad:?} reached the log\n{out}");
    }
    assert_eq!(
        out.stderr.lines().count(),
        names.len() + 1,
        "no name forged a line\n{out}"
    );
    let obj = json_object(&out);
    assert_eq!(obj["root"], shown_root.as_str(), "{out}");
    assert!(
        out.stderr.contains(&format!(
            "{PREFIX}{shown_root}: would change 7 of 8 entries"
        )),
        "the summary names the root the same way\n{out}"
    );
}

fn second_run_changes_nothing(walk: &str) {
    require!(root);
    let fx = main_fixture(&format!("fo-second-{walk}"));
    fx.run_and_check(walk, &[]);
    let second = fo(fx.path(), walk, &["--json"]);
    assert_eq!(second.code, Some(0), "{second}");
    let c = report(&second, fx.path(), Some(walk), false, (T, T));
    // Same entries seen, same skips, nothing left to do.
    let want = Counts {
        changed: 0,
        ..fx.counts
    };
    assert_eq!(c, want, "second run\n{second}");
    fx.check_fixed(&second);
    // And without --json, the summary alone says the same.
    let third = fo(fx.path(), walk, &[]);
    assert_eq!(third.code, Some(0), "{third}");
    assert!(third.stdout.is_empty(), "stdout without --json\n{third}");
    assert_eq!(summary(&third, fx.path(), false), want, "{third}");
}
per_walk!(second_run_changes_nothing);

#[test]
fn json_reports_the_backend_and_the_environment_switch_forces_fallback() {
    require!(root);
    let fx = victim("fo-json-walk");
    let mut cmd = fo_cmd(&[fx.path().as_os_str()]);
    cmd.args(["--user", USER, "--json", "--dry-run"])
        .env("HERMES_SHIM_WALK", "fallback");
    let out = run_cmd(cmd, 30);
    assert_eq!(out.code, Some(0), "{out}");
    report(&out, fx.path(), Some("fallback"), true, (T, T));
    // `auto` on this kernel (openat2 available, no seccomp) picks openat2.
    let out = fo(fx.path(), "auto", &["--json", "--dry-run"]);
    assert_eq!(out.code, Some(0), "{out}");
    report(&out, fx.path(), Some("openat2"), true, (T, T));
    fx.check_untouched(&out);
}

#[test]
fn default_path_and_user_come_from_the_environment() {
    require!(root);
    let fx = victim("fo-env-defaults");
    let mut cmd = fo_cmd::<&str>(&["--json"]);
    cmd.env("HERMES_HOME", fx.path())
        .env("HERMES_SHIM_USER", USER);
    let out = run_cmd(cmd, 30);
    assert_eq!(out.code, Some(0), "{out}");
    let c = report(&out, fx.path(), None, false, (T, T));
    assert_eq!(c, fx.counts, "{out}");
    fx.check_fixed(&out);
}

#[test]
fn user_by_name_is_resolved_from_etc_passwd_and_group() {
    require!(root, tools: ["unshare", "mount", "sh"]);
    // The test user's primary group (10001) differs from its uid, so a binary that guessed
    // gid = uid instead of reading the passwd entry would be caught.
    let etc = TempDir::new("fo-name-etc");
    let passwd = etc.path().join("passwd");
    let group = etc.path().join("group");
    fs::write(
        &passwd,
        "root:x:0:0:root:/root:/bin/sh\nhermtest:x:10000:10001:test:/nonexistent:/bin/sh\n",
    )
    .unwrap();
    fs::write(&group, "root:x:0:\nstaff:x:50:\nhermgrp:x:10001:\n").unwrap();
    let in_ns = |args: &[&OsStr], env: &[(&str, &OsStr)]| {
        let mut cmd = Command::new("unshare");
        clean_env(&mut cmd);
        cmd.args([
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            r#"mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/group && shift 2 && exec "$0" "$@""#,
        ])
        .arg(common::bin())
        .arg(&passwd)
        .arg(&group)
        .arg("fix-ownership")
        .args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        run_cmd(cmd, 30)
    };
    let target = (T, 10001);
    let fixture = |tag: &str| {
        let mut fx = Fx::with_target(tag, target);
        fx.file("config.yaml", 0o600, 0, 0)
            .dir("logs", 0o700, 0, 0)
            .file("staff", 0o644, 0, 50)
            .file("half", 0o644, T, 0)
            .file("host", 0o644, 1000, 0);
        fx
    };
    let fx = fixture("fo-name-flag");
    let out = in_ns(
        &[
            fx.path().as_os_str(),
            OsStr::new("--user"),
            OsStr::new("hermtest"),
            OsStr::new("--json"),
        ],
        &[],
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        report(&out, fx.path(), None, false, target),
        fx.counts,
        "{out}"
    );
    fx.check_fixed(&out);

    let fx = fixture("fo-name-env");
    let out = in_ns(
        &[OsStr::new("--json")],
        &[
            ("HERMES_HOME", fx.path().as_os_str()),
            ("HERMES_SHIM_USER", OsStr::new("hermtest")),
        ],
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        report(&out, fx.path(), None, false, target),
        fx.counts,
        "{out}"
    );
    fx.check_fixed(&out);
}

// ---------------------------------------------------------------------------------------------
// Bounds: a 10,000-level tree under a 256-fd limit
// ---------------------------------------------------------------------------------------------

const DEEP: usize = 10_000;

fn open_dir_at(parent: impl AsFd, name: &str) -> nix::Result<OwnedFd> {
    openat(
        parent,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// Builds root/d/d/…/d, `levels` deep, relative to the parent's fd (the paths exceed PATH_MAX,
/// and chdir would disturb the tests running in parallel threads).
fn build_deep(root: &Path, levels: usize) {
    let mut fd: OwnedFd = File::open(root).unwrap().into();
    for i in 0..levels {
        mkdirat(&fd, "d", Mode::from_bits_truncate(0o755))
            .unwrap_or_else(|e| panic!("mkdirat level {i}: {e}"));
        fd = open_dir_at(&fd, "d").unwrap_or_else(|e| panic!("openat level {i}: {e}"));
    }
}

/// Owners of root and every level below it, read by fd.
fn deep_owners(root: &Path) -> Vec<(u32, u32)> {
    let mut fd: OwnedFd = File::open(root).unwrap().into();
    let mut v = Vec::with_capacity(DEEP + 1);
    loop {
        let st = fstat(&fd).unwrap();
        v.push((st.st_uid, st.st_gid));
        match open_dir_at(&fd, "d") {
            Ok(next) => fd = next,
            Err(nix::errno::Errno::ENOENT) => return v,
            Err(e) => panic!("openat at level {}: {e}", v.len()),
        }
    }
}

fn deep_tree(walk: &str) {
    require!(root, tools: ["prlimit", "rm"]);
    let dir = TempDir::new(&format!("fo-deep-{walk}"));
    build_deep(dir.path(), DEEP);
    let before = deep_owners(dir.path());
    assert_eq!(before.len(), DEEP + 1);
    assert!(
        before.iter().all(|&o| o == (0, 0)),
        "fixture not root-owned"
    );
    let mut cmd = Command::new("prlimit");
    clean_env(&mut cmd);
    cmd.arg("--nofile=256:256")
        .arg(common::bin())
        .arg("fix-ownership")
        .arg(dir.path())
        .args(["--user", USER, "--walk", walk, "--json"]);
    let out = run_cmd(cmd, 300);
    let after = deep_owners(dir.path());
    // Remove the tree here: rm copes with any depth, whatever the drop path does.
    let rm = Command::new("rm")
        .arg("-rf")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(rm.success(), "rm -rf of the deep tree failed");
    assert_eq!(out.code, Some(0), "exit code\n{out}");
    let c = report(&out, dir.path(), Some(walk), false, (T, T));
    let want = Counts {
        scanned: DEEP as u64 + 1,
        changed: DEEP as u64 + 1,
        ..Counts::default()
    };
    assert_eq!(c, want, "{out}");
    let wrong = after.iter().filter(|&&o| o != (T, T)).count();
    assert_eq!(wrong, 0, "{wrong} levels not changed to {USER}\n{out}");
}

per_walk!(deep_tree);

/// The documented depth cap (README): memory per worker grows with depth, so a hostile chain
/// is cut there, reported, and everything above the cut is still fixed.
const MAX_DEPTH: usize = 16 * 1024;

#[test]
fn a_chain_deeper_than_the_cap_is_cut_and_reported() {
    require!(root, tools: ["rm"]);
    let dir = TempDir::new("fo-deeper");
    build_deep(dir.path(), MAX_DEPTH + 5);
    let out = fo(dir.path(), "openat2", &[]);
    let after = deep_owners(dir.path());
    let rm = Command::new("rm")
        .arg("-rf")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(rm.success(), "rm -rf of the deep tree failed");
    assert_eq!(out.code, Some(1), "the cut is an error\n{out}");
    assert!(
        out.stderr
            .contains(&format!("deeper than {MAX_DEPTH} levels")),
        "{out}"
    );
    // Levels 0..=MAX_DEPTH+1 are judged (the last of them is changed but not entered).
    let fixed = MAX_DEPTH + 2;
    assert_eq!(after.len(), MAX_DEPTH + 6);
    assert!(
        after[..fixed].iter().all(|&o| o == (T, T)),
        "above the cut: fixed\n{out}"
    );
    assert!(
        after[fixed..].iter().all(|&o| o == (0, 0)),
        "below the cut: untouched\n{out}"
    );
}

// ---------------------------------------------------------------------------------------------
// Race: an attacker with write access to PATH swaps directories for symlinks to a root-owned tree
// ---------------------------------------------------------------------------------------------

/// The attacker, run as uid 10000. It keeps: swapping directories for symlinks to the outside
/// tree and back, renaming entries around, planting hardlinks (its own files in and out of PATH,
/// and root's outside files, which fs.protected_hardlinks normally refuses), planting symlinks to
/// the outside tree, and pruning. Every 64 rounds it writes its tally to STATUS.
const ATTACKER: &str = r#"
import os, random, sys
home, out, own, status = sys.argv[1:5]
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
"#;

/// Kills the attacker however the test ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Adds fresh root-owned entries inside PATH (dirs, files, and root-owned symlinks pointing at
/// the outside tree), created relative to fds so the attacker cannot redirect the test itself.
fn seed(home: &OwnedFd, i: usize, out: &Path) {
    let name = format!("g{i}");
    if mkdirat(home, name.as_str(), Mode::from_bits_truncate(0o755)).is_err() {
        return;
    }
    let Ok(g) = open_dir_at(home, &name) else {
        return;
    };
    let _ = mkdirat(&g, "s", Mode::from_bits_truncate(0o755));
    let create =
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let _ = openat(&g, "f", create, Mode::from_bits_truncate(0o644));
    let _ = nix::unistd::symlinkat(out, &g, "to-out");
    if let Ok(s) = open_dir_at(&g, "s") {
        let _ = openat(&s, "f", create, Mode::from_bits_truncate(0o600));
        let _ = nix::unistd::symlinkat(&out.join("f"), &s, "to-out-f");
        let _ = mkdirat(&s, "t", Mode::from_bits_truncate(0o700));
    }
}

fn race_attacker_swapping_symlinks_never_redirects_a_chown(walk: &str) {
    require!(root, tools: ["setpriv"]);
    require!(
        Path::new("/usr/bin/python3").is_file(),
        "needs /usr/bin/python3"
    );
    let base = TempDir::new("fo-race");
    let home = base.path().join("home");
    Fx::make_dir(&home, 0o755, T, T);
    // The outside tree: root-owned, readable, the target of every attacker symlink.
    let outside = TempDir::new("fo-race-out");
    let out = outside.path().to_path_buf();
    Fx::make_dir(&out.join("a"), 0o755, 0, 0);
    Fx::make_dir(&out.join("a/b"), 0o755, 0, 0);
    for f in ["f", "a/g", "a/b/h"] {
        Fx::make_file(&out.join(f), 0o644, 0, 0);
    }
    let outside_before = snapshot(&out);
    // The attacker's own files outside PATH, to hardlink into PATH.
    let own = TempDir::new("fo-race-own");
    Fx::set(own.path(), None, T, T);
    for f in ["mine0", "mine1"] {
        Fx::make_file(&own.path().join(f), 0o644, T, T);
    }
    let status = own.path().join("status");

    let home_fd: OwnedFd = File::open(&home).unwrap().into();
    for i in 0..20 {
        seed(&home_fd, 100_000 + i, &out);
    }
    let mut cmd = Command::new("setpriv");
    clean_env(&mut cmd);
    cmd.args([
        "--reuid=10000",
        "--regid=10000",
        "--clear-groups",
        "/usr/bin/python3",
        "-c",
    ])
    .arg(ATTACKER)
    .arg(&home)
    .arg(&out)
    .arg(own.path())
    .arg(&status)
    .stdin(Stdio::null())
    .stdout(Stdio::null());
    let attacker = KillOnDrop(cmd.spawn().expect("start the attacker"));
    // Let it get going before the first sweep.
    let t0 = Instant::now();
    while !status.exists() && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }

    // 100 runs per backend: the 200 over both that the README promises.
    let runs = 100;
    let mut changed_runs = 0;
    let mut failed_runs = Vec::new();
    let started = Instant::now();
    for i in 0..runs {
        seed(&home_fd, i, &out);
        let out_run = fo(&home, walk, &["--json"]);
        match out_run.code {
            Some(0) | Some(1) => {}
            _ => panic!("run {i} ({walk}): exit must be 0 or 1 under a race\n{out_run}"),
        }
        if out_run.code == Some(1) {
            failed_runs.push(format!("run {i} ({walk})"));
        }
        let c = report(&out_run, &home, Some(walk), false, (T, T));
        if c.changed > 0 {
            changed_runs += 1;
        }
        // The one thing that must never happen, checked after every run so a failure points
        // at the run that caused it.
        let now = snapshot(&out);
        if now != outside_before {
            assert_same_snapshot(
                &outside_before,
                &now,
                &format!("outside tree after run {i} ({walk})"),
            );
        }
    }
    let elapsed = started.elapsed();
    drop(attacker);
    let tally = fs::read_to_string(&status).unwrap_or_default();
    eprintln!(
        "race ({walk}): {runs} runs in {elapsed:?}, {changed_runs} changed something, {} exited 1; attacker: {tally}",
        failed_runs.len()
    );
    assert_same_snapshot(&outside_before, &snapshot(&out), "outside tree");
    assert_same_snapshot(
        &BTreeMap::from_iter(["mine0", "mine1"].map(|f| own.path().join(f)).map(|p| {
            let m = lstat(&p);
            (p, (m.ino(), T, T, 0o100644))
        })),
        &BTreeMap::from_iter(["mine0", "mine1"].map(|f| own.path().join(f)).map(|p| {
            let m = lstat(&p);
            (p, (m.ino(), m.uid(), m.gid(), m.mode()))
        })),
        "attacker's own outside files",
    );
    // The race must actually have happened: sweeps with work to do, and an attacker that swapped.
    assert!(
        changed_runs >= runs / 2,
        "only {changed_runs} runs had anything to change"
    );
    let swaps: u64 = tally
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("swap="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(swaps >= 100, "attacker barely ran: {tally:?}");

    // With the attacker gone, one more sweep heals everything inside PATH.
    let last = fo(&home, "openat2", &["--json"]);
    assert_eq!(last.code, Some(0), "final sweep\n{last}");
    let c = report(&last, &home, Some("openat2"), false, (T, T));
    assert_eq!(c.errors, 0, "{last}");
    let wrong: Vec<String> = walkdir::WalkDir::new(&home)
        .into_iter()
        .filter_map(|e| {
            let e = e.ok()?;
            let m = e.metadata().ok()?;
            ((m.uid(), m.gid()) != (T, T))
                .then(|| format!("{} {}:{}", e.path().display(), m.uid(), m.gid()))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "left unfixed after the final sweep:\n{}\n{last}",
        wrong.join("\n")
    );
    assert!(
        elapsed < Duration::from_secs(90),
        "race test took {elapsed:?}; keep it under a minute"
    );
}
per_walk!(race_attacker_swapping_symlinks_never_redirects_a_chown);

/// A uid-10000 process that keeps creating and deleting its own directory trees, as an agent's
/// caches and sessions do.
const CHURN: &str = r#"
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
"#;

fn directories_that_vanish_mid_sweep_are_not_errors(walk: &str) {
    require!(root, tools: ["setpriv"]);
    let base = TempDir::new("fo-churn");
    let home = base.path().join("home");
    Fx::make_dir(&home, 0o755, T, T);
    let own = base.path().join("own");
    Fx::make_dir(&own, 0o755, T, T);
    let status = own.join("status");
    fs::write(home.join("rootfile"), "x").unwrap();
    let mut cmd = Command::new("setpriv");
    clean_env(&mut cmd);
    cmd.args([
        "--reuid=10000",
        "--regid=10000",
        "--clear-groups",
        "/usr/bin/python3",
        "-c",
    ])
    .arg(CHURN)
    .arg(&home)
    .arg(&status)
    .stdin(Stdio::null());
    let churn = KillOnDrop(cmd.spawn().expect("start the churning process"));
    let t0 = Instant::now();
    while !status.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the churning process never got going"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // 30 runs per backend: the 60 one test once alternated over both.
    let runs = 30;
    let mut failed = Vec::new();
    for i in 0..runs {
        let out = fo(&home, walk, &[]);
        if out.code != Some(0) || out.stderr.contains("error:") {
            failed.push(format!("run {i} ({walk}):\n{out}"));
        }
    }
    drop(churn);
    assert!(
        failed.is_empty(),
        "{} of {runs} runs failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
    assert_eq!(owner(&home.join("rootfile")), (T, T));
}
per_walk!(directories_that_vanish_mid_sweep_are_not_errors);

fn chown_impossible_is_said_once_and_stops(walk: &str) {
    require!(root, tools: ["unshare"]);
    // In a user namespace that maps only uid 0, every chown to 10000 is EINVAL: the same answer
    // rootless Podman and some NAS mounts give container root.
    let mut fx = victim(&format!("fo-impossible-{walk}"));
    for i in 0..20 {
        fx.file(&format!("f{i}"), 0o644, 0, 0);
    }
    let mut cmd = Command::new("unshare");
    clean_env(&mut cmd);
    cmd.args(["--user", "--map-root-user"])
        .arg(common::bin())
        .args(["fix-ownership", "--walk", walk, "--user", USER])
        .arg(fx.path());
    let out = run_cmd(cmd, 30);
    assert_eq!(
        out.code,
        Some(1),
        "--walk {walk}: some entries were not fixed\n{out}"
    );
    let said: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("chown is not permitted here"))
        .collect();
    assert_eq!(said.len(), 1, "--walk {walk}: said once\n{out}");
    assert!(
        !out.stderr.contains("error:"),
        "--walk {walk}: no per-entry flood before the verdict\n{out}"
    );
    let c = summary(&out, fx.path(), false);
    assert_eq!(c.changed, 0, "--walk {walk}\n{out}");
    assert!(
        c.scanned < 26,
        "--walk {walk}: it stops instead of walking on ({} scanned)\n{out}",
        c.scanned
    );
    fx.check_untouched(&out);
}
per_walk!(chown_impossible_is_said_once_and_stops);

#[test]
fn a_few_denied_chowns_are_ordinary_errors() {
    require!(root, tools: ["chattr"]);
    // One immutable root-owned file refuses chown with EPERM even to root. With nothing else to
    // change, that is one ordinary, reported error: not "chown is impossible here".
    let mut fx = Fx::new("fo-immutable");
    fx.dir("d", 0o755, T, T).file("d/stuck", 0o644, 0, 0);
    let stuck = fx.abs("d/stuck");
    let chattr = |flag: &str| {
        Command::new("chattr")
            .arg(flag)
            .arg(&stuck)
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    require!(
        chattr("+i"),
        "chattr +i is not supported on the temp filesystem"
    );
    let out = fo(fx.path(), "openat2", &[]);
    chattr("-i");
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr.contains("error:") && out.stderr.contains("d/stuck"),
        "the failing entry is reported by path\n{out}"
    );
    assert!(!out.stderr.contains("not permitted here"), "{out}");
    assert_eq!(owner(&stuck), (0, 0));
}

fn immutable_files_first_do_not_pass_for_chown_being_impossible(walk: &str) {
    require!(root, tools: ["unshare", "mount", "chattr"]);
    // On a tmpfs of its own (gone with the namespace, immutable files and all), which lists a
    // directory newest first: 200 ordinary root-owned files, then 8 immutable ones, so the
    // immutable ones are the first 8 chowns the sweep tries. The root itself is already the
    // hermes user's, so no chown succeeds before them.
    let dir = TempDir::new(&format!("fo-immutable-first-{walk}"));
    let script = r#"set -e
mount -t tmpfs tmpfs "$1"
mkdir "$1/home"
chown 10000:10000 "$1/home"
for i in $(seq 200); do : > "$1/home/ordinary$i"; done
for i in $(seq 8); do : > "$1/home/stuck$i"; chattr +i "$1/home/stuck$i"; done
echo "first: $(ls -U "$1/home" | head -n 8 | tr '\n' ' ')"
rc=0
"$0" fix-ownership "$1/home" --user 10000:10000 || rc=$?
echo "rc: $rc"
echo "root-owned: $(find "$1/home" -user 0 | tr '\n' ' ')"
"#;
    let mut cmd = Command::new("unshare");
    clean_env(&mut cmd);
    cmd.args(["-m", "--propagation", "private", "sh", "-c", script])
        .arg(common::bin())
        .arg(dir.path())
        .env("HERMES_SHIM_WALK", walk);
    let out = run_cmd(cmd, 60);
    let field = |k: &str| {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}: ")))
            .unwrap_or_else(|| panic!("no {k} line\n{out}"))
            .trim()
            .to_string()
    };
    let first = field("first");
    assert!(
        first.split(' ').all(|n| n.starts_with("stuck")),
        "precondition: the immutable files come first ({first})\n{out}"
    );
    assert_eq!(field("rc"), "1", "--walk {walk}\n{out}");
    assert!(
        !out.stderr.contains("not permitted here"),
        "--walk {walk}\n{out}"
    );
    let stuck: Vec<String> = (1..=8).map(|i| format!("stuck{i}")).collect();
    let left = field("root-owned");
    let mut left: Vec<&str> = left
        .split(' ')
        .map(|p| p.rsplit('/').next().unwrap())
        .collect();
    left.sort_unstable();
    let mut want: Vec<&str> = stuck.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(
        left, want,
        "--walk {walk}: only the immutable files stay root's\n{out}"
    );
    let c = summary(&out, &dir.path().join("home"), false);
    assert_eq!((c.changed, c.errors), (200, 8), "--walk {walk}\n{out}");
    for s in &stuck {
        assert!(
            out.stderr.contains(&format!("{s}: fchownat")),
            "{s} reported\n{out}"
        );
    }
}
per_walk!(immutable_files_first_do_not_pass_for_chown_being_impossible);

#[test]
fn boot_remaps_the_user_and_moves_its_files() {
    require!(root, tools: ["unshare", "mount", "sh"]);
    // A private /etc (a directory bind-mounted over it in a mount namespace), so the remap can
    // replace passwd and group by rename as it does in a container.
    let etc = TempDir::new("fo-boot-etc");
    let passwd = etc.path().join("passwd");
    let group = etc.path().join("group");
    let marker = etc.path().join("hermes-shim-remap");
    let passwd_text =
        "root:x:0:0:root:/root:/bin/sh\nhermtest:x:10000:10001::/nonexistent:/bin/sh\n";
    let group_text = "root:x:0:\nstaff:x:50:\nhermgrp:x:10001:\n";
    fs::write(&passwd, passwd_text).unwrap();
    fs::write(&group, group_text).unwrap();
    let home = TempDir::new("fo-boot-home");
    let h = |rel: &str| home.path().join(rel);
    for (rel, uid, gid) in [
        ("old", T, 10001),
        ("oldstaff", T, 50),
        ("rootfile", 0, 0),
        ("host", 1000, 1000),
    ] {
        fs::write(h(rel), "x").unwrap();
        lchown(h(rel), Some(uid), Some(gid)).unwrap();
    }
    lchown(home.path(), Some(T), Some(10001)).unwrap();
    let boot = |uid: &str, gid: &str| {
        let mut cmd = Command::new("unshare");
        clean_env(&mut cmd);
        cmd.args([
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            r#"mount --bind "$1" /etc && mount -t tmpfs tmpfs /run && shift && exec "$0" "$@""#,
        ])
        .arg(common::bin())
        .arg(etc.path())
        .arg("boot")
        .env("HERMES_HOME", home.path())
        .env("HERMES_SHIM_USER", "hermtest")
        .env("HERMES_UID", uid)
        .env("PGID", gid);
        run_cmd(cmd, 30)
    };

    // A refused request changes no account, yet root's files are still repaired.
    let out = boot("0", "2001");
    assert_eq!(out.code, Some(2), "{out}");
    assert!(out.stderr.contains("HERMES_UID=\"0\""), "{out}");
    assert_eq!(fs::read_to_string(&passwd).unwrap(), passwd_text);
    assert_eq!(owner(&h("rootfile")), (T, 10001), "{out}");
    assert!(!marker.exists());

    let out = boot("2000", "2001");
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stderr.contains("from 10000:10001 to 2000:2001"),
        "{out}"
    );
    assert_eq!(
        fs::read_to_string(&passwd).unwrap(),
        passwd_text.replace(":10000:10001:", ":2000:2001:")
    );
    assert_eq!(
        fs::read_to_string(&group).unwrap(),
        group_text.replace("hermgrp:x:10001:", "hermgrp:x:2001:")
    );
    for (rel, want) in [
        ("", (2000, 2001)),
        ("old", (2000, 2001)),
        ("oldstaff", (2000, 50)),
        ("rootfile", (2000, 2001)),
        ("host", (1000, 1000)),
    ] {
        assert_eq!(owner(&h(rel)), want, "{rel:?}\n{out}");
    }
    assert!(
        !marker.exists(),
        "forgotten once the sweep fixed everything\n{out}"
    );

    // The next start finds the ids as asked: no remap, nothing left to move.
    let out = boot("2000", "2001");
    assert_eq!(out.code, Some(0), "{out}");
    assert!(!out.stderr.contains("remapped"), "{out}");
    assert_eq!(summary(&out, home.path(), false).changed, 0, "{out}");

    // A start cut short after the accounts changed: the recorded old ids still move.
    fs::write(h("late"), "x").unwrap();
    lchown(h("late"), Some(T), Some(10001)).unwrap();
    fs::write(&marker, "10000:10001").unwrap();
    let out = boot("2000", "2001");
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(owner(&h("late")), (2000, 2001), "{out}");
    assert!(!marker.exists(), "{out}");
}

/// Runs `hermes-shim boot` in a private mount namespace where /etc is a test directory, after
/// `prelude` (a shell snippet run there first, e.g. more mounts), then `after` (whose output
/// shows what the namespace's /etc holds, since a tmpfs there vanishes with it).
fn boot_in(etc: &Path, home: &Path, env: &[(&str, &str)], prelude: &str, after: &str) -> Out {
    let mut cmd = Command::new("unshare");
    clean_env(&mut cmd);
    let script = format!(
        r#"set -e
mount --bind "$1" /etc
# A /run of its own: no host Docker socket, no start record left on the host.
mount -t tmpfs tmpfs /run
{prelude}
rc=0
"$0" boot || rc=$?
{after}
exit "$rc""#
    );
    cmd.args(["-m", "--propagation", "private", "sh", "-c", &script])
        .arg(common::bin())
        .arg(etc)
        .env("HERMES_HOME", home)
        .envs(env.iter().copied());
    run_cmd(cmd, 30)
}

#[test]
fn boot_remap_failures_leave_accounts_whole_and_still_repair() {
    require!(root, tools: ["unshare", "mount", "sh"]);
    let passwd_text =
        "root:x:0:0:root:/root:/bin/sh\nhermtest:x:10000:10001::/nonexistent:/bin/sh\n";
    let group_text = "root:x:0:\nshadow:x:42:\nhermgrp:x:10001:\n";
    let fresh = |tag: &str| {
        let etc = TempDir::new(tag);
        fs::write(etc.path().join("passwd"), passwd_text).unwrap();
        fs::write(etc.path().join("group"), group_text).unwrap();
        let home = TempDir::new(&format!("{tag}-home"));
        lchown(home.path(), Some(T), Some(10001)).unwrap();
        fs::write(home.path().join("rootfile"), "x").unwrap();
        (etc, home)
    };
    let remap = [
        ("HERMES_SHIM_USER", "hermtest"),
        ("PUID", "2000"),
        ("PGID", "2001"),
    ];
    let leftovers = |etc: &Path| -> Vec<String> {
        fs::read_dir(etc)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("hermes-shim"))
            .collect()
    };

    // /etc/passwd bind-mounted read-only over the container's, as compose files often do.
    let (etc, home) = fresh("fo-boot-ro");
    let ro = etc.path().join("passwd.host");
    fs::write(&ro, passwd_text).unwrap();
    let prelude = format!(
        "mount --bind '{0}' /etc/passwd && mount -o remount,bind,ro /etc/passwd",
        ro.display()
    );
    let out = boot_in(etc.path(), home.path(), &remap, &prelude, "");
    assert_eq!(out.code, Some(2), "the remap is refused\n{out}");
    let line: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("cannot remap"))
        .collect();
    assert_eq!(line.len(), 1, "one line says why\n{out}");
    assert!(
        line[0].contains("/etc/passwd") && line[0].contains("mount point"),
        "{out}"
    );
    assert_eq!(
        fs::read_to_string(etc.path().join("group")).unwrap(),
        group_text
    );
    assert!(
        leftovers(etc.path()).is_empty(),
        "{:?}",
        leftovers(etc.path())
    );
    assert_eq!(
        owner(&home.path().join("rootfile")),
        (T, 10001),
        "repaired anyway\n{out}"
    );
    // Every later start repairs, with or without the request.
    fs::write(home.path().join("rootfile2"), "x").unwrap();
    let out = boot_in(
        etc.path(),
        home.path(),
        &[("HERMES_SHIM_USER", "hermtest")],
        &prelude,
        "",
    );
    assert_eq!(out.code, Some(0), "a later start without PUID\n{out}");
    assert_eq!(owner(&home.path().join("rootfile2")), (T, 10001), "{out}");
    fs::write(home.path().join("rootfile3"), "x").unwrap();
    let out = boot_in(etc.path(), home.path(), &remap, &prelude, "");
    assert_eq!(out.code, Some(2), "{out}");
    assert_eq!(owner(&home.path().join("rootfile3")), (T, 10001), "{out}");

    // /etc on a tmpfs with no room left: nothing can be staged, nothing changes.
    let (etc, home) = fresh("fo-boot-full");
    // ($1 is the test directory, still reachable by its own path once /etc is covered.)
    let prelude = r#"mount -t tmpfs -o size=64k tmpfs /etc && cp "$1/passwd" "$1/group" /etc/ \
                   && { dd if=/dev/zero of=/etc/filler bs=4k 2>/dev/null || true; }"#;
    let after = "echo '--- passwd'; cat /etc/passwd; echo '--- group'; cat /etc/group; \
                 echo '--- files'; ls -a /etc";
    let out = boot_in(etc.path(), home.path(), &remap, prelude, after);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(out.stderr.contains("No space left"), "{out}");
    let shown = |part: &str| -> String {
        let start = out.stdout.find(&format!("--- {part}\n")).expect("section") + part.len() + 5;
        let rest = &out.stdout[start..];
        rest[..rest.find("---").unwrap_or(rest.len())].to_string()
    };
    assert_eq!(shown("passwd"), passwd_text, "{out}");
    assert_eq!(shown("group"), group_text, "{out}");
    assert!(!shown("files").contains("hermes-shim"), "{out}");
    assert_eq!(owner(&home.path().join("rootfile")), (T, 10001), "{out}");

    // Root's own account is never remapped.
    let (etc, home) = fresh("fo-boot-root");
    let out = boot_in(
        etc.path(),
        home.path(),
        &[
            ("HERMES_SHIM_USER", "root"),
            ("PUID", "2000"),
            ("PGID", "2001"),
        ],
        "",
        "",
    );
    assert_eq!(out.code, Some(2), "{out}");
    assert!(out.stderr.contains("never remapped"), "{out}");
    assert_eq!(
        fs::read_to_string(etc.path().join("passwd")).unwrap(),
        passwd_text
    );
    assert_eq!(
        fs::read_to_string(etc.path().join("group")).unwrap(),
        group_text
    );

    // A remap that succeeds keeps each file's owner, group and mode (`root:shadow 0640`).
    let (etc, home) = fresh("fo-boot-mode");
    let group = etc.path().join("group");
    lchown(&group, Some(0), Some(42)).unwrap();
    fs::set_permissions(&group, fs::Permissions::from_mode(0o640)).unwrap();
    let out = boot_in(etc.path(), home.path(), &remap, "", "");
    assert_eq!(out.code, Some(0), "{out}");
    let m = lstat(&group);
    assert_eq!(
        (m.uid(), m.gid(), m.mode() & 0o7777),
        (0, 42, 0o640),
        "{out}"
    );
    assert!(
        fs::read_to_string(&group)
            .unwrap()
            .contains("hermgrp:x:2001:")
    );
    assert!(
        leftovers(etc.path()).is_empty(),
        "{:?}",
        leftovers(etc.path())
    );
}

#[test]
fn boot_creates_a_missing_home_but_never_through_a_symlink() {
    require!(root, tools: ["unshare", "mount", "sh", "stat"]);
    let etc = TempDir::new("fo-home-etc");
    fs::write(
        etc.path().join("passwd"),
        "root:x:0:0::/root:/bin/sh\nhermtest:x:10000:10001::/nonexistent:/bin/sh\n",
    )
    .unwrap();
    fs::write(etc.path().join("group"), "root:x:0:\nhermgrp:x:10001:\n").unwrap();
    let scratch = TempDir::new("fo-home");
    // In a mount namespace: /etc is the test's, and the scratch directory a fresh tmpfs.
    let script = r#"set -e
mount --bind "$1" /etc
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs "$2"
mkdir "$2/real"
ln -s "$2/real" "$2/link"
for home in "$2/a/b/home" "$2/link/home" /etc/hermes; do
    rc=0
    HERMES_HOME="$home" "$0" boot 2>>"$2/err" || rc=$?
    echo "rc $home $rc"
done
stat -c 'stat %n %u:%g %a' "$2/a" "$2/a/b" "$2/a/b/home"
echo "real holds: $(ls -A "$2/real" | wc -l)"
echo "etc/hermes: $(test -e /etc/hermes && echo exists || echo absent)"
cat "$2/err" >&2
"#;
    let mut cmd = Command::new("unshare");
    clean_env(&mut cmd);
    cmd.args(["-m", "--propagation", "private", "sh", "-c", script])
        .arg(common::bin())
        .arg(etc.path())
        .arg(scratch.path())
        .env("HERMES_SHIM_USER", "hermtest");
    let out = run_cmd(cmd, 60);
    assert_eq!(out.code, Some(0), "{out}");
    let d = scratch.path().display();
    for (line, what) in [
        (
            format!("rc {d}/a/b/home 0"),
            "a missing home is created, then swept",
        ),
        (
            format!("stat {d}/a 0:0 755"),
            "a missing parent is root's, 0755",
        ),
        (format!("stat {d}/a/b 0:0 755"), "every missing parent"),
        (
            format!("stat {d}/a/b/home 10000:10001 700"),
            "the home is the user's, 0700",
        ),
        (
            format!("rc {d}/link/home 2"),
            "a symlink on the way: refused",
        ),
        (
            "real holds: 0".to_string(),
            "nothing created through the symlink",
        ),
        (
            "rc /etc/hermes 2".to_string(),
            "a path the sweep refuses stays refused",
        ),
        ("etc/hermes: absent".to_string(), "and is not created"),
    ] {
        assert!(
            out.stdout.lines().any(|l| l == line),
            "{what}: no line {line:?}\n{out}"
        );
    }
    assert!(
        out.stderr
            .contains(&format!("hermes-shim boot: created {d}/a/b/home")),
        "one line says so\n{out}"
    );
}

#[test]
fn also_from_moves_a_previous_uid_and_refuses_root() {
    require!(root);
    let mut fx = Fx::new("fo-also-from");
    fx.file("mine-before", 0o600, 0, 0);
    let p = fx.abs("mine-before");
    lchown(&p, Some(4242), Some(4242)).unwrap();
    let out = fo(fx.path(), "openat2", &["--also-from", "0:0"]);
    assert_refused(&out);
    assert_eq!(owner(&p), (4242, 4242));
    let out = fo(fx.path(), "openat2", &[]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        owner(&p),
        (4242, 4242),
        "without --also-from another uid is not ours\n{out}"
    );
    let out = fo(fx.path(), "openat2", &["--also-from", "4242:4242"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(owner(&p), (T, T), "{out}");
}
