//! The record a start-up repair (`boot`) leaves for the container start it ran in.
//!
//! The entrypoint skips its own repair only on evidence that one already ran in this very start
//! (s6-overlay's oneshot, a cont-init.d hook), never on a guess such as PID 1's name: if the
//! oneshot is ever lost, the entrypoint repairs instead. A container start is named by the
//! kernel's boot id and PID 1's start time, so a record left in a `/run` that outlives
//! `docker restart` (it is not a tmpfs under Docker) never passes for a new start; and only when
//! PID 1 is the container's own (same mount namespace), since a shared PID namespace's PID 1
//! outlives the container.
//!
//! Threat model: the record lives in a root-owned directory under `/run` that the hermes user
//! cannot write, so the agent cannot forge one to switch the repair off; a directory that is not
//! root's alone is neither trusted nor written.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use crate::etcfile::{Staged, Tag};

const DIR: &str = "/run/hermes-shim";
const FILE: &str = "/run/hermes-shim/boot";

/// One container start: the kernel's boot id and PID 1's start time (clock ticks since boot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartId {
    boot_id: String,
    pid1_start: u64,
}

impl StartId {
    /// This container start, from /proc; `None` where /proc does not tell, or where PID 1 is
    /// not this container's own (`--pid=host`, `--pid=container:…`: its start time does not
    /// change when this container restarts, so it cannot name a start).
    pub fn current() -> Option<StartId> {
        let ns = |pid: &str| fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
        let me = ns("self")?;
        let table = |pid: &str| fs::read(format!("/proc/{pid}/mountinfo")).ok();
        if !same_namespace(&me, ns("1").as_deref(), table) {
            return None;
        }
        let boot_id = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let stat = fs::read_to_string("/proc/1/stat").ok()?;
        Some(StartId {
            boot_id: boot_id.trim().to_string(),
            pid1_start: start_time(&stat)?,
        })
    }
}

/// Whether PID 1 is in this process's mount namespace (`me`): by its namespace link where that
/// is readable. A PID 1 of another uid that dropped privileges (the entrypoint applet as PID 1)
/// is not dumpable: its link is closed even to root without CAP_SYS_PTRACE (a `docker exec` of
/// `doctor`), but its mount table (`table`, by pid) is open. Mount ids are unique across
/// namespaces, so the same table is the same namespace.
fn same_namespace(me: &Path, pid1: Option<&Path>, table: impl Fn(&str) -> Option<Vec<u8>>) -> bool {
    match pid1 {
        Some(pid1) => pid1 == me,
        None => table("1").is_some_and(|t| Some(t) == table("self")),
    }
}

/// Field 22 (`starttime`) of a /proc/PID/stat line. The command name (field 2) may hold spaces
/// and parentheses, so the fields are counted from the last `)`.
fn start_time(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_ascii_whitespace().nth(19)?.parse().ok()
}

fn line(id: &StartId, code: u8) -> String {
    format!("{} {} {code}\n", id.boot_id, id.pid1_start)
}

/// The exit code recorded for `id`, if the record is of that start.
fn parse(text: &str, id: &StartId) -> Option<u8> {
    let mut f = text.split_ascii_whitespace();
    let (boot, start, code) = (f.next()?, f.next()?, f.next()?);
    if f.next().is_some() || boot != id.boot_id || start.parse::<u64>().ok()? != id.pid1_start {
        return None;
    }
    code.parse().ok()
}

/// True when `dir` is a directory only root can write (not a symlink, owned by uid 0, no
/// group or other write bit).
fn roots_alone(dir: &Path) -> bool {
    fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir() && m.uid() == 0 && m.mode() & 0o022 == 0)
}

/// Records that the start-up repair ran in this start and ended with `code`. Where a start
/// cannot be named, nothing is recorded (and the entrypoint repairs at every start).
pub fn write(code: u8) -> io::Result<()> {
    let Some(id) = StartId::current() else {
        return Ok(());
    };
    match fs::DirBuilder::new().mode(0o755).create(DIR) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    if !roots_alone(Path::new(DIR)) {
        return Err(io::Error::other(format!(
            "{DIR} is not a directory that only root can write"
        )));
    }
    // Staged beside it and renamed over it, as the files of /etc are: a start cut short never
    // leaves half a record.
    Staged::new(Path::new(FILE), &line(&id, code), Tag::New).and_then(Staged::commit)
}

/// The exit code of the start-up repair that ran in this start, if one did.
pub fn this_start() -> Option<u8> {
    let id = StartId::current()?;
    if !roots_alone(Path::new(DIR)) {
        return None;
    }
    let f = File::options()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(FILE)
        .ok()?;
    let meta = f.metadata().ok()?;
    if !meta.is_file() || meta.uid() != 0 {
        return None;
    }
    parse(&io::read_to_string(f).ok()?, &id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid1_is_in_our_namespace_by_its_link_or_else_by_its_mount_table() {
        fn tables(
            one: Option<&'static str>,
            own: Option<&'static str>,
        ) -> impl Fn(&str) -> Option<Vec<u8>> {
            move |pid| match pid {
                "1" => one.map(|t| t.as_bytes().to_vec()),
                "self" => own.map(|t| t.as_bytes().to_vec()),
                _ => panic!("{pid}"),
            }
        }
        let me = Path::new("mnt:[4026531841]");
        let never = |_: &str| -> Option<Vec<u8>> { panic!("the link decides") };
        assert!(same_namespace(me, Some(me), never));
        assert!(!same_namespace(
            me,
            Some(Path::new("mnt:[4026532000]")),
            never
        ));
        let t = "2130 2100 0:42 / / rw - overlay overlay rw\n";
        let other = "17 1 8:1 / / rw - ext4 /dev/sda1 rw\n";
        assert!(same_namespace(me, None, tables(Some(t), Some(t))));
        assert!(!same_namespace(me, None, tables(Some(other), Some(t))));
        assert!(!same_namespace(me, None, tables(None, Some(t))));
        assert!(!same_namespace(me, None, tables(Some(t), None)));
    }

    #[test]
    fn start_time_is_field_22_even_with_odd_command_names() {
        let tail = "S 0 1 1 0 -1 4194560 1209 0 0 0 3 2 0 0 20 0 1 0 987654 1200000 300";
        assert_eq!(start_time(&format!("1 (s6-svscan) {tail}")), Some(987_654));
        assert_eq!(start_time(&format!("1 (a) b) (c) {tail}")), Some(987_654));
        assert_eq!(start_time(&format!("1 (x y z) {tail}")), Some(987_654));
        assert_eq!(start_time("1 (short) S 0"), None);
        assert_eq!(start_time("no parenthesis"), None);
    }

    #[test]
    fn a_record_counts_only_for_its_own_start() {
        let id = StartId {
            boot_id: "b-1".into(),
            pid1_start: 42,
        };
        assert_eq!(parse(&line(&id, 0), &id), Some(0));
        assert_eq!(parse(&line(&id, 2), &id), Some(2));
        let restarted = StartId {
            pid1_start: 43,
            ..id.clone()
        };
        assert_eq!(parse(&line(&id, 0), &restarted), None, "docker restart");
        let rebooted = StartId {
            boot_id: "b-2".into(),
            ..id.clone()
        };
        assert_eq!(parse(&line(&id, 0), &rebooted), None, "host reboot");
        for bad in [
            "",
            "b-1",
            "b-1 42",
            "b-1 42 x",
            "b-1 42 0 extra",
            "b-1 -42 0",
        ] {
            assert_eq!(parse(bad, &id), None, "{bad:?}");
        }
    }

    #[test]
    fn only_a_directory_that_root_alone_can_write_is_trusted() {
        use std::os::unix::fs::{PermissionsExt, lchown, symlink};
        if !crate::testing::root_or_skip("only_a_directory_that_root_alone_can_write_is_trusted") {
            return;
        }
        let tmp = crate::testing::TempDir::new("record");
        let dir = |name: &str, mode: u32, uid: u32| {
            let d = tmp.path().join(name);
            fs::create_dir(&d).unwrap();
            fs::set_permissions(&d, fs::Permissions::from_mode(mode)).unwrap();
            lchown(&d, Some(uid), Some(0)).unwrap();
            d
        };
        assert!(roots_alone(&dir("root-0755", 0o755, 0)));
        assert!(roots_alone(&dir("root-0700", 0o700, 0)));
        for (d, why) in [
            (dir("group-writable", 0o775, 0), "group write"),
            (dir("other-writable", 0o757, 0), "other write"),
            (dir("sticky-1777", 0o1777, 0), "a /tmp-like directory"),
            (dir("hermes", 0o755, 10000), "owned by the agent"),
        ] {
            assert!(!roots_alone(&d), "{why}");
        }
        let link = tmp.path().join("link");
        symlink(tmp.path().join("root-0755"), &link).unwrap();
        assert!(!roots_alone(&link), "a symlink, even to a good directory");
        let file = tmp.path().join("file");
        fs::write(&file, "").unwrap();
        assert!(!roots_alone(&file), "not a directory");
        assert!(!roots_alone(&tmp.path().join("missing")), "nothing there");
    }

    #[test]
    fn this_start_is_named_by_the_boot_id_and_pid_1s_start_time() {
        // Run where PID 1 shares this process's mount namespace (a container, or the sealed
        // test namespace's parent only when it is not private); elsewhere `current` must say
        // it cannot name the start.
        let ns = |pid: &str| fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
        let same = ns("1").is_some() && ns("1") == ns("self");
        match StartId::current() {
            Some(id) => {
                assert!(
                    same,
                    "named a start though PID 1 is another mount namespace's"
                );
                let boot = fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
                assert_eq!(id.boot_id, boot.trim());
                let stat = fs::read_to_string("/proc/1/stat").unwrap();
                assert_eq!(Some(id.pid1_start), start_time(&stat));
                assert!(id.pid1_start > 0 || stat.contains(") "));
            }
            None => assert!(
                !same,
                "PID 1 shares our mount namespace: the start has a name"
            ),
        }
    }
}
