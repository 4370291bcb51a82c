//! The checklist's judgments: plain data in, one [`Check`] out, so every verdict and the
//! action it names is unit-tested without root or a container.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::scan::{Found, MAX_DEPTH};
use crate::escape::shown;
use crate::fix::Writer;

/// How a check came out. Only [`Status::Fix`] makes the doctor exit 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// As it should be.
    Ok,
    /// Worth knowing, nothing to do (a kernel without openat2, a check only root can make).
    Note,
    /// Something needs fixing; `action` says how.
    Fix,
}

impl Status {
    /// The checklist's column.
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Note => "note",
            Status::Fix => "FIX",
        }
    }
}

/// One line of the checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What is checked (`check` in the JSON report).
    #[serde(rename = "check")]
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    /// What to do, for [`Status::Fix`].
    pub action: Option<String>,
}

impl Check {
    pub fn ok(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Ok,
            detail: detail.into(),
            action: None,
        }
    }
    pub fn note(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            status: Status::Note,
            ..Check::ok(name, detail)
        }
    }
    pub fn fix(name: &'static str, detail: impl Into<String>, action: impl Into<String>) -> Check {
        Check {
            status: Status::Fix,
            action: Some(action.into()),
            ..Check::ok(name, detail)
        }
    }
}

/// The action for root-owned entries, named the same wherever they are found.
pub const REPAIR: &str = "restart the container (every start repairs), or run `hermes-shim fix-ownership` as root now (docker exec CONTAINER hermes-shim fix-ownership)";

/// The home directory as the target user meets it: `None` when it is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeStat {
    pub is_dir: bool,
    pub is_symlink: bool,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

/// Whether `w` can create entries in a directory `uid`:`gid` `mode` now (write and search bits
/// of the first class that matches, as the kernel checks them; ACLs aside).
pub fn can_write_now(w: &Writer, uid: u32, gid: u32, mode: u32) -> bool {
    let bits = if uid == w.uid {
        mode >> 6
    } else if w.groups.contains(&gid) {
        mode >> 3
    } else {
        mode
    };
    bits & 0o3 == 0o3
}

/// `HERMES_HOME`: there, a directory, and writable by the target user.
pub fn home(home: &Path, st: Option<&HomeStat>, w: &Writer, user: &str) -> Check {
    let h = shown(home);
    let Some(st) = st else {
        return Check::fix(
            "home",
            format!("HERMES_HOME {h} does not exist"),
            "restart the container (the start-up repair creates it), or mount the data volume there",
        );
    };
    if st.is_symlink {
        return Check::fix(
            "home",
            format!("HERMES_HOME {h} is a symlink, which the repair never follows"),
            "set HERMES_HOME to the real directory",
        );
    }
    if !st.is_dir {
        return Check::fix(
            "home",
            format!("HERMES_HOME {h} is not a directory"),
            "mount the data volume there, or set HERMES_HOME to the data directory",
        );
    }
    let what = format!("{h} is {}:{} {:04o}", st.uid, st.gid, st.mode);
    if can_write_now(w, st.uid, st.gid, st.mode) {
        return Check::ok("home", format!("{what}, writable by {user}"));
    }
    let action = if st.uid == 0 || st.gid == 0 {
        REPAIR.to_string()
    } else if st.uid == w.uid {
        format!("give its owner write permission: chmod u+rwx {h}")
    } else {
        format!(
            "start the container with PUID={} PGID={} (hermes takes the directory's ids), or give the directory to {}:{} on the host",
            st.uid,
            st.gid,
            w.uid,
            w.groups.first().copied().unwrap_or(w.uid)
        )
    };
    Check::fix(
        "home",
        format!("{what}, NOT writable by {user} (uid {})", w.uid),
        action,
    )
}

/// The entries the repair would change.
pub fn ownership(home: &Path, found: &Found, as_root: bool) -> Check {
    let h = shown(home);
    let listed = |n: u64, first: &[PathBuf]| {
        let mut s = String::new();
        for p in first {
            let _ = write!(s, " {}", shown(p));
        }
        if n > first.len() as u64 {
            s.push_str(" …");
        }
        s
    };
    let plural = |n: u64, one: &'static str, many: &'static str| if n == 1 { one } else { many };
    if found.count > 0 {
        let count = found.count;
        let detail = format!(
            "{count} {} under {h} {} root's owner or group:{}",
            plural(count, "entry", "entries"),
            plural(count, "has", "have"),
            listed(count, &found.first)
        );
        return Check::fix("ownership", detail, REPAIR);
    }
    if found.held > 0 {
        return Check::fix(
            "ownership",
            format!(
                "{} root-owned {} under {h} that the repair never changes (hard links, devices):{}",
                found.held,
                plural(found.held, "entry", "entries"),
                listed(found.held, &found.held_first)
            ),
            "look at each as root: a hard link's other name may be outside HERMES_HOME, so give it to hermes by hand (chown) only if it is the agent's own, and remove a device node",
        );
    }
    if found.too_deep > 0 {
        return Check::fix(
            "ownership",
            format!(
                "{} director{} under {h} deeper than {MAX_DEPTH} levels not looked at",
                found.too_deep,
                plural(found.too_deep, "y", "ies")
            ),
            "run `hermes-shim fix-ownership --dry-run` as root, which walks any depth, to see what the repair would change there",
        );
    }
    if found.unreadable > 0 {
        let unreadable = found.unreadable;
        let dirs = plural(unreadable, "y", "ies");
        // As root a directory is unreadable only when the kernel or the filesystem refuses
        // (an I/O error, a seccomp profile answering getdents64): the repair cannot look
        // there either, so the check does not say all is well.
        let detail = if as_root {
            format!(
                "no root-owned entry under {h} among what could be read; {unreadable} director{dirs} could not be read even as root — see the kernel log for I/O errors, and the container's seccomp profile"
            )
        } else {
            format!(
                "no root-owned entry under {h} that this user can see; {unreadable} director{dirs} could not be read — run the doctor as root to look inside"
            )
        };
        return Check::note("ownership", detail);
    }
    Check::ok("ownership", format!("no root-owned entry under {h}"))
}

/// The start-up repair of this container start, from its record.
pub fn repair(recorded: Option<u8>) -> Check {
    match recorded {
        Some(0) => Check::ok("start-up repair", "ran in this container start: exit 0"),
        Some(code) => Check::fix(
            "start-up repair",
            format!("ran in this container start and was REFUSED: exit {code}"),
            "read its WARNING in the container's log (docker logs CONTAINER), fix what it names, and restart the container",
        ),
        None => Check::note(
            "start-up repair",
            "none recorded for this container start (the image's entrypoint was not used, or the container runs as a non-root user)",
        ),
    }
}

/// The remap asked for, against the accounts as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remap {
    NotAsked,
    /// Asked for and in effect: the user's ids.
    InEffect(u32, u32),
    /// Asked for, allowed, and not applied yet: the user's current ids and the asked ones.
    Pending {
        now: (u32, u32),
        asked: (u32, u32),
    },
    /// Refused (a bad value, a taken uid, a system gid…): the refusal's own line.
    Refused(String),
}

pub fn remap(r: &Remap, still_moving: Option<&str>) -> Check {
    let c = match r {
        Remap::NotAsked => Check::ok(
            "remap",
            "none asked for (HERMES_UID/PUID, HERMES_GID/PGID unset)",
        ),
        Remap::InEffect(u, g) => Check::ok("remap", format!("in effect: the user is {u}:{g}")),
        Remap::Pending { now, asked } => Check::fix(
            "remap",
            format!(
                "asked for {}:{}, but the user is still {}:{}",
                asked.0, asked.1, now.0, now.1
            ),
            "restart the container: the start-up repair applies it",
        ),
        Remap::Refused(why) => Check::fix(
            "remap",
            format!("REFUSED: {why}"),
            "change HERMES_UID/PUID or HERMES_GID/PGID as the line says, and recreate the container",
        ),
    };
    match (still_moving, c.status) {
        (Some(old), Status::Ok) => Check::fix(
            "remap",
            format!(
                "{}; files of the previous ids {old} have not all moved yet",
                c.detail
            ),
            format!(
                "restart the container, or run `hermes-shim fix-ownership --also-from {old}` as root"
            ),
        ),
        _ => c,
    }
}

/// The Docker socket's group, as boot would plan it for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Socket {
    None,
    Member(u32),
    /// Boot would add the user (at the next start).
    Missing(u32),
    /// Boot never gives this group: its warning's remedy.
    Never {
        gid: u32,
        remedy: &'static str,
    },
}

pub fn socket(s: &Socket, user: &str) -> Check {
    match s {
        Socket::None => Check::ok("docker socket", "none mounted"),
        Socket::Member(g) => Check::ok("docker socket", format!("{user} has its group (gid {g})")),
        Socket::Missing(g) => Check::fix(
            "docker socket",
            format!("{user} is not in its group (gid {g})"),
            "restart the container: the start-up repair adds the user to the socket's group",
        ),
        Socket::Never { gid, remedy } => Check::fix(
            "docker socket",
            format!("it belongs to gid {gid}, which {user} is never given"),
            *remedy,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w() -> Writer {
        Writer {
            uid: 10000,
            groups: vec![10000, 44],
        }
    }

    #[test]
    fn writable_now_by_the_first_class_that_matches() {
        let table = [
            ((10000, 10000, 0o700), true),
            ((10000, 10000, 0o500), false),
            ((10000, 0, 0o077), false),
            ((0, 10000, 0o770), true),
            ((0, 10000, 0o750), false),
            ((0, 44, 0o730), true),
            ((0, 44, 0o707), false),
            ((0, 0, 0o755), false),
            ((0, 0, 0o1777), true),
            ((1000, 1000, 0o755), false),
            ((1000, 1000, 0o753), true),
        ];
        for ((u, g, m), want) in table {
            assert_eq!(can_write_now(&w(), u, g, m), want, "{u}:{g} {m:o}");
        }
    }

    #[test]
    fn the_home_verdicts_name_their_remedy() {
        let home = Path::new("/opt/data");
        let st = |uid, gid, mode| HomeStat {
            is_dir: true,
            is_symlink: false,
            uid,
            gid,
            mode,
        };
        assert_eq!(
            home_status(home, Some(&st(10000, 10000, 0o700))),
            Status::Ok
        );
        let root = super::home(home, Some(&st(0, 0, 0o755)), &w(), "hermes");
        assert_eq!(root.status, Status::Fix);
        assert!(root.detail.contains("NOT writable by hermes"), "{root:?}");
        assert_eq!(root.action.as_deref(), Some(REPAIR));
        // Root's owner or root's group alone is what the repair changes too.
        for (uid, gid) in [(0, 1001), (1000, 0)] {
            let half = super::home(home, Some(&st(uid, gid, 0o755)), &w(), "hermes");
            assert_eq!(half.action.as_deref(), Some(REPAIR), "{uid}:{gid}");
        }
        let host = super::home(home, Some(&st(1000, 1001, 0o755)), &w(), "hermes");
        assert!(host.action.unwrap().contains("PUID=1000 PGID=1001"));
        let own = super::home(home, Some(&st(10000, 10000, 0o500)), &w(), "hermes");
        assert!(own.action.unwrap().contains("chmod u+rwx /opt/data"));
        let missing = super::home(home, None, &w(), "hermes");
        assert!(missing.detail.contains("does not exist"));
        let link = HomeStat {
            is_symlink: true,
            ..st(10000, 10000, 0o777)
        };
        assert_eq!(home_status(home, Some(&link)), Status::Fix);
        let file = HomeStat {
            is_dir: false,
            ..st(10000, 10000, 0o700)
        };
        assert_eq!(home_status(home, Some(&file)), Status::Fix);
    }

    fn home_status(home: &Path, st: Option<&HomeStat>) -> Status {
        super::home(home, st, &w(), "hermes").status
    }

    #[test]
    fn root_owned_entries_are_counted_named_escaped_and_fixed() {
        let home = Path::new("/opt/data");
        let first = vec![home.join("config.yaml"), home.join("a\nb")];
        let found = |count, first: &[PathBuf], unreadable| Found {
            count,
            first: first.to_vec(),
            unreadable,
            ..Found::default()
        };
        let c = ownership(home, &found(7, &first, 0), true);
        assert_eq!(c.status, Status::Fix);
        assert_eq!(
            c.detail,
            "7 entries under /opt/data have root's owner or group: /opt/data/config.yaml /opt/data/a\\nb …"
        );
        let one = ownership(home, &found(1, &first[..1], 0), true);
        assert!(
            one.detail.starts_with("1 entry under /opt/data has"),
            "{one:?}"
        );
        assert!(!one.detail.ends_with('…'));
        assert_eq!(ownership(home, &found(0, &[], 0), true).status, Status::Ok);
        let user = ownership(home, &found(0, &[], 3), false);
        assert_eq!(user.status, Status::Note);
        assert!(
            user.detail
                .contains("3 directories could not be read — run the doctor as root"),
            "{user:?}"
        );
        let root = ownership(home, &found(0, &[], 1), true);
        assert_eq!(root.status, Status::Note);
        assert!(
            root.detail
                .contains("1 directory could not be read even as root"),
            "{root:?}"
        );
    }

    #[test]
    fn what_the_repair_leaves_or_the_walk_cannot_reach_is_never_all_well() {
        let home = Path::new("/opt/data");
        let held = Found {
            held: 2,
            held_first: vec![home.join("a"), home.join("b")],
            ..Found::default()
        };
        let c = ownership(home, &held, true);
        assert_eq!(c.status, Status::Fix);
        assert_eq!(
            c.detail,
            "2 root-owned entries under /opt/data that the repair never changes (hard links, devices): /opt/data/a /opt/data/b"
        );
        let deep = Found {
            too_deep: 1,
            ..Found::default()
        };
        let c = ownership(home, &deep, true);
        assert_eq!(c.status, Status::Fix);
        assert!(
            c.detail
                .contains("1 directory under /opt/data deeper than 64 levels"),
            "{c:?}"
        );
        assert!(
            c.action.as_deref().is_some_and(|a| a.contains("--dry-run")),
            "{c:?}"
        );
    }

    #[test]
    fn the_repair_record_and_the_remap() {
        assert_eq!(repair(Some(0)).status, Status::Ok);
        assert_eq!(repair(Some(2)).status, Status::Fix);
        assert!(repair(Some(2)).detail.contains("REFUSED: exit 2"));
        assert_eq!(repair(None).status, Status::Note);

        assert_eq!(remap(&Remap::NotAsked, None).status, Status::Ok);
        assert_eq!(remap(&Remap::InEffect(1000, 1000), None).status, Status::Ok);
        let pending = remap(
            &Remap::Pending {
                now: (10000, 10000),
                asked: (1000, 1000),
            },
            None,
        );
        assert_eq!(pending.status, Status::Fix);
        assert!(pending.action.unwrap().starts_with("restart"));
        let refused = remap(
            &Remap::Refused("uid 1 already belongs to user 'daemon'".into()),
            None,
        );
        assert_eq!(refused.status, Status::Fix);
        assert!(refused.detail.starts_with("REFUSED: uid 1 already"));
        let moving = remap(&Remap::InEffect(1000, 1000), Some("10000:10000"));
        assert_eq!(moving.status, Status::Fix);
        assert!(moving.action.unwrap().contains("--also-from 10000:10000"));
        // A refusal stays the refusal, whatever is still moving.
        let both = remap(&Remap::Refused("x".into()), Some("10000:"));
        assert_eq!(both.detail, "REFUSED: x");
    }

    #[test]
    fn the_docker_socket() {
        assert_eq!(socket(&Socket::None, "hermes").status, Status::Ok);
        assert_eq!(socket(&Socket::Member(999), "hermes").status, Status::Ok);
        assert_eq!(socket(&Socket::Missing(999), "hermes").status, Status::Fix);
        let never = socket(
            &Socket::Never {
                gid: 0,
                remedy: "give the socket a non-root group",
            },
            "hermes",
        );
        assert_eq!(never.status, Status::Fix);
        assert_eq!(
            never.action.as_deref(),
            Some("give the socket a non-root group")
        );
    }
}
