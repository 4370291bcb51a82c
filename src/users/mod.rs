//! The target user: parsing a `NAME|UID[:GID]` spec and resolving it against the container's
//! own /etc/passwd and /etc/group at run time.
//!
//! The image remaps hermes's uid and gid at boot (`HERMES_UID`/`PUID`), so nothing here is
//! compiled in: every run reads the files again. Parsing is pure and lenient the way libc is:
//! comments, blank lines, NIS `+`/`-` lines and malformed lines are ignored, and the first of
//! duplicate entries wins (that is what `getpwnam` returns).

mod gids;
mod records;
mod spec;

use std::path::{Path, PathBuf};

use crate::sys;

#[cfg(feature = "fuzzing")]
pub use gids::Evidence;
#[cfg(test)]
pub use gids::test_low;
pub use gids::{GidUse, LowGids, container_groups, gid_use, system_gid_name};
pub use records::{group_entries, passwd_entries, with_field, with_fields, with_line};
pub use spec::{GROUP, PASSWD, UserError, UserSpec};

/// A resolved target: everything the drop and the sweep need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The passwd name, when the uid has an entry.
    pub name: Option<String>,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups, sorted and unique; always includes `gid` (as initgroups does).
    pub groups: Vec<u32>,
    /// Home directory from passwd; `/` when the uid has no entry (as gosu does).
    pub home: PathBuf,
}

impl Target {
    /// Adds `kept` (see [`container_groups`]) to the user's groups, sorted and unique.
    pub fn add_groups(&mut self, kept: &[u32]) {
        self.groups.extend_from_slice(kept);
        self.groups.sort_unstable();
        self.groups.dedup();
    }
}

/// Resolves `spec` against passwd and group text. Pure, so the whole table is unit-tested.
pub fn resolve_in(
    spec: &UserSpec,
    passwd: &str,
    group: &str,
    low: &LowGids,
) -> Result<Target, UserError> {
    // The first match wins, as with getpwnam.
    let entry = passwd_entries(passwd).find(|u| match spec {
        UserSpec::Name(n) => u.name == n,
        UserSpec::Ids { uid, .. } => u.uid == *uid,
    });
    let (uid, gid) = match (spec, &entry) {
        (UserSpec::Ids { uid, gid: Some(g) }, _) => (*uid, *g),
        (_, Some(e)) => (e.uid, e.gid),
        // A bare uid with no entry: its own number as gid, never gid 0 by accident.
        (UserSpec::Ids { uid, gid: None }, None) => (*uid, *uid),
        (UserSpec::Name(n), None) => return Err(UserError::Unknown(n.clone())),
    };
    if uid == 0 {
        return Err(UserError::Root(spec.to_string()));
    }
    let mut groups = vec![gid];
    if let Some(e) = &entry {
        groups.extend(
            group_entries(group)
                .filter(|g| g.members().any(|m| m == e.name))
                .map(|g| g.gid),
        );
    }
    groups.sort_unstable();
    groups.dedup();
    low.owned_by(uid);
    // The user's own gid is named first, whatever the order of the rest.
    let judged = std::iter::once(gid).chain(groups.iter().copied());
    if judged.clone().any(|g| gid_use(g, low) == GidUse::Root) {
        return Err(UserError::RootGroup(spec.to_string()));
    }
    if let Some(g) = judged.clone().find(|g| gid_use(*g, low) == GidUse::System) {
        return Err(UserError::SystemGroup {
            spec: spec.to_string(),
            gid: system_gid_name(g, group, low),
            member: g != gid,
        });
    }
    Ok(Target {
        name: entry.as_ref().map(|e| e.name.to_string()),
        uid,
        gid,
        groups,
        home: PathBuf::from(entry.as_ref().map_or("/", |e| e.home)),
    })
}

fn read(path: &'static str) -> Result<String, UserError> {
    std::fs::read(Path::new(path))
        .map(|b| {
            String::from_utf8(b)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
        })
        .map_err(|e| UserError::Read(path, sys::errno_of(&e)))
}

/// Resolves `spec` against the running system's /etc/passwd and /etc/group, judging gids below
/// 100 by the evidence `low` (see [`gid_use`]; it knows what to leave out: `HERMES_HOME`, or the
/// tree a sweep is given).
pub fn resolve_with(spec: &UserSpec, low: &LowGids) -> Result<Target, UserError> {
    let passwd = read(PASSWD)?;
    // A missing /etc/group only costs supplementary groups; passwd is what decides.
    let group = read(GROUP).unwrap_or_default();
    resolve_in(spec, &passwd, &group, low)
}

/// How a refused gid is named in this container: by the group /etc/group gives it, if any.
pub fn system_gid_name_here(gid: u32, low: &LowGids) -> String {
    system_gid_name(gid, &read(GROUP).unwrap_or_default(), low)
}

/// The name of the user that has `uid` in /etc/passwd, if any.
pub fn user_with_uid(uid: u32) -> Result<Option<String>, UserError> {
    Ok(passwd_entries(&read(PASSWD)?)
        .find(|u| u.uid == uid)
        .map(|u| u.name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::errno::Errno;

    #[test]
    fn an_unreadable_file_is_named_with_its_errno() {
        const MISSING: &str = "/nonexistent/hermes-shim/passwd";
        assert_eq!(read(MISSING), Err(UserError::Read(MISSING, Errno::ENOENT)));
        assert_eq!(
            UserError::Read(PASSWD, Errno::EACCES).to_string(),
            "cannot read /etc/passwd: EACCES: Permission denied"
        );
    }

    pub const PASSWD_TEXT: &str = "\
root:x:0:0:root:/root:/bin/bash
# a comment:x:1:1::/:/bin/sh

+nisuser::::::
hermes:x:10000:10000::/opt/data:/bin/sh
hermes:x:20000:20000::/elsewhere:/bin/sh
broken:x:notanumber:1::/:/bin/sh
short:x:5:5
toor:x:0:5::/root:/bin/sh
nogroup0:x:3000:0::/home/n:/bin/sh
alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash
";
    pub const GROUP_TEXT: &str = "\
root:x:0:
hermes:x:10000:
docker:x:990:alice,hermes
crew:x:150: hermes , bob
bad:x:zz:hermes
# wheel:x:10:hermes
tooshort:x:11
users:x:100:alice
";

    #[test]
    fn name_resolves_first_entry_with_groups() {
        let t = resolve_in(
            &UserSpec::Name("hermes".into()),
            PASSWD_TEXT,
            GROUP_TEXT,
            &test_low(),
        )
        .unwrap();
        assert_eq!((t.uid, t.gid), (10000, 10000));
        assert_eq!(t.groups, [150, 990, 10000]);
        assert_eq!(t.home, PathBuf::from("/opt/data"));
        assert_eq!(t.name.as_deref(), Some("hermes"));
    }

    #[test]
    fn uid_with_entry_takes_its_gid_and_groups() {
        let t = resolve_in(
            &UserSpec::Ids {
                uid: 1000,
                gid: None,
            },
            PASSWD_TEXT,
            GROUP_TEXT,
            &test_low(),
        )
        .unwrap();
        assert_eq!(
            (t.uid, t.gid, t.groups.clone()),
            (1000, 1000, vec![100, 990, 1000])
        );
        let t = resolve_in(
            &UserSpec::Ids {
                uid: 1000,
                gid: Some(700),
            },
            PASSWD_TEXT,
            GROUP_TEXT,
            &test_low(),
        )
        .unwrap();
        assert_eq!((t.gid, t.groups), (700, vec![100, 700, 990]));
    }

    #[test]
    fn uid_without_entry_uses_its_own_number_and_root_home() {
        let t = resolve_in(
            &UserSpec::Ids {
                uid: 4242,
                gid: None,
            },
            PASSWD_TEXT,
            GROUP_TEXT,
            &test_low(),
        )
        .unwrap();
        assert_eq!(
            (t.uid, t.gid, t.groups, t.home),
            (4242, 4242, vec![4242], PathBuf::from("/"))
        );
        assert_eq!(t.name, None);
    }

    #[test]
    fn refusals() {
        let r = |s: &str| {
            resolve_in(
                &UserSpec::parse(s).unwrap(),
                PASSWD_TEXT,
                GROUP_TEXT,
                &test_low(),
            )
        };
        assert_eq!(r("nosuch"), Err(UserError::Unknown("nosuch".into())));
        assert_eq!(r("broken"), Err(UserError::Unknown("broken".into())));
        assert_eq!(r("root"), Err(UserError::Root("root".into())));
        assert_eq!(r("toor"), Err(UserError::Root("toor".into())));
        assert_eq!(r("0"), Err(UserError::Root("0".into())));
        assert_eq!(r("0:10000"), Err(UserError::Root("0:10000".into())));
        assert_eq!(r("nogroup0"), Err(UserError::RootGroup("nogroup0".into())));
        assert_eq!(r("10000:0"), Err(UserError::RootGroup("10000:0".into())));
        let wheel = format!("{GROUP_TEXT}root:x:0:alice\n");
        let in_root_group = resolve_in(
            &UserSpec::Name("alice".into()),
            PASSWD_TEXT,
            &wheel,
            &test_low(),
        );
        assert_eq!(in_root_group, Err(UserError::RootGroup("alice".into())));
    }

    #[test]
    fn a_system_gid_is_refused_however_it_comes() {
        let group = format!("{GROUP_TEXT}shadow:x:42:\ntty:x:5:alice\n");
        let passwd =
            format!("{PASSWD_TEXT}sys:x:3001:42::/:/bin/sh\nnameless:x:3002:7::/:/bin/sh\n");
        let r = |s: &str| resolve_in(&UserSpec::parse(s).unwrap(), &passwd, &group, &test_low());
        let own = |spec: &str, gid: &str| UserError::SystemGroup {
            spec: spec.into(),
            gid: gid.into(),
            member: false,
        };
        // HERMES_SHIM_USER=UID:GID, with or without a passwd entry for the uid.
        assert_eq!(
            r("10000:42"),
            Err(own(
                "10000:42",
                "gid 42, the system group 'shadow' (owner of /etc/shadow with group access)"
            ))
        );
        assert_eq!(
            r("4242:42"),
            Err(own(
                "4242:42",
                "gid 42, the system group 'shadow' (owner of /etc/shadow with group access)"
            ))
        );
        assert_eq!(
            r("4242:7"),
            Err(own(
                "4242:7",
                "gid 7, a system gid (owner of /srv/seven with group access)"
            ))
        );
        // A bare uid whose number is a system gid takes that number as its gid.
        assert_eq!(
            r("42"),
            Err(own(
                "42",
                "gid 42, the system group 'shadow' (owner of /etc/shadow with group access)"
            ))
        );
        // A named user (or its uid) whose passwd entry gives it one.
        assert_eq!(
            r("sys"),
            Err(own(
                "sys",
                "gid 42, the system group 'shadow' (owner of /etc/shadow with group access)"
            ))
        );
        assert_eq!(
            r("3001"),
            Err(own(
                "3001",
                "gid 42, the system group 'shadow' (owner of /etc/shadow with group access)"
            ))
        );
        assert_eq!(
            r("nameless"),
            Err(own(
                "nameless",
                "gid 7, a system gid (owner of /srv/seven with group access)"
            ))
        );
        // A user /etc/group makes a member of one, even with an ordinary gid of its own.
        let member = UserError::SystemGroup {
            spec: "alice".into(),
            gid: "gid 5, the system group 'tty' (the group of every terminal in /dev/pts)".into(),
            member: true,
        };
        assert_eq!(r("alice"), Err(member.clone()));
        assert_eq!(
            r("1000:1000").unwrap_err().to_string(),
            member.to_string().replace("'alice'", "'1000:1000'")
        );
        // Root's group still wins over a system one, and 100 and above are given.
        assert_eq!(r("10000:0"), Err(UserError::RootGroup("10000:0".into())));
        assert_eq!(r("10000:100").map(|t| t.gid), Ok(100));
        assert_eq!(r("hermes").map(|t| t.groups), Ok(vec![150, 990, 10000]));
        assert_eq!(
            own(
                "10000:42",
                "gid 42, the system group 'shadow' (owner of /etc/shadow with group access)"
            )
            .to_string(),
            "user '10000:42' has gid 42, the system group 'shadow' (owner of /etc/shadow with group access), which grants far more than the user's own files; give it a gid of 100 or above"
        );
        assert_eq!(
            member.to_string(),
            "user 'alice' is a member (in /etc/group) of gid 5, the system group 'tty' (the group of every terminal in /dev/pts), which grants far more than the user's own files; take it out of that group"
        );
    }
}
