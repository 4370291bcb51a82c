//! The `boot` applet: the start-up repair. First the boot-time uid/gid remap the upstream image
//! offers (`HERMES_UID`/`PUID`, `HERMES_GID`/`PGID`), so that files in a host bind mount can
//! belong to the host user; then the ownership sweep, which after a remap also moves the user's
//! files from its old ids to the new ones (`fix-ownership --also-from`).
//!
//! The remap rewrites the hermes user's line in /etc/passwd and, when its primary group is
//! private to it, that group's line in /etc/group; nothing else. A uid another user holds, 0 and
//! 4294967295 are refused. The old ids are recorded in /etc/hermes-shim-remap before any file
//! changes and forgotten only after a sweep that fixed everything, so a start interrupted
//! halfway is finished by the next one. Planning is pure and unit-tested.

use std::path::Path;

use crate::cli::{FixOptions, WalkChoice};
use crate::escape::shown;
use crate::etcfile::{self, Staged};
use crate::policy::Previous;
use crate::users::{self, UserSpec};
use crate::{fix, home, policy, record, socket};

const PASSWD: &str = "/etc/passwd";
const GROUP: &str = "/etc/group";
const PREFIX: &str = "hermes-shim boot";
/// The old ids of a remap whose sweep has not finished yet.
const MARKER: &str = "/etc/hermes-shim-remap";

/// The largest id a remap accepts, as upstream's start-up hook does: 65535 is (uid_t)-1 to the
/// 16-bit calls, and a user namespace of the usual 65536 ids maps nothing above it.
pub const MAX_ID: u32 = 65534;

/// The ids asked for in the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// Reads `HERMES_UID` (else `PUID`) and `HERMES_GID` (else `PGID`); `None` when neither is set.
pub fn request(get: impl Fn(&str) -> Option<String>) -> Result<Option<Request>, String> {
    let id = |primary: &str, alias: &str| -> Result<Option<u32>, String> {
        // An empty value is unset: compose files often pass `PUID=${PUID}` through unset.
        let set = |k: &str| get(k).filter(|v| !v.is_empty());
        let Some((name, value)) = set(primary)
            .map(|v| (primary, v))
            .or_else(|| set(alias).map(|v| (alias, v)))
        else {
            return Ok(None);
        };
        match value.parse::<u32>() {
            Ok(n) if (1..=MAX_ID).contains(&n) && value.bytes().all(|b| b.is_ascii_digit()) => {
                Ok(Some(n))
            }
            _ => Err(format!(
                "{name}={value:?} is not a usable id — give a number from 1 to {MAX_ID}"
            )),
        }
    };
    let req = Request {
        uid: id("HERMES_UID", "PUID")?,
        gid: id("HERMES_GID", "PGID")?,
    };
    Ok((req.uid.is_some() || req.gid.is_some()).then_some(req))
}

/// A remap to carry out: the new file contents (`None`: unchanged) and the ids the user's files
/// move from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub old: (u32, u32),
    pub new: (u32, u32),
    pub passwd: Option<String>,
    pub group: Option<String>,
    pub previous: Previous,
}

/// Replaces field `index` of the first line `pick` accepts; the other lines, comments and line
/// endings are kept byte for byte.
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
        if !done && !body.starts_with(['#', '+', '-']) && pick(&fields) {
            let value = value.to_string();
            let mut fields = fields.clone();
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

/// The line the parser in `users` would take for `name`: same field count, numeric ids.
fn passwd_line(name: &str) -> impl Fn(&[&str]) -> bool + '_ {
    move |f| {
        f.len() == 7 && f[0] == name && f[2].parse::<u32>().is_ok() && f[3].parse::<u32>().is_ok()
    }
}

fn group_line(name: &str) -> impl Fn(&[&str]) -> bool + '_ {
    move |f| f.len() == 4 && f[0] == name && f[2].parse::<u32>().is_ok()
}

/// Plans the remap of `user`; `None` when its ids already are the ones asked for.
///
/// The gid works as `usermod -g` and `groupmod -g` would together: a gid some group already
/// has makes the user a member of that group by primary gid; a free gid renumbers the user's
/// primary group when that group is private to it (useradd's own group), else only the user's
/// line changes. Files move from the old gid only when the old group was private: a shared
/// group's files are not the user's alone.
pub fn plan(passwd: &str, group: &str, user: &str, req: Request) -> Result<Option<Plan>, String> {
    let users = users::parse_passwd(passwd);
    let groups = users::parse_group(group);
    let me = users
        .iter()
        .find(|u| u.name == user)
        .ok_or_else(|| format!("user '{user}' not found in {PASSWD}"))?;
    if me.uid == 0 || me.gid == 0 {
        return Err(format!(
            "user '{user}' has uid {} and gid {}: an account of root's is never remapped — set HERMES_SHIM_USER to the hermes user",
            me.uid, me.gid
        ));
    }
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
    let shared = users.iter().any(|u| u.gid == old.1 && u.name != user);
    let private_group = groups
        .iter()
        .find(|g| g.gid == old.1)
        .filter(|g| !shared && g.members.iter().all(|m| m == user));
    let gid_taken = groups.iter().any(|g| g.gid == new.1);
    let mut passwd_text = passwd.to_string();
    if new.0 != old.0 {
        passwd_text = set_field(&passwd_text, passwd_line(user), 2, new.0)
            .expect("the user's line was found above");
    }
    let mut group_text = None;
    if new.1 != old.1 {
        passwd_text = set_field(&passwd_text, passwd_line(user), 3, new.1)
            .expect("the user's line was found above");
        if let Some(g) = private_group.filter(|_| !gid_taken) {
            group_text = Some(
                set_field(group, group_line(&g.name), 2, new.1)
                    .expect("the group's line was found above"),
            );
        }
    }
    Ok(Some(Plan {
        old,
        new,
        passwd: Some(passwd_text),
        group: group_text,
        previous: Previous {
            uid: (new.0 != old.0).then_some(old.0),
            gid: (new.1 != old.1 && private_group.is_some()).then_some(old.1),
        },
    }))
}

/// The ids a remap moved away from, while its sweep has not finished (see the module doc).
fn pending() -> Result<Previous, String> {
    match std::fs::read_to_string(MARKER) {
        Ok(text) => {
            Previous::parse(text.trim()).map_err(|e| format!("{MARKER}: {e} — remove the file"))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Previous::default()),
        Err(e) => Err(format!("cannot read {MARKER}: {e}")),
    }
}

/// The part of a recorded remap that still describes the past: a uid nobody holds now, a gid
/// the user has left or no group holds any more (a start cut short between renumbering the
/// group and the user). What a failed or undone remap recorded (the user still has those ids,
/// its group still that gid) is dropped, so it can never block a later start.
pub fn still_pending(recorded: Previous, passwd: &str, group: &str, user: &str) -> Previous {
    let users = users::parse_passwd(passwd);
    let groups = users::parse_group(group);
    let current_gid = users.iter().find(|u| u.name == user).map(|u| u.gid);
    Previous {
        uid: recorded
            .uid
            .filter(|uid| !users.iter().any(|u| u.uid == *uid)),
        gid: recorded
            .gid
            .filter(|gid| current_gid != Some(*gid) || !groups.iter().any(|g| g.gid == *gid)),
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
    Staged::new(Path::new(MARKER), &previous.spec(), "new")?.commit()
}

/// Runs the applet: the remap (if asked for), the Docker socket's group, a missing home, then the
/// sweep. A start-up step must not stop a container over a few files, so entries that could not
/// be fixed are reported and exit 0; only a refusal (of the sweep, or of the remap, which still
/// leaves root's files repaired) exits 2, with a WARNING line.
pub fn run() -> u8 {
    let (previous, refused) = match remap() {
        Ok(previous) => (previous, false),
        Err(msg) => {
            say!("{PREFIX}: {msg}; repairing root-owned files only");
            (recorded().unwrap_or_default(), true)
        }
    };
    if let Ok(user) = user_name() {
        socket::grant(PREFIX, &user);
    }
    create_home();
    let code = fix::run(FixOptions {
        path: None,
        user: None,
        also_from: (previous != Previous::default()).then(|| previous.spec()),
        exclude: Vec::new(),
        dry_run: false,
        verbose: false,
        json: false,
        walk: WalkChoice::from_env(),
    });
    if code == fix::EXIT_OK
        && !refused
        && let Err(e) = std::fs::remove_file(MARKER)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        say!("{PREFIX}: cannot remove {MARKER}: {e}");
    }
    let code = verdict(code, refused);
    if let Err(e) = record::write(code) {
        say!(
            "{PREFIX}: cannot record this repair in /run/hermes-shim ({e}); the entrypoint will repair again"
        );
    }
    code
}

/// The applet's exit code for the sweep's `code`, with the one line that says what it means.
fn verdict(code: u8, remap_refused: bool) -> u8 {
    let home = shown(&fix::default_root());
    match code {
        fix::EXIT_REFUSED => say!(
            "{PREFIX}: WARNING: ownership repair of {home} was REFUSED and nothing was changed (see above); files root wrote there may stay unreadable to the hermes user"
        ),
        _ if remap_refused => say!(
            "{PREFIX}: WARNING: the uid/gid remap was REFUSED (see above); root-owned files in {home} were still repaired"
        ),
        fix::EXIT_PARTIAL => say!(
            "{PREFIX}: some entries in {home} could not be repaired (see above); the start goes on"
        ),
        _ => {}
    }
    match code {
        fix::EXIT_REFUSED => fix::EXIT_REFUSED,
        _ if remap_refused => fix::EXIT_REFUSED,
        _ => fix::EXIT_OK,
    }
}

/// Creates `$HERMES_HOME` when it does not exist and the sweep would accept it (see
/// [`crate::home`]); a path the sweep refuses is left to the sweep to refuse.
fn create_home() {
    let root: std::path::PathBuf = fix::default_root().components().collect();
    if !matches!(std::fs::symlink_metadata(&root), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
        || policy::refuse_root(&root, &fix::protected()).is_some()
    {
        return;
    }
    let Ok(target) = users::spec_from(None).and_then(|s| users::resolve(&s)) else {
        return;
    };
    match home::create(&root, target.uid, target.gid) {
        Ok(true) => say!(
            "{PREFIX}: created {} (owner {}:{}, mode 0700; missing parents root's, 0755)",
            shown(&root),
            target.uid,
            target.gid
        ),
        Ok(false) => {}
        Err(e) => say!("{PREFIX}: {e}"),
    }
}

/// The hermes user's name, for a remap.
fn user_name() -> Result<String, String> {
    match users::spec_from(None).map_err(|e| e.to_string())? {
        UserSpec::Name(n) => Ok(n),
        spec => Err(format!(
            "HERMES_SHIM_USER={spec} is numeric; a uid remap needs a user name"
        )),
    }
}

fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))
}

/// The recorded remap, as far as it still describes the past (see [`still_pending`]).
fn recorded() -> Result<Previous, String> {
    Ok(still_pending(
        pending()?,
        &read(PASSWD)?,
        &read(GROUP)?,
        &user_name()?,
    ))
}

/// Applies the remap the environment asks for; returns the ids the user's files move from
/// (this remap's, merged with a pending one's). Accounts end either fully remapped or unchanged.
fn remap() -> Result<Previous, String> {
    let req = request(|k| std::env::var(k).ok())?;
    let pending = recorded()?;
    let Some(req) = req else {
        return Ok(pending);
    };
    let user = user_name()?;
    let (passwd_text, group_text) = (read(PASSWD)?, read(GROUP)?);
    let Some(plan) = plan(&passwd_text, &group_text, &user, req)? else {
        return Ok(pending);
    };
    let previous = Previous {
        uid: pending.uid.or(plan.previous.uid),
        gid: pending.gid.or(plan.previous.gid),
    };
    let why = |file: &str, e: &dyn std::fmt::Display| {
        format!("cannot remap user '{user}': {file}: {e}; accounts unchanged")
    };
    // Everything that can fail for want of space or permission happens here, before any file
    // changes: the new files (and the group's undo) are written and synced beside the old ones.
    for (file, text) in [(PASSWD, &plan.passwd), (GROUP, &plan.group)] {
        if text.is_some() && etcfile::is_mount_point(Path::new(file)).unwrap_or(false) {
            return Err(why(
                file,
                &"a mount point (bind-mounted into the container), which cannot be replaced — remap the user where that file comes from, or unset HERMES_UID/PUID and HERMES_GID/PGID",
            ));
        }
    }
    let stage = |file: &str, text: &Option<String>, tag: &str| {
        text.as_deref()
            .map(|t| Staged::new(Path::new(file), t, tag))
            .transpose()
            .map_err(|e| why(file, &e))
    };
    let new_passwd = stage(PASSWD, &plan.passwd, "new")?;
    let new_group = stage(GROUP, &plan.group, "new")?;
    let undo_group = stage(
        GROUP,
        &plan.group.as_ref().map(|_| group_text.clone()),
        "old",
    )?;
    // The marker first, then the group, then the user: a start cut short anywhere leaves a state
    // the next one completes (the group renumbered but not yet the user is a gid that a group
    // holds, which the next plan simply points the user at).
    set_marker(previous).map_err(|e| why(MARKER, &e))?;
    let fail = |file: &str, e: std::io::Error| {
        let _ = set_marker(pending);
        why(file, &e)
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
        "{PREFIX}: remapped user '{user}' from {}:{} to {}:{}; its files move with it",
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
        assert_eq!(
            request(env(&[("PUID", ""), ("PGID", "")])),
            Ok(None),
            "empty is unset"
        );
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
        assert_eq!(request(env(&[("PUID", "65534")])), r(Some(65534), None));
        for bad in [
            "0",
            "-1",
            "+5",
            " 5",
            "65535",
            "65536",
            "4294967294",
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
    }

    #[test]
    fn nothing_to_do_and_refusals() {
        let p = |uid, gid| plan(PASSWD_TEXT, GROUP_TEXT, "hermes", req(uid, gid));
        assert_eq!(p(Some(10000), Some(10000)), Ok(None));
        assert!(
            p(Some(1000), None).unwrap_err().contains("alice"),
            "uid taken"
        );
        assert!(plan(PASSWD_TEXT, GROUP_TEXT, "nosuch", req(Some(5), None)).is_err());
    }

    #[test]
    fn an_account_of_roots_is_never_remapped() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nhalf:x:3000:0::/:/bin/sh\n";
        let group = "root:x:0:\n";
        for user in ["root", "half"] {
            let err = plan(passwd, group, user, req(Some(2000), Some(2001))).unwrap_err();
            assert!(err.contains("never remapped"), "{user}: {err}");
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
