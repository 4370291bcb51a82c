//! The Docker socket's group, at boot.
//!
//! Operators bind-mount the host's Docker socket so the agent can use Docker. The socket's group
//! is the host's `docker` gid, which the container's /etc/group does not know, and operators
//! rarely pass it with `--group-add` as well (which the drop keeps, see
//! [`crate::users::container_groups`]). So at boot the hermes user is made a member of a group
//! with the socket's gid: the existing one, or `hostdocker`, created with that gid. Then the
//! main program and every `docker exec … hermes` carry it. Group 0 is never given: the shim
//! refuses targets in root's group by design, so a root-group socket only gets a warning; nor
//! is a gid below 100 that grants something here ([`crate::users::gid_use`]).
//!
//! Note what it means: whoever can use the host's Docker socket controls the host's Docker,
//! and through it the host. Mounting the socket is the operator's decision; this only makes it
//! work for the user the operator runs the agent as.

use std::fmt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use nix::errno::Errno;

use crate::etcfile::{Staged, Tag};
use crate::sys;
use crate::users::{self, GROUP, GidUse, LowGids, PASSWD};

/// Where the Docker socket is mounted (`/var/run` is a symlink to `/run` in Debian, but an
/// image may make it a directory).
const SOCKETS: [&str; 2] = ["/var/run/docker.sock", "/run/docker.sock"];
/// The name of the group created for a gid the container does not know.
const NEW_GROUP: &str = "hostdocker";

/// What boot does for a socket whose group is `gid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// The user already has that gid, as its primary group or as a member.
    Nothing,
    /// Root's group: never given, only warned about.
    RootGroup,
    /// A system gid ([`users::gid_use`]), named by [`users::system_gid_name`]: never given, only
    /// warned about.
    SystemGroup(String),
    /// /etc/group rewritten: the user joins `group` (created when `created`).
    Join {
        group: String,
        created: bool,
        text: String,
    },
}

/// Why the socket's group cannot be given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketError {
    Read {
        path: &'static str,
        errno: Errno,
    },
    UnknownUser(String),
    /// Both names a new group could have are taken (by other gids).
    NamesTaken(u32),
}

impl fmt::Display for SocketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketError::Read { path, errno } => write!(f, "cannot read {path}: {errno}"),
            SocketError::UnknownUser(user) => write!(f, "user '{user}' not found in {PASSWD}"),
            SocketError::NamesTaken(gid) => write!(
                f,
                "the names {NEW_GROUP} and {NEW_GROUP}{gid} are both taken"
            ),
        }
    }
}

/// Plans the membership for the socket group `gid` (pure: /etc/passwd and /etc/group text in).
pub fn plan(
    passwd: &str,
    group: &str,
    user: &str,
    gid: u32,
    low: &LowGids,
) -> Result<Plan, SocketError> {
    if users::gid_use(gid, low) == GidUse::Root {
        return Ok(Plan::RootGroup);
    }
    let me = users::passwd_entries(passwd)
        .find(|u| u.name == user)
        .ok_or_else(|| SocketError::UnknownUser(user.to_string()))?;
    low.owned_by(me.uid);
    if me.gid == gid
        || users::group_entries(group).any(|g| g.gid == gid && g.members().any(|m| m == user))
    {
        return Ok(Plan::Nothing);
    }
    if users::gid_use(gid, low) == GidUse::System {
        return Ok(Plan::SystemGroup(users::system_gid_name(gid, group, low)));
    }
    if let Some(g) = users::group_entries(group).find(|g| g.gid == gid) {
        let members = if g.member_list.trim().is_empty() {
            user.to_string()
        } else {
            format!("{},{user}", g.member_list)
        };
        return Ok(Plan::Join {
            group: g.name.to_string(),
            created: false,
            text: users::with_field(group, &g.span, 3, &members),
        });
    }
    let taken = |n: &str| users::group_entries(group).any(|g| g.name == n);
    let name = [NEW_GROUP.to_string(), format!("{NEW_GROUP}{gid}")]
        .into_iter()
        .find(|n| !taken(n))
        .ok_or(SocketError::NamesTaken(gid))?;
    Ok(Plan::Join {
        text: users::with_line(group, &format!("{name}:x:{gid}:{user}")),
        group: name,
        created: true,
    })
}

/// The group of the Docker socket, if one is mounted.
pub fn socket_gid() -> Option<u32> {
    SOCKETS.iter().find_map(|p| {
        std::fs::symlink_metadata(Path::new(p))
            .ok()
            .filter(|m| m.file_type().is_socket())
            .map(|m| m.gid())
    })
}

/// Gives `user` the Docker socket's group, if a socket is mounted; says what it did.
pub fn grant(prefix: &str, user: &str, low: &LowGids) {
    let Some(gid) = socket_gid() else {
        return;
    };
    let read = |path: &'static str| {
        std::fs::read_to_string(path).map_err(|e| SocketError::Read {
            path,
            errno: sys::errno_of(&e),
        })
    };
    let planned = read(PASSWD)
        .and_then(|passwd| Ok((passwd, read(GROUP)?)))
        .and_then(|(passwd, group)| plan(&passwd, &group, user, gid, low));
    match planned {
        Ok(Plan::Nothing) => {}
        Ok(Plan::RootGroup) => say!(
            "{prefix}: WARNING: the Docker socket belongs to group 0, which '{user}' is never given — give the socket a non-root group on the host (e.g. chgrp docker /var/run/docker.sock) and restart the container"
        ),
        Ok(Plan::SystemGroup(name)) => say!(
            "{prefix}: WARNING: the Docker socket belongs to {name}, which '{user}' is never given (it grants far more than the socket) — give the socket the host's docker group (gid 100 or above) and restart the container"
        ),
        Ok(Plan::Join {
            group,
            created,
            text,
        }) => {
            let done = Staged::new(Path::new(GROUP), &text, Tag::New).and_then(Staged::commit);
            match (done, created) {
                (Ok(()), true) => say!(
                    "{prefix}: created group '{group}' (gid {gid}, the Docker socket's) with member '{user}'"
                ),
                (Ok(()), false) => say!(
                    "{prefix}: added '{user}' to group '{group}' (gid {gid}, the Docker socket's)"
                ),
                (Err(e), _) => say!(
                    "{prefix}: cannot give '{user}' the Docker socket's group {gid}: {GROUP}: {e}"
                ),
            }
        }
        Err(e) => say!("{prefix}: cannot give '{user}' the Docker socket's group {gid}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_user_and_taken_names_are_refused_by_name() {
        let e = plan(PASSWD, GROUPS, "nobody-here", 998).unwrap_err();
        assert_eq!(e, SocketError::UnknownUser("nobody-here".into()));
        assert_eq!(e.to_string(), "user 'nobody-here' not found in /etc/passwd");
        let taken = format!("{GROUPS}hostdocker:x:1:\nhostdocker998:x:2:\n");
        assert_eq!(
            plan(PASSWD, &taken, "hermes", 998),
            Err(SocketError::NamesTaken(998))
        );
        let read = SocketError::Read {
            path: GROUP,
            errno: Errno::EACCES,
        };
        assert_eq!(
            read.to_string(),
            "cannot read /etc/group: EACCES: Permission denied"
        );
    }

    /// The plan with the unit tests' evidence ([`users::test_low`]).
    fn plan(passwd: &str, group: &str, user: &str, gid: u32) -> Result<Plan, SocketError> {
        super::plan(passwd, group, user, gid, &users::test_low())
    }

    const PASSWD: &str = "root:x:0:0::/root:/bin/sh\nhermes:x:10000:10000::/opt/data:/bin/sh\n";
    const GROUPS: &str = "root:x:0:\ntty:x:5:\nshadow:x:42:\nusers:x:100:alice\nhermes:x:10000:\nstaff:x:50:\ndocker:x:990:\n";

    fn join(group: &str, created: bool, text: String) -> Plan {
        Plan::Join {
            group: group.into(),
            created,
            text,
        }
    }

    #[test]
    fn a_new_group_for_a_gid_the_container_does_not_know() {
        assert_eq!(
            plan(PASSWD, GROUPS, "hermes", 998),
            Ok(join(
                "hostdocker",
                true,
                format!("{GROUPS}hostdocker:x:998:hermes\n")
            ))
        );
        let no_newline = GROUPS.trim_end();
        assert_eq!(
            plan(PASSWD, no_newline, "hermes", 998),
            Ok(join(
                "hostdocker",
                true,
                format!("{GROUPS}hostdocker:x:998:hermes\n")
            ))
        );
        let taken = format!("{GROUPS}hostdocker:x:997:\n");
        assert_eq!(
            plan(PASSWD, &taken, "hermes", 998),
            Ok(join(
                "hostdocker998",
                true,
                format!("{taken}hostdocker998:x:998:hermes\n")
            ))
        );
    }

    #[test]
    fn an_existing_group_is_joined_keeping_its_other_members() {
        for (gid, group, line, joined) in [
            (
                100,
                "users",
                "users:x:100:alice",
                "users:x:100:alice,hermes",
            ),
            (990, "docker", "docker:x:990:", "docker:x:990:hermes"),
        ] {
            assert_eq!(
                plan(PASSWD, GROUPS, "hermes", gid),
                Ok(join(group, false, GROUPS.replace(line, joined)))
            );
        }
    }

    #[test]
    fn nothing_twice_and_never_root() {
        assert_eq!(plan(PASSWD, GROUPS, "hermes", 10000), Ok(Plan::Nothing));
        let member = GROUPS.replace("users:x:100:alice", "users:x:100:alice,hermes");
        assert_eq!(plan(PASSWD, &member, "hermes", 100), Ok(Plan::Nothing));
        let Ok(Plan::Join { text, .. }) = plan(PASSWD, GROUPS, "hermes", 998) else {
            panic!("a plan")
        };
        assert_eq!(plan(PASSWD, &text, "hermes", 998), Ok(Plan::Nothing));
        assert_eq!(plan(PASSWD, GROUPS, "hermes", 0), Ok(Plan::RootGroup));
        // System groups: tty's members write other users' terminals, shadow's read
        // /etc/shadow. Named when the image has the gid, refused either way.
        for (gid, name) in [
            (
                5,
                "gid 5, the system group 'tty' (the group of every terminal in /dev/pts)",
            ),
            (
                42,
                "gid 42, the system group 'shadow' (owner of /etc/shadow with group access)",
            ),
            (
                50,
                "gid 50, the system group 'staff' (owner of /usr/local with group access)",
            ),
            (
                7,
                "gid 7, a system gid (owner of /srv/seven with group access)",
            ),
        ] {
            assert_eq!(
                plan(PASSWD, GROUPS, "hermes", gid),
                Ok(Plan::SystemGroup(name.to_string())),
                "gid {gid}"
            );
        }
        // A gid below 100 that grants nothing here is given like any other.
        assert!(
            matches!(
                plan(PASSWD, GROUPS, "hermes", 20),
                Ok(Plan::Join { created: true, .. })
            ),
            "dialout"
        );
        assert!(
            matches!(plan(PASSWD, GROUPS, "hermes", 100), Ok(Plan::Join { .. })),
            "users"
        );
        assert!(plan(PASSWD, GROUPS, "nosuch", 998).is_err());
    }
}
