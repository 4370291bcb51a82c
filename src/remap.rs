//! The `boot` applet: the start-up repair. First the boot-time uid/gid remap the upstream image
//! offers (`HERMES_UID`/`PUID`, `HERMES_GID`/`PGID`), so that files in a host bind mount can
//! belong to the host user; then the ownership sweep, which after a remap also moves the user's
//! files from its old ids to the new ones (`fix-ownership --also-from`).
//!
//! The remap rewrites the hermes user's line in /etc/passwd and its primary group's line in
//! /etc/group and nothing else; ids that another user or group already holds are refused, as
//! are 0 and 4294967295. Planning is pure and unit-tested; writing replaces each file whole.

use std::io::Write;
use std::path::Path;

use crate::cli::{FixOptions, WalkChoice};
use crate::fix;
use crate::users::{self, UserSpec};

const PASSWD: &str = "/etc/passwd";
const GROUP: &str = "/etc/group";
const PREFIX: &str = "hermes-shim boot";

/// The ids asked for in the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// Reads `HERMES_UID` (else `PUID`) and `HERMES_GID` (else `PGID`); `None` when neither is set.
pub fn request(get: impl Fn(&str) -> Option<String>) -> Result<Option<Request>, String> {
    let id = |primary: &str, alias: &str| -> Result<Option<u32>, String> {
        let Some((name, value)) = get(primary)
            .map(|v| (primary, v))
            .or_else(|| get(alias).map(|v| (alias, v)))
        else {
            return Ok(None);
        };
        match value.parse::<u32>() {
            Ok(n) if n != 0 && n != u32::MAX && value.bytes().all(|b| b.is_ascii_digit()) => {
                Ok(Some(n))
            }
            _ => Err(format!(
                "{name}={value:?} is not a usable id — give a number from 1 to 4294967294"
            )),
        }
    };
    let req = Request {
        uid: id("HERMES_UID", "PUID")?,
        gid: id("HERMES_GID", "PGID")?,
    };
    Ok((req.uid.is_some() || req.gid.is_some()).then_some(req))
}

/// A remap to carry out: the new file contents and the ids before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub old: (u32, u32),
    pub new: (u32, u32),
    pub passwd: String,
    pub group: String,
}

/// Replaces field `index` of the first line whose fields satisfy `pick`; the other lines,
/// comments and line endings are kept byte for byte.
fn set_field(
    text: &str,
    pick: impl Fn(&[&str]) -> bool,
    index: usize,
    value: u32,
) -> Option<String> {
    let mut out = String::with_capacity(text.len() + 8);
    let mut done = false;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let fields: Vec<&str> = body.split(':').collect();
        if !done && !body.starts_with('#') && pick(&fields) {
            let mut fields = fields.clone();
            let value = value.to_string();
            fields[index] = &value;
            out.push_str(&fields.join(":"));
            out.push_str(&line[body.len()..]);
            done = true;
        } else {
            out.push_str(line);
        }
    }
    done.then_some(out)
}

/// Plans the remap of `user`; `None` when its ids already are the ones asked for.
pub fn plan(passwd: &str, group: &str, user: &str, req: Request) -> Result<Option<Plan>, String> {
    let users = users::parse_passwd(passwd);
    let groups = users::parse_group(group);
    let me = users
        .iter()
        .find(|u| u.name == user)
        .ok_or_else(|| format!("user '{user}' not found in {PASSWD}"))?;
    let old = (me.uid, me.gid);
    let new = (req.uid.unwrap_or(me.uid), req.gid.unwrap_or(me.gid));
    if new == old {
        return Ok(None);
    }
    if let Some(other) = users.iter().find(|u| u.uid == new.0 && u.name != user) {
        return Err(format!(
            "uid {} already belongs to user '{}' — pick a free uid",
            new.0, other.name
        ));
    }
    // Only a private primary group (no other user has it as primary group or is a member, as
    // with useradd's own group) follows the gid; a shared one such as `users` keeps its gid, and
    // only the user's line changes.
    let shared = users.iter().any(|u| u.gid == old.1 && u.name != user);
    let own_group = groups
        .iter()
        .find(|g| g.gid == old.1)
        .filter(|g| !shared && g.members.iter().all(|m| m == user));
    if new.1 != old.1
        && let Some(other) = groups.iter().find(|g| g.gid == new.1)
    {
        return Err(format!(
            "gid {} already belongs to group '{}' — pick a free gid",
            new.1, other.name
        ));
    }
    let is_me = |f: &[&str]| f.len() == 7 && f[0] == user;
    let passwd = set_field(passwd, is_me, 2, new.0).expect("the user's line was found above");
    let passwd = set_field(&passwd, is_me, 3, new.1).expect("the user's line was found above");
    let group = match own_group {
        Some(g) if new.1 != old.1 => {
            let name = g.name.clone();
            set_field(group, |f| f.len() == 4 && f[0] == name, 2, new.1)
                .expect("the group's line was found above")
        }
        _ => group.to_string(),
    };
    Ok(Some(Plan {
        old,
        new,
        passwd,
        group,
    }))
}

/// Replaces `path` with `text`: a new file beside it renamed over it, so a reader never sees
/// half a file. A file bind-mounted over (rename answers EBUSY) is rewritten in place instead.
fn replace(path: &str, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode();
    let tmp = format!("{path}.hermes-shim-new");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    f.sync_all()?;
    match std::fs::rename(&tmp, path) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(nix::libc::EBUSY) => {
            std::fs::remove_file(&tmp)?;
            std::fs::write(Path::new(path), text)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Runs the applet: the remap (if asked for), then the sweep; returns the sweep's exit code,
/// or 2 when the remap was refused (then nothing at all was changed).
pub fn run() -> u8 {
    let previous = match remap() {
        Ok(previous) => previous,
        Err(msg) => {
            say!("{PREFIX}: {msg}");
            return fix::EXIT_REFUSED;
        }
    };
    fix::run(FixOptions {
        path: None,
        user: None,
        also_from: previous.map(|(u, g)| format!("{u}:{g}")),
        exclude: Vec::new(),
        dry_run: false,
        verbose: false,
        json: false,
        walk: WalkChoice::from_env(),
    })
}

/// Applies the remap the environment asks for; returns the user's previous ids if it changed.
fn remap() -> Result<Option<(u32, u32)>, String> {
    let Some(req) = request(|k| std::env::var(k).ok())? else {
        return Ok(None);
    };
    let user = match users::spec_from(None).map_err(|e| e.to_string())? {
        UserSpec::Name(n) => n,
        spec => {
            return Err(format!(
                "HERMES_SHIM_USER={spec} is numeric; a uid remap needs a user name"
            ));
        }
    };
    let read = |p: &str| std::fs::read_to_string(p).map_err(|e| format!("cannot read {p}: {e}"));
    let Some(plan) = plan(&read(PASSWD)?, &read(GROUP)?, &user, req)? else {
        return Ok(None);
    };
    replace(PASSWD, &plan.passwd).map_err(|e| format!("cannot rewrite {PASSWD}: {e}"))?;
    replace(GROUP, &plan.group).map_err(|e| format!("cannot rewrite {GROUP}: {e}"))?;
    say!(
        "{PREFIX}: remapped user '{user}' from {}:{} to {}:{}; its files move with it",
        plan.old.0,
        plan.old.1,
        plan.new.0,
        plan.new.1
    );
    Ok(Some(plan.old))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn requests_from_the_environment() {
        let r = |uid, gid| Ok(Some(Request { uid, gid }));
        assert_eq!(request(env(&[])), Ok(None));
        assert_eq!(request(env(&[("HERMES_UID", "1000")])), r(Some(1000), None));
        assert_eq!(
            request(env(&[("PUID", "1000"), ("PGID", "100")])),
            r(Some(1000), Some(100))
        );
        assert_eq!(
            request(env(&[("HERMES_UID", "1000"), ("PUID", "5")])),
            r(Some(1000), None)
        );
        assert_eq!(
            request(env(&[("HERMES_GID", "2000"), ("PGID", "5")])),
            r(None, Some(2000))
        );
        for bad in [
            "0",
            "",
            "-1",
            "+5",
            " 5",
            "4294967295",
            "99999999999",
            "abc",
        ] {
            assert!(
                request(env(&[("HERMES_UID", bad)])).is_err(),
                "HERMES_UID={bad:?}"
            );
            assert!(request(env(&[("PGID", bad)])).is_err(), "PGID={bad:?}");
        }
    }

    const PASSWD_TEXT: &str = "root:x:0:0:root:/root:/bin/bash\n# hermes:x:1:1::/:/bin/sh\nhermes:x:10000:10000::/opt/data:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n";
    const GROUP_TEXT: &str = "root:x:0:\nhermes:x:10000:\nalice:x:1000:\ndocker:x:990:hermes\n";

    #[test]
    fn plans_touch_only_the_users_lines() {
        let p = plan(
            PASSWD_TEXT,
            GROUP_TEXT,
            "hermes",
            Request {
                uid: Some(2000),
                gid: Some(2001),
            },
        )
        .unwrap()
        .unwrap();
        assert_eq!((p.old, p.new), ((10000, 10000), (2000, 2001)));
        assert_eq!(
            p.passwd,
            PASSWD_TEXT.replace("hermes:x:10000:10000:", "hermes:x:2000:2001:")
        );
        assert_eq!(
            p.group,
            GROUP_TEXT.replace("hermes:x:10000:", "hermes:x:2001:")
        );
        let uid_only = plan(
            PASSWD_TEXT,
            GROUP_TEXT,
            "hermes",
            Request {
                uid: Some(2000),
                gid: None,
            },
        )
        .unwrap()
        .unwrap();
        assert_eq!(uid_only.new, (2000, 10000));
        assert_eq!(uid_only.group, GROUP_TEXT);
    }

    #[test]
    fn a_shared_primary_group_keeps_its_gid() {
        let passwd = "bob:x:3000:100::/home/bob:/bin/sh\ncarol:x:3002:100::/home/carol:/bin/sh\n";
        let group = "users:x:100:\n";
        let p = plan(
            passwd,
            group,
            "bob",
            Request {
                uid: None,
                gid: Some(3001),
            },
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            p.passwd,
            passwd.replace("bob:x:3000:100:", "bob:x:3000:3001:")
        );
        assert_eq!(p.group, group);
        let members = "users:x:100:bob,dave\n";
        let alone = "bob:x:3000:100::/home/bob:/bin/sh\n";
        let p = plan(
            alone,
            members,
            "bob",
            Request {
                uid: None,
                gid: Some(3001),
            },
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.group, members, "a group with other members is shared too");
    }

    #[test]
    fn nothing_to_do_and_refusals() {
        let p = |uid, gid| plan(PASSWD_TEXT, GROUP_TEXT, "hermes", Request { uid, gid });
        assert_eq!(p(Some(10000), Some(10000)), Ok(None));
        assert!(
            p(Some(1000), None).unwrap_err().contains("alice"),
            "uid taken"
        );
        assert!(
            p(None, Some(990)).unwrap_err().contains("docker"),
            "gid taken"
        );
        assert!(
            plan(
                PASSWD_TEXT,
                GROUP_TEXT,
                "nosuch",
                Request {
                    uid: Some(5),
                    gid: None
                }
            )
            .is_err()
        );
    }
}
