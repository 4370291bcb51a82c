//! Why a sweep refuses to start: one type for every refusal, each shown as one line naming the
//! problem and the remedy. Nothing has changed when one is returned.

use std::fmt;
use std::path::PathBuf;

use nix::errno::Errno;

use crate::escape::shown;
use crate::settings::ExcludeError;

use super::roots::RootRefusal;
use super::rule::PreviousError;
use crate::settings::SettingError;
use crate::users::UserError;

/// A refusal to sweep.
#[derive(Debug)]
pub enum Refusal {
    /// The root's path is not one a sweep may start at.
    Root(RootRefusal),
    /// Not running as root: chown is impossible.
    NotRoot {
        root: PathBuf,
        euid: u32,
    },
    /// The root does not exist, or cannot be looked at.
    Unusable {
        root: PathBuf,
        errno: Errno,
    },
    NotADirectory(PathBuf),
    /// `--user` or `HERMES_SHIM_USER` is not a spec.
    BadUser(UserError),
    /// The target user cannot be used (unknown, uid or gid 0, unreadable passwd).
    Target(UserError),
    AlsoFrom(PreviousError),
    /// `--also-from` names a uid that a current user holds.
    PreviousHeld {
        uid: u32,
        owner: String,
    },
    Exclude(ExcludeError),
    Setting(SettingError),
    /// The root is or passes through a symlink (`real`: where it leads, if it resolves).
    Symlink {
        root: PathBuf,
        real: Option<PathBuf>,
    },
    Open {
        root: PathBuf,
        errno: Errno,
    },
    Stat {
        root: PathBuf,
        errno: Errno,
    },
    /// `--walk openat2` where openat2 cannot be used.
    NoOpenat2(Errno),
    /// No way to learn mount ids here, so bind mounts of the root's filesystem would be entered.
    NoMountIds {
        root: PathBuf,
        errno: Errno,
    },
    /// An ancestor of the root can be written by the target user, who could swap another
    /// directory in under the root's name.
    WritableAncestor {
        root: PathBuf,
        ancestor: PathBuf,
        uid: u32,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Root(r) => write!(f, "{r}"),
            Refusal::NotRoot { root, euid } => write!(
                f,
                "{}: must run as root to change owners (uid {euid} cannot chown; in a `--user` container run `docker exec -u 0 CONTAINER hermes-shim fix-ownership`)",
                shown(root)
            ),
            Refusal::Unusable { root, errno } => write!(
                f,
                "{}: cannot use it (give the Hermes data directory, e.g. /opt/data): {errno}",
                shown(root)
            ),
            Refusal::NotADirectory(root) => write!(
                f,
                "{}: not a directory — give the Hermes data directory",
                shown(root)
            ),
            Refusal::BadUser(e) => write!(f, "{e} — pass --user NAME or UID:GID"),
            Refusal::Target(e) => {
                write!(f, "{e} — pass --user NAME or UID:GID of the hermes user")
            }
            Refusal::AlsoFrom(e) => write!(f, "{e}"),
            Refusal::PreviousHeld { uid, owner } => write!(
                f,
                "--also-from: uid {uid} still belongs to user '{owner}'; its files are not the hermes user's to take"
            ),
            Refusal::Exclude(e) => write!(f, "{e}"),
            Refusal::Setting(e) => write!(f, "{e}"),
            Refusal::Symlink { root, real } => {
                write!(
                    f,
                    "{}: is or goes through a symlink; refusing to follow it — ",
                    shown(root)
                )?;
                match real {
                    Some(p) => write!(f, "run it on {} instead", shown(p)),
                    None => f.write_str("its target does not resolve"),
                }
            }
            Refusal::Open { root, errno } => {
                write!(f, "{}: cannot open it as a directory: {errno}", shown(root))
            }
            Refusal::Stat { root, errno } => write!(f, "{}: statx: {errno}", shown(root)),
            Refusal::NoOpenat2(errno) => write!(
                f,
                "openat2 is unavailable here ({errno}) — use --walk auto or --walk fallback"
            ),
            Refusal::NoMountIds { root, errno } => write!(
                f,
                "{}: cannot tell mounts apart here (no mount id from statx, name_to_handle_at or /proc/self/fdinfo: {errno}), so a bind mount inside it could be re-owned — mount /proc in the container",
                shown(root)
            ),
            Refusal::WritableAncestor {
                root,
                ancestor,
                uid,
            } => write!(
                f,
                "{}: {} above it can be written by uid {uid}, who could rename another directory in under this name — sweep a directory whose parents only root can change (mount the data volume there)",
                shown(root),
                shown(ancestor)
            ),
        }
    }
}

impl std::error::Error for Refusal {}
