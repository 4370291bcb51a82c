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
use crate::policy::{Previous, PreviousError};
use crate::settings::{Request, SettingError, Settings};
use crate::sys;
use crate::users::{self, GROUP, GidUse, LowGids, PASSWD, UserError, UserSpec};

/// The old ids of a remap whose sweep has not finished yet.
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

/// A remap to carry out: the new file contents (`None`: unchanged) and the ids the user's files
/// move from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub old: (u32, u32),
    pub new: (u32, u32),
    pub passwd: Option<String>,
    pub group: Option<String>,
    pub previous: Previous,
    /// The gid asked for, refused: the uid is remapped alone, the user keeps its gid.
    pub refused_gid: Option<RemapError>,
}

/// Plans the remap of `user`; `None` when its ids already are the ones asked for.
///
/// The gid works as `usermod -g` and `groupmod -g` would together: a gid some group already
/// has makes the user a member of that group by primary gid; a free gid renumbers the user's
/// primary group when that group is private to it (useradd's own group), else only the user's
/// line changes. Files move from the old gid only when the old group was private: a shared
/// group's files are not the user's alone.
pub fn plan(
    passwd: &str,
    group: &str,
    user: &str,
    req: Request,
    low: &LowGids,
) -> Result<Option<Plan>, RemapError> {
    let me = users::passwd_entries(passwd)
        .find(|u| u.name == user)
        .ok_or_else(|| RemapError::UnknownUser(user.to_string()))?;
    if me.uid == 0 || me.gid == 0 {
        return Err(RemapError::RootAccount {
            user: user.to_string(),
            uid: me.uid,
            gid: me.gid,
        });
    }
    let old = (me.uid, me.gid);
    let mut new = (req.uid.unwrap_or(me.uid), req.gid.unwrap_or(me.gid));
    // Gid 0 never gets here: the settings take ids from 1. A refused gid does not throw away a
    // valid uid (PUID=501 PGID=20 from a Mac, where 20 grants something here): the uid is
    // remapped alone and the user keeps its gid; only a request for the gid alone is refused.
    let mut refused_gid = None;
    // Files the user made before, or makes after, are its own whichever uid it has.
    low.owned_by(old.0);
    low.owned_by(new.0);
    if new.1 != old.1 && users::gid_use(new.1, low) == GidUse::System {
        let refused = RemapError::SystemGid {
            gid: new.1,
            name: users::system_gid_name(new.1, group, low),
        };
        if new.0 == old.0 {
            return Err(refused);
        }
        refused_gid = Some(refused);
        new.1 = old.1;
    }
    if new == old {
        return Ok(None);
    }
    if let Some(other) = users::passwd_entries(passwd).find(|u| u.uid == new.0 && u.name != user) {
        return Err(RemapError::UidTaken {
            uid: new.0,
            owner: other.name.to_string(),
        });
    }
    let shared = users::passwd_entries(passwd).any(|u| u.gid == old.1 && u.name != user);
    let private_group = users::group_entries(group)
        .find(|g| g.gid == old.1)
        .filter(|g| !shared && g.members().all(|m| m == user));
    let gid_taken = users::group_entries(group).any(|g| g.gid == new.1);
    let mut fields = Vec::new();
    if new.0 != old.0 {
        fields.push((2, new.0));
    }
    let mut group_text = None;
    if new.1 != old.1 {
        fields.push((3, new.1));
        if let Some(g) = private_group.as_ref().filter(|_| !gid_taken) {
            group_text = Some(users::with_field(group, &g.span, 2, &new.1.to_string()));
        }
    }
    // Both fields in one edit: the line's span is the original text's, and a uid with fewer
    // digits than the old one would leave it pointing past the edited line.
    let values: Vec<(usize, String)> = fields.iter().map(|(i, id)| (*i, id.to_string())).collect();
    let passwd_text = users::with_fields(passwd, &me.span, &values);
    Ok(Some(Plan {
        old,
        new,
        passwd: Some(passwd_text),
        group: group_text,
        previous: Previous {
            uid: (new.0 != old.0).then_some(old.0),
            gid: (new.1 != old.1 && private_group.is_some()).then_some(old.1),
        },
        refused_gid,
    }))
}

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

/// The part of a recorded remap that still describes the past: a uid nobody holds now, a gid
/// the user has left or no group holds any more (a start cut short between renumbering the
/// group and the user). What a failed or undone remap recorded (the user still has those ids,
/// its group still that gid) is dropped, so it can never block a later start.
pub fn still_pending(recorded: Previous, passwd: &str, group: &str, user: &str) -> Previous {
    let current_gid = users::passwd_entries(passwd)
        .find(|u| u.name == user)
        .map(|u| u.gid);
    Previous {
        uid: recorded
            .uid
            .filter(|uid| !users::passwd_entries(passwd).any(|u| u.uid == *uid)),
        gid: recorded.gid.filter(|gid| {
            current_gid != Some(*gid) || !users::group_entries(group).any(|g| g.gid == *gid)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan with the unit tests' evidence ([`users::test_low`]).
    fn plan(
        passwd: &str,
        group: &str,
        user: &str,
        req: Request,
    ) -> Result<Option<Plan>, RemapError> {
        super::plan(passwd, group, user, req, &users::test_low())
    }

    const PASSWD_TEXT: &str = "root:x:0:0:root:/root:/bin/bash\n# hermes:x:1:1::/:/bin/sh\nhermes:x:bad:1::/:/bin/sh\nhermes:x:10000:10000::/opt/data:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n";
    const GROUP_TEXT: &str = "root:x:0:\nhermes:x:10000:\nalice:x:1000:\ndocker:x:990:hermes\n";

    fn req(uid: Option<u32>, gid: Option<u32>) -> Request {
        Request { uid, gid }
    }

    #[test]
    fn plans_touch_only_the_users_lines() {
        let p = plan(
            PASSWD_TEXT,
            GROUP_TEXT,
            "hermes",
            req(Some(2000), Some(2001)),
        )
        .unwrap()
        .unwrap();
        assert_eq!((p.old, p.new), ((10000, 10000), (2000, 2001)));
        assert_eq!(
            p.passwd.unwrap(),
            PASSWD_TEXT.replace("hermes:x:10000:10000:", "hermes:x:2000:2001:")
        );
        assert_eq!(
            p.group.unwrap(),
            GROUP_TEXT.replace("hermes:x:10000:", "hermes:x:2001:")
        );
        assert_eq!(
            p.previous,
            Previous {
                uid: Some(10000),
                gid: Some(10000)
            }
        );
        let uid_only = plan(PASSWD_TEXT, GROUP_TEXT, "hermes", req(Some(2000), None))
            .unwrap()
            .unwrap();
        assert_eq!(uid_only.new, (2000, 10000));
        assert_eq!(uid_only.group, None);
        assert_eq!(
            uid_only.previous,
            Previous {
                uid: Some(10000),
                gid: None
            }
        );
    }

    #[test]
    fn a_gid_some_group_has_is_joined_not_renumbered() {
        // PGID=100 on a NAS: the user joins `users` by primary gid; its private group stays.
        let group = format!("{GROUP_TEXT}users:x:100:\n");
        let p = plan(PASSWD_TEXT, &group, "hermes", req(None, Some(100)))
            .unwrap()
            .unwrap();
        assert_eq!(
            p.passwd.unwrap(),
            PASSWD_TEXT.replace("hermes:x:10000:10000:", "hermes:x:10000:100:")
        );
        assert_eq!(p.group, None);
        assert_eq!(
            p.previous,
            Previous {
                uid: None,
                gid: Some(10000)
            },
            "the private group's files move"
        );
    }

    #[test]
    fn a_shared_primary_group_keeps_its_gid_and_its_files() {
        let passwd = "bob:x:3000:100::/home/bob:/bin/sh\ncarol:x:3002:100::/home/carol:/bin/sh\n";
        let group = "users:x:100:\n";
        let p = plan(passwd, group, "bob", req(None, Some(3001)))
            .unwrap()
            .unwrap();
        assert_eq!(
            p.passwd.unwrap(),
            passwd.replace("bob:x:3000:100:", "bob:x:3000:3001:")
        );
        assert_eq!(p.group, None);
        assert_eq!(
            p.previous,
            Previous::default(),
            "a shared group's files are not bob's alone"
        );
        let members = "users:x:100:bob,dave\n";
        let alone = "bob:x:3000:100::/home/bob:/bin/sh\n";
        let p = plan(alone, members, "bob", req(None, Some(3001)))
            .unwrap()
            .unwrap();
        assert_eq!(p.group, None, "a group with other members is shared too");
        let itself = "users:x:100:bob\n";
        let p = plan(alone, itself, "bob", req(None, Some(3001)))
            .unwrap()
            .unwrap();
        assert_eq!(
            p.group.as_deref(),
            Some("users:x:3001:bob\n"),
            "a group listing only its own user is still private"
        );
    }

    #[test]
    fn nothing_to_do_and_refusals() {
        let p = |uid, gid| plan(PASSWD_TEXT, GROUP_TEXT, "hermes", req(uid, gid));
        assert_eq!(p(Some(10000), Some(10000)), Ok(None));
        assert_eq!(
            p(Some(1000), None),
            Err(RemapError::UidTaken {
                uid: 1000,
                owner: "alice".into()
            }),
            "uid taken"
        );
        assert!(plan(PASSWD_TEXT, GROUP_TEXT, "nosuch", req(Some(5), None)).is_err());
        // PGID=5 would make hermes's own group tty (writing root's terminals), 42 shadow.
        let tty = format!("{GROUP_TEXT}tty:x:5:\n");
        let refused = plan(PASSWD_TEXT, &tty, "hermes", req(None, Some(5)));
        assert_eq!(
            refused,
            Err(RemapError::SystemGid {
                gid: 5,
                name: "gid 5, the system group 'tty' (the group of every terminal in /dev/pts)"
                    .into()
            })
        );
        assert_eq!(
            refused.unwrap_err().to_string(),
            "gid 5 is the system group 'tty' (the group of every terminal in /dev/pts), which grants far more than the user's own files — pick a gid of 100 or above, or one that owns nothing outside HERMES_HOME"
        );
        assert_eq!(
            p(None, Some(42)),
            Err(RemapError::SystemGid {
                gid: 42,
                name: "gid 42, a system gid (owner of /etc/shadow with group access)".into()
            }),
            "refused whether or not the image names the gid"
        );
        assert!(p(None, Some(100)).is_ok(), "100 (users) is no system group");
        assert!(p(None, Some(99)).is_err());
        // A gid below 100 that grants nothing here is given (a Mac's staff, 20).
        assert_eq!(p(None, Some(20)).unwrap().unwrap().new, (10000, 20));
    }

    #[test]
    fn a_shorter_uid_and_a_new_gid_on_the_last_line() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nhermes:x:10000:10000::/opt/data:/bin/sh\n";
        let p = plan(passwd, GROUP_TEXT, "hermes", req(Some(501), Some(20)))
            .unwrap()
            .unwrap();
        assert_eq!(
            p.passwd.unwrap(),
            "root:x:0:0:root:/root:/bin/sh\nhermes:x:501:20::/opt/data:/bin/sh\n"
        );
    }

    #[test]
    fn a_refused_gid_keeps_the_uid_remap_with_the_users_old_gid() {
        let p = plan(PASSWD_TEXT, GROUP_TEXT, "hermes", req(Some(501), Some(42)))
            .unwrap()
            .unwrap();
        assert_eq!((p.old, p.new), ((10000, 10000), (501, 10000)));
        assert_eq!(
            p.passwd.unwrap(),
            PASSWD_TEXT.replace("hermes:x:10000:10000:", "hermes:x:501:10000:")
        );
        assert_eq!(p.group, None, "the group is left as it is");
        assert_eq!(
            p.previous,
            Previous {
                uid: Some(10000),
                gid: None
            }
        );
        assert!(matches!(
            p.refused_gid,
            Some(RemapError::SystemGid { gid: 42, .. })
        ));
        let granted = plan(PASSWD_TEXT, GROUP_TEXT, "hermes", req(Some(501), Some(20)))
            .unwrap()
            .unwrap();
        assert_eq!((granted.new, granted.refused_gid), ((501, 20), None));
    }

    #[test]
    fn an_account_of_roots_is_never_remapped() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nhalf:x:3000:0::/:/bin/sh\n";
        let group = "root:x:0:\n";
        for user in ["root", "half"] {
            let err = plan(passwd, group, user, req(Some(2000), Some(2001))).unwrap_err();
            assert!(
                matches!(err, RemapError::RootAccount { .. }),
                "{user}: {err}"
            );
            assert!(err.to_string().contains("never remapped"), "{user}: {err}");
        }
    }

    #[test]
    fn a_record_of_ids_the_user_still_has_is_not_pending() {
        let recorded = Previous {
            uid: Some(10000),
            gid: Some(10000),
        };
        let (p, g) = (PASSWD_TEXT, GROUP_TEXT);
        // The remap failed or was undone: the user still has the old ids.
        assert_eq!(still_pending(recorded, p, g, "hermes"), Previous::default());
        // It happened: nobody holds the old uid, and the user has another gid.
        let after = p.replace("hermes:x:10000:10000:", "hermes:x:2000:2001:");
        let renumbered = g.replace("hermes:x:10000:", "hermes:x:2001:");
        assert_eq!(
            still_pending(recorded, &after, &renumbered, "hermes"),
            recorded
        );
        // Only the gid moved (PGID joined `users`): the old uid is still the user's.
        let gid_only = p.replace("hermes:x:10000:10000:", "hermes:x:10000:100:");
        assert_eq!(
            still_pending(recorded, &gid_only, g, "hermes"),
            Previous {
                uid: None,
                gid: Some(10000)
            }
        );
        // Cut short after the group was renumbered, before the user: the old gid is no group's.
        assert_eq!(
            still_pending(recorded, p, &renumbered, "hermes"),
            Previous {
                uid: None,
                gid: Some(10000)
            }
        );
        // Someone else took the old uid meanwhile: its files are that user's now.
        let taken = format!("{after}bob:x:10000:10000::/:/bin/sh\n");
        assert_eq!(still_pending(recorded, &taken, g, "hermes").uid, None);
    }

    #[test]
    fn line_endings_and_other_lines_are_kept() {
        let passwd = "root:x:0:0::/root:/bin/sh\r\nhermes:x:10000:10000::/opt/data:/bin/sh";
        let p = plan(passwd, "hermes:x:10000:", "hermes", req(Some(7), None))
            .unwrap()
            .unwrap();
        assert_eq!(
            p.passwd.unwrap(),
            "root:x:0:0::/root:/bin/sh\r\nhermes:x:7:10000::/opt/data:/bin/sh"
        );
    }
}
