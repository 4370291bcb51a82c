//! A sweep's configuration: everything the walk needs to know, fixed for the whole run (built
//! and checked by [`super::prepare`]).

#[cfg(test)]
use std::os::fd::{AsFd, OwnedFd};
#[cfg(test)]
use std::path::Path;
use std::path::PathBuf;

use crate::sys::fs;

#[cfg(test)]
use super::rule::Previous;
use super::rule::Rule;
use super::scope::Writer;

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
    pub root_mount: (u64, u64),
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
        st.mount() != self.root_mount
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
            root_mount: st.mount(),
            mount_ids,
            writer: Writer {
                uid: me.uid() + 1,
                groups: vec![me.gid() + 1],
            },
        };
        (cfg, fd, st)
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
            root_mount: (7, 30),
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
}
