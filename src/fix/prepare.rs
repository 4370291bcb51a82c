//! A sweep asked for ([`Request`]) and checked in steps (the root, the rule, the excludes, the
//! walk backend) into a [`Sweep`] ready to run; each step refuses with a [`Refusal`] before
//! anything changes.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use crate::cli::FixOptions;
use crate::settings::{self, ExcludeError, SettingError, Settings, WalkChoice};
use crate::sys::{self, fs};
use crate::users::{self, UserError, UserSpec};

use super::config::Config;
use super::refusal::Refusal;
use super::roots::{Protected, refuse_root};
use super::rule::{Previous, Rule};
use super::scope::Writer;
use super::walk::{self, Outcome};

pub const PREFIX: &str = "hermes-shim fix-ownership";

/// What a sweep is asked to do, before any check.
pub struct Request {
    pub root: PathBuf,
    pub user: Result<UserSpec, UserError>,
    /// `--also-from`, as written (parsed in its turn, so refusals keep their order).
    pub also_from: Option<Previous>,
    pub also_from_raw: Option<String>,
    pub excludes: Vec<String>,
    /// `HERMES_SHIM_EXCLUDE`, already parsed by the settings.
    pub env_excludes: Result<Vec<PathBuf>, ExcludeError>,
    pub walk: Result<WalkChoice, SettingError>,
    pub dry_run: bool,
    pub verbose: bool,
}

impl Request {
    /// The sweep of `$HERMES_HOME` that `boot` runs: the settings' user, excludes and walk,
    /// and the user's previous ids after a remap.
    pub fn start_up(settings: &Settings, previous: Previous) -> Request {
        Request {
            root: settings.home.clone(),
            user: settings.user.clone(),
            also_from: (previous != Previous::default()).then_some(previous),
            also_from_raw: None,
            excludes: Vec::new(),
            env_excludes: settings.excludes.clone(),
            walk: settings.walk.clone(),
            dry_run: false,
            verbose: false,
        }
    }

    /// The applet's request: its options, over the settings.
    pub fn from_options(opts: &FixOptions, settings: &Settings) -> Request {
        Request {
            root: opts.path.clone().unwrap_or_else(|| settings.home.clone()),
            user: match &opts.user {
                Some(spec) => UserSpec::parse(spec),
                None => settings.user.clone(),
            },
            also_from: None,
            also_from_raw: opts.also_from.clone(),
            excludes: opts.exclude.clone(),
            env_excludes: settings.excludes.clone(),
            walk: opts.walk.map_or_else(|| settings.walk.clone(), Ok),
            dry_run: opts.dry_run,
            verbose: opts.verbose,
        }
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
                root_mount: root_st.mount(),
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
                PREFIX,
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
