//! Replacing a small system file (/etc/passwd, /etc/group, the remap marker) so that it is
//! always either the old file or the new one, whole.
//!
//! The new text is written beside the file first, with the old file's owner, group and mode
//! (`root:shadow 0640` stays so), and synced; only then is it renamed over the old one, and the
//! directory synced, so the rename survives a crash. Everything that can fail for want of
//! space or permission fails at the staging step, before any file changes; a file that is a
//! mount point (bind-mounted into the container, often read-only) is refused up front, since
//! rename cannot replace it. A staged file that is never committed is removed; one that a
//! killed process left behind is removed by the next start ([`remove_leftovers`]).

use std::ffi::{CString, OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{SFlag, fstatat};
use nix::unistd::{UnlinkatFlags, unlinkat};

use crate::sys::fs as sysfs;

/// Which of two versions of one file is staged: a change, or its undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    New,
    Old,
}

impl Tag {
    const ALL: [Tag; 2] = [Tag::New, Tag::Old];

    fn as_str(self) -> &'static str {
        match self {
            Tag::New => "new",
            Tag::Old => "old",
        }
    }
}

/// The name `name` is staged under, beside it: `NAME.hermes-shim-TAG`. The only names staging
/// ever writes, and so the only ones [`remove_leftovers`] removes.
fn staged_name(name: &OsStr, tag: Tag) -> OsString {
    let mut staged = name.to_owned();
    staged.push(".hermes-shim-");
    staged.push(tag.as_str());
    staged
}

/// New contents for `path`, written and synced beside it, waiting for [`Staged::commit`].
pub struct Staged {
    tmp: PathBuf,
    path: PathBuf,
    committed: bool,
}

impl Staged {
    /// Writes `text` to `PATH.hermes-shim-TAG` with the owner, group and mode of `path` (root's
    /// 0644 when `path` does not exist yet). Distinct tags let two versions of one file be
    /// staged at once (a change and its undo).
    pub fn new(path: &Path, text: &str, tag: Tag) -> io::Result<Staged> {
        let (uid, gid, mode) = match fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(io::Error::other("it is a symlink; refusing to replace it"));
            }
            Ok(m) => (m.uid(), m.gid(), m.mode() & 0o7777),
            Err(e) if e.kind() == io::ErrorKind::NotFound => (0, 0, 0o644),
            Err(e) => return Err(e),
        };
        let staged = Staged {
            tmp: path.with_file_name(staged_name(path.file_name().unwrap_or_default(), tag)),
            path: path.to_path_buf(),
            committed: false,
        };
        let _ = fs::remove_file(&staged.tmp);
        let mut f = File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&staged.tmp)?;
        f.write_all(text.as_bytes())?;
        std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.sync_all()?;
        Ok(staged)
    }

    /// Renames the staged file over the real one and syncs the directory.
    pub fn commit(mut self) -> io::Result<()> {
        fs::rename(&self.tmp, &self.path)?;
        self.committed = true;
        let dir = self.path.parent().unwrap_or(Path::new("/"));
        File::open(dir)?.sync_all()
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// True when `path` is a mount point of its own (a file bind-mounted over), which rename cannot
/// replace (EBUSY).
pub fn is_mount_point(path: &Path) -> io::Result<bool> {
    let dir = File::open(path.parent().unwrap_or(Path::new("/")))?;
    let name =
        CString::new(path.file_name().unwrap_or_default().as_bytes()).map_err(io::Error::other)?;
    let parent = sysfs::stat_fd(dir.as_fd())?;
    match sysfs::stat_at(dir.as_fd(), &name) {
        Ok(st) => Ok(st.mount() != parent.mount()),
        Err(Errno::ENOENT) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// What the next start found at one staged name (see [`remove_leftovers`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leftover {
    Removed(PathBuf),
    /// Something staging never makes holds the name: left alone.
    Kept {
        path: PathBuf,
        what: &'static str,
    },
    Failed {
        path: PathBuf,
        errno: Errno,
    },
    /// The directory itself could not be opened.
    NoDir {
        dir: PathBuf,
        errno: Errno,
    },
}

/// Why an entry at a staged name is not a staging leftover, if it is not: staging only ever
/// writes root's regular files there (it gives them the owner of /etc/passwd, /etc/group or
/// the remap record, all root's). Anything else was put there by someone else, for a reason
/// this tool cannot know.
fn not_a_leftover(mode: u32, uid: u32) -> Option<&'static str> {
    match SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFREG if uid == 0 => None,
        SFlag::S_IFREG => Some("a file that is not root's"),
        SFlag::S_IFLNK => Some("a symlink"),
        SFlag::S_IFDIR => Some("a directory"),
        _ => Some("not a regular file"),
    }
}

/// Removes the staged copies of `files` that a process killed between staging and commit (or
/// undo) left behind: the fixed names `FILE.hermes-shim-TAG` for every tag, and only where
/// they are root's regular files. The directory is opened without following a symlink on the
/// way and each name is looked at (never following a symlink) and unlinked relative to it; a
/// commit renames a staged file over the real one, so a leftover is never the live file.
pub fn remove_leftovers(files: &[&Path]) -> Vec<Leftover> {
    let mut found = Vec::new();
    for file in files {
        let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else {
            continue;
        };
        let dir_fd = match sysfs::open_root(dir) {
            Ok(fd) => fd,
            Err(errno) => {
                found.push(Leftover::NoDir {
                    dir: dir.to_path_buf(),
                    errno,
                });
                continue;
            }
        };
        for tag in Tag::ALL {
            let staged = staged_name(name, tag);
            let path = dir.join(&staged);
            // fstatat, not statx: this runs at every start, on every kernel the image meets.
            let st = match fstatat(&dir_fd, staged.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(Errno::ENOENT) => continue,
                Err(errno) => {
                    found.push(Leftover::Failed { path, errno });
                    continue;
                }
            };
            if let Some(what) = not_a_leftover(st.st_mode, st.st_uid) {
                found.push(Leftover::Kept { path, what });
                continue;
            }
            match unlinkat(&dir_fd, staged.as_os_str(), UnlinkatFlags::NoRemoveDir) {
                Ok(()) => found.push(Leftover::Removed(path)),
                Err(Errno::ENOENT) => {}
                Err(errno) => found.push(Leftover::Failed { path, errno }),
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_writes_only_the_names_the_next_start_removes() {
        // Staged files take the owner of the file they replace; only root's are leftovers.
        if !crate::testing::root_or_skip("staging_writes_only_the_names_the_next_start_removes") {
            return;
        }
        let tmp = crate::testing::TempDir::new("etcfile-names");
        let path = tmp.path().join("group");
        fs::write(&path, "root:x:0:\n").unwrap();
        let names = |dir: &Path| {
            let mut n: Vec<String> = fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            n.sort();
            n
        };
        let staged: Vec<Staged> = Tag::ALL
            .iter()
            .map(|t| Staged::new(&path, "x\n", *t).unwrap())
            .collect();
        assert_eq!(
            names(tmp.path()),
            ["group", "group.hermes-shim-new", "group.hermes-shim-old"]
        );
        // Forgotten (as by a SIGKILL), not dropped: the files stay for the next start.
        std::mem::forget(staged);
        let found = remove_leftovers(&[&path]);
        assert_eq!(
            found,
            [
                Leftover::Removed(tmp.path().join("group.hermes-shim-new")),
                Leftover::Removed(tmp.path().join("group.hermes-shim-old")),
            ]
        );
        assert_eq!(names(tmp.path()), ["group"]);
        assert_eq!(fs::read_to_string(&path).unwrap(), "root:x:0:\n");
        assert_eq!(remove_leftovers(&[&path]), [], "nothing twice");
    }

    #[test]
    fn only_roots_regular_files_are_leftovers() {
        use nix::libc::{S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, S_IFSOCK};
        for (mode, uid, want) in [
            (S_IFREG | 0o644, 0, None),
            (S_IFREG | 0o600, 0, None),
            (S_IFREG | 0o640, 10000, Some("a file that is not root's")),
            (S_IFLNK | 0o777, 0, Some("a symlink")),
            (S_IFDIR | 0o755, 0, Some("a directory")),
            (S_IFIFO | 0o644, 0, Some("not a regular file")),
            (S_IFSOCK | 0o644, 0, Some("not a regular file")),
            (S_IFCHR | 0o644, 0, Some("not a regular file")),
            (S_IFBLK | 0o644, 0, Some("not a regular file")),
        ] {
            assert_eq!(not_a_leftover(mode, uid), want, "mode {mode:o} uid {uid}");
        }
    }
}
