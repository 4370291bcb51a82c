//! A worker's stack of directories, with a window of open fds: only the deepest
//! [`OPEN_FRAMES`] frames keep their directory open; shallower ones keep just their identity and
//! getdents resume cookie, and are reopened through `..` of the child on the way back up, then
//! checked to be the very directory that was left (device and inode, same mount). If the child
//! was moved elsewhere meanwhile, that is an error and the unfinished part is left for the next
//! run, never re-resolved by path. So a tree of any depth is walked with at most
//! [`OPEN_FRAMES`] fds, and memory grows with depth only by a small record per level, up to
//! [`MAX_DEPTH`].

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;

use crate::sys::fs::{self, DirBuf, Stat};

/// Directory fds a worker keeps open at once; deeper trees reopen through `..`.
pub const OPEN_FRAMES: usize = 32;
/// Deepest level entered. Memory per worker grows with depth (a frame and a path component per
/// level), so a hostile chain is cut here and reported; real trees are nowhere near it.
pub const MAX_DEPTH: usize = 16 * 1024;

/// One directory on the stack.
struct Frame {
    /// Open while the frame is among the deepest [`OPEN_FRAMES`]; reopened through `..`.
    open: Option<(OwnedFd, DirBuf)>,
    ident: (u64, u64),
    /// getdents position after the last entry taken from this directory.
    cookie: i64,
}

/// The stack of one job: its directory at depth `base` below the root, and what lies below.
#[derive(Default)]
pub struct Frames {
    frames: Vec<Frame>,
    base: usize,
}

impl Frames {
    /// Starts a job: its directory, open, at `depth` below the root.
    pub fn start(&mut self, fd: OwnedFd, ident: (u64, u64), depth: usize) {
        self.frames.clear();
        self.base = depth;
        self.push(fd, ident);
    }

    /// The depth a child of the top directory would have.
    pub fn child_depth(&self) -> usize {
        self.base + self.frames.len()
    }

    /// Whether a child of the top directory may be entered (see [`MAX_DEPTH`]).
    pub fn may_enter(&self) -> bool {
        self.child_depth() <= MAX_DEPTH
    }

    /// Enters a directory, closing the shallowest open frame past the window.
    pub fn push(&mut self, fd: OwnedFd, ident: (u64, u64)) {
        self.frames.push(Frame {
            open: Some((fd, DirBuf::new(DirBuf::WALK))),
            ident,
            cookie: 0,
        });
        if let Some(i) = self.frames.len().checked_sub(OPEN_FRAMES + 1) {
            self.frames[i].open = None;
        }
    }

    /// The next entry of the top directory (`None` at its end or with no frame left); its name
    /// goes to `name`.
    pub fn next_entry(
        &mut self,
        name: &mut Vec<u8>,
    ) -> Option<Result<(BorrowedFd<'_>, Option<fs::Entry>), Errno>> {
        let Frame { open, cookie, .. } = self.frames.last_mut()?;
        let (fd, buf) = open.as_mut().expect("the top frame is always open");
        let fd: &OwnedFd = fd;
        Some(match buf.next(fd.as_fd(), name) {
            Ok(Some(ent)) => {
                *cookie = ent.off;
                Ok((fd.as_fd(), Some(ent)))
            }
            Ok(None) => Ok((fd.as_fd(), None)),
            Err(e) => Err(e),
        })
    }

    /// Leaves the top directory; reopens its parent through `..` if that one was closed, and
    /// checks it is the directory left (same identity, and `here(st)`: on the sweep's mount).
    /// If not, the rest of the job is dropped and the error returned, with how many directories
    /// above were left unfinished.
    pub fn pop(&mut self, here: impl Fn(&Stat) -> bool) -> Result<(), (Errno, usize)> {
        let child = self.frames.pop().expect("a frame to pop");
        let Some(parent) = self.frames.last_mut() else {
            return Ok(());
        };
        if parent.open.is_some() {
            return Ok(());
        }
        let (child_fd, _) = child.open.expect("the top frame is always open");
        let reopened = fs::open_parent(child_fd.as_fd()).and_then(|fd| {
            let st = fs::stat_fd(fd.as_fd())?;
            if st.ident() != parent.ident || !here(&st) {
                return Err(Errno::ESTALE);
            }
            fs::seek_dir(fd.as_fd(), parent.cookie)?;
            Ok(fd)
        });
        match reopened {
            Ok(fd) => {
                parent.open = Some((fd, DirBuf::new(DirBuf::WALK)));
                Ok(())
            }
            Err(e) => {
                let left = self.frames.len();
                self.frames.clear();
                Err((e, left))
            }
        }
    }

    /// How many frames hold an open fd.
    #[cfg(test)]
    fn open_count(&self) -> usize {
        self.frames.iter().filter(|f| f.open.is_some()).count()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.frames.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;
    use std::path::{Path, PathBuf};

    /// A chain dir/d/d/… `levels` deep in a fresh temporary directory (no root needed), every
    /// level pushed: the deepest [`OPEN_FRAMES`] open, the others closed.
    fn deep(tag: &str, levels: usize) -> (TempDir, Vec<PathBuf>, Frames) {
        let base = TempDir::new(tag);
        let mut dirs = vec![base.path().to_path_buf()];
        for _ in 0..levels {
            let next = dirs.last().unwrap().join("d");
            dirs.push(next);
        }
        std::fs::create_dir_all(dirs.last().unwrap()).unwrap();
        let mut f = Frames::default();
        for (i, d) in dirs.iter().enumerate() {
            let (fd, ident) = open(d);
            if i == 0 {
                f.start(fd, ident, 0);
            } else {
                f.push(fd, ident);
            }
            assert_eq!(f.open_count(), (i + 1).min(OPEN_FRAMES), "after {i} pushes");
        }
        (base, dirs, f)
    }

    fn open(p: &Path) -> (OwnedFd, (u64, u64)) {
        let fd: OwnedFd = std::fs::File::open(p).unwrap().into();
        let ident = fs::stat_fd(fd.as_fd()).unwrap().ident();
        (fd, ident)
    }

    /// Pops until the next pop has to reopen a closed parent.
    fn pop_to_the_window_edge(f: &mut Frames) {
        while f.frames[f.len() - 2].open.is_some() {
            f.pop(|_| true).unwrap();
        }
    }

    #[test]
    fn the_window_keeps_exactly_the_deepest_frames_open_and_reopens_on_the_way_up() {
        let (_base, dirs, mut f) = deep("window", OPEN_FRAMES + 8);
        assert_eq!(f.len(), dirs.len());
        // All the way back up: each closed parent is reopened through `..` and checked.
        while f.len() > 1 {
            assert_eq!(f.pop(|_| true), Ok(()));
        }
        assert_eq!(f.open_count(), 1, "the job's own directory, reopened");
    }

    #[test]
    fn a_directory_moved_elsewhere_is_not_reopened_by_path() {
        let (base, dirs, mut f) = deep("moved", OPEN_FRAMES + 2);
        pop_to_the_window_edge(&mut f);
        // Move the top directory away: its `..` is now another directory.
        std::fs::rename(&dirs[f.len() - 1], base.path().join("elsewhere")).unwrap();
        match f.pop(|_| true) {
            Err((Errno::ESTALE, left)) => assert_eq!(left, 3, "the three above it"),
            other => panic!("expected ESTALE, got {other:?}"),
        }
        assert_eq!(f.len(), 0, "the rest of the job is dropped");
    }

    #[test]
    fn a_parent_on_another_mount_is_refused() {
        let (_base, _, mut f) = deep("mount", OPEN_FRAMES + 1);
        pop_to_the_window_edge(&mut f);
        assert!(matches!(f.pop(|_| false), Err((Errno::ESTALE, _))));
    }

    #[test]
    fn the_cut_is_the_documented_one() {
        // The README promises this number; a constant that drifts from it must fail here, not
        // only in the slow root test that builds a chain past it.
        assert_eq!(MAX_DEPTH, 16_384);
    }

    #[test]
    fn the_depth_cap_bites_exactly_past_max_depth() {
        // Literal depths, so the test pins the cut itself and not whatever MAX_DEPTH says.
        let (fd, ident) = open(Path::new("/"));
        let mut f = Frames::default();
        f.start(fd, ident, 16_383);
        assert_eq!(f.child_depth(), 16_384);
        assert!(f.may_enter(), "a child at depth 16,384 is entered");
        let (fd, ident) = open(Path::new("/"));
        f.push(fd, ident);
        assert_eq!(f.child_depth(), 16_385);
        assert!(!f.may_enter(), "one deeper is not");
    }
}
