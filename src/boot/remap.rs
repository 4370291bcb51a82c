//! The boot-time uid/gid remap the upstream image offers (`HERMES_UID`/`PUID`,
//! `HERMES_GID`/`PGID`), so that files in a host bind mount can belong to the host user.
//!
//! The remap rewrites the hermes user's line in /etc/passwd and, when its primary group is
//! private to it, that group's line in /etc/group; nothing else. A uid another user holds is
//! refused, and so is any remap of an account of root's. Accounts end fully remapped or
//! unchanged ([`crate::etcfile`]). The old ids are recorded in /etc/hermes-shim-remap before
//! any file changes and forgotten only after a sweep that fixed everything, so a start
//! interrupted halfway is finished by the next one. Planning is pure and unit-tested.

use std::fmt;
use std::path::Path;

use nix::errno::Errno;

use crate::etcfile::{self, Leftover, Staged, Tag};
use crate::fix::{Previous, PreviousError};
use crate::settings::{SettingError, Settings};
use crate::sys;
use crate::users::{GROUP, LowGids, PASSWD, UserError, UserSpec};

/// The old ids of a remap whose sweep has not finished yet.
mod plan;

use plan::{plan, still_pending};

const MARKER: &str = "/etc/hermes-shim-remap";

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
    /// A gid [`users::gid_use`] refuses, asked for as the user's group (named as
    /// [`users::system_gid_name`] does).
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

/// The ids a remap moved away from, while its sweep has not finished (see the module doc).
fn pending() -> Result<Previous, RemapError> {
    match std::fs::read_to_string(MARKER) {
        Ok(text) => Previous::parse(text.trim()).map_err(RemapError::Marker),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Previous::default()),
        Err(e) => Err(RemapError::Read {
            path: MARKER,
            errno: sys::errno_of(&e),
        }),
    }
}

/// Records `previous` as the remap in progress (or records none).
fn set_marker(previous: Previous) -> std::io::Result<()> {
    if previous == Previous::default() {
        return match std::fs::remove_file(MARKER) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    Staged::new(Path::new(MARKER), &previous.spec(), Tag::New)?.commit()
}

/// Removes what a start killed while staging a change to /etc left there, and says what it
/// found (see [`etcfile::remove_leftovers`]): otherwise such a file stays for good, since only
/// a later change of that very file would stage (and so clear) that name again.
pub fn clear_leftovers(prefix: &str) {
    for found in
        etcfile::remove_leftovers(&[Path::new(PASSWD), Path::new(GROUP), Path::new(MARKER)])
    {
        match found {
            Leftover::Removed(path) => say!(
                "{prefix}: removed {}, left behind by a start that was cut short",
                path.display()
            ),
            Leftover::Kept { path, what } => say!(
                "{prefix}: WARNING: {} is {what}, which this tool never stages; left alone — remove it if nothing needs it",
                path.display()
            ),
            Leftover::NoDir { dir, errno } => say!(
                "{prefix}: cannot look for what a start cut short left in {}: {errno}",
                dir.display()
            ),
            Leftover::Failed { path, errno } => say!(
                "{prefix}: cannot remove {}, left behind by a start that was cut short: {errno}",
                path.display()
            ),
        }
    }
}

/// Forgets the recorded remap: its sweep fixed everything.
pub fn forget(prefix: &str) {
    if let Err(e) = std::fs::remove_file(MARKER)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        say!("{prefix}: cannot remove {MARKER}: {e}");
    }
}

/// The hermes user's name, for a remap.
fn user_name(settings: &Settings) -> Result<String, RemapError> {
    match settings.user.clone().map_err(RemapError::BadUser)? {
        UserSpec::Name(n) => Ok(n),
        spec @ UserSpec::Ids { .. } => Err(RemapError::NumericUser(spec)),
    }
}

fn read(path: &'static str) -> Result<String, RemapError> {
    std::fs::read_to_string(path).map_err(|e| RemapError::Read {
        path,
        errno: sys::errno_of(&e),
    })
}

/// The recorded remap, as far as it still describes the past (see [`still_pending`]).
pub fn recorded(settings: &Settings) -> Result<Previous, RemapError> {
    let pending = pending()?;
    // Nothing recorded needs no user: a numeric HERMES_SHIM_USER with no remap asked for is
    // no remap refused.
    if pending == Previous::default() {
        return Ok(pending);
    }
    Ok(still_pending(
        pending,
        &read(PASSWD)?,
        &read(GROUP)?,
        &user_name(settings)?,
    ))
}

/// Applies the remap the settings ask for; returns the ids the user's files move from (this
/// remap's, merged with a pending one's). Accounts end either fully remapped or unchanged.
pub fn remap(settings: &Settings) -> Result<Previous, RemapError> {
    let req = settings.remap.clone().map_err(RemapError::Setting)?;
    let pending = recorded(settings)?;
    let Some(req) = req else {
        return Ok(pending);
    };
    let user = user_name(settings)?;
    let (passwd_text, group_text) = (read(PASSWD)?, read(GROUP)?);
    let low = LowGids::of_container(Some(&settings.home));
    let Some(plan) = plan(&passwd_text, &group_text, &user, req, &low)? else {
        return Ok(pending);
    };
    if let Some(refused) = &plan.refused_gid {
        say!(
            "hermes-shim boot: WARNING: {refused}; remapping the uid alone: user '{user}' keeps gid {}",
            plan.old.1
        );
    }
    let previous = Previous {
        uid: pending.uid.or(plan.previous.uid),
        gid: pending.gid.or(plan.previous.gid),
    };
    let why = |path, why| RemapError::File {
        user: user.clone(),
        path,
        why,
    };
    let io = |path| move |e: std::io::Error| why(path, FileError::Io(sys::errno_of(&e)));
    // Everything that can fail for want of space or permission happens here, before any file
    // changes: the new files (and the group's undo) are written and synced beside the old ones.
    for (path, text) in [(PASSWD, &plan.passwd), (GROUP, &plan.group)] {
        if text.is_some() && etcfile::is_mount_point(Path::new(path)).unwrap_or(false) {
            return Err(why(path, FileError::MountPoint));
        }
    }
    let stage = |path: &'static str, text: Option<&str>, tag: Tag| {
        text.map(|t| Staged::new(Path::new(path), t, tag))
            .transpose()
            .map_err(io(path))
    };
    let new_passwd = stage(PASSWD, plan.passwd.as_deref(), Tag::New)?;
    let new_group = stage(GROUP, plan.group.as_deref(), Tag::New)?;
    let undo_group = stage(
        GROUP,
        plan.group.as_ref().map(|_| group_text.as_str()),
        Tag::Old,
    )?;
    // The marker first, then the group, then the user: a start cut short anywhere leaves a state
    // the next one completes (see `still_pending`).
    set_marker(previous).map_err(io(MARKER))?;
    let fail = |path, e: std::io::Error| {
        let _ = set_marker(pending);
        io(path)(e)
    };
    if let Some(g) = new_group {
        g.commit().map_err(|e| fail(GROUP, e))?;
    }
    if let Some(p) = new_passwd
        && let Err(e) = p.commit()
    {
        if let Some(undo) = undo_group {
            let _ = undo.commit();
        }
        return Err(fail(PASSWD, e));
    }
    say!(
        "hermes-shim boot: remapped user '{user}' from {}:{} to {}:{}; its files move with it",
        plan.old.0,
        plan.old.1,
        plan.new.0,
        plan.new.1
    );
    Ok(previous)
}
