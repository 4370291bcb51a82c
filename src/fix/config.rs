//! A sweep's configuration, built and checked in steps (the root, the rule, the excludes, the
//! walk backend); each step refuses with a [`Refusal`] before anything changes.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use crate::settings::{self, WalkChoice};
use crate::sys::{self, fs};
use crate::users::{self, UserError, UserSpec};

use super::roots::{Protected, refuse_root};
use super::rule::{Previous, Rule};
use super::scope::Writer;
use super::walk::{self, Outcome};
use super::{Refusal, Request};

/// Everything the walk needs to know, fixed for the whole run.
pub struct Config {
    pub root: PathBuf,
    pub walk: fs::Walk,
    pub rule: Rule,
    pub dry_run: bool,
    pub verbose: bool,
    pub excludes: Vec<PathBuf>,
    /// The root's device and inode (to know it again when climbing back to it).
    pub root_ident: (u64, u64),
    /// The root's device and mount id: entries elsewhere are on another mount.
    pub root_dev: u64,
    pub root_mnt: u64,
    /// Where mount ids come from on this kernel (named by `--verbose` and the JSON report).
    pub mount_ids: fs::MountIds,
    /// The target user, as directory permissions see it (see [`super::scope`]).
    pub writer: Writer,
}

impl Config {
    /// How a change is reported: what a dry run would do, or what was done.
    pub fn verb(&self) -> &'static str {
        if self.dry_run {
            "would change"
        } else {
            "changed"
        }
    }

    /// True when `st` lies on another mount than the root: another device, or another mount
    /// of the same device, such as a bind mount of a host directory of the volume's filesystem.
    pub fn foreign(&self, st: &fs::Stat) -> bool {
        st.dev != self.root_dev || st.mnt_id != self.root_mnt
    }
}

#[cfg(test)]
impl Config {
    /// A dry run over `root` as any user, with the fallback walk and `skip` excluded: the rule
    /// moves this process's own ids (as if they were a remapped user's previous ids) to ids no
    /// entry has, so every entry of ours "would change" and nothing does. Also returns the
    /// root, opened and stat'ed.
    pub fn dry_run_of_own(root: &Path) -> (Config, OwnedFd, fs::Stat) {
        use std::os::unix::fs::MetadataExt;
        let me = std::fs::metadata(root).unwrap();
        let fd = fs::open_root(root).unwrap();
        let st = fs::stat_fd(fd.as_fd()).unwrap();
        let (_, mount_ids) = fs::mount_id_of(fd.as_fd()).unwrap();
        let cfg = Config {
            root: root.to_path_buf(),
            walk: fs::Walk::Fallback,
            rule: Rule {
                target: (me.uid() + 1, me.gid() + 1),
                previous: Previous {
                    uid: Some(me.uid()),
                    gid: Some(me.gid()),
                },
            },
            dry_run: true,
            verbose: false,
            excludes: vec![PathBuf::from("skip")],
            root_ident: st.ident(),
            root_dev: st.dev,
            root_mnt: st.mnt_id,
            mount_ids,
            writer: Writer {
                uid: me.uid() + 1,
                groups: vec![me.gid() + 1],
            },
        };
        (cfg, fd, st)
    }
}

/// A checked sweep, ready to run: its configuration and the root, open and stat'ed.
pub struct Sweep {
    cfg: Config,
    root_fd: OwnedFd,
    root_st: fs::Stat,
}

impl Sweep {
    /// Every refusal, checked before anything changes, in this order: the walk asked for (a
    /// setting, so a bad value is named first, as in every applet), the root's path and the
    /// caller, the rule (target user and previous ids), the excludes, then the root opened
    /// without following any symlink, and whether that walk works there.
    pub fn prepare(req: Request, protected: &Protected) -> Result<Sweep, Refusal> {
        let choice = req.walk.map_err(Refusal::Setting)?;
        let root = checked_root(&req.root, protected)?;
        let (rule, writer) = rule(req.user, req.also_from, req.also_from_raw.as_deref(), &root)?;
        let mut excludes = req
            .excludes
            .iter()
            .map(|x| settings::exclude_path(x))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Refusal::Exclude)?;
        excludes.extend(req.env_excludes.map_err(Refusal::Exclude)?);
        let (root_fd, root_st, mount_ids) = open_root(&root)?;
        if let Some(ancestor) = writable_ancestor(&root, &writer) {
            return Err(Refusal::WritableAncestor {
                root,
                ancestor,
                uid: writer.uid,
            });
        }
        let walk = backend(choice, &root_fd)?;
        Ok(Sweep {
            cfg: Config {
                root,
                walk,
                rule,
                dry_run: req.dry_run,
                verbose: req.verbose,
                excludes,
                root_ident: root_st.ident(),
                root_dev: root_st.dev,
                root_mnt: root_st.mnt_id,
                mount_ids,
                writer,
            },
            root_fd,
            root_st,
        })
    }

    /// Walks the tree; returns the configuration (for the report) and what the walk did.
    pub fn run(self) -> (Config, Outcome) {
        if self.cfg.verbose {
            say!(
                "{}: walking {} by {}, mount ids from {}",
                super::PREFIX,
                crate::escape::shown(&self.cfg.root),
                self.cfg.walk.as_str(),
                self.cfg.mount_ids.as_str()
            );
        }
        let out = walk::sweep(&self.cfg, self.root_fd, &self.root_st);
        (self.cfg, out)
    }
}

/// The root's path: not a refused root (see [`super::roots`]), this process root, the root
/// there and a directory. `/opt/data/` and `/opt/./data` name /opt/data; a trailing slash must
/// not make the symlink checks follow a link.
fn checked_root(root: &Path, protected: &Protected) -> Result<PathBuf, Refusal> {
    if let Some(why) = refuse_root(root, protected) {
        return Err(Refusal::Root(why));
    }
    let root: PathBuf = root.components().collect();
    let (_, euid, ..) = sys::caller_ids();
    if euid != 0 {
        return Err(Refusal::NotRoot { root, euid });
    }
    let meta = std::fs::symlink_metadata(&root).map_err(|e| Refusal::Unusable {
        root: root.clone(),
        errno: sys::errno_of(&e),
    })?;
    // A symlink, here or on the way, is refused when the root is opened.
    if !meta.is_dir() && !meta.file_type().is_symlink() {
        return Err(Refusal::NotADirectory(root));
    }
    Ok(root)
}

/// The rule: the target user's ids, and the previous ids that move too (with the target as
/// directory permissions see it). Previous ids are a user's *former* ids; a uid someone still
/// has is that someone's.
fn rule(
    user: Result<UserSpec, UserError>,
    previous: Option<Previous>,
    previous_raw: Option<&str>,
    root: &Path,
) -> Result<(Rule, Writer), Refusal> {
    let spec = user.map_err(Refusal::BadUser)?;
    // What a gid below 100 grants is judged outside the tree being swept, as the drop judges it
    // outside HERMES_HOME.
    let low = users::LowGids::of_container(Some(root));
    let target = users::resolve_with(&spec, &low).map_err(Refusal::Target)?;
    let previous = match (previous, previous_raw) {
        (Some(p), _) => p,
        (None, Some(raw)) => Previous::parse(raw).map_err(Refusal::AlsoFrom)?,
        (None, None) => Previous::default(),
    };
    if let Some(uid) = previous.uid
        && let Some(owner) = users::user_with_uid(uid).map_err(Refusal::Target)?
    {
        return Err(Refusal::PreviousHeld { uid, owner });
    }
    let rule = Rule {
        target: (target.uid, target.gid),
        previous,
    };
    Ok((
        rule,
        Writer {
            uid: target.uid,
            groups: target.groups,
        },
    ))
}

/// The nearest ancestor of `root` (an absolute path of plain components) in which `writer` could
/// rename entries, and so replace the root by another directory between two sweeps. A missing
/// ancestor is one boot would create, root's and 0755; one that cannot be looked at otherwise
/// counts as writable: the check must be able to say no.
pub fn writable_ancestor(root: &Path, writer: &Writer) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    root.ancestors().skip(1).find_map(|dir| {
        let ok = match std::fs::symlink_metadata(dir) {
            Ok(m) => !writer.can_write(m.uid(), m.gid(), m.mode()),
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        };
        (!ok).then(|| dir.to_path_buf())
    })
}

/// Opens the root one component at a time, following no symlink, and stats it; also finds
/// where mount ids come from here, since without them a bind mount of the root's own filesystem
/// could not be told apart.
fn open_root(root: &Path) -> Result<(OwnedFd, fs::Stat, fs::MountIds), Refusal> {
    let fd = match fs::open_root(root) {
        Ok(fd) => fd,
        // With O_DIRECTORY a symlinked component answers ENOTDIR rather than ELOOP.
        Err(Errno::ELOOP | Errno::ENOTDIR) => {
            return Err(Refusal::Symlink {
                root: root.to_path_buf(),
                real: std::fs::canonicalize(root).ok(),
            });
        }
        Err(errno) => {
            return Err(Refusal::Open {
                root: root.to_path_buf(),
                errno,
            });
        }
    };
    let (_, ids) = fs::mount_id_of(fd.as_fd()).map_err(|errno| Refusal::NoMountIds {
        root: root.to_path_buf(),
        errno,
    })?;
    let st = fs::stat_fd(fd.as_fd()).map_err(|errno| Refusal::Stat {
        root: root.to_path_buf(),
        errno,
    })?;
    Ok((fd, st, ids))
}

/// The walk backend: openat2 where the kernel and seccomp allow it (probed once, on the root),
/// else the fallback, unless one is forced.
fn backend(choice: WalkChoice, root: &OwnedFd) -> Result<fs::Walk, Refusal> {
    match (choice, fs::probe_openat2(root.as_fd())) {
        (WalkChoice::Fallback, _) => Ok(fs::Walk::Fallback),
        (_, Ok(())) => Ok(fs::Walk::Openat2),
        (WalkChoice::Auto, Err(Errno::ENOSYS | Errno::EPERM | Errno::EINVAL)) => {
            Ok(fs::Walk::Fallback)
        }
        (_, Err(e)) => Err(Refusal::NoOpenat2(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        Config {
            root: "/opt/data".into(),
            walk: fs::Walk::Fallback,
            rule: Rule::to((10000, 10000)),
            dry_run: false,
            verbose: false,
            excludes: vec![],
            root_ident: (7, 2),
            root_dev: 7,
            root_mnt: 30,
            mount_ids: fs::MountIds::Statx,
            writer: Writer {
                uid: 10000,
                groups: vec![10000],
            },
        }
    }

    #[test]
    fn mount_detection_by_device_and_mount_id() {
        let st = |dev, mnt_id| fs::Stat {
            dev,
            ino: 1,
            kind: fs::Kind::File,
            uid: 0,
            gid: 0,
            nlink: 1,
            mode: 0o644,
            mnt_id,
        };
        let c = cfg();
        assert!(!c.foreign(&st(7, 30)));
        assert!(c.foreign(&st(7, 31)), "a bind mount of the same filesystem");
        assert!(c.foreign(&st(8, 30)), "another device");
        assert!(c.foreign(&st(8, 31)));
    }

    #[test]
    fn a_forced_walk_is_kept_and_auto_falls_back_only_where_openat2_is_missing() {
        let root: OwnedFd = std::fs::File::open("/").unwrap().into();
        assert_eq!(
            backend(WalkChoice::Fallback, &root).unwrap(),
            fs::Walk::Fallback
        );
        let auto = backend(WalkChoice::Auto, &root).unwrap();
        if fs::probe_openat2(root.as_fd()).is_ok() {
            assert_eq!(auto, fs::Walk::Openat2);
            assert_eq!(
                backend(WalkChoice::Openat2, &root).unwrap(),
                fs::Walk::Openat2
            );
        } else {
            assert_eq!(auto, fs::Walk::Fallback);
            assert!(backend(WalkChoice::Openat2, &root).is_err());
        }
    }
}
