//! Which sweep roots are refused before anything is opened: system trees, the directories that
//! hold other people's trees, and any directory whose programs root runs (found at run time
//! from this process, its settings and PATH).

use std::fmt;
use std::path::{Component, Path, PathBuf};

use crate::escape::shown;
use crate::settings::Settings;

/// System trees: a sweep may start neither at them nor anywhere below them. What lives there
/// is run or trusted by root; handed to the agent's uid, it is root's to lose: programs and
/// their configuration, s6-overlay (`/package`, `/command`, `/init`, whose scripts root runs at
/// the next start), and the package manager's state (whose maintainer scripts root runs at the
/// next `apt-get`).
const SYSTEM_TREES: &[&str] = &[
    "/bin",
    "/boot",
    "/command",
    "/dev",
    "/etc",
    "/init",
    "/package",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/sys",
    "/usr",
    "/var/cache/apt",
    "/var/cache/debconf",
    "/var/cache/ldconfig",
    "/var/lib/apt",
    "/var/lib/dpkg",
    "/var/lib/pam",
    "/var/lib/systemd",
    "/var/lib/ucf",
    "/var/lock",
    "/var/run",
    "/var/spool/cron",
];

/// Directories that hold other people's trees: a sweep may start below them (`/opt/data`,
/// `/var/lib/hermes`, `/home/hermes/.hermes`, `/srv/hermes`, `/mnt/x`), never at them.
const SHARED_PARENTS: &[&str] = &[
    "/",
    "/home",
    "/media",
    "/mnt",
    "/opt",
    "/srv",
    "/tmp",
    "/var",
    "/var/backups",
    "/var/cache",
    "/var/lib",
    "/var/local",
    "/var/log",
    "/var/mail",
    "/var/opt",
    "/var/spool",
    "/var/tmp",
];

/// Directories whose programs root runs, found at run time: a sweep root must neither be one
/// nor contain one, or the agent could replace what root runs next (`HERMES_HOME=/opt` would
/// hand it `/opt/hermes/bin/hermes`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Protected {
    /// The shim's own directory, `HERMES_SHIM_REAL_DIR`, every absolute directory on PATH.
    pub dirs: Vec<PathBuf>,
    /// Trees a sweep may not start inside either: the shim's directory and the venv that holds
    /// the real programs.
    pub trees: Vec<PathBuf>,
}

fn is_system_tree(path: &Path) -> bool {
    let top_lib = matches!(
        path.components().nth(1),
        Some(Component::Normal(top)) if top.as_encoded_bytes().starts_with(b"lib")
    );
    top_lib || SYSTEM_TREES.iter().any(|t| path.starts_with(t))
}

/// Why a sweep root is refused before anything is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootRefusal {
    NotAbsolute(PathBuf),
    DotDot(PathBuf),
    /// A system tree, or a directory that holds others' trees.
    System(PathBuf),
    /// Is or contains (or lies in) `held`, a directory whose programs root runs.
    HoldsPrograms {
        root: PathBuf,
        held: PathBuf,
    },
}

impl fmt::Display for RootRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RootRefusal::NotAbsolute(p) => write!(
                f,
                "{}: not an absolute path — give the full path, e.g. /opt/data",
                shown(p)
            ),
            RootRefusal::DotDot(p) => {
                write!(f, "{}: contains '..' — give the resolved path", shown(p))
            }
            RootRefusal::System(p) => write!(
                f,
                "{}: refusing to sweep a system directory — point it at the Hermes data directory, e.g. /opt/data",
                shown(p)
            ),
            RootRefusal::HoldsPrograms { root, held } => write!(
                f,
                "{}: overlaps {}, which holds programs root runs; the hermes user would own them — point it at the Hermes data directory, e.g. /opt/data",
                shown(root),
                shown(held)
            ),
        }
    }
}

/// Why a sweep root is refused before anything is opened; `None` when it is acceptable.
/// `path` is as given (it is normalised here: `/opt/./data/` is `/opt/data`).
pub fn refuse_root(path: &Path, protected: &Protected) -> Option<RootRefusal> {
    if !path.is_absolute() {
        return Some(RootRefusal::NotAbsolute(path.to_path_buf()));
    }
    if path.components().any(|c| matches!(c, Component::ParentDir)) {
        return Some(RootRefusal::DotDot(path.to_path_buf()));
    }
    let path: PathBuf = path.components().collect();
    if is_system_tree(&path) || SHARED_PARENTS.iter().any(|d| path == Path::new(d)) {
        return Some(RootRefusal::System(path));
    }
    let held = protected
        .dirs
        .iter()
        .find(|d| d.starts_with(&path))
        .or_else(|| {
            protected
                .trees
                .iter()
                .find(|t| t.starts_with(&path) || path.starts_with(t))
        })?;
    Some(RootRefusal::HoldsPrograms {
        held: held.clone(),
        root: path,
    })
}

/// The directories whose programs root runs, as this process finds them: its own directory,
/// the real programs' directory and the venv around it, and PATH. Each is taken as written and
/// as resolved, since PATH may name a directory through a symlink (`/bin` -> `/usr/bin`).
pub fn protected(settings: &Settings) -> Protected {
    let both = |p: PathBuf| {
        let real = std::fs::canonicalize(&p).ok();
        std::iter::once(p).chain(real)
    };
    let mut trees = Vec::new();
    if let Some(dir) = std::fs::read_link("/proc/self/exe")
        .ok()
        .and_then(|exe| exe.parent().map(PathBuf::from))
    {
        trees.extend(both(dir));
    }
    let real_dir = settings.real_dir.clone();
    if let Some(venv) = real_dir.parent().filter(|v| v.join("pyvenv.cfg").is_file()) {
        trees.extend(both(venv.to_path_buf()));
    }
    let mut dirs: Vec<PathBuf> = both(real_dir).collect();
    if let Some(path) = &settings.path {
        dirs.extend(
            std::env::split_paths(path)
                .filter(|d| d.is_absolute())
                .flat_map(both),
        );
    }
    let normal = |v: Vec<PathBuf>| -> Vec<PathBuf> {
        v.into_iter()
            .filter(|p| p.is_absolute())
            .map(|p| p.components().collect())
            .collect()
    };
    Protected {
        dirs: normal(dirs),
        trees: normal(trees),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_refusals() {
        let image = Protected {
            dirs: [
                "/opt/hermes/bin",
                "/opt/hermes/.venv/bin",
                "/usr/local/sbin",
                "/usr/local/bin",
                "/usr/sbin",
                "/usr/bin",
                "/sbin",
                "/bin",
            ]
            .map(PathBuf::from)
            .to_vec(),
            trees: ["/opt/hermes/bin", "/opt/hermes/.venv"]
                .map(PathBuf::from)
                .to_vec(),
        };
        for bad in [
            "/",
            "/etc",
            "/etc/ssl",
            "/etc/",
            "/usr",
            "/usr/local",
            "/usr/local/share/x",
            "/tmp",
            "/var",
            "/var/lib",
            "/var/log",
            "/var/cache",
            "/var/spool",
            "/var/tmp",
            "/var/run/x",
            "/lib",
            "/lib64",
            "/lib32",
            "/libx32",
            "/lib/x86_64-linux-gnu",
            "/home",
            "/root",
            "/root/.hermes",
            "/run",
            "/run/hermes",
            "/sys",
            "/proc",
            "/dev",
            "/dev/shm",
            "/boot",
            "/boot/efi",
            "/bin",
            "/sbin",
            "/srv",
            "/opt",
            "/mnt",
            "/media",
            "relative",
            "./x",
            "",
            "/opt/../etc",
            // the shim's directory, the venv and PATH, from the table above
            "/opt/hermes",
            "/opt/hermes/",
            "/opt/hermes/bin",
            "/opt/hermes/bin/sub",
            "/opt/hermes/.venv",
            "/opt/hermes/.venv/bin",
            "/opt/hermes/.venv/lib/python3.11",
        ] {
            assert!(
                refuse_root(Path::new(bad), &image).is_some(),
                "{bad:?} must be refused"
            );
        }
        for ok in [
            "/opt/data",
            "/opt/./data/",
            "/data",
            "/var/lib/hermes",
            "/var/log/hermes",
            "/home/hermes/.hermes",
            "/home/alice/hermes",
            "/srv/hermes",
            "/mnt/x",
            "/tmp/x",
            "/opt/hermes-data",
            "/opt/hermesx/bin",
        ] {
            assert_eq!(refuse_root(Path::new(ok), &image), None, "{ok:?}");
        }
        // A directory on PATH may hold a sweep root below it only where nothing else forbids.
        let path_only = Protected {
            dirs: vec![PathBuf::from("/opt/tools/bin")],
            trees: vec![],
        };
        assert!(refuse_root(Path::new("/opt/tools"), &path_only).is_some());
        assert_eq!(refuse_root(Path::new("/opt/tools/bin/x"), &path_only), None);
        assert_eq!(
            refuse_root(Path::new("/opt/hermes/"), &image),
            Some(RootRefusal::HoldsPrograms {
                root: "/opt/hermes".into(),
                held: "/opt/hermes/bin".into()
            })
        );
        let msg = refuse_root(Path::new("/opt/hermes"), &image)
            .unwrap()
            .to_string();
        assert!(
            msg.starts_with("/opt/hermes: overlaps /opt/hermes/bin,"),
            "{msg}"
        );
    }
}
