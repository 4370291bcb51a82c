//! The per-entry judge: looks at one child of a directory without following it, decides with
//! the ownership rule, and changes it through a handle of its own, re-judged on that handle.
//! Whatever a name pointed at when it was listed, only the inode in hand is judged and changed.

use std::ffi::{CStr, OsStr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;

use crate::escape::shown;
use crate::sys::fs::{self, Kind, Open, Stat};

use super::rule::{self, Action, Skip};
use super::verdict::Next;
use super::walk::{Counts, Shared};

/// Judges and changes the entries of one directory; borrows a worker's counters and path.
pub struct Judge<'a, 's> {
    pub sh: &'a Shared<'s>,
    pub counts: &'a mut Counts,
    /// The directory the entries are in (for messages and excludes).
    pub dir: &'a Path,
}

/// A directory to descend into: its fd and identity.
pub type Descend = Option<(OwnedFd, (u64, u64))>;

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

impl Judge<'_, '_> {
    /// Handles the child `name` of `dir`, listed with getdents type `d_type`; returns a
    /// directory to descend into.
    pub fn entry(&mut self, dir: BorrowedFd, name: &CStr, d_type: u8) -> Descend {
        self.counts.scanned += 1;
        if !self.sh.cfg.excludes.is_empty() && self.excluded(name) {
            self.warn_if_movable(dir, name);
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
    fn other(&mut self, dir: BorrowedFd, name: &CStr, may_enter: bool) -> Descend {
        let st = match fs::stat_at(dir, name) {
            Ok(st) => st,
            Err(Errno::ENOENT) => {
                self.vanished();
                return None;
            }
            Err(e) => {
                self.error(os(name), "statx", e);
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
        // On another mount: not even opened (a non-directory mount point is a bind-mounted
        // file, whatever its owner).
        if self.sh.cfg.foreign(&st) {
            self.skipped(name, Skip::Mount);
            return None;
        }
        match self.decide(&st) {
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
    /// handle.
    fn change_other(&mut self, dir: BorrowedFd, name: &CStr) {
        let handle = match fs::open_child(dir, name, Open::Handle, self.sh.cfg.walk) {
            Ok(h) => h,
            Err(Errno::EXDEV) => return self.skipped(name, Skip::Mount),
            Err(e) if in_flight(e) => return self.vanished(),
            Err(e) => return self.error(os(name), "open", e),
        };
        let st = match fs::stat_fd(handle.as_fd()) {
            Ok(st) => st,
            Err(e) => return self.error(os(name), "statx", e),
        };
        if st.kind == Kind::Dir {
            // Swapped for a directory since we looked; it is not entered this run.
            return self.vanished();
        }
        self.apply(handle.as_fd(), &st, name);
    }

    /// Opens a child directory, judges and changes it through its own fd, and returns it to
    /// descend into when it is on the sweep's mount.
    fn directory(&mut self, dir: BorrowedFd, name: &CStr) -> Descend {
        let fd = match fs::open_child(dir, name, Open::Dir, self.sh.cfg.walk) {
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
                self.error(os(name), "open", e);
                return None;
            }
        };
        let st = match fs::stat_fd(fd.as_fd()) {
            Ok(st) => st,
            Err(e) => {
                self.error(os(name), "statx", e);
                return None;
            }
        };
        (self.apply(fd.as_fd(), &st, name) && !self.sh.queue.stopped()).then(|| (fd, st.ident()))
    }

    /// Applies the ownership rule to the inode behind `fd`, whose fresh stat is `st`; returns
    /// false when it lies on another mount (and was skipped as such).
    pub fn apply(&mut self, fd: BorrowedFd, st: &Stat, name: &CStr) -> bool {
        if self.sh.cfg.foreign(st) {
            self.skipped(name, Skip::Mount);
            return false;
        }
        match self.decide(st) {
            Action::Keep => {}
            Action::Skip(s) => self.skipped(name, s),
            Action::Change { uid, gid } => self.change(fd, uid, gid, name),
        }
        true
    }

    fn decide(&self, st: &Stat) -> Action {
        rule::decide(st.kind, st.uid, st.gid, st.nlink, &self.sh.cfg.rule)
    }

    /// chown through the handle (nothing in a dry run), telling the verdict how it went.
    fn change(&mut self, fd: BorrowedFd, uid: Option<u32>, gid: Option<u32>, name: &CStr) {
        let cfg = self.sh.cfg;
        let result = if cfg.dry_run {
            Ok(())
        } else {
            fs::chown_fd(fd, uid, gid)
        };
        match result {
            Ok(()) => {
                self.counts.changed += 1;
                if !cfg.dry_run {
                    say_all(self.sh.verdict.succeeded());
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
                let (lines, next) = self.sh.verdict.denied(line);
                say_all(lines);
                if next == Next::Stop {
                    self.sh.queue.stop();
                }
            }
            Err(e) => self.error(os(name), "fchownat", e),
        }
    }

    pub fn skipped(&mut self, name: &CStr, why: Skip) {
        self.counts.skip(why);
        if self.sh.cfg.verbose {
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
        if self.sh.queue.stopped() {
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
        let cfg = self.sh.cfg;
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
        let cfg = self.sh.cfg;
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
        let rel = full.strip_prefix(&self.sh.cfg.root).unwrap_or(&full);
        self.sh.cfg.excludes.iter().any(|x| x == rel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fix::config::Config;
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
        let sh = Shared::one_worker(&cfg);
        if stop {
            sh.queue.stop();
        }
        let mut counts = Counts::default();
        let mut judge = Judge {
            sh: &sh,
            counts: &mut counts,
            dir: root,
        };
        let out = f(&mut judge, fd.as_fd());
        (out, counts)
    }

    /// Judges the entry `name` of `root`, listed with getdents type `d_type`.
    fn entry(root: &Path, name: &str, d_type: u8, stop: bool) -> (Descend, Counts) {
        let name = CString::new(name).unwrap();
        with_judge(root, stop, |j, dir| j.entry(dir, &name, d_type))
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
        assert_eq!(descend.map(|(_, id)| id), Some((want.dev(), want.ino())));
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
