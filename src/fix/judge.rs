//! The per-entry judge: looks at one child of a directory without following it, decides with
//! the ownership rule, and changes it through a handle of its own, re-judged on that handle.
//! Whatever a name pointed at when it was listed, only the inode in hand is judged and changed.
//! The walker is told what to do next ([`WalkState`]); the judge knows nothing of the walk.

use std::ffi::{CStr, OsStr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;

use crate::escape::shown;
use crate::sys::fs::{self, Kind, Open, Stat};

use super::config::Config;
use super::rule::{self, Action, Skip};
use super::verdict::{Next, Probe, Verdict};

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
    pub fn add(&mut self, o: &Counts) {
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
    pub fn skip(&mut self, s: Skip) {
        match s {
            Skip::OtherOwner => self.other_owner += 1,
            Skip::Device => self.device += 1,
            Skip::Hardlink => self.hardlink += 1,
            Skip::Mount => self.mount += 1,
            Skip::Excluded => self.excluded += 1,
        }
    }
}

/// Judges and changes the entries of one directory; borrows a worker's counters and path.
pub struct Judge<'a> {
    pub cfg: &'a Config,
    /// Whether chown works here at all, shared by the workers.
    pub verdict: &'a Verdict<Probe>,
    pub counts: &'a mut Counts,
    /// The directory the entries are in (for messages and excludes).
    pub dir: &'a Path,
}

/// What the walker does after an entry (the verdict of walkdir's and ignore's walkers).
pub enum WalkState {
    /// Enter this directory: its fd and identity.
    Descend(OwnedFd, (u64, u64)),
    /// Nothing to enter: go on with the next entry.
    Skip,
    /// Chown is impossible here: stop the whole walk.
    Quit,
}

/// What became of an inode the rule was applied to.
pub enum Applied {
    /// On the sweep's mount: judged (and changed, if the rule said so).
    OnMount,
    /// On another mount: skipped as such.
    Foreign,
    /// Its chown showed that chown is impossible here: the walk must stop.
    Quit,
}

/// A name that vanished or changed type between listing and opening: a rename in flight, not
/// a failure; the entry is simply no longer here.
fn in_flight(e: Errno) -> bool {
    matches!(e, Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP)
}

pub fn os(name: &CStr) -> &OsStr {
    OsStr::from_bytes(name.to_bytes())
}

fn say_all(lines: Vec<String>) {
    for line in lines {
        say!("{line}");
    }
}

impl Judge<'_> {
    /// Handles the child `name` of `dir`, listed with getdents type `d_type`.
    pub fn entry(&mut self, dir: BorrowedFd, name: &CStr, d_type: u8) -> WalkState {
        self.counts.scanned += 1;
        if !self.cfg.excludes.is_empty() && self.excluded(name) {
            self.warn_if_movable(dir, name);
            self.skipped(name, Skip::Excluded);
            return WalkState::Skip;
        }
        if d_type == fs::DT_DIR {
            return self.directory(dir, name);
        }
        self.other(dir, name, true)
    }

    /// Handles a child that was not listed as a directory. `may_enter` is false when it was
    /// a directory a moment ago: an entry flipping type again is left for the next run rather
    /// than chased.
    fn other(&mut self, dir: BorrowedFd, name: &CStr, may_enter: bool) -> WalkState {
        let st = match fs::stat_at(dir, name) {
            Ok(st) => st,
            Err(Errno::ENOENT) => {
                self.vanished();
                return WalkState::Skip;
            }
            Err(e) => {
                self.error(os(name), "statx", e);
                return WalkState::Skip;
            }
        };
        if st.kind == Kind::Dir {
            if may_enter {
                return self.directory(dir, name);
            }
            self.vanished();
            return WalkState::Skip;
        }
        // On another mount: not even opened (a non-directory mount point is a bind-mounted
        // file, whatever its owner).
        if self.cfg.foreign(&st) {
            self.skipped(name, Skip::Mount);
            return WalkState::Skip;
        }
        match self.decide(&st) {
            Action::Keep => WalkState::Skip,
            Action::Skip(s) => {
                self.skipped(name, s);
                WalkState::Skip
            }
            Action::Change { .. } => self.change_other(dir, name),
        }
    }

    /// A name that disappeared (or changed type) between listing and looking: not counted.
    fn vanished(&mut self) {
        self.counts.scanned -= 1;
    }

    /// Re-checks a non-directory on the handle we will change, then changes it through that
    /// handle.
    fn change_other(&mut self, dir: BorrowedFd, name: &CStr) -> WalkState {
        let handle = match fs::open_child(dir, name, Open::Handle, self.cfg.walk) {
            Ok(h) => h,
            Err(Errno::EXDEV) => {
                self.skipped(name, Skip::Mount);
                return WalkState::Skip;
            }
            Err(e) if in_flight(e) => {
                self.vanished();
                return WalkState::Skip;
            }
            Err(e) => {
                self.error(os(name), "open", e);
                return WalkState::Skip;
            }
        };
        let st = match fs::stat_fd(handle.as_fd()) {
            Ok(st) => st,
            Err(e) => {
                self.error(os(name), "statx", e);
                return WalkState::Skip;
            }
        };
        if st.kind == Kind::Dir {
            // Swapped for a directory since we looked; it is not entered this run.
            self.vanished();
            return WalkState::Skip;
        }
        match self.apply(handle.as_fd(), &st, name) {
            Applied::Quit => WalkState::Quit,
            Applied::OnMount | Applied::Foreign => WalkState::Skip,
        }
    }

    /// Opens a child directory, judges and changes it through its own fd, and returns it to
    /// descend into when it is on the sweep's mount.
    fn directory(&mut self, dir: BorrowedFd, name: &CStr) -> WalkState {
        let fd = match fs::open_child(dir, name, Open::Dir, self.cfg.walk) {
            Ok(fd) => fd,
            Err(Errno::EXDEV) => {
                self.skipped(name, Skip::Mount);
                return WalkState::Skip;
            }
            Err(Errno::ENOENT) => {
                self.vanished();
                return WalkState::Skip;
            }
            // Became a symlink or a file since it was listed: judge it as what it is now.
            Err(Errno::ENOTDIR | Errno::ELOOP) => return self.other(dir, name, false),
            // A mount point even root may not open (a FUSE mount without allow_other): openat2
            // says EXDEV before that, the fallback walk learns it from the mount id here.
            Err(_) if fs::stat_at(dir, name).is_ok_and(|st| self.cfg.foreign(&st)) => {
                self.skipped(name, Skip::Mount);
                return WalkState::Skip;
            }
            Err(e) => {
                self.error(os(name), "open", e);
                return WalkState::Skip;
            }
        };
        let st = match fs::stat_fd(fd.as_fd()) {
            Ok(st) => st,
            Err(e) => {
                self.error(os(name), "statx", e);
                return WalkState::Skip;
            }
        };
        match self.apply(fd.as_fd(), &st, name) {
            Applied::Quit => WalkState::Quit,
            // Another worker found chown impossible: nothing more is entered.
            Applied::OnMount if self.stopped() => WalkState::Skip,
            Applied::OnMount => WalkState::Descend(fd, st.ident()),
            Applied::Foreign => WalkState::Skip,
        }
    }

    /// Applies the ownership rule to the inode behind `fd`, whose fresh stat is `st`.
    pub fn apply(&mut self, fd: BorrowedFd, st: &Stat, name: &CStr) -> Applied {
        if self.cfg.foreign(st) {
            self.skipped(name, Skip::Mount);
            return Applied::Foreign;
        }
        match self.decide(st) {
            Action::Keep => {}
            Action::Skip(s) => self.skipped(name, s),
            Action::Change { uid, gid } => {
                if self.change(fd, uid, gid, name) == Next::Stop {
                    return Applied::Quit;
                }
            }
        }
        Applied::OnMount
    }

    /// Whether the walk is stopping: chown was found impossible here (by any worker).
    fn stopped(&self) -> bool {
        self.verdict.impossible()
    }

    fn decide(&self, st: &Stat) -> Action {
        rule::decide(st.kind, st.uid, st.gid, st.nlink, &self.cfg.rule)
    }

    /// chown through the handle (nothing in a dry run), telling the verdict how it went; says
    /// whether the walk goes on.
    fn change(&mut self, fd: BorrowedFd, uid: Option<u32>, gid: Option<u32>, name: &CStr) -> Next {
        let cfg = self.cfg;
        let result = if cfg.dry_run {
            Ok(())
        } else {
            fs::chown_fd(fd, uid, gid)
        };
        match result {
            Ok(()) => {
                self.counts.changed += 1;
                if !cfg.dry_run {
                    say_all(self.verdict.succeeded());
                }
                if cfg.verbose {
                    say!(
                        "hermes-shim fix-ownership: {} {}",
                        cfg.verb(),
                        shown(&self.dir.join(os(name)))
                    );
                }
            }
            Err(e @ (Errno::EPERM | Errno::EINVAL)) => {
                self.counts.errors += 1;
                let line = self.error_line(os(name), "fchownat", e);
                let (lines, next) = self.verdict.denied(line);
                say_all(lines);
                return next;
            }
            Err(e) => self.error(os(name), "fchownat", e),
        }
        Next::Go
    }

    pub fn skipped(&mut self, name: &CStr, why: Skip) {
        self.counts.skip(why);
        if self.cfg.verbose {
            say!(
                "hermes-shim fix-ownership: skipped {} ({})",
                shown(&self.dir.join(os(name))),
                why.reason()
            );
        }
    }

    fn error_line(&self, rel: &OsStr, call: &str, e: Errno) -> String {
        format!(
            "hermes-shim fix-ownership: error: {}: {call}: {e}",
            shown(&self.dir.join(rel))
        )
    }

    /// Reports a failing entry (`rel` relative to the current directory) and counts it.
    pub fn error(&mut self, rel: &OsStr, call: &str, e: Errno) {
        if self.stopped() {
            return;
        }
        self.counts.errors += 1;
        say!("{}", self.error_line(rel, call, e));
    }

    /// Warns when an excluded entry that is not the target user's could be moved out of its
    /// exclusion by that user: it is no mount point (which cannot be renamed) and some directory
    /// from the root down to it is, or after this sweep will be, writable by the target. A later
    /// sweep would then hand over whatever is root's in it (see [`super::scope`]).
    fn warn_if_movable(&self, dir: BorrowedFd, name: &CStr) {
        let cfg = self.cfg;
        let Ok(st) = fs::stat_at(dir, name) else {
            return;
        };
        if cfg.foreign(&st) || st.uid == cfg.writer.uid || !self.way_writable(dir) {
            return;
        }
        say!(
            "hermes-shim fix-ownership: WARNING: {} is excluded, but uid {} can write a directory on its way and so rename it out of the exclusion; a later sweep would then hand over root's files in it — keep root's data on a separate mount",
            shown(&self.dir.join(os(name))),
            cfg.writer.uid
        );
    }

    /// Whether the target user can write `dir` or a directory above it up to the root, with
    /// owners as this sweep leaves them (a dry run says what the real run would). Climbs by `..`
    /// from the fd; a directory that cannot be looked at, or a climb that never meets the root
    /// (the agent moved the directory out meanwhile), counts as writable.
    fn way_writable(&self, dir: BorrowedFd) -> bool {
        let cfg = self.cfg;
        let mut up: Option<OwnedFd> = None;
        for _ in 0..=super::frames::MAX_DEPTH {
            let here = up.as_ref().map_or(dir, AsFd::as_fd);
            let Ok(st) = fs::stat_fd(here) else {
                return true;
            };
            let (uid, gid) = match self.decide(&st) {
                Action::Change { uid, gid } => (uid.unwrap_or(st.uid), gid.unwrap_or(st.gid)),
                _ => (st.uid, st.gid),
            };
            if cfg.writer.can_write(uid, gid, st.mode) {
                return true;
            }
            if st.ident() == cfg.root_ident {
                return false;
            }
            match fs::open_parent(here) {
                // `/` is its own parent: the root was not on the way.
                Ok(p) if fs::stat_fd(p.as_fd()).is_ok_and(|p| p.ident() != st.ident()) => {
                    up = Some(p);
                }
                _ => return true,
            }
        }
        true
    }

    fn excluded(&self, name: &CStr) -> bool {
        let full = self.dir.join(os(name));
        let rel = full.strip_prefix(&self.cfg.root).unwrap_or(&full);
        self.cfg.excludes.iter().any(|x| x == rel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::libc::DT_REG;
    use std::ffi::CString;
    use std::os::unix::fs::MetadataExt;
    use std::path::PathBuf;

    /// A judge of `root`'s entries in a dry run (`Config::dry_run_of_own`); `stop` stops the
    /// walk first. Returns what `f` returns and the counts.
    fn with_judge<T>(
        root: &Path,
        stop: bool,
        f: impl FnOnce(&mut Judge, BorrowedFd) -> T,
    ) -> (T, Counts) {
        let (cfg, fd, _) = Config::dry_run_of_own(root);
        let verdict = Verdict::decided(stop);
        let mut counts = Counts::default();
        let mut judge = Judge {
            cfg: &cfg,
            verdict: &verdict,
            counts: &mut counts,
            dir: root,
        };
        let out = f(&mut judge, fd.as_fd());
        (out, counts)
    }

    /// Judges the entry `name` of `root`, listed with getdents type `d_type`.
    fn entry(root: &Path, name: &str, d_type: u8, stop: bool) -> (Option<(u64, u64)>, Counts) {
        let name = CString::new(name).unwrap();
        with_judge(root, stop, |j, dir| match j.entry(dir, &name, d_type) {
            WalkState::Descend(_, ident) => Some(ident),
            WalkState::Skip => None,
            WalkState::Quit => panic!("a dry run never finds chown impossible"),
        })
    }

    fn tree() -> (crate::testing::TempDir, PathBuf) {
        let base = crate::testing::TempDir::new("judge");
        let root = base.path().join("home");
        std::fs::create_dir_all(root.join("dir")).unwrap();
        std::fs::create_dir_all(root.join("skip")).unwrap();
        std::fs::write(root.join("file"), "x").unwrap();
        std::fs::write(root.join("linked"), "x").unwrap();
        std::fs::hard_link(root.join("linked"), base.path().join("outside-name")).unwrap();
        std::fs::create_dir(base.path().join("outside")).unwrap();
        std::os::unix::fs::symlink(base.path().join("outside"), root.join("to-outside")).unwrap();
        (base, root)
    }

    #[test]
    fn a_directory_is_judged_on_its_own_fd_and_handed_back_to_descend() {
        let (_base, root) = tree();
        let (descend, c) = entry(&root, "dir", fs::DT_DIR, false);
        let want = std::fs::metadata(root.join("dir")).unwrap();
        assert_eq!(descend, Some((want.dev(), want.ino())));
        assert_eq!((c.scanned, c.changed, c.errors), (1, 1, 0), "{c:?}");
    }

    #[test]
    fn an_entry_that_changed_type_since_listing_is_judged_as_what_it_is_now() {
        let (_base, root) = tree();
        // Listed as a directory, a symlink now (a swap in flight): the link is judged, never
        // followed, and nothing is entered.
        let (descend, c) = entry(&root, "to-outside", fs::DT_DIR, false);
        assert!(descend.is_none());
        assert_eq!((c.scanned, c.changed, c.errors), (1, 1, 0), "{c:?}");
        // Listed as a file, a directory now: entered, like any directory.
        let (descend, c) = entry(&root, "dir", DT_REG, false);
        assert!(descend.is_some());
        assert_eq!((c.scanned, c.changed), (1, 1), "{c:?}");
        // Listed as a directory, a file now.
        let (descend, c) = entry(&root, "file", fs::DT_DIR, false);
        assert!(descend.is_none());
        assert_eq!((c.scanned, c.changed, c.errors), (1, 1, 0), "{c:?}");
    }

    #[test]
    fn a_name_gone_since_listing_is_neither_counted_nor_an_error() {
        let (_base, root) = tree();
        for d_type in [fs::DT_DIR, DT_REG] {
            let (descend, c) = entry(&root, "gone", d_type, false);
            assert!(descend.is_none());
            assert_eq!((c.scanned, c.changed, c.errors), (0, 0, 0), "{c:?}");
        }
    }

    #[test]
    fn excluded_and_hard_linked_entries_are_skipped_and_counted() {
        let (_base, root) = tree();
        let (descend, c) = entry(&root, "skip", fs::DT_DIR, false);
        assert!(descend.is_none(), "an excluded directory is not entered");
        assert_eq!((c.scanned, c.excluded, c.changed), (1, 1, 0), "{c:?}");
        let (descend, c) = entry(&root, "linked", DT_REG, false);
        assert!(descend.is_none());
        assert_eq!((c.scanned, c.hardlink, c.changed), (1, 1, 0), "{c:?}");
    }

    #[test]
    fn a_stopped_walk_enters_nothing_more_and_reports_no_more_errors() {
        let (_base, root) = tree();
        let (descend, c) = entry(&root, "dir", fs::DT_DIR, true);
        assert!(descend.is_none());
        assert_eq!((c.scanned, c.changed), (1, 1), "still judged: {c:?}");
        let name = OsStr::new("file");
        let ((), c) = with_judge(&root, false, |j, _| j.error(name, "statx", Errno::EIO));
        assert_eq!(c.errors, 1);
        let ((), c) = with_judge(&root, true, |j, _| j.error(name, "statx", Errno::EIO));
        assert_eq!(c.errors, 0, "the walk stopped: its cause was said once");
    }
}
