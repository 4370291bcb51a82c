//! Why a remap is refused, each reason one line with its remedy.

use std::fmt;

use nix::errno::Errno;

use crate::fix::PreviousError;
use crate::settings::SettingError;
use crate::users::{PASSWD, UserError, UserSpec};

/// The old ids of a remap whose sweep has not finished yet (named by [`RemapError::Marker`]).
pub const MARKER: &str = "/etc/hermes-shim-remap";

/// Why a remap is refused (accounts unchanged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemapError {
    /// `HERMES_UID`, `PUID`, `HERMES_GID` or `PGID` is not a usable id.
    Setting(SettingError),
    /// `HERMES_SHIM_USER` is not a spec.
    BadUser(UserError),
    /// `HERMES_SHIM_USER` is numeric: a remap rewrites a user's line, found by name.
    NumericUser(UserSpec),
    Read {
        path: &'static str,
        errno: Errno,
    },
    UnknownUser(String),
    /// The account has uid or gid 0.
    RootAccount {
        user: String,
        uid: u32,
        gid: u32,
    },
    UidTaken {
        uid: u32,
        owner: String,
    },
    /// A gid [`crate::users::gid_use`] refuses, asked for as the user's group (named as
    /// [`crate::users::system_gid_name`] does).
    SystemGid {
        gid: u32,
        name: String,
    },
    /// The marker holds no ids.
    Marker(PreviousError),
    /// A file the remap must replace cannot be.
    File {
        user: String,
        path: &'static str,
        why: FileError,
    },
}

/// Why a file of the remap cannot be replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileError {
    /// Bind-mounted into the container: rename cannot replace it.
    MountPoint,
    Io(Errno),
}

impl fmt::Display for RemapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemapError::Setting(e) => write!(f, "{e}"),
            RemapError::BadUser(e) => write!(f, "{e}"),
            RemapError::NumericUser(spec) => write!(
                f,
                "HERMES_SHIM_USER={spec} is numeric; a uid remap needs a user name"
            ),
            RemapError::Read { path, errno } => write!(f, "cannot read {path}: {errno}"),
            RemapError::UnknownUser(user) => write!(f, "user '{user}' not found in {PASSWD}"),
            RemapError::RootAccount { user, uid, gid } => write!(
                f,
                "user '{user}' has uid {uid} and gid {gid}: an account of root's is never remapped — set HERMES_SHIM_USER to the hermes user"
            ),
            RemapError::UidTaken { uid, owner } => write!(
                f,
                "uid {uid} already belongs to user '{owner}' — pick a free uid"
            ),
            RemapError::SystemGid { gid, name } => write!(
                f,
                "gid {gid} is {}, which grants far more than the user's own files — pick a gid of 100 or above, or one that owns nothing outside HERMES_HOME",
                name.strip_prefix(&format!("gid {gid}, ")).unwrap_or(name)
            ),
            RemapError::Marker(e) => write!(f, "{MARKER}: {e} — remove the file"),
            RemapError::File { user, path, why } => {
                write!(f, "cannot remap user '{user}': {path}: ")?;
                match why {
                    FileError::MountPoint => f.write_str(
                        "a mount point (bind-mounted into the container), which cannot be replaced — remap the user where that file comes from, or unset HERMES_UID/PUID and HERMES_GID/PGID",
                    )?,
                    FileError::Io(e) => write!(f, "{e}")?,
                }
                f.write_str("; accounts unchanged")
            }
        }
    }
}

impl std::error::Error for RemapError {}
