//! File-descriptor-relative filesystem calls for the ownership sweep.
//!
//! Every name passed here is a single component read from the parent directory (getdents
//! never yields a `/`), so a lookup can only land on a child of the fd it starts from. Opens
//! never follow symlinks; `Openat2` additionally has the kernel refuse symlinks, `..` escapes
//! and mount crossings, which `Fallback` re-checks on the opened handle instead.

use std::ffi::{CStr, OsStr};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::fcntl::{self, OFlag, OpenHow, ResolveFlag};
use nix::libc;
use nix::sys::stat::Mode;
use nix::unistd::{self, Gid, Uid};

mod dents;

#[cfg(feature = "fuzzing")]
pub use dents::record;
pub use dents::{DT_DIR, DirBuf, Entry, seek_dir};

/// How children are opened: chosen once by [`probe_openat2`], forced by `--walk`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    /// `openat2` with `RESOLVE_BENEATH` | `RESOLVE_NO_SYMLINKS` | `RESOLVE_NO_XDEV` (Linux ≥ 5.6).
    Openat2,
    /// `openat` with `O_NOFOLLOW`, plus a mount-id check on every handle.
    Fallback,
}

impl Walk {
    pub fn as_str(self) -> &'static str {
        match self {
            Walk::Openat2 => "openat2",
            Walk::Fallback => "fallback",
        }
    }
}

/// File types as the code tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
    BlockDevice,
    CharDevice,
    /// A FIFO, a socket: changed like a file, never opened.
    Other,
}

impl Kind {
    fn from_mode(mode: u32) -> Kind {
        match mode & libc::S_IFMT {
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFREG => Kind::File,
            libc::S_IFLNK => Kind::Symlink,
            libc::S_IFBLK => Kind::BlockDevice,
            libc::S_IFCHR => Kind::CharDevice,
            _ => Kind::Other,
        }
    }
}

/// What the sweep needs to know of an inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub kind: Kind,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    /// The permission bits (`0o7777`).
    pub mode: u32,
    /// The mount the inode was reached through: what tells a bind mount of the sweep's own
    /// filesystem apart, where the device is the same (see [`MountIds`] for where it comes from).
    pub mnt_id: u64,
}

impl Stat {
    /// Device and inode: what "the same directory" means when we come back to one.
    pub fn ident(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }

    /// Device and mount id: two inodes with the same pair were reached through the same mount.
    /// The device alone cannot tell a bind mount of the same filesystem apart.
    pub fn mount(&self) -> (u64, u64) {
        (self.dev, self.mnt_id)
    }
}

/// Set once statx itself is refused (Linux < 4.11 answers ENOSYS; a seccomp profile older than
/// the call, such as Docker's before 18.04, answers EPERM): from then on fstatat is used.
static NO_STATX: AtomicBool = AtomicBool::new(false);

fn statx(dir: BorrowedFd, name: &CStr, flags: libc::c_int) -> Result<Stat, Errno> {
    let flags = flags | libc::AT_SYMLINK_NOFOLLOW | libc::AT_NO_AUTOMOUNT;
    let (mut st, mnt_id) = if NO_STATX.load(Ordering::Relaxed) {
        (fstatat(dir, name, flags)?, None)
    } else {
        match raw_statx(dir, name, flags) {
            Err(Errno::ENOSYS | Errno::EPERM) => {
                NO_STATX.store(true, Ordering::Relaxed);
                (fstatat(dir, name, flags)?, None)
            }
            other => other?,
        }
    };
    st.mnt_id = match mnt_id {
        Some(id) => id,
        None => mount_id(dir, name, flags)?.0,
    };
    Ok(st)
}

/// The statx system call itself, not glibc's wrapper: the wrapper answers ENOSYS with an
/// emulation through fstatat, paying a failed call every time. The mount id comes apart,
/// present only where the kernel reports it (Linux ≥ 5.8).
fn raw_statx(
    dir: BorrowedFd,
    name: &CStr,
    flags: libc::c_int,
) -> Result<(Stat, Option<u64>), Errno> {
    let mask = libc::STATX_TYPE
        | libc::STATX_MODE
        | libc::STATX_UID
        | libc::STATX_GID
        | libc::STATX_NLINK
        | libc::STATX_INO
        | libc::STATX_MNT_ID;
    let mut buf = MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: `name` is NUL-terminated and `buf` is a writable statx buffer the kernel fills.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_statx,
            dir.as_raw_fd(),
            name.as_ptr(),
            flags | libc::AT_STATX_SYNC_AS_STAT,
            mask,
            buf.as_mut_ptr(),
        )
    };
    Errno::result(rc)?;
    // SAFETY: statx returned success, so the buffer is initialised (it was zeroed anyway).
    let s = unsafe { buf.assume_init() };
    let st = Stat {
        dev: libc::makedev(s.stx_dev_major, s.stx_dev_minor),
        ino: s.stx_ino,
        kind: Kind::from_mode(u32::from(s.stx_mode)),
        uid: s.stx_uid,
        gid: s.stx_gid,
        nlink: s.stx_nlink,
        mode: u32::from(s.stx_mode) & 0o7777,
        mnt_id: 0,
    };
    Ok((
        st,
        // A mount id of 0 is no mount's: a kernel before 5.8 leaves the field 0 (it copies out
        // the whole zeroed structure), and qemu-user 7.2 passes the mask bit through but not the
        // field, so the mask bit alone proves nothing.
        (s.stx_mnt_id != 0).then_some(s.stx_mnt_id),
    ))
}

/// fstatat, for kernels and profiles without statx; it reports no mount id. Its device number is
/// the one statx's halves make with `makedev`, as std and every tool show it.
fn fstatat(dir: BorrowedFd, name: &CStr, flags: libc::c_int) -> Result<Stat, Errno> {
    let mut buf = MaybeUninit::<libc::stat64>::zeroed();
    // SAFETY: `name` is NUL-terminated and `buf` is a writable stat buffer the kernel fills.
    let rc = unsafe { libc::fstatat64(dir.as_raw_fd(), name.as_ptr(), buf.as_mut_ptr(), flags) };
    Errno::result(rc)?;
    // SAFETY: fstatat returned success, so the buffer is initialised (it was zeroed anyway).
    let s = unsafe { buf.assume_init() };
    Ok(Stat {
        dev: s.st_dev,
        ino: s.st_ino,
        kind: Kind::from_mode(s.st_mode),
        uid: s.st_uid,
        gid: s.st_gid,
        // No filesystem here counts more links than a u32 holds.
        nlink: u32::try_from(s.st_nlink).unwrap_or(u32::MAX),
        mode: s.st_mode & 0o7777,
        mnt_id: 0,
    })
}

/// Where a mount id came from: statx reports it since Linux 5.8; before, `name_to_handle_at`
/// reports it (Linux 2.6.39, on filesystems that can make file handles), and
/// /proc/self/fdinfo/FD does for any open file (Linux 3.15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountIds {
    Statx,
    Handle,
    Fdinfo,
}

impl MountIds {
    pub fn as_str(self) -> &'static str {
        match self {
            MountIds::Statx => "statx",
            MountIds::Handle => "name_to_handle_at",
            MountIds::Fdinfo => "fdinfo",
        }
    }
}

/// Set once `name_to_handle_at` itself is refused (ENOSYS, or EPERM from a seccomp profile), as
/// opposed to one filesystem that makes no handles (EOPNOTSUPP), which says nothing of others.
static NO_HANDLES: AtomicBool = AtomicBool::new(false);

/// The mount the child `name` of `dir` (or `dir` itself, with `AT_EMPTY_PATH`) is reached
/// through, without statx: by `name_to_handle_at`, else from the fdinfo of a handle opened for
/// the purpose. Never follows a symlink.
fn mount_id(dir: BorrowedFd, name: &CStr, flags: libc::c_int) -> Result<(u64, MountIds), Errno> {
    if !NO_HANDLES.load(Ordering::Relaxed) {
        match handle_mount_id(dir, name, flags & libc::AT_EMPTY_PATH) {
            Ok(id) => return Ok((id, MountIds::Handle)),
            Err(Errno::ENOSYS | Errno::EPERM) => NO_HANDLES.store(true, Ordering::Relaxed),
            // The filesystem makes no handles (overlayfs before 4.16, procfs…).
            Err(Errno::EOPNOTSUPP) => {}
            Err(e) => return Err(e),
        }
    }
    // An empty name is the fd itself (the callers pass AT_EMPTY_PATH with it).
    let id = if name.is_empty() {
        fdinfo_mount_id(dir)?
    } else {
        let fd = fcntl::openat(
            dir,
            name,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        fdinfo_mount_id(fd.as_fd())?
    };
    Ok((id, MountIds::Fdinfo))
}

/// The largest file handle the kernel makes (`MAX_HANDLE_SZ`).
const MAX_HANDLE_SZ: u32 = 128;

/// `struct file_handle` with room for any handle.
#[repr(C)]
struct FileHandle {
    handle_bytes: u32,
    handle_type: i32,
    f_handle: [u8; MAX_HANDLE_SZ as usize],
}

/// `name_to_handle_at`'s mount id. The handle itself is not wanted: the kernel writes the mount
/// id even when the handle does not fit (EOVERFLOW), so that answer counts too.
fn handle_mount_id(dir: BorrowedFd, name: &CStr, flags: libc::c_int) -> Result<u64, Errno> {
    let mut handle = FileHandle {
        handle_bytes: MAX_HANDLE_SZ,
        handle_type: 0,
        f_handle: [0; MAX_HANDLE_SZ as usize],
    };
    let mut mnt: libc::c_int = -1;
    // SAFETY: `name` is NUL-terminated; `handle` has room for `handle_bytes` bytes after its
    // header and `mnt` for one int, both written by the kernel only. Without
    // AT_SYMLINK_FOLLOW a trailing symlink is not followed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_name_to_handle_at,
            dir.as_raw_fd(),
            name.as_ptr(),
            &raw mut handle,
            &raw mut mnt,
            flags,
        )
    };
    match Errno::result(rc) {
        Ok(_) | Err(Errno::EOVERFLOW) => u64::try_from(mnt).map_err(|_| Errno::EIO),
        Err(e) => Err(e),
    }
}

/// The `mnt_id:` line of /proc/self/fdinfo/FD.
fn fdinfo_mount_id(fd: BorrowedFd) -> Result<u64, Errno> {
    let text = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    fdinfo_field(&text, "mnt_id").ok_or(Errno::ENODATA)
}

/// A numeric field of an fdinfo text (`mnt_id:\t42`).
fn fdinfo_field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Which source gives mount ids for the inode `fd` refers to, and its mount id: asked once for
/// a sweep's root, so the run can say which one it relies on.
pub fn mount_id_of(fd: BorrowedFd) -> Result<(u64, MountIds), Errno> {
    if !NO_STATX.load(Ordering::Relaxed)
        && let Ok((_, Some(id))) = raw_statx(fd, c"", libc::AT_EMPTY_PATH)
    {
        return Ok((id, MountIds::Statx));
    }
    mount_id(fd, c"", libc::AT_EMPTY_PATH)
}

/// statx of the child `name` of `dir`, never following a symlink or triggering an automount.
pub fn stat_at(dir: BorrowedFd, name: &CStr) -> Result<Stat, Errno> {
    statx(dir, name, 0)
}

/// statx of the inode `fd` refers to.
pub fn stat_fd(fd: BorrowedFd) -> Result<Stat, Errno> {
    statx(fd, c"", libc::AT_EMPTY_PATH)
}

/// What a child is opened as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    /// `O_PATH`: a handle to stat and chown, never reading or writing the file (a FIFO does not
    /// block, a device is not opened).
    Handle,
    /// A readable directory fd to list.
    Dir,
}

/// Opens the child `name` of `dir` without following symlinks.
pub fn open_child(dir: BorrowedFd, name: &CStr, how: Open, walk: Walk) -> Result<OwnedFd, Errno> {
    let flags = OFlag::O_NOFOLLOW
        | OFlag::O_CLOEXEC
        | match how {
            Open::Handle => OFlag::O_PATH,
            Open::Dir => OFlag::O_RDONLY | OFlag::O_DIRECTORY,
        };
    match walk {
        Walk::Openat2 => fcntl::openat2(dir, name, resolve_strict(flags)),
        Walk::Fallback => fcntl::openat(dir, name, flags, Mode::empty()),
    }
}

fn resolve_strict(flags: OFlag) -> OpenHow {
    OpenHow::new().flags(flags).resolve(
        ResolveFlag::RESOLVE_BENEATH
            | ResolveFlag::RESOLVE_NO_SYMLINKS
            | ResolveFlag::RESOLVE_NO_XDEV,
    )
}

/// Asks whether openat2 with our resolve flags is usable here (kernel ≥ 5.6 and a seccomp
/// profile that lets it through). The errno says why not.
pub fn probe_openat2(dir: BorrowedFd) -> Result<(), Errno> {
    fcntl::openat2(dir, c".", resolve_strict(OFlag::O_PATH | OFlag::O_CLOEXEC)).map(drop)
}

/// A readable directory, never through a symlink.
const DIR_NOFOLLOW: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// Opens the parent of the directory `fd` (to resume a directory whose fd was closed to keep
/// the number of open fds bounded). The caller checks the result is the directory it left.
pub fn open_parent(fd: BorrowedFd) -> Result<OwnedFd, Errno> {
    fcntl::openat(fd, c"..", DIR_NOFOLLOW, Mode::empty())
}

/// Opens the sweep's root directory one component at a time from `/`, following no symlink
/// anywhere on the way (ELOOP) — not even a trailing-slash one, since components carry none.
/// The caller has refused `..` already, so the path opened is exactly the path checked.
pub fn open_root(path: &Path) -> Result<OwnedFd, Errno> {
    let mut fd = fcntl::open("/", DIR_NOFOLLOW, Mode::empty())?;
    for c in path.components() {
        if let Component::Normal(name) = c {
            fd = fcntl::openat(&fd, name, DIR_NOFOLLOW, Mode::empty())?;
        }
    }
    Ok(fd)
}

/// Whether the real uid and groups may create entries in the directory `path` (access(2) with
/// `W_OK` and `X_OK`).
pub fn writable(path: &Path) -> Result<(), Errno> {
    unistd::access(path, unistd::AccessFlags::W_OK | unistd::AccessFlags::X_OK)
}

/// Whether the real uid may reach the directory `path` by its path (access(2) with `X_OK`, which
/// checks every component on the way).
pub fn reachable(path: &Path) -> Result<(), Errno> {
    unistd::access(path, unistd::AccessFlags::X_OK)
}

/// Opens the child directory `name` of `dir`, never through a symlink.
pub fn open_dir_at(dir: BorrowedFd, name: &OsStr) -> Result<OwnedFd, Errno> {
    fcntl::openat(dir, name, DIR_NOFOLLOW, Mode::empty())
}

/// Opens the directory `name` in `dir` as [`open_dir_at`] does, asking the kernel to leave its
/// access time alone when it is read (`O_NOATIME`: allowed to its owner and to root); where
/// that is refused (EPERM: neither), opens it plainly. For walks that promise to change nothing.
pub fn open_dir_at_noatime(dir: BorrowedFd, name: &OsStr) -> Result<OwnedFd, Errno> {
    match fcntl::openat(dir, name, DIR_NOFOLLOW | OFlag::O_NOATIME, Mode::empty()) {
        Err(Errno::EPERM) => open_dir_at(dir, name),
        r => r,
    }
}

/// Creates the directory `name` in `dir` (mode masked by the umask; see [`chmod_fd`]).
pub fn mkdir_at(dir: BorrowedFd, name: &OsStr, mode: u32) -> Result<(), Errno> {
    nix::sys::stat::mkdirat(dir, name, Mode::from_bits_truncate(mode))
}

/// Sets the mode of the inode `fd` refers to.
pub fn chmod_fd(fd: BorrowedFd, mode: u32) -> Result<(), Errno> {
    nix::sys::stat::fchmod(fd, Mode::from_bits_truncate(mode))
}

/// Changes owner and/or group of the inode `fd` refers to (a symlink itself, for an `O_PATH`
/// handle opened with `O_NOFOLLOW`), without resolving any path.
pub fn chown_fd(fd: BorrowedFd, uid: Option<u32>, gid: Option<u32>) -> Result<(), Errno> {
    unistd::fchownat(
        fd,
        c"",
        uid.map(Uid::from_raw),
        gid.map(Gid::from_raw),
        fcntl::AtFlags::AT_EMPTY_PATH,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn fdinfo_is_read_by_its_exact_key() {
        let text = "pos:\t0\nflags:\t02100000\nmnt_id:\t42\nino:\t7\n";
        assert_eq!(fdinfo_field(text, "mnt_id"), Some(42));
        assert_eq!(fdinfo_field(text, "ino"), Some(7));
        assert_eq!(fdinfo_field("mnt_id_x:\t1\n", "mnt_id"), None);
        assert_eq!(fdinfo_field("mnt_id:\tx\n", "mnt_id"), None);
        assert_eq!(fdinfo_field("", "mnt_id"), None);
    }

    /// Every source names the same mount for the same inode, so a sweep may mix them (statx
    /// for one entry, a file handle for another after a seccomp answer changed) and still
    /// compare like with like.
    #[test]
    fn every_source_of_mount_ids_agrees() {
        let tmp = crate::testing::TempDir::new("mntid");
        std::fs::write(tmp.path().join("f"), "").unwrap();
        let dir: OwnedFd = std::fs::File::open(tmp.path()).unwrap().into();
        let (from_statx, ids) = mount_id_of(dir.as_fd()).unwrap();
        let by_handle = handle_mount_id(dir.as_fd(), c"", libc::AT_EMPTY_PATH).unwrap();
        let by_fdinfo = fdinfo_mount_id(dir.as_fd()).unwrap();
        assert_eq!((by_handle, by_fdinfo), (from_statx, from_statx), "{ids:?}");
        let child = mount_id(dir.as_fd(), c"f", 0).unwrap();
        assert_eq!(child, (from_statx, MountIds::Handle));
        assert_eq!(stat_at(dir.as_fd(), c"f").unwrap().mnt_id, from_statx);
        // fstatat and statx describe an inode alike.
        let a = raw_statx(dir.as_fd(), c"f", libc::AT_SYMLINK_NOFOLLOW)
            .unwrap()
            .0;
        let b = fstatat(dir.as_fd(), c"f", libc::AT_SYMLINK_NOFOLLOW).unwrap();
        assert_eq!(a, b);
    }
}
