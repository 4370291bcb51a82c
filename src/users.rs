//! The target user: parsing a `NAME|UID[:GID]` spec and resolving it against the container's
//! own /etc/passwd and /etc/group at run time.
//!
//! The image remaps hermes's uid and gid at boot (`HERMES_UID`/`PUID`), so nothing here is
//! compiled in: every run reads the files again. Parsing is pure and lenient the way libc is:
//! comments, blank lines, NIS `+`/`-` lines and malformed lines are ignored, and the first of
//! duplicate entries wins (that is what `getpwnam` returns).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use nix::errno::Errno;

use crate::escape::shown;
use crate::sys;

/// The user name used when neither `--user` nor `HERMES_SHIM_USER` says otherwise.
pub const DEFAULT_USER: &str = "hermes";

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

impl Target {
    /// Adds `kept` (see [`container_groups`]) to the user's groups, sorted and unique.
    pub fn add_groups(&mut self, kept: &[u32]) {
        self.groups.extend_from_slice(kept);
        self.groups.sort_unstable();
        self.groups.dedup();
    }
}

/// Where the account databases live; tests bind-mount their own files over these.
pub const PASSWD: &str = "/etc/passwd";
pub const GROUP: &str = "/etc/group";

/// What the operator asked for: a user name, or numeric ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserSpec {
    /// A name, looked up in /etc/passwd.
    Name(String),
    /// A uid, and optionally a gid; a uid with a passwd entry takes that entry's gid and groups.
    Ids { uid: u32, gid: Option<u32> },
}

impl Default for UserSpec {
    /// The hermes user, by name.
    fn default() -> UserSpec {
        UserSpec::Name(DEFAULT_USER.to_string())
    }
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
    /// A gid [`gid_use`] refuses as [`GidUse::System`], named as [`system_gid_name`] does; as
    /// the user's own gid, or (`member`) through /etc/group.
    SystemGroup {
        spec: String,
        gid: String,
        member: bool,
    },
    Read(&'static str, Errno),
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The spec is the operator's text, any bytes: shown escaped, so the refusal stays one
        // clean line (fuzz/fuzz_targets/user_spec.rs found `a b<LF>` printed raw).
        let show = |s: &str| shown(Path::new(s));
        match self {
            UserError::BadSpec(s) => {
                write!(f, "user spec '{}' is not NAME, UID or UID:GID", show(s))
            }
            UserError::Unknown(s) => write!(f, "user '{}' not found in {PASSWD}", show(s)),
            UserError::Root(s) => {
                write!(f, "user '{}' has uid 0, which would not drop root", show(s))
            }
            UserError::RootGroup(s) => write!(
                f,
                "user '{}' has gid 0, which would keep the root group",
                show(s)
            ),
            UserError::SystemGroup {
                spec,
                gid,
                member: false,
            } => write!(
                f,
                "user '{}' has {gid}, which grants far more than the user's own files; give it a gid of 100 or above",
                show(spec)
            ),
            UserError::SystemGroup {
                spec,
                gid,
                member: true,
            } => write!(
                f,
                "user '{}' is a member (in {GROUP}) of {gid}, which grants far more than the user's own files; take it out of that group",
                show(spec)
            ),
            UserError::Read(file, e) => write!(f, "cannot read {file}: {e}"),
        }
    }
}

impl std::error::Error for UserError {}

/// One /etc/passwd line, as far as we use it, borrowed from the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry<'a> {
    pub name: &'a str,
    pub uid: u32,
    pub gid: u32,
    pub home: &'a str,
    /// Where the line lies in the text (without its line ending), for the editor.
    pub span: Range<usize>,
}

/// One /etc/group line, borrowed from the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry<'a> {
    pub name: &'a str,
    pub gid: u32,
    /// The member list as written (comma-separated).
    pub member_list: &'a str,
    pub span: Range<usize>,
}

impl<'a> GroupEntry<'a> {
    /// The member names.
    pub fn members(&self) -> impl Iterator<Item = &'a str> {
        self.member_list
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
    }
}

/// The fields of each line worth parsing (not blank, not a comment, not an NIS compat entry)
/// that has exactly `N` of them, with the line's span; other lines are skipped, as libc does.
fn records<const N: usize>(text: &str) -> impl Iterator<Item = ([&str; N], Range<usize>)> {
    let mut at = 0;
    text.split_inclusive('\n').filter_map(move |line| {
        let start = at;
        at += line.len();
        let body = line.trim_end_matches(['\n', '\r']);
        if body.trim().is_empty() || body.starts_with(['#', '+', '-']) {
            return None;
        }
        // One pass over the bytes (':' is ASCII, so every cut is a char boundary): the shim
        // parses passwd and group in front of every exec, and a split per field costs more.
        let mut record = [""; N];
        let (mut n, mut from) = (0, 0);
        for (i, b) in body.bytes().enumerate() {
            if b == b':' {
                *record.get_mut(n)? = &body[from..i];
                (n, from) = (n + 1, i + 1);
            }
        }
        *record.get_mut(n)? = &body[from..];
        (n + 1 == N).then_some((record, start..start + body.len()))
    })
}

/// The entries of /etc/passwd text, in order; malformed lines are skipped. Borrowed, so a
/// lookup allocates nothing: the shim does one in front of every exec.
pub fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    records(text).filter_map(|([name, _, uid, gid, _, home, _], span)| {
        (!name.is_empty()).then_some(())?;
        Some(PasswdEntry {
            name,
            uid: uid.parse().ok()?,
            gid: gid.parse().ok()?,
            home,
            span,
        })
    })
}

/// The entries of /etc/group text, in order; malformed lines are skipped.
pub fn group_entries(text: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    records(text).filter_map(|([name, _, gid, member_list], span)| {
        (!name.is_empty()).then_some(())?;
        Some(GroupEntry {
            name,
            gid: gid.parse().ok()?,
            member_list,
            span,
        })
    })
}

/// `text` with field `index` of the line at `span` (from [`passwd_entries`] or
/// [`group_entries`]) set to `value`; every other byte is kept.
pub fn with_field(text: &str, span: &Range<usize>, index: usize, value: &str) -> String {
    let line = &text[span.clone()];
    let mut fields: Vec<&str> = line.split(':').collect();
    fields[index] = value;
    [&text[..span.start], &fields.join(":"), &text[span.end..]].concat()
}

/// `text` with each `(index, value)` of `values` set in the line at `span`, in one edit.
pub fn with_fields(text: &str, span: &Range<usize>, values: &[(usize, String)]) -> String {
    let line = &text[span.clone()];
    let mut fields: Vec<&str> = line.split(':').collect();
    for (index, value) in values {
        fields[*index] = value;
    }
    [&text[..span.start], &fields.join(":"), &text[span.end..]].concat()
}

/// `text` with `line` added at the end (after a line ending, if the text lacks its last one).
pub fn with_line(text: &str, line: &str) -> String {
    let mut out = String::with_capacity(text.len() + line.len() + 2);
    out.push_str(text);
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(line);
    out.push('\n');
    out
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

    #[test]
    fn an_unreadable_file_is_named_with_its_errno() {
        const MISSING: &str = "/nonexistent/hermes-shim/passwd";
        assert_eq!(read(MISSING), Err(UserError::Read(MISSING, Errno::ENOENT)));
        assert_eq!(
            UserError::Read(PASSWD, Errno::EACCES).to_string(),
            "cannot read /etc/passwd: EACCES: Permission denied"
        );
    }

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
crew:x:150: hermes , bob
bad:x:zz:hermes
# wheel:x:10:hermes
tooshort:x:11
users:x:100:alice
";

    /// Found by `fuzz/fuzz_targets/user_spec.rs`: a refused spec was printed raw, so a newline
    /// in `HERMES_SHIM_USER` split the refusal in two (and an escape sequence reached the log).
    #[test]
    fn a_refused_spec_is_named_on_one_clean_line() {
        for (spec, shown) in [
            ("a b\n", r"a b\n"),
            ("\u{8}", r"\u{8}"),
            ("x\x1b[2Jy", r"x\u{1b}[2Jy"),
        ] {
            let e = UserSpec::parse(spec).unwrap_err().to_string();
            assert_eq!(
                e,
                format!("user spec '{shown}' is not NAME, UID or UID:GID")
            );
        }
        let e = UserError::Unknown("h\u{202e}x".into()).to_string();
        assert_eq!(e, format!("user 'h\\u{{202e}}x' not found in {PASSWD}"));
    }

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
            // Rust's integer parser takes a leading +; ids are digits only.
            "+1:2",
            "1:+2",
        ] {
            assert!(UserSpec::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn passwd_skips_comments_malformed_and_nis() {
        let users: Vec<_> = passwd_entries(PASSWD_TEXT).collect();
        let names: Vec<_> = users.iter().map(|u| u.name).collect();
        assert_eq!(
            names,
            ["root", "hermes", "hermes", "toor", "nogroup0", "alice"]
        );
        assert_eq!(users[1].home, "/opt/data");
        assert_eq!(
            &PASSWD_TEXT[users[1].span.clone()],
            "hermes:x:10000:10000::/opt/data:/bin/sh",
            "the span is the line, without its ending"
        );
    }

    #[test]
    fn group_skips_malformed_and_trims_members() {
        let groups: Vec<_> = group_entries(GROUP_TEXT).collect();
        let names: Vec<_> = groups.iter().map(|g| g.name).collect();
        assert_eq!(names, ["root", "hermes", "docker", "crew", "users"]);
        assert_eq!(groups[3].members().collect::<Vec<_>>(), ["hermes", "bob"]);
        assert_eq!(groups[0].members().count(), 0);
    }

    #[test]
    fn the_editor_changes_one_field_of_one_line_and_nothing_else() {
        let text = "root:x:0:0::/root:/bin/sh\r\nhermes:x:10000:10000::/opt/data:/bin/sh";
        let e = passwd_entries(text).nth(1).unwrap();
        assert_eq!(
            with_field(text, &e.span, 2, "7"),
            "root:x:0:0::/root:/bin/sh\r\nhermes:x:7:10000::/opt/data:/bin/sh"
        );
        let g = group_entries("a:x:1:\nb:x:2:u\r\nc:x:3:\n").nth(1).unwrap();
        assert_eq!(
            with_field("a:x:1:\nb:x:2:u\r\nc:x:3:\n", &g.span, 3, "u,v"),
            "a:x:1:\nb:x:2:u,v\r\nc:x:3:\n"
        );
        assert_eq!(with_line("a:x:1:", "b:x:2:"), "a:x:1:\nb:x:2:\n");
        assert_eq!(with_line("a:x:1:\n", "b:x:2:"), "a:x:1:\nb:x:2:\n");
        assert_eq!(with_line("", "b:x:2:"), "b:x:2:\n");
    }

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
