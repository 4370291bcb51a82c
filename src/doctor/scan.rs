//! The entries under `$HERMES_HOME` that the repair would change, found without changing any.
//!
//! The walk uses the sweep's own primitives (`sys::fs`: children opened relative to their
//! parent's fd, never through a symlink, stat'ed without following one) and its own rule
//! ([`fix::decide`]), so it counts what a `fix-ownership` run would change and skips what
//! that run would skip: other mounts (not entered), excludes, hard links, devices, other owners.
//! It only reads, so a race with the agent can only make the count stale, never change a file;
//! directories are opened with `O_NOATIME` where allowed, so not even their access times move.

use std::ffi::{CStr, OsStr};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use crate::fix::{self, Action, Rule, Skip};
use crate::sys::fs::{self, DirBuf, Kind, Stat};

/// How many of the entries found are named.
pub const NAMED: usize = 5;
/// Directories deeper than this are not entered (and counted as such).
pub const MAX_DEPTH: usize = 64;

/// What the walk found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Found {
    /// Entries the repair would change (root's owner or group, or a remapped user's old ids).
    pub count: u64,
    /// The first [`NAMED`] of them, as paths under the root.
    pub first: Vec<PathBuf>,
    /// Entries looked at, the root included.
    pub scanned: u64,
    /// Directories that could not be read (as a non-root caller: root's own 0700 directories).
    pub unreadable: u64,
    /// Directories deeper than [`MAX_DEPTH`], not entered.
    pub too_deep: u64,
    /// Root-owned entries the repair never changes (a hard-linked file, a device).
    pub held: u64,
    /// The first [`NAMED`] of them.
    pub held_first: Vec<PathBuf>,
}

impl Found {
    fn judge(&mut self, path: &Path, st: &Stat, rule: &Rule) {
        self.scanned += 1;
        match fix::decide(st.kind, st.uid, st.gid, st.nlink, rule) {
            Action::Change { .. } => {
                self.count += 1;
                if self.first.len() < NAMED {
                    self.first.push(path.to_path_buf());
                }
            }
            Action::Skip(Skip::Hardlink | Skip::Device) if st.uid == 0 || st.gid == 0 => {
                self.held += 1;
                if self.held_first.len() < NAMED {
                    self.held_first.push(path.to_path_buf());
                }
            }
            _ => {}
        }
    }
}

struct Dir {
    fd: OwnedFd,
    buf: DirBuf,
    path: PathBuf,
    rel: PathBuf,
}

/// Walks `root` and judges every entry by `rule`, leaving out `excludes` (relative paths).
pub fn scan(root: &Path, rule: &Rule, excludes: &[PathBuf]) -> Result<Found, Errno> {
    // Reopened through "." so that reading it leaves its access time alone, as below.
    let root_fd = fs::open_dir_at_noatime(fs::open_root(root)?.as_fd(), OsStr::new("."))?;
    let root_st = fs::stat_fd(root_fd.as_fd())?;
    let mut found = Found::default();
    found.judge(root, &root_st, rule);
    let mut stack = vec![Dir {
        fd: root_fd,
        buf: DirBuf::new(DirBuf::WALK),
        path: root.to_path_buf(),
        rel: PathBuf::new(),
    }];
    let mut name = Vec::new();
    while let Some(depth) = stack.len().checked_sub(1) {
        let top = &mut stack[depth];
        match top.buf.next(top.fd.as_fd(), &mut name) {
            Ok(Some(_)) => {}
            Ok(None) => {
                stack.pop();
                continue;
            }
            Err(_) => {
                found.unreadable += 1;
                stack.pop();
                continue;
            }
        }
        let Ok(cname) = CStr::from_bytes_with_nul(&name) else {
            continue;
        };
        let os = OsStr::from_bytes(cname.to_bytes());
        let rel = top.rel.join(os);
        if excludes.contains(&rel) {
            continue;
        }
        // A name that vanished since it was listed is no entry of the tree any more.
        let Ok(st) = fs::stat_at(top.fd.as_fd(), cname) else {
            continue;
        };
        if st.mount() != root_st.mount() {
            continue;
        }
        let path = top.path.join(os);
        found.judge(&path, &st, rule);
        if st.kind != Kind::Dir {
            continue;
        }
        if depth >= MAX_DEPTH {
            found.too_deep += 1;
            continue;
        }
        let opened = fs::open_dir_at_noatime(top.fd.as_fd(), os);
        match opened {
            Ok(fd) => stack.push(Dir {
                fd,
                buf: DirBuf::new(DirBuf::WALK),
                path,
                rel,
            }),
            Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => {}
            Err(_) => found.unreadable += 1,
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fix::Previous;
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

    /// As any user: this process's own ids stand for root's (the rule moves them), so every
    /// entry of ours counts, and nothing outside the tree or excluded does.
    #[test]
    fn counts_what_the_rule_moves_and_names_the_first_few() {
        let tmp = crate::testing::TempDir::new("doctor-scan");
        let root = tmp.path().join("home");
        std::fs::create_dir_all(root.join("a/b/c")).unwrap();
        std::fs::create_dir_all(root.join("skip/deep")).unwrap();
        for f in ["a/1", "a/b/2", "a/b/c/3", "skip/deep/4", "top"] {
            std::fs::write(root.join(f), "").unwrap();
        }
        std::fs::write(tmp.path().join("outside"), "").unwrap();
        symlink(tmp.path(), root.join("up")).unwrap();
        let me = std::fs::metadata(&root).unwrap();
        let rule = Rule {
            target: (me.uid() + 1, me.gid() + 1),
            previous: Previous {
                uid: Some(me.uid()),
                gid: Some(me.gid()),
            },
        };
        let found = scan(&root, &rule, &[PathBuf::from("skip")]).unwrap();
        // home, a, a/b, a/b/c, a/1, a/b/2, a/b/c/3, top and the symlink itself: 9; skip/ and
        // what is below it, and `outside` (reached only through the symlink), are not.
        assert_eq!(found.count, 9, "{found:?}");
        assert_eq!(found.scanned, 9, "{found:?}");
        assert_eq!(found.first.len(), NAMED);
        assert_eq!(found.first[0], root);
        assert!(found.first.iter().all(|p| p.starts_with(&root)));
        assert_eq!((found.unreadable, found.too_deep), (0, 0));

        let own = Rule {
            target: (me.uid(), me.gid()),
            previous: Previous::default(),
        };
        let none = scan(&root, &own, &[]).unwrap();
        assert_eq!(none.count, 0, "the target's own entries are fine: {none:?}");
        assert_eq!(none.scanned, 12, "every entry, skip/ included: {none:?}");
    }

    #[test]
    fn held_counts_only_roots_hard_links_and_devices() {
        let rule = Rule {
            target: (10000, 10000),
            previous: Previous {
                uid: Some(1000),
                gid: None,
            },
        };
        let st = |kind, uid, gid, nlink| Stat {
            dev: 1,
            ino: 2,
            kind,
            uid,
            gid,
            nlink,
            mode: 0o644,
            mnt_id: 3,
        };
        let mut found = Found::default();
        // Skipped by the repair, but not root's: the hermes user's device, and a hard link of
        // the user's previous uid.
        found.judge(
            Path::new("dev"),
            &st(Kind::CharDevice, 10000, 10000, 1),
            &rule,
        );
        found.judge(Path::new("old"), &st(Kind::File, 1000, 10000, 2), &rule);
        assert_eq!((found.held, found.count), (0, 0), "{found:?}");
        found.judge(Path::new("rdev"), &st(Kind::CharDevice, 0, 10000, 1), &rule);
        found.judge(Path::new("rlink"), &st(Kind::File, 10000, 0, 2), &rule);
        assert_eq!(found.held, 2, "{found:?}");
        assert_eq!(found.held_first, [Path::new("rdev"), Path::new("rlink")]);
        for i in 0..NAMED {
            found.judge(
                Path::new(&format!("more{i}")),
                &st(Kind::BlockDevice, 0, 0, 1),
                &rule,
            );
        }
        assert_eq!(found.held, 2 + NAMED as u64);
        assert_eq!(
            found.held_first.len(),
            NAMED,
            "only the first few are named"
        );
    }

    #[test]
    fn directories_too_deep_are_counted_not_entered() {
        let tmp = crate::testing::TempDir::new("doctor-scan-deep");
        let root = tmp.path().join("home");
        let mut p = root.clone();
        for _ in 0..=MAX_DEPTH + 1 {
            p.push("d");
        }
        std::fs::create_dir_all(&p).unwrap();
        let rule = Rule {
            target: (1, 1),
            previous: Previous::default(),
        };
        let found = scan(&root, &rule, &[]).unwrap();
        // The root and MAX_DEPTH + 1 levels below it are looked at; the last of those is not
        // entered, so the one below it is never seen.
        assert_eq!(found.too_deep, 1, "{found:?}");
        assert_eq!(found.scanned, MAX_DEPTH as u64 + 2, "{found:?}");
    }

    #[test]
    fn directories_it_cannot_open_are_counted() {
        if !crate::testing::root_or_skip("directories_it_cannot_open_are_counted") {
            return;
        }
        let tmp = crate::testing::TempDir::new("doctor-scan-locked");
        let root = tmp.path().join("home");
        let locked = root.join("locked");
        std::fs::create_dir_all(locked.join("inside")).unwrap();
        std::os::unix::fs::lchown(&locked, Some(4242), Some(4242)).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700)).unwrap();
        let rule = Rule {
            target: (1, 1),
            previous: Previous::default(),
        };
        // Root without its effective capabilities, as a caller the permission bits apply to. A
        // thread of its own: capset changes the calling thread only, and this one then ends.
        let found = std::thread::spawn(move || {
            crate::sys::lose_effective_capabilities().expect("capset");
            scan(&root, &rule, &[]).unwrap()
        })
        .join()
        .unwrap();
        // home and locked are looked at; what is inside locked is not.
        assert_eq!((found.unreadable, found.scanned), (1, 2), "{found:?}");
    }

    #[test]
    fn a_root_that_is_a_symlink_is_not_followed() {
        let tmp = crate::testing::TempDir::new("doctor-scan-link");
        std::fs::create_dir(tmp.path().join("real")).unwrap();
        symlink(tmp.path().join("real"), tmp.path().join("link")).unwrap();
        let rule = Rule {
            target: (1, 1),
            previous: Previous::default(),
        };
        // O_DIRECTORY | O_NOFOLLOW on a symlink: ENOTDIR (ELOOP on some kernels).
        let e = scan(&tmp.path().join("link"), &rule, &[]).unwrap_err();
        assert!(matches!(e, Errno::ENOTDIR | Errno::ELOOP), "{e}");
    }
}
