//! Creating a missing `$HERMES_HOME` at boot (`docker run -e HERMES_HOME=/home/hermes/.hermes`).
//!
//! Only a path the sweep itself would accept is created, and only by root, one component at a
//! time from `/`: each existing component is opened with `O_NOFOLLOW`, each missing one is made
//! with mkdirat relative to its parent's fd and opened the same way, so no symlink on the way,
//! planted earlier or swapped in meanwhile, is ever followed. Missing parents are root's, mode
//! 0755 (above the home, nobody else may write). The home itself belongs to the hermes user
//! with mode 0700: it holds API keys and credentials, and no other user needs to enter it (the
//! image's `useradd` would make 0755 under Debian's umask; 0700 is the safer of the two the
//! issue allows, and the user can widen it).

use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;

use crate::escape::shown;
use crate::sys::fs;

const PARENT_MODE: u32 = 0o755;
const HOME_MODE: u32 = 0o700;

/// Why a missing home was not created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HomeError {
    /// A call failed: on `what` (a component's name, or `/`), or `what` is the call (`fchmod`,
    /// `fchown`).
    Call {
        root: PathBuf,
        what: String,
        errno: Errno,
    },
    /// The component `at` is a symlink or not a directory.
    NotADirectory {
        root: PathBuf,
        at: PathBuf,
        errno: Errno,
    },
}

impl fmt::Display for HomeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HomeError::Call { root, what, errno } => {
                write!(f, "cannot create {}: {what}: {errno}", shown(root))
            }
            HomeError::NotADirectory { root, at, errno } => write!(
                f,
                "not creating {}: {} is a symlink or not a directory ({errno}); nothing is created through one",
                shown(root),
                shown(at)
            ),
        }
    }
}

/// Creates `root` (already accepted by [`crate::fix::refuse_root`]) and any missing parent;
/// returns false when it already existed.
pub fn create(root: &Path, uid: u32, gid: u32) -> Result<bool, HomeError> {
    let fail = |what: &str, errno: Errno| HomeError::Call {
        root: root.to_path_buf(),
        what: what.to_string(),
        errno,
    };
    let names: Vec<_> = root
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    let mut dir: OwnedFd = fs::open_root(Path::new("/")).map_err(|e| fail("/", e))?;
    let mut created = false;
    for (i, name) in names.iter().enumerate() {
        let last = i + 1 == names.len();
        let next = match fs::open_dir_at(dir.as_fd(), name) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => {
                let mode = if last { HOME_MODE } else { PARENT_MODE };
                match fs::mkdir_at(dir.as_fd(), name, mode) {
                    // Made by someone else meanwhile: opened below like any existing component.
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(fail(&name.to_string_lossy(), e)),
                }
                let fd = fs::open_dir_at(dir.as_fd(), name)
                    .map_err(|e| fail(&name.to_string_lossy(), e))?;
                // The umask must not decide the mode; the owner is root's unless it is the home.
                fs::chmod_fd(fd.as_fd(), mode).map_err(|e| fail("fchmod", e))?;
                if last {
                    fs::chown_fd(fd.as_fd(), Some(uid), Some(gid))
                        .map_err(|e| fail("fchown", e))?;
                }
                created = true;
                fd
            }
            Err(errno @ (Errno::ELOOP | Errno::ENOTDIR)) => {
                return Err(HomeError::NotADirectory {
                    root: root.to_path_buf(),
                    at: Path::new("/").join(names[..=i].iter().collect::<PathBuf>()),
                    errno,
                });
            }
            Err(e) => return Err(fail(&name.to_string_lossy(), e)),
        };
        dir = next;
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_the_home_the_component_and_the_errno() {
        let call = HomeError::Call {
            root: "/home/hermes/.hermes".into(),
            what: "fchown".into(),
            errno: Errno::EPERM,
        };
        assert_eq!(
            call.to_string(),
            "cannot create /home/hermes/.hermes: fchown: EPERM: Operation not permitted"
        );
        let link = HomeError::NotADirectory {
            root: "/home/hermes/.hermes".into(),
            at: "/home".into(),
            errno: Errno::ENOTDIR,
        };
        assert_eq!(
            link.to_string(),
            "not creating /home/hermes/.hermes: /home is a symlink or not a directory (ENOTDIR: Not a directory); nothing is created through one"
        );
    }
}
