//! The walk behind the gid rule ([`crate::users::gid_use`]): every inode of the container's own
//! mounts whose group is a gid from 1 to 99, found by directory fd (`O_NOFOLLOW`, never a
//! symlink followed), never entering the directory it is told to skip (`HERMES_HOME`) nor any
//! mount outside the set it starts with, nor what the users it is told of own (their own files
//! are no evidence, and their trees could be made too deep or too large). Bounded: a tree larger or deeper than the bounds ends
//! the walk with an error, and the caller then cannot count the gid as unused.

use std::collections::BTreeSet;
use std::ffi::{CStr, OsStr};
use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use super::fs::{self, DirBuf, Kind, Open, Walk};
use crate::escape::shown;

/// At most this many entries are looked at (an image is some tens of thousands).
pub const MAX_ENTRIES: usize = 400_000;
/// At most this many directories deep (each level holds one open fd).
pub const MAX_DEPTH: usize = 64;

/// An inode whose group is below 100.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub gid: u32,
    /// Permission bits.
    pub mode: u32,
    pub kind: Kind,
    pub path: PathBuf,
}

/// Why the walk could not look at everything it had to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanError {
    /// A call failed at this path.
    Call { path: PathBuf, errno: Errno },
    /// More than [`MAX_ENTRIES`] entries.
    TooMany,
    /// Deeper than [`MAX_DEPTH`] at this path.
    TooDeep(PathBuf),
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScanError::Call { path, errno } => write!(f, "{}: {errno}", shown(path)),
            ScanError::TooMany => write!(f, "more than {MAX_ENTRIES} entries"),
            ScanError::TooDeep(p) => {
                write!(f, "{} is more than {MAX_DEPTH} levels deep", shown(p))
            }
        }
    }
}

/// The mount ids of `paths` that exist (opened from `/` without following a symlink).
pub fn mounts_of(paths: &[&Path]) -> Result<Vec<u64>, ScanError> {
    let mut ids = Vec::new();
    for p in paths {
        match fs::open_root(p).and_then(|fd| fs::stat_fd(fd.as_fd())) {
            Ok(st) => ids.push(st.mnt_id),
            Err(Errno::ENOENT | Errno::ENOTDIR) => {}
            Err(errno) => {
                return Err(ScanError::Call {
                    path: p.to_path_buf(),
                    errno,
                });
            }
        }
    }
    Ok(ids)
}

/// The device and inode of the directory `path`, if it is one (opened without following a
/// symlink anywhere); what the walk skips.
pub fn dir_ident(path: &Path) -> Option<(u64, u64)> {
    let fd = fs::open_root(path).ok()?;
    fs::stat_fd(fd.as_fd()).ok().map(|st| st.ident())
}

/// Walks everything below `/` that lies on a mount of `mounts`, except the directory `skip` and
/// whatever a uid of `owners` owns (a directory of theirs is not entered); returns every other
/// inode but a symlink whose group is 1 to 99.
pub fn walk(
    mounts: &[u64],
    skip: Option<(u64, u64)>,
    owners: &BTreeSet<u32>,
) -> Result<Vec<Found>, ScanError> {
    let root = Path::new("/");
    let call = |path: &Path| {
        let path = path.to_path_buf();
        move |errno| ScanError::Call { path, errno }
    };
    let fd = fs::open_root(root).map_err(call(root))?;
    let mut found = Vec::new();
    let mut seen = 0usize;
    let mut stack: Vec<(OwnedFd, PathBuf, DirBuf)> =
        vec![(fd, root.to_path_buf(), DirBuf::new(8192))];
    let mut name = Vec::new();
    loop {
        let depth = stack.len();
        let Some((dir, path, buf)) = stack.last_mut() else {
            break;
        };
        let Some(_) = buf.next(dir.as_fd(), &mut name).map_err(call(path))? else {
            stack.pop();
            continue;
        };
        seen += 1;
        if seen > MAX_ENTRIES {
            return Err(ScanError::TooMany);
        }
        let c = CStr::from_bytes_with_nul(&name).map_err(|_| ScanError::Call {
            path: path.clone(),
            errno: Errno::EIO,
        })?;
        let child = path.join(OsStr::from_bytes(c.to_bytes()));
        let st = match fs::stat_at(dir.as_fd(), c) {
            Ok(st) => st,
            // Gone since it was listed: nothing there to count.
            Err(Errno::ENOENT) => continue,
            Err(errno) => return Err(ScanError::Call { path: child, errno }),
        };
        if !mounts.contains(&st.mnt_id) || Some(st.ident()) == skip || owners.contains(&st.uid) {
            continue;
        }
        if (1..100).contains(&st.gid) && st.kind != Kind::Symlink {
            found.push(Found {
                gid: st.gid,
                mode: st.mode,
                kind: st.kind,
                path: child.clone(),
            });
        }
        if st.kind != Kind::Dir {
            continue;
        }
        if depth >= MAX_DEPTH {
            return Err(ScanError::TooDeep(child));
        }
        let sub = match fs::open_child(dir.as_fd(), c, Open::Dir, Walk::Fallback) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(errno) => return Err(ScanError::Call { path: child, errno }),
        };
        // Replaced between the stat and the open: judged by what was opened.
        let now = fs::stat_fd(sub.as_fd()).map_err(call(&child))?;
        if now.ident() != st.ident()
            || Some(now.ident()) == skip
            || !mounts.contains(&now.mnt_id)
            || owners.contains(&now.uid)
        {
            continue;
        }
        stack.push((sub, child, DirBuf::new(8192)));
    }
    Ok(found)
}
