//! Reading a directory of recorded variables, one regular file per variable (s6-overlay's
//! `/run/s6/container_environment`): every component opened from `/` without following a
//! symlink, every file opened relative to the directory's fd with `O_NOFOLLOW`, and nothing
//! read beyond fixed bounds. What the files mean is judged elsewhere.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{self, OFlag};
use nix::sys::stat::Mode;

use super::fs::{DirBuf, Kind, Stat, open_root, stat_fd};

/// At most this many entries are looked at; start-up scripts record a few dozen.
pub const MAX_FILES: usize = 1024;
/// A file larger than this is not read: the kernel takes no longer string into an environment
/// (`MAX_ARG_STRLEN`, 32 pages).
pub const MAX_VALUE: usize = 128 * 1024;
/// All values together stay below this, well under the kernel's limit for a whole exec.
pub const MAX_TOTAL: usize = 1024 * 1024;

/// One entry of the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub name: Vec<u8>,
    /// The file's owner.
    pub uid: u32,
    /// Its content, when it is a regular file; `None` for anything else (a symlink, a FIFO, a
    /// directory).
    pub content: Option<Vec<u8>>,
}

/// What the directory holds, within the bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub files: Vec<File>,
    /// Entries left out: those past [`MAX_FILES`] or [`MAX_TOTAL`], and regular files over
    /// [`MAX_VALUE`] or the room [`MAX_TOTAL`] still had.
    pub left: usize,
}

/// Opens the directory `path` (absolute), following no symlink on the way; `None` when a
/// component does not exist. Returns its status for the caller to judge before listing it.
pub fn open_dir(path: &Path) -> Result<Option<(OwnedFd, Stat)>, Errno> {
    match open_root(path) {
        Ok(fd) => {
            let st = stat_fd(fd.as_fd())?;
            Ok(Some((fd, st)))
        }
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Lists the directory `dir` and reads its regular files, within the bounds above.
pub fn list(dir: &OwnedFd) -> Result<Listing, Errno> {
    let mut out = Listing {
        files: Vec::new(),
        left: 0,
    };
    let mut buf = DirBuf::new(DirBuf::WALK);
    let mut name = Vec::new();
    let mut total = 0;
    while buf.next(dir.as_fd(), &mut name)?.is_some() {
        if out.files.len() == MAX_FILES || total >= MAX_TOTAL {
            out.left += 1;
            continue;
        }
        let file = std::ffi::CStr::from_bytes_with_nul(&name).map_err(|_| Errno::EIO)?;
        // O_NONBLOCK: a FIFO put there opens without waiting for a writer (and is not read).
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
        let (uid, content) = match fcntl::openat(dir, file, flags, Mode::empty()) {
            Ok(fd) => {
                let st = stat_fd(fd.as_fd())?;
                match read_regular(&fd, &st, MAX_TOTAL - total)? {
                    Read::Value(content) => (st.uid, Some(content)),
                    Read::NotRegular => (st.uid, None),
                    Read::TooBig => {
                        out.left += 1;
                        continue;
                    }
                }
            }
            // A symlink (ELOOP) or something that cannot be opened for reading: listed unread.
            Err(Errno::ELOOP | Errno::ENXIO | Errno::EACCES | Errno::EISDIR) => (u32::MAX, None),
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(e),
        };
        total += content.as_ref().map_or(0, Vec::len);
        out.files.push(File {
            name: name[..name.len() - 1].to_vec(),
            uid,
            content,
        });
    }
    Ok(out)
}

/// What reading one entry gave.
enum Read {
    Value(Vec<u8>),
    /// Not a regular file: listed, never read.
    NotRegular,
    /// A regular file over [`MAX_VALUE`] or the room left: one of the entries left out.
    TooBig,
}

/// The content of `fd` when it is a regular file of at most [`MAX_VALUE`] (and `room`) bytes.
fn read_regular(fd: &OwnedFd, st: &Stat, room: usize) -> Result<Read, Errno> {
    if st.kind != Kind::File {
        return Ok(Read::NotRegular);
    }
    let cap = MAX_VALUE.min(room);
    // One byte more than allowed: a file that grew after fstat is still caught.
    let mut content = vec![0; cap + 1];
    let mut len = 0;
    loop {
        match nix::unistd::read(fd, &mut content[len..]) {
            Ok(0) => break,
            Ok(n) => {
                len += n;
                if len > cap {
                    return Ok(Read::TooBig);
                }
            }
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    content.truncate(len);
    Ok(Read::Value(content))
}
