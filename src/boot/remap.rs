//! The boot-time uid/gid remap the upstream image offers (`HERMES_UID`/`PUID`,
//! `HERMES_GID`/`PGID`), so that files in a host bind mount can belong to the host user.
//!
//! The remap rewrites the hermes user's line in /etc/passwd and, when its primary group is
//! private to it, that group's line in /etc/group; nothing else. A uid another user holds is
//! refused, and so is any remap of an account of root's. Accounts end fully remapped or
//! unchanged ([`crate::etcfile`]). The old ids are recorded in /etc/hermes-shim-remap before
//! any file changes and forgotten only after a sweep that fixed everything, so a start
//! interrupted halfway is finished by the next one. Planning is pure and unit-tested.

use std::path::Path;

use crate::etcfile::{self, Leftover, Staged, Tag};
use crate::fix::Previous;
use crate::settings::Settings;
use crate::sys;
use crate::users::{GROUP, LowGids, PASSWD, UserSpec};

mod error;
mod plan;

use error::FileError;
use error::MARKER;
pub use error::RemapError;
pub use plan::plan;
use plan::still_pending;

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
