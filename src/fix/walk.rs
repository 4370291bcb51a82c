//! The sweep itself: a parallel, fd-relative walk with bounded fds and memory.
//!
//! Each worker walks a subtree with an explicit stack of frames (no recursion). Only the
//! deepest [`OPEN_FRAMES`] frames keep their directory fd; shallower ones keep just their
//! identity and getdents resume cookie, and are reopened through `..` of the child on the way
//! back up, then checked to be the very directory that was left (device and inode, same mount);
//! if the child was moved elsewhere meanwhile, that is reported and the unfinished part left
//! for the next run, never re-resolved by path. Idle workers take whole subdirectories (as open fds) from a small
//! bounded queue, so a 2-core machine walks two subtrees at once.

use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use nix::errno::Errno;

pub use crate::escape::shown;
use crate::policy::{self, Action, Skip};
use crate::sys::fs::{self, DirBuf, Kind, Open, Stat, Walk};

/// Directory fds a worker keeps open at once; deeper trees reopen through `..`.
const OPEN_FRAMES: usize = 32;
/// Deepest level entered. Memory per worker grows with depth (a frame and a path component per
/// level), so a hostile chain is cut here and reported; real trees are nowhere near it.
const MAX_DEPTH: usize = 16 * 1024;
/// Subdirectories (each an open fd) waiting for an idle worker.
const QUEUE_CAP: usize = 16;
/// getdents buffer per open frame.
const DIRBUF: usize = 16 * 1024;
/// Denied chowns, with none succeeding, after which we look for evidence that chown is
/// impossible here.
const DENIED_LIMIT: u64 = 8;
/// Most workers; past a few, the disk or the dentry cache is the bottleneck, not the CPU.
const MAX_WORKERS: usize = 4;

/// Everything the walk needs to know, fixed for the whole run.
pub struct Config {
    pub root: PathBuf,
    pub walk: Walk,
    pub rule: policy::Rule,
    pub dry_run: bool,
    pub verbose: bool,
    pub excludes: Vec<PathBuf>,
    /// The root's device and mount id: entries elsewhere are on another mount.
    pub root_dev: u64,
    pub root_mnt: Option<u64>,
}

/// What one run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub scanned: u64,
    pub changed: u64,
    pub other_owner: u64,
    pub device: u64,
    pub hardlink: u64,
    pub mount: u64,
    pub excluded: u64,
    pub errors: u64,
}

impl Counts {
    /// Adds another worker's counts.
    fn add(&mut self, o: &Counts) {
        self.scanned += o.scanned;
        self.changed += o.changed;
        self.other_owner += o.other_owner;
        self.device += o.device;
        self.hardlink += o.hardlink;
        self.mount += o.mount;
        self.excluded += o.excluded;
        self.errors += o.errors;
    }

    /// Counts one skipped entry.
    fn skip(&mut self, s: Skip) {
        match s {
            Skip::OtherOwner => self.other_owner += 1,
            Skip::Device => self.device += 1,
            Skip::Hardlink => self.hardlink += 1,
            Skip::Mount => self.mount += 1,
            Skip::Excluded => self.excluded += 1,
        }
    }
}

/// A directory to walk: already opened, checked and (if needed) changed.
struct Job {
    fd: OwnedFd,
    path: PathBuf,
    ident: (u64, u64),
    /// Levels below the root (the root is 0).
    depth: usize,
}

struct Queue {
    jobs: Vec<Job>,
    idle: usize,
    done: bool,
}

/// State shared by the workers.
struct Shared<'a> {
    cfg: &'a Config,
    workers: usize,
    queue: Mutex<Queue>,
    wake: Condvar,
    idle: AtomicUsize,
    stop: AtomicBool,
    /// Set once chown is known to work here: one succeeded, or the probe found it possible.
    works: AtomicBool,
    denied: AtomicU64,
    /// Messages for denied chowns, held back until chown is known to work at all: where it
    /// never does (ids a user namespace does not map, some NAS mounts) one line says so instead
    /// of a flood.
    held: Mutex<Vec<String>>,
    /// The root again (a second fd), for the probe that asks whether chown can work at all.
    root: Option<OwnedFd>,
    /// Serialises that probe: it runs once, whichever worker reaches the limit first.
    probe: Mutex<bool>,
}

/// The result of a walk.
pub struct Outcome {
    pub counts: Counts,
    /// Set when chown turned out to be impossible here and the walk stopped early.
    pub chown_impossible: bool,
}

/// Sweeps the root (already opened and stat'ed as `root_st`) and everything under it.
pub fn sweep(cfg: &Config, root_fd: OwnedFd, root_st: &Stat) -> Outcome {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_WORKERS);
    let shared = Shared {
        cfg,
        workers,
        queue: Mutex::new(Queue {
            jobs: Vec::new(),
            idle: 0,
            done: false,
        }),
        wake: Condvar::new(),
        idle: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        works: AtomicBool::new(false),
        denied: AtomicU64::new(0),
        held: Mutex::new(Vec::new()),
        root: root_fd.try_clone().ok(),
        probe: Mutex::new(false),
    };
    // The root is judged like any entry, named relative to its parent for the messages.
    let mut counts = Counts {
        scanned: 1,
        ..Counts::default()
    };
    let parent = cfg.root.parent().unwrap_or(Path::new("/"));
    let name = std::ffi::CString::new(cfg.root.file_name().unwrap_or_default().as_bytes())
        .expect("a path component holds no NUL");
    Judge {
        cfg,
        sh: &shared,
        counts: &mut counts,
        dir: parent,
    }
    .apply(root_fd.as_fd(), root_st, &name);
    if !shared.stop.load(Ordering::Relaxed) {
        let job = Job {
            fd: root_fd,
            path: cfg.root.clone(),
            ident: root_st.ident(),
            depth: 0,
        };
        shared.queue.lock().expect("queue lock").jobs.push(job);
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| s.spawn(|| Worker::new(&shared).run()))
            .collect();
        for h in handles {
            counts.add(&h.join().expect("a sweep worker panicked"));
        }
    });
    let impossible = shared.stop.load(Ordering::Relaxed);
    if !impossible {
        // chown never worked, yet too few were denied to call it impossible (a few immutable
        // files, say): those are ordinary failures after all.
        shared.flush_held();
    }
    Outcome {
        counts,
        chown_impossible: impossible,
    }
}

impl Shared<'_> {
    /// The next job, or `None` once every worker is idle and the queue is empty.
    fn take(&self) -> Option<Job> {
        let mut q = self.queue.lock().expect("queue lock");
        loop {
            if q.done || self.stop.load(Ordering::Relaxed) {
                return None;
            }
            if let Some(j) = q.jobs.pop() {
                return Some(j);
            }
            q.idle += 1;
            self.idle.store(q.idle, Ordering::Relaxed);
            if q.idle == self.workers {
                q.done = true;
                self.wake.notify_all();
                return None;
            }
            q = self.wake.wait(q).expect("queue lock");
            q.idle -= 1;
            self.idle.store(q.idle, Ordering::Relaxed);
        }
    }

    /// Hands `job` to an idle worker if one is waiting and the queue has room.
    fn offer(&self, job: Job) -> Result<(), Job> {
        if self.idle.load(Ordering::Relaxed) == 0 {
            return Err(job);
        }
        let mut q = self.queue.lock().expect("queue lock");
        if q.jobs.len() >= QUEUE_CAP || q.done {
            return Err(job);
        }
        q.jobs.push(job);
        self.wake.notify_one();
        Ok(())
    }

    fn flush_held(&self) {
        for line in self.held.lock().expect("held lock").drain(..) {
            say!("{line}");
        }
    }

    fn halt(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let _q = self.queue.lock().expect("queue lock");
        self.wake.notify_all();
    }

    /// Called when chown has only ever been denied: halts the walk on positive evidence that
    /// chown cannot work here at all, else records that it can and lets the held messages out.
    /// Denials alone prove nothing: the first entries in walk order may all be immutable.
    fn judge_denials(&self) {
        let mut probed = self.probe.lock().expect("probe lock");
        if *probed {
            return;
        }
        *probed = true;
        if self.chown_impossible() {
            self.halt();
        } else {
            self.works.store(true, Ordering::Relaxed);
            self.flush_held();
        }
    }

    /// The evidence: a target id this user namespace does not map (every chown to it is
    /// EINVAL), or a chown of the root to the owner it already has being denied (the kernel's
    /// question "may this process chown here?" asked on an entry whose change is a no-op).
    fn chown_impossible(&self) -> bool {
        let (uid, gid) = self.cfg.rule.target;
        let mapped = |file: &str, id: u32| {
            std::fs::read_to_string(file).map_or(true, |map| policy::id_mapped(&map, id))
        };
        if !mapped("/proc/self/uid_map", uid) || !mapped("/proc/self/gid_map", gid) {
            return true;
        }
        let Some(root) = &self.root else {
            return false;
        };
        fs::stat_fd(root.as_fd()).is_ok_and(|st| {
            matches!(
                fs::chown_fd(root.as_fd(), Some(st.uid), Some(st.gid)),
                Err(Errno::EPERM | Errno::EINVAL)
            )
        })
    }
}

/// One directory on a worker's stack.
struct Frame {
    /// Open while the frame is among the deepest [`OPEN_FRAMES`]; reopened through `..`.
    fd: Option<OwnedFd>,
    buf: Option<DirBuf>,
    ident: (u64, u64),
    /// getdents position after the last entry taken from this directory.
    cookie: i64,
}

struct Worker<'s, 'c> {
    sh: &'s Shared<'c>,
    counts: Counts,
    frames: Vec<Frame>,
    /// Path of the directory on top of the stack (for messages and excludes only), grown and
    /// shrunk in place one component at a time.
    path: PathBuf,
    /// Depth of the current job's directory below the root.
    base_depth: usize,
    name: Vec<u8>,
}

/// A name that vanished or changed type between listing and opening: a rename in flight, not
/// a failure; the entry is simply no longer here.
fn in_flight(e: Errno) -> bool {
    matches!(e, Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP)
}

impl<'s, 'c> Worker<'s, 'c> {
    fn new(sh: &'s Shared<'c>) -> Self {
        Worker {
            sh,
            counts: Counts::default(),
            frames: Vec::new(),
            path: PathBuf::new(),
            base_depth: 0,
            name: Vec::new(),
        }
    }

    fn run(mut self) -> Counts {
        while let Some(job) = self.sh.take() {
            self.walk(job);
        }
        self.counts
    }

    fn walk(&mut self, job: Job) {
        self.path = job.path;
        self.base_depth = job.depth;
        self.frames.clear();
        self.frames.push(Frame {
            fd: Some(job.fd),
            buf: Some(DirBuf::new(DIRBUF)),
            ident: job.ident,
            cookie: 0,
        });
        while !self.sh.stop.load(Ordering::Relaxed) {
            let Some(top) = self.frames.last_mut() else {
                break;
            };
            let (Some(fd), Some(buf)) = (top.fd.as_ref(), top.buf.as_mut()) else {
                unreachable!("the top frame is always open");
            };
            match buf.next(fd.as_fd(), &mut self.name) {
                Ok(Some(ent)) => {
                    top.cookie = ent.off;
                    let name = std::mem::take(&mut self.name);
                    let cname = CStr::from_bytes_with_nul(&name).expect("one NUL at the end");
                    let mut judge = Judge {
                        cfg: self.sh.cfg,
                        sh: self.sh,
                        counts: &mut self.counts,
                        dir: &self.path,
                    };
                    if let Some((child, ident)) = judge.entry(fd.as_fd(), cname, ent.d_type) {
                        self.push(child, ident, cname);
                    }
                    self.name = name;
                }
                Ok(None) => self.pop(),
                // Removed after it was opened (getdents on a deleted directory): what was in it
                // is gone too, which is no failure of ours.
                Err(Errno::ENOENT) => self.pop(),
                Err(e) => {
                    let mut judge = Judge {
                        cfg: self.sh.cfg,
                        sh: self.sh,
                        counts: &mut self.counts,
                        dir: &self.path,
                    };
                    judge.error(Path::new(""), "getdents", e);
                    self.pop();
                }
            }
        }
    }

    /// Leaves the top directory; reopens its parent through `..` if that one was closed.
    fn pop(&mut self) {
        let child = self.frames.pop().expect("a frame to pop");
        let Some(parent) = self.frames.last_mut() else {
            return;
        };
        if parent.fd.is_none() {
            let child_fd = child.fd.expect("the top frame is always open");
            let cfg = self.sh.cfg;
            let reopened = fs::open_parent(child_fd.as_fd()).and_then(|fd| {
                let st = fs::stat_fd(fd.as_fd())?;
                if st.ident() != parent.ident || cfg.foreign(&st) {
                    return Err(Errno::ESTALE);
                }
                fs::seek_dir(fd.as_fd(), parent.cookie)?;
                Ok(fd)
            });
            match reopened {
                Ok(fd) => {
                    parent.fd = Some(fd);
                    parent.buf = Some(DirBuf::new(DIRBUF));
                }
                Err(e) => {
                    say!(
                        "hermes-shim fix-ownership: error: cannot return from {} to its parent ({}): it moved during the sweep; {} directories above it left unfinished — run fix-ownership again",
                        shown(&self.path),
                        e.desc(),
                        self.frames.len()
                    );
                    self.counts.errors += 1;
                    self.frames.clear();
                }
            }
        }
        self.path.pop();
    }

    /// Descends into an opened directory (or hands it to an idle worker), closing the
    /// shallowest open frame past the window.
    fn push(&mut self, fd: OwnedFd, ident: (u64, u64), name: &CStr) {
        let depth = self.base_depth + self.frames.len();
        if depth > MAX_DEPTH {
            say!(
                "hermes-shim fix-ownership: error: {}: deeper than {MAX_DEPTH} levels; not entered",
                shown(&self.path.join(os(name)))
            );
            self.counts.errors += 1;
            return;
        }
        let mut fd = fd;
        // Only build a path for the queue when someone is waiting to take it.
        if self.sh.idle.load(Ordering::Relaxed) > 0 {
            let job = Job {
                fd,
                path: self.path.join(os(name)),
                ident,
                depth,
            };
            match self.sh.offer(job) {
                Ok(()) => return,
                Err(job) => fd = job.fd,
            }
        }
        self.path.push(os(name));
        self.frames.push(Frame {
            fd: Some(fd),
            buf: Some(DirBuf::new(DIRBUF)),
            ident,
            cookie: 0,
        });
        let open = self.frames.len();
        if open > OPEN_FRAMES {
            let f = &mut self.frames[open - OPEN_FRAMES - 1];
            f.fd = None;
            f.buf = None;
        }
    }
}

/// Judges and changes the entries of one directory; borrows the worker's counters and path.
struct Judge<'a> {
    cfg: &'a Config,
    sh: &'a Shared<'a>,
    counts: &'a mut Counts,
    /// The directory the entries are in.
    dir: &'a Path,
}

impl Judge<'_> {
    /// Handles the child `name` of `dir`; returns a directory to descend into.
    fn entry(&mut self, dir: BorrowedFd, name: &CStr, d_type: u8) -> Option<(OwnedFd, (u64, u64))> {
        self.counts.scanned += 1;
        if !self.cfg.excludes.is_empty() && self.excluded(name) {
            self.skipped(name, Skip::Excluded);
            return None;
        }
        if d_type == fs::DT_DIR {
            return self.directory(dir, name);
        }
        self.other(dir, name, true)
    }

    /// Handles a child that was not listed as a directory. `may_enter` is false when it was
    /// a directory a moment ago: an entry flipping type again is left for the next run rather
    /// than chased.
    fn other(
        &mut self,
        dir: BorrowedFd,
        name: &CStr,
        may_enter: bool,
    ) -> Option<(OwnedFd, (u64, u64))> {
        let st = match fs::stat_at(dir, name) {
            Ok(st) => st,
            Err(Errno::ENOENT) => {
                self.vanished();
                return None;
            }
            Err(e) => {
                self.error(Path::new(os(name)), "statx", e);
                return None;
            }
        };
        if st.kind == Kind::Dir {
            if may_enter {
                return self.directory(dir, name);
            }
            self.vanished();
            return None;
        }
        if self.cfg.foreign(&st) {
            self.skipped(name, Skip::Mount);
            return None;
        }
        match self.cfg.decide(&st) {
            Action::Keep => {}
            Action::Skip(s) => self.skipped(name, s),
            Action::Change { .. } => self.change_other(dir, name),
        }
        None
    }

    /// A name that disappeared (or changed type) between listing and looking: not counted.
    fn vanished(&mut self) {
        self.counts.scanned -= 1;
    }

    /// Re-checks a non-directory on the handle we will change, then changes it through that
    /// handle. The decision is taken again on the handle's own stat: whatever the name pointed
    /// at when we listed it, only the inode now in hand is judged and changed.
    fn change_other(&mut self, dir: BorrowedFd, name: &CStr) {
        let handle = match fs::open_child(dir, name, Open::Handle, self.cfg.walk) {
            Ok(h) => h,
            Err(Errno::EXDEV) => return self.skipped(name, Skip::Mount),
            Err(e) if in_flight(e) => return self.vanished(),
            Err(e) => return self.error(Path::new(os(name)), "open", e),
        };
        let st = match fs::stat_fd(handle.as_fd()) {
            Ok(st) => st,
            Err(e) => return self.error(Path::new(os(name)), "statx", e),
        };
        if st.kind == Kind::Dir {
            // Swapped for a directory since we looked; it is not entered this run.
            return self.vanished();
        }
        self.apply(handle.as_fd(), &st, name);
    }

    /// Opens a child directory and judges and changes it through its own fd.
    fn directory(&mut self, dir: BorrowedFd, name: &CStr) -> Option<(OwnedFd, (u64, u64))> {
        let fd = match fs::open_child(dir, name, Open::Dir, self.cfg.walk) {
            Ok(fd) => fd,
            Err(Errno::EXDEV) => {
                self.skipped(name, Skip::Mount);
                return None;
            }
            Err(Errno::ENOENT) => {
                self.vanished();
                return None;
            }
            // Became a symlink or a file since it was listed: judge it as what it is now.
            Err(Errno::ENOTDIR | Errno::ELOOP) => return self.other(dir, name, false),
            Err(e) => {
                self.error(Path::new(os(name)), "open", e);
                return None;
            }
        };
        let st = match fs::stat_fd(fd.as_fd()) {
            Ok(st) => st,
            Err(e) => {
                self.error(Path::new(os(name)), "statx", e);
                return None;
            }
        };
        if self.cfg.foreign(&st) {
            self.skipped(name, Skip::Mount);
            return None;
        }
        self.apply(fd.as_fd(), &st, name);
        (!self.sh.stop.load(Ordering::Relaxed)).then(|| (fd, st.ident()))
    }

    /// Applies the ownership rule to the inode behind `fd`, whose fresh stat is `st`.
    fn apply(&mut self, fd: BorrowedFd, st: &Stat, name: &CStr) {
        if self.cfg.foreign(st) {
            return self.skipped(name, Skip::Mount);
        }
        match self.cfg.decide(st) {
            Action::Keep => {}
            Action::Skip(s) => self.skipped(name, s),
            Action::Change { uid, gid } => match self.cfg.change(self.sh, fd, uid, gid) {
                Ok(()) => {
                    self.counts.changed += 1;
                    if self.cfg.verbose {
                        say!(
                            "hermes-shim fix-ownership: {} {}",
                            self.cfg.verb(),
                            shown(&self.dir.join(os(name)))
                        );
                    }
                }
                Err(e @ (Errno::EPERM | Errno::EINVAL))
                    if !self.sh.works.load(Ordering::Relaxed) =>
                {
                    self.counts.errors += 1;
                    let line = format!(
                        "hermes-shim fix-ownership: error: {}: fchownat: {}",
                        shown(&self.dir.join(os(name))),
                        e.desc()
                    );
                    self.sh.held.lock().expect("held lock").push(line);
                }
                Err(e) => self.error(Path::new(os(name)), "fchownat", e),
            },
        }
    }

    fn skipped(&mut self, name: &CStr, why: Skip) {
        self.counts.skip(why);
        if self.cfg.verbose {
            say!(
                "hermes-shim fix-ownership: skipped {} ({})",
                shown(&self.dir.join(os(name))),
                why.reason()
            );
        }
    }

    /// Reports a failing entry (`rel` relative to the current directory) and counts it.
    fn error(&mut self, rel: &Path, call: &str, e: Errno) {
        if self.sh.stop.load(Ordering::Relaxed) {
            return;
        }
        self.counts.errors += 1;
        say!(
            "hermes-shim fix-ownership: error: {}: {call}: {}",
            shown(&self.dir.join(rel)),
            e.desc()
        );
    }

    fn excluded(&self, name: &CStr) -> bool {
        let full = self.dir.join(os(name));
        let rel = full.strip_prefix(&self.cfg.root).unwrap_or(&full);
        self.cfg.excludes.iter().any(|x| x == rel)
    }
}

impl Config {
    /// How a change is reported: what a dry run would do, or what was done.
    pub fn verb(&self) -> &'static str {
        if self.dry_run {
            "would change"
        } else {
            "changed"
        }
    }

    fn decide(&self, st: &Stat) -> Action {
        policy::decide(st.kind, st.uid, st.gid, st.nlink, &self.rule)
    }

    /// True when `st` lies on another mount than the root: another device, or (where statx
    /// reports mount ids) another mount of the same device, such as a bind mount.
    pub fn foreign(&self, st: &Stat) -> bool {
        st.dev != self.root_dev
            || matches!((st.mnt_id, self.root_mnt), (Some(a), Some(b)) if a != b)
    }

    /// chown through the handle, tracking whether chown works here at all.
    fn change(
        &self,
        sh: &Shared,
        fd: BorrowedFd,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> Result<(), Errno> {
        if self.dry_run {
            return Ok(());
        }
        match fs::chown_fd(fd, uid, gid) {
            Ok(()) => {
                if !sh.works.swap(true, Ordering::Relaxed) {
                    sh.flush_held();
                }
                Ok(())
            }
            Err(e @ (Errno::EPERM | Errno::EINVAL)) => {
                let denied = sh.denied.fetch_add(1, Ordering::Relaxed) + 1;
                if denied >= DENIED_LIMIT && !sh.works.load(Ordering::Relaxed) {
                    sh.judge_denials();
                }
                Err(e)
            }
            Err(e) => Err(e),
        }
    }
}

fn os(name: &CStr) -> &std::ffi::OsStr {
    std::ffi::OsStr::from_bytes(name.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        Config {
            root: "/opt/data".into(),
            walk: Walk::Fallback,
            rule: policy::Rule::to((10000, 10000)),
            dry_run: false,
            verbose: false,
            excludes: vec![],
            root_dev: 7,
            root_mnt: Some(30),
        }
    }

    #[test]
    fn mount_detection_by_device_and_mount_id() {
        let st = |dev, mnt_id| Stat {
            dev,
            ino: 1,
            kind: Kind::File,
            uid: 0,
            gid: 0,
            nlink: 1,
            mnt_id,
        };
        let c = cfg();
        assert!(!c.foreign(&st(7, Some(30))));
        assert!(
            c.foreign(&st(7, Some(31))),
            "a bind mount of the same filesystem"
        );
        assert!(c.foreign(&st(8, Some(30))));
        assert!(!c.foreign(&st(7, None)), "no mount id: device decides");
        assert!(c.foreign(&st(9, None)));
    }
}
