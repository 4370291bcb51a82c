//! The target user: parsing a `NAME|UID[:GID]` spec and resolving it against the container's
//! own /etc/passwd and /etc/group at run time.
//!
//! The image remaps hermes's uid and gid at boot (`HERMES_UID`/`PUID`), so nothing here is
//! compiled in: every run reads the files again. Parsing is pure and lenient the way libc is:
//! comments, blank lines, NIS `+`/`-` lines and malformed lines are ignored, and the first of
//! duplicate entries wins (that is what `getpwnam` returns).

use std::fmt;
use std::path::{Path, PathBuf};

/// The user name used when neither `--user` nor `HERMES_SHIM_USER` says otherwise.
pub const DEFAULT_USER: &str = "hermes";

/// Where the account databases live; tests bind-mount their own files over these.
const PASSWD: &str = "/etc/passwd";
const GROUP: &str = "/etc/group";

/// What the operator asked for: a user name, or numeric ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserSpec {
    /// A name, looked up in /etc/passwd.
    Name(String),
    /// A uid, and optionally a gid; a uid with a passwd entry takes that entry's gid and groups.
    Ids { uid: u32, gid: Option<u32> },
}

impl UserSpec {
    /// Parses `NAME`, `UID` or `UID:GID`.
    pub fn parse(spec: &str) -> Result<UserSpec, UserError> {
        let bad = || UserError::BadSpec(spec.to_string());
        if spec.is_empty() || spec.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        // (uid_t)-1 means "leave unchanged" to chown and setresuid: never a real id.
        let id = |s: &str| {
            s.parse::<u32>()
                .ok()
                .filter(|n| *n != u32::MAX)
                .ok_or_else(bad)
        };
        match spec.split_once(':') {
            Some((u, g)) if numeric(u) && numeric(g) => Ok(UserSpec::Ids {
                uid: id(u)?,
                gid: Some(id(g)?),
            }),
            Some(_) => Err(bad()),
            None if numeric(spec) => Ok(UserSpec::Ids {
                uid: id(spec)?,
                gid: None,
            }),
            None => Ok(UserSpec::Name(spec.to_string())),
        }
    }
}

impl fmt::Display for UserSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserSpec::Name(n) => f.write_str(n),
            UserSpec::Ids { uid, gid: None } => write!(f, "{uid}"),
            UserSpec::Ids { uid, gid: Some(g) } => write!(f, "{uid}:{g}"),
        }
    }
}

/// Why a spec could not become a usable target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserError {
    BadSpec(String),
    Unknown(String),
    Root(String),
    RootGroup(String),
    Read(&'static str, String),
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserError::BadSpec(s) => write!(f, "user spec '{s}' is not NAME, UID or UID:GID"),
            UserError::Unknown(s) => write!(f, "user '{s}' not found in {PASSWD}"),
            UserError::Root(s) => write!(f, "user '{s}' has uid 0, which would not drop root"),
            UserError::RootGroup(s) => {
                write!(f, "user '{s}' has gid 0, which would keep the root group")
            }
            UserError::Read(file, e) => write!(f, "cannot read {file}: {e}"),
        }
    }
}

impl std::error::Error for UserError {}

/// One /etc/passwd entry, as far as we use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

/// One /etc/group entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// Lines worth parsing: not blank, not a comment, not an NIS compat entry.
fn records(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty() && !l.starts_with(['#', '+', '-']))
        .map(|l| l.split(':').collect())
}

/// Parses /etc/passwd text; malformed lines are skipped.
pub fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    records(text)
        .filter_map(|f| match f.as_slice() {
            [name, _, uid, gid, _, home, _] if !name.is_empty() => Some(PasswdEntry {
                name: name.to_string(),
                uid: uid.parse().ok()?,
                gid: gid.parse().ok()?,
                home: home.to_string(),
            }),
            _ => None,
        })
        .collect()
}

/// Parses /etc/group text; malformed lines are skipped.
pub fn parse_group(text: &str) -> Vec<GroupEntry> {
    records(text)
        .filter_map(|f| match f.as_slice() {
            [name, _, gid, members] if !name.is_empty() => Some(GroupEntry {
                name: name.to_string(),
                gid: gid.parse().ok()?,
                members: members
                    .split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(String::from)
                    .collect(),
            }),
            _ => None,
        })
        .collect()
}

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

/// Resolves `spec` against passwd and group text. Pure, so the whole table is unit-tested.
pub fn resolve_in(spec: &UserSpec, passwd: &str, group: &str) -> Result<Target, UserError> {
    let users = parse_passwd(passwd);
    let entry = match spec {
        UserSpec::Name(n) => Some(
            users
                .iter()
                .find(|u| &u.name == n)
                .ok_or_else(|| UserError::Unknown(n.clone()))?,
        ),
        UserSpec::Ids { uid, .. } => users.iter().find(|u| u.uid == *uid),
    };
    let (uid, gid) = match (spec, entry) {
        (UserSpec::Ids { uid, gid: Some(g) }, _) => (*uid, *g),
        (_, Some(e)) => (e.uid, e.gid),
        // A bare uid with no entry: its own number as gid, never gid 0 by accident.
        (UserSpec::Ids { uid, gid: None }, None) => (*uid, *uid),
        (UserSpec::Name(n), None) => return Err(UserError::Unknown(n.clone())),
    };
    if uid == 0 {
        return Err(UserError::Root(spec.to_string()));
    }
    if gid == 0 {
        return Err(UserError::RootGroup(spec.to_string()));
    }
    let mut groups = vec![gid];
    if let Some(e) = entry {
        groups.extend(
            parse_group(group)
                .iter()
                .filter(|g| g.members.iter().any(|m| m == &e.name))
                .map(|g| g.gid),
        );
    }
    groups.sort_unstable();
    groups.dedup();
    if groups.first() == Some(&0) {
        return Err(UserError::RootGroup(spec.to_string()));
    }
    Ok(Target {
        name: entry.map(|e| e.name.clone()),
        uid,
        gid,
        groups,
        home: PathBuf::from(entry.map_or("/", |e| e.home.as_str())),
    })
}

fn read(path: &'static str) -> Result<String, UserError> {
    std::fs::read(Path::new(path))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|e| UserError::Read(path, e.to_string()))
}

/// Resolves `spec` against the running system's /etc/passwd and /etc/group.
pub fn resolve(spec: &UserSpec) -> Result<Target, UserError> {
    let passwd = read(PASSWD)?;
    // A missing /etc/group only costs supplementary groups; passwd is what decides.
    let group = read(GROUP).unwrap_or_default();
    resolve_in(spec, &passwd, &group)
}

/// The name of the user that has `uid` in /etc/passwd, if any.
pub fn user_with_uid(uid: u32) -> Result<Option<String>, UserError> {
    Ok(parse_passwd(&read(PASSWD)?)
        .into_iter()
        .find(|u| u.uid == uid)
        .map(|u| u.name))
}

/// The spec from `--user`, else `HERMES_SHIM_USER`, else `hermes`.
pub fn spec_from(cli: Option<&str>) -> Result<UserSpec, UserError> {
    let env = match std::env::var("HERMES_SHIM_USER") {
        Ok(v) => Some(v),
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(v)) => {
            return Err(UserError::BadSpec(v.to_string_lossy().into_owned()));
        }
    };
    UserSpec::parse(cli.or(env.as_deref()).unwrap_or(DEFAULT_USER))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD_TEXT: &str = "\
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
    const GROUP_TEXT: &str = "\
root:x:0:
hermes:x:10000:
docker:x:990:alice,hermes
staff:x:50: hermes , bob
bad:x:zz:hermes
# wheel:x:10:hermes
tooshort:x:11
users:x:100:alice
";

    #[test]
    fn spec_parsing() {
        let ok = [
            ("hermes", UserSpec::Name("hermes".into())),
            (
                "10000",
                UserSpec::Ids {
                    uid: 10000,
                    gid: None,
                },
            ),
            (
                "10000:20",
                UserSpec::Ids {
                    uid: 10000,
                    gid: Some(20),
                },
            ),
            ("0", UserSpec::Ids { uid: 0, gid: None }),
            ("a-b_c.d", UserSpec::Name("a-b_c.d".into())),
        ];
        for (s, want) in ok {
            assert_eq!(UserSpec::parse(s), Ok(want.clone()), "{s}");
            assert_eq!(want.to_string(), s);
        }
        for bad in [
            "",
            ":",
            "1:",
            ":1",
            "hermes:hermes",
            "1:x",
            "a b",
            "1 ",
            "99999999999",
            "1:2:3",
            "x\n",
            "4294967295",
            "1:4294967295",
        ] {
            assert!(UserSpec::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn passwd_skips_comments_malformed_and_nis() {
        let users = parse_passwd(PASSWD_TEXT);
        let names: Vec<_> = users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(
            names,
            ["root", "hermes", "hermes", "toor", "nogroup0", "alice"]
        );
        assert_eq!(users[1].home, "/opt/data");
    }

    #[test]
    fn group_skips_malformed_and_trims_members() {
        let groups = parse_group(GROUP_TEXT);
        let names: Vec<_> = groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["root", "hermes", "docker", "staff", "users"]);
        assert_eq!(groups[3].members, ["hermes", "bob"]);
        assert!(groups[0].members.is_empty());
    }

    #[test]
    fn name_resolves_first_entry_with_groups() {
        let t = resolve_in(&UserSpec::Name("hermes".into()), PASSWD_TEXT, GROUP_TEXT).unwrap();
        assert_eq!((t.uid, t.gid), (10000, 10000));
        assert_eq!(t.groups, [50, 990, 10000]);
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
        )
        .unwrap();
        assert_eq!(
            (t.uid, t.gid, t.groups.clone()),
            (1000, 1000, vec![100, 990, 1000])
        );
        let t = resolve_in(
            &UserSpec::Ids {
                uid: 1000,
                gid: Some(7),
            },
            PASSWD_TEXT,
            GROUP_TEXT,
        )
        .unwrap();
        assert_eq!((t.gid, t.groups), (7, vec![7, 100, 990]));
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
        let r = |s: &str| resolve_in(&UserSpec::parse(s).unwrap(), PASSWD_TEXT, GROUP_TEXT);
        assert_eq!(r("nosuch"), Err(UserError::Unknown("nosuch".into())));
        assert_eq!(r("broken"), Err(UserError::Unknown("broken".into())));
        assert_eq!(r("root"), Err(UserError::Root("root".into())));
        assert_eq!(r("toor"), Err(UserError::Root("toor".into())));
        assert_eq!(r("0"), Err(UserError::Root("0".into())));
        assert_eq!(r("0:10000"), Err(UserError::Root("0:10000".into())));
        assert_eq!(r("nogroup0"), Err(UserError::RootGroup("nogroup0".into())));
        assert_eq!(r("10000:0"), Err(UserError::RootGroup("10000:0".into())));
        let wheel = format!("{GROUP_TEXT}root:x:0:alice\n");
        let in_root_group = resolve_in(&UserSpec::Name("alice".into()), PASSWD_TEXT, &wheel);
        assert_eq!(in_root_group, Err(UserError::RootGroup("alice".into())));
    }
}
