//! Replacing a small system file (/etc/passwd, /etc/group, the remap marker) so that it is
//! always either the old file or the new one, whole.
//!
//! The new text is written beside the file first, with the old file's owner, group and mode
//! (`root:shadow 0640` stays so), and synced; only then is it renamed over the old one, and the
//! directory synced, so the rename survives a crash. Everything that can fail for want of
//! space or permission fails at the staging step, before any file changes; a file that is a
//! mount point (bind-mounted into the container, often read-only) is refused up front, since
//! rename cannot replace it. A staged file that is never committed is removed.

use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::sys::fs as sysfs;

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
    pub fn new(path: &Path, text: &str, tag: &str) -> io::Result<Staged> {
        let (uid, gid, mode) = match fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(io::Error::other("it is a symlink; refusing to replace it"));
            }
            Ok(m) => (m.uid(), m.gid(), m.mode() & 0o7777),
            Err(e) if e.kind() == io::ErrorKind::NotFound => (0, 0, 0o644),
            Err(e) => return Err(e),
        };
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".hermes-shim-{tag}"));
        let staged = Staged {
            tmp: PathBuf::from(tmp),
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
        Ok(st) => Ok(st.dev != parent.dev || st.mnt_id != parent.mnt_id),
        Err(nix::errno::Errno::ENOENT) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
