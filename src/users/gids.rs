//! Which gids the drop may give: gid 0 never, a system gid below 100 only when it grants
//! nothing beyond the user's own files in this container (judged from evidence found by a
//! walk of the container, [`scan_container`]), and the container's own supplementary groups.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::escape::shown;
use crate::sys;

use super::records::group_entries;

/// What the drop may make of a gid. Every way a gid reaches the drop is judged by
/// [`gid_use`]: a `UID:GID` spec, a user's passwd and group entries, `HERMES_GID`/`PGID` at boot,
/// the Docker socket's group and the container's supplementary groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GidUse {
    /// An ordinary group: the user may have it.
    Given,
    /// Root's group: having it would keep half of root.
    Root,
    /// A system gid that grants something here (or could not be shown not to): never given.
    System,
}

/// What this container shows of the gids from 1 to 99: which of them grant access to something
/// beyond the user's own files, each with one place that shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    /// The walk looked at everything: these gids grant something (gid → where).
    Found(BTreeMap<u32, Grant>),
    /// The walk could not finish (why): no gid below 100 can be shown to grant nothing.
    Unknown(String),
}

/// One thing a gid grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// It owns this inode, with group access.
    Owns(PathBuf),
    /// A devpts mounted here gives every new terminal this group (`gid=` of the mount).
    Terminals(String),
}

/// The gids below 100 that grant something, from what the walk found (`found`, see
/// [`sys::gidscan::walk`]) and the devpts mounts' `gid=` options (`terminals`, see
/// [`devpts_gids`]). A gid grants when it owns an inode other than a symlink with any group
/// permission bit (r, w or x), or is a devpts mount's terminal group: a container's /dev/pts is
/// its own, but its terminals are exactly root's `docker exec -it` sessions, which a member of
/// that group could write into. A group without permission bits opens nothing. For each gid the
/// shortest path is kept (then the first by name), so the message names the same file each time.
pub fn grants(found: &[sys::gidscan::Found], terminals: &[(u32, String)]) -> BTreeMap<u32, Grant> {
    let mut out: BTreeMap<u32, Grant> = BTreeMap::new();
    for (gid, at) in terminals {
        out.insert(*gid, Grant::Terminals(at.clone()));
    }
    for f in found {
        if f.mode & 0o070 == 0 || f.kind == sys::fs::Kind::Symlink || !(1..100).contains(&f.gid) {
            continue;
        }
        let better = match out.get(&f.gid) {
            None => true,
            Some(Grant::Terminals(_)) => false,
            Some(Grant::Owns(p)) => {
                let key = |p: &Path| (p.as_os_str().len(), p.to_path_buf());
                key(&f.path) < key(p)
            }
        };
        if better {
            out.insert(f.gid, Grant::Owns(f.path.clone()));
        }
    }
    out
}

/// The terminal group of every devpts mount in /proc/self/mountinfo text, with its mount point.
pub fn devpts_gids(mountinfo: &str) -> Vec<(u32, String)> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (mount, fs) = line.split_once(" - ")?;
            let mut fs = fs.split(' ');
            (fs.next()? == "devpts").then_some(())?;
            let options = fs.nth(1)?;
            let gid = options
                .split(',')
                .find_map(|o| o.strip_prefix("gid="))?
                .parse()
                .ok()?;
            Some((gid, mount.split(' ').nth(4)?.to_string()))
        })
        .collect()
}

/// The mounts the walk counts as the container's own: its root filesystem and what the runtime
/// mounts for it under /dev, /run and /tmp. Not /proc and /sys (their owners and groups
/// describe processes and kernel objects, not files), and no volume or bind mount: those hold
/// the operator's data, which a PGID is often chosen to reach, and this cannot judge them.
pub const OWN_MOUNTS: [&str; 7] = [
    "/",
    "/dev",
    "/dev/pts",
    "/dev/shm",
    "/dev/mqueue",
    "/run",
    "/tmp",
];

/// Looks at the running container (see [`grants`]), never inside `home` nor at what `owners`
/// own.
pub fn scan_container(home: Option<&Path>, owners: &BTreeSet<u32>) -> Evidence {
    let mountinfo = match std::fs::read_to_string("/proc/self/mountinfo") {
        Ok(t) => t,
        Err(e) => {
            return Evidence::Unknown(format!(
                "cannot read /proc/self/mountinfo: {}",
                sys::errno_of(&e)
            ));
        }
    };
    let paths: Vec<&Path> = OWN_MOUNTS.iter().map(Path::new).collect();
    let skip = home.and_then(sys::gidscan::dir_ident);
    match sys::gidscan::mounts_of(&paths).and_then(|m| sys::gidscan::walk(&m, skip, owners)) {
        Ok(found) => Evidence::Found(grants(&found, &devpts_gids(&mountinfo))),
        Err(e) => Evidence::Unknown(format!("the walk stopped: {e}")),
    }
}

/// The evidence for gids below 100, looked for once and only when a gid below 100 is judged.
/// The user's own files are no evidence (a user with PGID=20 makes files of group 20 wherever
/// it can write), so whoever judges a gid for a user first names the user's uid
/// ([`LowGids::owned_by`]); the walk then neither counts nor enters what those uids own (the
/// agent could otherwise stop it with a tree too deep or too large). Naming another uid after
/// the walk walks again.
pub struct LowGids {
    evidence: RefCell<Option<(BTreeSet<u32>, Rc<Evidence>)>>,
    owners: RefCell<BTreeSet<u32>>,
    home: Option<PathBuf>,
    fixed: bool,
}

impl LowGids {
    /// This container's, never looking inside `home` (`HERMES_HOME`: the user's own files).
    pub fn of_container(home: Option<&Path>) -> LowGids {
        LowGids {
            evidence: RefCell::new(None),
            owners: RefCell::new(BTreeSet::new()),
            home: home.map(Path::to_path_buf),
            fixed: false,
        }
    }

    /// Evidence already at hand (unit tests, the fuzz targets): whoever the owners are.
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn known(evidence: Evidence) -> LowGids {
        LowGids {
            evidence: RefCell::new(Some((BTreeSet::new(), Rc::new(evidence)))),
            owners: RefCell::new(BTreeSet::new()),
            home: None,
            fixed: true,
        }
    }

    /// `uid` is the user whose gids are judged (or was, before a remap): its files are its own,
    /// not evidence. Root's are never left out.
    pub fn owned_by(&self, uid: u32) {
        if uid != 0 {
            self.owners.borrow_mut().insert(uid);
        }
    }

    fn evidence(&self) -> Rc<Evidence> {
        let owners = self.owners.borrow();
        let mut cached = self.evidence.borrow_mut();
        if let Some((seen, e)) = &*cached
            && (self.fixed || *seen == *owners)
        {
            return Rc::clone(e);
        }
        let e = Rc::new(scan_container(self.home.as_deref(), &owners));
        *cached = Some((owners.clone(), Rc::clone(&e)));
        e
    }

    /// Why `gid` is refused, for the message: what it grants, or why that is unknown.
    pub fn why(&self, gid: u32) -> String {
        match &*self.evidence() {
            Evidence::Found(m) => match m.get(&gid) {
                Some(Grant::Owns(p)) => format!("owner of {} with group access", shown(p)),
                Some(Grant::Terminals(at)) => format!("the group of every terminal in {at}"),
                None => "grants nothing here".to_string(),
            },
            Evidence::Unknown(why) => format!("what it grants here is unknown: {why}"),
        }
    }
}

/// The one gid rule. Root's group is never given. A gid from 1 to 99 (Debian's static system
/// groups: adm 4, tty 5, shadow 42, utmp 43, …) is refused when it grants something beyond the
/// user's own files in this container ([`grants`]): reading /etc/shadow, writing root's
/// terminals. One that grants nothing (dialout 20, which a Mac's `id -g` gives as staff) is
/// given, as any gid of 100 and above is. Only a gid below 100 costs the walk.
pub fn gid_use(gid: u32, low: &LowGids) -> GidUse {
    match gid {
        0 => GidUse::Root,
        1..=99 => match &*low.evidence() {
            Evidence::Found(m) if !m.contains_key(&gid) => GidUse::Given,
            _ => GidUse::System,
        },
        _ => GidUse::Given,
    }
}

/// Evidence for unit tests: tty (5) gives every terminal, adm (4) owns a log, shadow (42)
/// /etc/shadow, staff (50) /usr/local, an unnamed 7 a file, and 99 something; dialout (20) and
/// every other gid below 100 own nothing.
#[cfg(test)]
pub fn test_low() -> LowGids {
    let owns = |p: &str| Grant::Owns(PathBuf::from(p));
    LowGids::known(Evidence::Found(BTreeMap::from([
        (4, owns("/var/log/apt/term.log")),
        (5, Grant::Terminals("/dev/pts".into())),
        (7, owns("/srv/seven")),
        (42, owns("/etc/shadow")),
        (50, owns("/usr/local")),
        (99, owns("/srv/ninety-nine")),
    ])))
}

/// How a refused system gid is named: by the group that has it in `group` (/etc/group text),
/// if one does, and what it grants here.
pub fn system_gid_name(gid: u32, group: &str, low: &LowGids) -> String {
    let why = low.why(gid);
    group_entries(group).find(|g| g.gid == gid).map_or_else(
        || format!("gid {gid}, a system gid ({why})"),
        |g| format!("gid {gid}, the system group '{}' ({why})", g.name),
    )
}

/// The container's supplementary groups, as a root caller holds them, split by [`gid_use`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerGroups {
    /// Kept through the drop, beside the user's own groups.
    pub kept: Vec<u32>,
    /// Refused system gids: each left behind with one line.
    pub refused: Vec<u32>,
}

/// Which of the groups a root caller holds are the container's, and which of those the user
/// may keep. `--group-add`, compose's `group_add` and Kubernetes' `supplementalGroups` reach
/// the container's processes only as supplementary groups of its PID 1 and of every
/// `docker exec` (the runtime sets them at each start); the drop rebuilds the user's groups from
/// /etc/group, so without this they would be lost.
///
/// They count as the container's only while the caller's real, effective and saved gids are
/// all 0, as the runtime starts a root process: a root shell that ran `newgrp` or `sg` (or a
/// program that changed its group) is no longer in that start state, and its groups are not
/// passed on. Group 0 is never kept and never named (root's sessions list it as their own);
/// a gid [`gid_use`] refuses is refused with one line by the caller, not fatally.
pub fn container_groups(
    caller_uid: u32,
    caller_gids: (u32, u32, u32),
    held: &[u32],
    low: &LowGids,
) -> ContainerGroups {
    let mut out = ContainerGroups::default();
    if caller_uid != 0 || caller_gids != (0, 0, 0) {
        return out;
    }
    for &g in held {
        match gid_use(g, low) {
            GidUse::Root => {}
            GidUse::System => out.refused.push(g),
            GidUse::Given => out.kept.push(g),
        }
    }
    for v in [&mut out.kept, &mut out.refused] {
        v.sort_unstable();
        v.dedup();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::tests::{GROUP_TEXT, PASSWD_TEXT};
    use crate::users::{UserSpec, resolve_in};

    #[test]
    fn the_containers_groups_are_a_root_callers_at_its_start_state_only() {
        let held = [4242, 0, 42, 990, 5, 4242, 100];
        let kept = ContainerGroups {
            kept: vec![100, 990, 4242],
            refused: vec![5, 42],
        };
        assert_eq!(container_groups(0, (0, 0, 0), &held, &test_low()), kept);
        // Not root, or a root shell after newgrp/sg (any of its gids changed): nothing taken.
        for (uid, gids) in [
            (10000, (0, 0, 0)),
            (0, (42, 42, 42)),
            (0, (0, 150, 0)),
            (0, (0, 0, 150)),
            (0, (150, 0, 0)),
        ] {
            assert_eq!(
                container_groups(uid, gids, &held, &test_low()),
                ContainerGroups::default(),
                "uid {uid}, gids {gids:?}"
            );
        }
        assert_eq!(
            container_groups(0, (0, 0, 0), &[0], &test_low()),
            ContainerGroups::default()
        );
        let mut t = resolve_in(
            &UserSpec::Name("hermes".into()),
            PASSWD_TEXT,
            GROUP_TEXT,
            &test_low(),
        )
        .unwrap();
        t.add_groups(&kept.kept);
        assert_eq!(t.groups, [100, 150, 990, 4242, 10000]);
    }

    #[test]
    fn the_gid_rule() {
        for (gid, want) in [
            (0, GidUse::Root),
            (1, GidUse::Given),
            (20, GidUse::Given),
            (4, GidUse::System),
            (5, GidUse::System),
            (42, GidUse::System),
            (50, GidUse::System),
            (99, GidUse::System),
            (100, GidUse::Given),
            (990, GidUse::Given),
            (10000, GidUse::Given),
            (65534, GidUse::Given),
            (u32::MAX - 1, GidUse::Given),
        ] {
            assert_eq!(gid_use(gid, &test_low()), want, "gid {gid}");
        }
        // Without the whole walk, no gid below 100 is shown to grant nothing.
        let unknown = LowGids::known(Evidence::Unknown("the walk stopped".into()));
        for (gid, want) in [
            (0, GidUse::Root),
            (1, GidUse::System),
            (20, GidUse::System),
            (99, GidUse::System),
            (100, GidUse::Given),
        ] {
            assert_eq!(gid_use(gid, &unknown), want, "gid {gid}, unknown");
        }
        assert_eq!(
            unknown.why(20),
            "what it grants here is unknown: the walk stopped"
        );
    }

    fn found(gid: u32, mode: u32, kind: sys::fs::Kind, path: &str) -> sys::gidscan::Found {
        sys::gidscan::Found {
            gid,
            mode,
            kind,
            path: PathBuf::from(path),
        }
    }

    #[test]
    fn a_gid_grants_by_group_bits_on_what_it_owns_or_by_terminals() {
        use sys::fs::Kind::{CharDevice, Dir, File, Symlink};
        let walked = [
            found(42, 0o640, File, "/usr/share/deep/shadow-copy"),
            found(42, 0o640, File, "/etc/shadow"),
            found(42, 0o640, File, "/etc/shadoz"),
            found(8, 0o2775, Dir, "/var/mail"),
            found(21, 0o600, File, "/srv/owner-only"),
            found(22, 0o777, Symlink, "/srv/link"),
            found(23, 0o010, File, "/srv/group-exec"),
            found(24, 0o020, CharDevice, "/dev/thing"),
            found(5, 0o620, CharDevice, "/dev/pts/0"),
            found(0, 0o777, File, "/root-group"),
            found(100, 0o777, File, "/users"),
        ];
        let terminals = [(5, "/dev/pts".to_string())];
        let owns = |p: &str| Grant::Owns(PathBuf::from(p));
        assert_eq!(
            grants(&walked, &terminals),
            BTreeMap::from([
                (5, Grant::Terminals("/dev/pts".into())),
                (8, owns("/var/mail")),
                (23, owns("/srv/group-exec")),
                (24, owns("/dev/thing")),
                (42, owns("/etc/shadow")),
            ])
        );
        // The same evidence whatever order the walk met it in.
        let mut reversed = walked.to_vec();
        reversed.reverse();
        assert_eq!(grants(&reversed, &terminals), grants(&walked, &terminals));
        assert_eq!(grants(&[], &[]), BTreeMap::new());
    }

    #[test]
    fn devpts_terminal_groups_from_mountinfo() {
        let mountinfo = "\
22 1 0:21 / / rw,relatime - overlay overlay rw,lowerdir=/l
23 22 0:22 / /proc rw,nosuid - proc proc rw
25 24 0:24 / /dev/pts rw,nosuid,noexec,relatime - devpts devpts rw,gid=5,mode=620,ptmxmode=666
26 24 0:25 / /dev/other rw - devpts devpts rw,mode=600,ptmxmode=000
27 24 0:26 / /mnt/pts2 rw - devpts none rw,gid=7,mode=620
28 24 0:27 / /weird rw - tmpfs tmpfs rw,gid=9
bad line
";
        assert_eq!(
            devpts_gids(mountinfo),
            [(5, "/dev/pts".to_string()), (7, "/mnt/pts2".to_string())]
        );
    }
}
