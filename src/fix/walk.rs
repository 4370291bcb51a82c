//! The sweep itself: a parallel, fd-relative walk with bounded fds and memory.
//!
//! Each worker walks a subtree with an explicit stack of frames, no recursion ([`Frames`]:
//! the window of open fds and the `..` reopen); idle workers take whole subdirectories (as open
//! fds) from a small bounded queue ([`Queue`]), so a 2-core machine walks two subtrees at once.
//! Each entry is judged and changed by the [`Judge`]; whether chown works here at all is the
//! [`Verdict`]'s to say.

use std::ffi::CStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use crate::escape::shown;
use crate::sys::fs::{self, Stat};

use super::config::Config;
use super::frames::Frames;
use super::judge::{Applied, Counts, Judge, WalkState, os};
use super::queue::{Queue, StopOnPanic};
use super::rule;
use super::verdict::{Probe, Verdict};

/// Most workers; past a few, the disk or the dentry cache is the bottleneck, not the CPU.
const MAX_WORKERS: usize = 4;

/// A directory to walk: already opened, checked and (if needed) changed.
pub struct Job {
    fd: OwnedFd,
    path: PathBuf,
    ident: (u64, u64),
    /// Levels below the root (the root is 0).
    depth: usize,
}

/// State shared by the workers.
pub struct Shared<'c> {
    pub cfg: &'c Config,
    pub queue: Queue<Job>,
    pub verdict: Verdict<Probe>,
}

impl Shared<'_> {
    /// A judge of the entries of `dir`, counting into `counts`.
    fn judge<'a>(&'a self, counts: &'a mut Counts, dir: &'a Path) -> Judge<'a> {
        Judge {
            cfg: self.cfg,
            verdict: &self.verdict,
            counts,
            dir,
        }
    }
}

#[cfg(test)]
impl<'c> Shared<'c> {
    /// One worker's share of a walk over `cfg`, where chown is never found impossible.
    pub fn one_worker(cfg: &'c Config) -> Shared<'c> {
        Shared {
            cfg,
            queue: Queue::new(1),
            verdict: Verdict::new(Box::new(|| false) as Probe),
        }
    }
}

/// The result of a walk.
pub struct Outcome {
    pub counts: Counts,
    /// Set when chown turned out to be impossible here and the walk stopped early.
    pub chown_impossible: bool,
}

/// The evidence that chown cannot work here: a target id this user namespace does not map
/// (every chown to it is EINVAL), or a chown of the root to the owner it already has being
/// denied (the kernel's question "may this process chown here?" asked on an entry whose change
/// is a no-op).
fn chown_impossible(root: Option<OwnedFd>, target: (u32, u32)) -> bool {
    let mapped = |file: &str, id: u32| {
        std::fs::read_to_string(file).map_or(true, |map| rule::id_mapped(&map, id))
    };
    if !mapped("/proc/self/uid_map", target.0) || !mapped("/proc/self/gid_map", target.1) {
        return true;
    }
    root.is_some_and(|root| {
        fs::stat_fd(root.as_fd()).is_ok_and(|st| {
            matches!(
                fs::chown_fd(root.as_fd(), Some(st.uid), Some(st.gid)),
                Err(Errno::EPERM | Errno::EINVAL)
            )
        })
    })
}

/// Sweeps the root (already opened and stat'ed as `root_st`) and everything under it.
pub fn sweep(cfg: &Config, root_fd: OwnedFd, root_st: &Stat) -> Outcome {
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .clamp(1, MAX_WORKERS);
    let probe_root = root_fd.try_clone().ok();
    let target = cfg.rule.target;
    let shared = Shared {
        cfg,
        queue: Queue::new(workers),
        verdict: Verdict::new(Box::new(move || chown_impossible(probe_root, target)) as Probe),
    };
    // The root is judged like any entry, named relative to its parent for the messages.
    let mut counts = Counts {
        scanned: 1,
        ..Counts::default()
    };
    let parent = cfg.root.parent().unwrap_or(Path::new("/"));
    let name = std::ffi::CString::new(cfg.root.file_name().unwrap_or_default().as_bytes())
        .expect("a path component holds no NUL");
    let applied = shared
        .judge(&mut counts, parent)
        .apply(root_fd.as_fd(), root_st, &name);
    // No worker runs yet, so the verdict is not impossible here unless the root's own denial
    // made it so, and then apply said Quit.
    match applied {
        Applied::OnMount => shared.queue.push(Job {
            fd: root_fd,
            path: cfg.root.clone(),
            ident: root_st.ident(),
            depth: 0,
        }),
        Applied::Quit => shared.queue.stop(),
        Applied::Foreign => {}
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| s.spawn(|| Worker::new(&shared).run()))
            .collect();
        for h in handles {
            counts.add(&h.join().expect("a sweep worker panicked"));
        }
    });
    // chown never worked, yet too few were denied to ask (a few immutable files, say): those
    // are ordinary failures after all.
    for line in shared.verdict.finish() {
        say!("{line}");
    }
    Outcome {
        counts,
        chown_impossible: shared.verdict.impossible(),
    }
}

struct Worker<'s, 'c> {
    sh: &'s Shared<'c>,
    counts: Counts,
    frames: Frames,
    /// Path of the directory on top of the stack (for messages and excludes only), grown and
    /// shrunk in place one component at a time.
    path: PathBuf,
    name: Vec<u8>,
}

impl<'s, 'c> Worker<'s, 'c> {
    fn new(sh: &'s Shared<'c>) -> Self {
        Worker {
            sh,
            counts: Counts::default(),
            frames: Frames::default(),
            path: PathBuf::new(),
            name: Vec::new(),
        }
    }

    fn run(mut self) -> Counts {
        let sh = self.sh;
        let _stop = StopOnPanic(&sh.queue);
        while let Some(job) = self.sh.queue.take() {
            self.walk(job);
        }
        self.counts
    }

    fn walk(&mut self, job: Job) {
        self.path = job.path;
        self.frames.start(job.fd, job.ident, job.depth);
        while !self.sh.queue.stopped() {
            let mut name = std::mem::take(&mut self.name);
            let mut judge = self.sh.judge(&mut self.counts, &self.path);
            let next = match self.frames.next_entry(&mut name) {
                None => {
                    self.name = name;
                    break;
                }
                Some(Ok((dir, Some(ent)))) => {
                    let cname = CStr::from_bytes_with_nul(&name).expect("one NUL at the end");
                    judge.entry(dir, cname, ent.d_type)
                }
                // The end of the directory; or it was removed after it was opened (getdents on
                // a deleted directory): what was in it is gone too, which is no failure of ours.
                Some(Ok((_, None)) | Err(Errno::ENOENT)) => {
                    self.name = name;
                    self.pop();
                    continue;
                }
                Some(Err(e)) => {
                    judge.error(std::ffi::OsStr::new(""), "getdents", e);
                    self.name = name;
                    self.pop();
                    continue;
                }
            };
            match next {
                WalkState::Descend(fd, ident) => {
                    let cname = CStr::from_bytes_with_nul(&name).expect("one NUL at the end");
                    self.push(fd, ident, cname);
                }
                WalkState::Skip => {}
                // Chown is impossible here: every worker stops at its next entry.
                WalkState::Quit => self.sh.queue.stop(),
            }
            self.name = name;
        }
    }

    /// Leaves the top directory (reopening its parent if its fd was closed).
    fn pop(&mut self) {
        let cfg = self.sh.cfg;
        if let Err((e, left)) = self.frames.pop(|st| !cfg.foreign(st)) {
            say!(
                "hermes-shim fix-ownership: error: cannot return from {} to its parent ({e}): it moved during the sweep; {left} directories above it left unfinished — run fix-ownership again",
                shown(&self.path)
            );
            self.counts.errors += 1;
        }
        self.path.pop();
    }

    /// Descends into an opened directory, or hands it to an idle worker.
    fn push(&mut self, fd: OwnedFd, ident: (u64, u64), name: &CStr) {
        if !self.frames.may_enter() {
            say!(
                "hermes-shim fix-ownership: error: {}: deeper than {} levels; not entered",
                shown(&self.path.join(os(name))),
                super::frames::MAX_DEPTH
            );
            self.counts.errors += 1;
            return;
        }
        let mut fd = fd;
        // Only build a path for the queue when someone is waiting to take it.
        if self.sh.queue.wanted() {
            let job = Job {
                fd,
                path: self.path.join(os(name)),
                ident,
                depth: self.frames.child_depth(),
            };
            match self.sh.queue.offer(job) {
                Ok(()) => return,
                Err(job) => fd = job.fd,
            }
        }
        self.path.push(os(name));
        self.frames.push(fd, ident);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// A dry run over a temporary tree, as any user: every entry it made "would change", and
    /// nothing does.
    #[test]
    fn a_dry_run_counts_every_kind_of_entry_and_changes_nothing() {
        let base = crate::testing::TempDir::new("walk");
        let root = base.path().join("home");
        std::fs::create_dir_all(root.join("a/b/c")).unwrap();
        std::fs::create_dir_all(root.join("skip/me")).unwrap();
        std::fs::write(root.join("a/f"), "x").unwrap();
        std::fs::write(root.join("a/b/c/g"), "x").unwrap();
        std::fs::write(root.join("linked"), "x").unwrap();
        std::fs::hard_link(root.join("linked"), root.join("a/linked-too")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("a/b/to-outside")).unwrap();
        let before: Vec<_> = walkdir_owners(&root);
        let (cfg, fd, st) = Config::dry_run_of_own(&root);
        let out = sweep(&cfg, fd, &st);
        let c = out.counts;
        // root, a, a/b, a/b/c, a/f, a/b/c/g, linked, a/linked-too, a/b/to-outside, skip
        assert_eq!(c.scanned, 10, "{c:?}");
        assert_eq!(c.excluded, 1, "skip/ is not entered");
        assert_eq!(c.hardlink, 2, "both names of the hard link");
        assert_eq!(c.changed, 7, "{c:?}");
        assert_eq!(c.errors, 0);
        assert!(!out.chown_impossible);
        assert_eq!(walkdir_owners(&root), before, "a dry run changes nothing");
    }

    /// A worker deeper than its window of open fds returns to a closed parent through `..` of
    /// the child; when that child was moved elsewhere meanwhile, the parent is not the one it
    /// left: an error is counted, and the rest of the job left for the next run.
    #[test]
    fn returning_to_a_parent_the_child_was_moved_away_from_is_one_error() {
        use super::super::frames::OPEN_FRAMES;
        let base = crate::testing::TempDir::new("walk-moved");
        let root = base.path().join("home");
        let deep = (0..=OPEN_FRAMES).fold(root.clone(), |p, _| p.join("d"));
        std::fs::create_dir_all(&deep).unwrap();
        let (cfg, fd, st) = Config::dry_run_of_own(&root);
        let sh = Shared::one_worker(&cfg);
        let mut w = Worker::new(&sh);
        w.path.clone_from(&root);
        w.frames.start(fd, st.ident(), 0);
        let mut dir = fs::open_root(&root).unwrap();
        for _ in 0..=OPEN_FRAMES {
            dir = fs::open_child(dir.as_fd(), c"d", fs::Open::Dir, cfg.walk).unwrap();
            let st = fs::stat_fd(dir.as_fd()).unwrap();
            w.frames.push(dir.try_clone().unwrap(), st.ident());
            w.path.push("d");
        }
        // root and home/d are closed now; home/d/d, the shallowest open one, moves out.
        std::fs::rename(root.join("d/d"), base.path().join("away")).unwrap();
        for _ in 1..OPEN_FRAMES {
            w.pop();
        }
        assert_eq!(w.counts.errors, 0, "every parent so far was open");
        w.pop();
        assert_eq!(w.counts.errors, 1);
        assert!(
            w.frames.next_entry(&mut Vec::new()).is_none(),
            "the job is dropped"
        );
    }

    fn walkdir_owners(root: &Path) -> Vec<(PathBuf, u32, u32)> {
        walkdir::WalkDir::new(root)
            .sort_by_file_name()
            .into_iter()
            .map(|e| {
                let e = e.unwrap();
                let m = e.path().symlink_metadata().unwrap();
                (e.path().to_path_buf(), m.uid(), m.gid())
            })
            .collect()
    }
}
