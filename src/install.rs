//! The `install` applet: the shim's symlinks, one per console script of the hermes-agent
//! distribution in the venv, next to the shim itself.
//!
//! Reading the names from the distribution's `entry_points.txt` means a console script that a
//! later hermes-agent release adds is shimmed by rebuilding the image, with no Dockerfile change.
//! It only ever creates symlinks to the shim, leaves its own symlinks as they are (so it can run
//! again), and refuses, before changing anything, to replace whatever else has one of the names.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use crate::escape::shown;
use crate::exit::Exit;
use crate::settings::Settings;
use crate::sys;

const PREFIX: &str = "hermes-shim install";

/// The console script names in an `entry_points.txt` (its `[console_scripts]` section), in
/// file order, duplicates dropped.
pub fn console_scripts(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut in_section = false;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_section = section.trim() == "console_scripts";
        } else if in_section && let Some((name, _)) = line.split_once('=') {
            let name = name.trim().to_string();
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// A distribution name as it appears in a `.dist-info` directory name (PEP 427/503: runs of
/// `-`, `_` and `.` become `_`, compared without case).
fn normalized(dist: &str) -> String {
    let mut out = String::with_capacity(dist.len());
    for c in dist.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('_') {
                out.push('_');
            }
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// What exists at one link's place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Nothing,
    /// A symlink to the shim (by its file name, or by its absolute path).
    OurLink,
    /// Anything else, described.
    Other(String),
}

/// What to do for each name; `Err` lists the refusals (nothing may change then).
pub fn plan(
    names: &[String],
    shim_name: &OsStr,
    found: impl Fn(&str) -> Found,
) -> Result<Vec<(String, bool)>, Vec<String>> {
    let mut todo = Vec::new();
    let mut refused = Vec::new();
    for name in names {
        let plain = !name.is_empty()
            && name != "."
            && name != ".."
            && !name.contains(['/', '\0'])
            && OsStr::new(name) != shim_name;
        if !plain {
            refused.push(format!(
                "'{}' is not a name a link can have here",
                shown(Path::new(name))
            ));
            continue;
        }
        match found(name) {
            Found::Nothing => todo.push((name.clone(), true)),
            Found::OurLink => todo.push((name.clone(), false)),
            Found::Other(what) => {
                refused.push(format!("{} exists and is {what}", shown(Path::new(name))));
            }
        }
    }
    if refused.is_empty() {
        Ok(todo)
    } else {
        Err(refused)
    }
}

fn found_at(path: &Path, shim: &Path) -> Found {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Found::Nothing;
    };
    if !meta.file_type().is_symlink() {
        return Found::Other("not a symlink".into());
    }
    match std::fs::read_link(path) {
        Ok(t) if t == shim || Some(t.as_os_str()) == shim.file_name() => Found::OurLink,
        Ok(t) => Found::Other(format!("a symlink to {}", shown(&t))),
        Err(e) => Found::Other(format!("unreadable ({e})")),
    }
}

/// Why the applet refuses (nothing changed, or `created` links before the failing one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallError {
    /// /proc/self/exe cannot be read.
    NoSelf,
    /// This binary's path has no directory.
    NoDir(PathBuf),
    /// `venv/lib` cannot be listed.
    NotAVenv {
        lib: PathBuf,
        venv: PathBuf,
        errno: Errno,
    },
    NotInstalled {
        dist: String,
        venv: PathBuf,
    },
    Several {
        count: usize,
        dist: String,
        venv: PathBuf,
    },
    Unreadable {
        file: PathBuf,
        errno: Errno,
    },
    NoScripts(PathBuf),
    /// `refused` of the `names` are taken by something else (each named on a line before).
    InTheWay {
        refused: usize,
        names: usize,
    },
    Link {
        link: PathBuf,
        errno: Errno,
        created: usize,
    },
}

impl fmt::Display for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstallError::NoSelf => {
                f.write_str("cannot find this binary (/proc/self/exe) — is /proc mounted?")
            }
            InstallError::NoDir(me) => write!(f, "{} has no directory", shown(me)),
            InstallError::NotAVenv { lib, venv, errno } => {
                write!(f, "{}: {errno} — is {} a venv?", shown(lib), shown(venv))
            }
            InstallError::NotInstalled { dist, venv } => write!(
                f,
                "no {dist} installed in {} — pip install it there first, or pass --venv",
                shown(venv)
            ),
            InstallError::Several { count, dist, venv } => write!(
                f,
                "{count} installations of {dist} in {} — keep one",
                shown(venv)
            ),
            InstallError::Unreadable { file, errno } => write!(f, "{}: {errno}", shown(file)),
            InstallError::NoScripts(file) => {
                write!(f, "{} lists no console script", shown(file))
            }
            InstallError::InTheWay { refused, names } => write!(
                f,
                "nothing changed; remove or rename what is in the way, then run it again ({refused} of {names} names)"
            ),
            InstallError::Link {
                link,
                errno,
                created,
            } => write!(
                f,
                "cannot create {}: {errno} ({created} created before it)",
                shown(link)
            ),
        }
    }
}

/// The `entry_points.txt` of `dist` in the venv (any `lib/python*/site-packages`).
fn entry_points(venv: &Path, dist: &str) -> Result<PathBuf, InstallError> {
    let want = normalized(dist);
    let mut found = Vec::new();
    let lib = venv.join("lib");
    let pythons = std::fs::read_dir(&lib).map_err(|e| InstallError::NotAVenv {
        lib: lib.clone(),
        venv: venv.to_path_buf(),
        errno: sys::errno_of(&e),
    })?;
    for py in pythons.flatten() {
        let site = py.path().join("site-packages");
        for entry in std::fs::read_dir(&site).into_iter().flatten().flatten() {
            let file = entry.file_name();
            let name = file.to_string_lossy();
            let Some(stem) = name.strip_suffix(".dist-info") else {
                continue;
            };
            let dist_part = stem.split_once('-').map_or(stem, |(d, _)| d);
            if normalized(dist_part) == want {
                found.push(entry.path().join("entry_points.txt"));
            }
        }
    }
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(InstallError::NotInstalled {
            dist: dist.to_string(),
            venv: venv.to_path_buf(),
        }),
        _ => Err(InstallError::Several {
            count: found.len(),
            dist: dist.to_string(),
            venv: venv.to_path_buf(),
        }),
    }
}

/// Runs the applet; returns its exit code.
pub fn run(venv: Option<PathBuf>, dist: &str, dry_run: bool, settings: &Settings) -> Exit {
    match install(venv, dist, dry_run, settings) {
        Ok(()) => Exit::Ok,
        Err(e) => {
            say!("{PREFIX}: {e}");
            Exit::Refused
        }
    }
}

fn install(
    venv: Option<PathBuf>,
    dist: &str,
    dry_run: bool,
    settings: &Settings,
) -> Result<(), InstallError> {
    let me = std::fs::read_link("/proc/self/exe").map_err(|_| InstallError::NoSelf)?;
    let (Some(dir), Some(shim_name)) = (me.parent(), me.file_name()) else {
        return Err(InstallError::NoDir(me.clone()));
    };
    let venv = venv.unwrap_or_else(|| {
        settings
            .real_dir
            .parent()
            .map_or_else(|| PathBuf::from("/"), Path::to_path_buf)
    });
    let file = entry_points(&venv, dist)?;
    let names = match std::fs::read_to_string(&file) {
        Ok(text) => console_scripts(&text),
        Err(e) => {
            return Err(InstallError::Unreadable {
                errno: sys::errno_of(&e),
                file,
            });
        }
    };
    if names.is_empty() {
        return Err(InstallError::NoScripts(file));
    }
    let todo = match plan(&names, shim_name, |n| found_at(&dir.join(n), &me)) {
        Ok(todo) => todo,
        Err(refused) => {
            for r in &refused {
                say!("{PREFIX}: refusing: {}/{r}", shown(dir));
            }
            return Err(InstallError::InTheWay {
                refused: refused.len(),
                names: names.len(),
            });
        }
    };
    let mut created = 0;
    for (name, create) in &todo {
        let link = dir.join(name);
        if !create {
            say!(
                "{PREFIX}: {} already points at {}",
                shown(&link),
                shown(Path::new(shim_name))
            );
            continue;
        }
        if !dry_run && let Err(e) = std::os::unix::fs::symlink(shim_name, &link) {
            return Err(InstallError::Link {
                errno: sys::errno_of(&e),
                link,
                created,
            });
        }
        created += 1;
        let verb = if dry_run { "would create" } else { "created" };
        say!(
            "{PREFIX}: {verb} {} -> {}",
            shown(&link),
            shown(Path::new(shim_name))
        );
    }
    say!(
        "{PREFIX}: {} console scripts of {dist} in {}: {created} {}, {} already there",
        todo.len(),
        shown(&venv),
        if dry_run {
            "would be created"
        } else {
            "created"
        },
        todo.len() - created
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `fuzz/fuzz_targets/entry_points.rs`: a name from `entry_points.txt` holding
    /// control characters was printed raw in its refusal.
    #[test]
    fn a_refused_name_is_shown_escaped() {
        let shim = OsStr::new("hermes-shim");
        let names = ["herm\u{f}\0-acp".to_string(), "a\nb/c".to_string()];
        assert_eq!(
            plan(&names, shim, |_| Found::Nothing),
            Err(vec![
                r"'herm\u{f}\u{0}-acp' is not a name a link can have here".to_string(),
                r"'a\nb/c' is not a name a link can have here".to_string(),
            ])
        );
        let taken = plan(&["x\ry".to_string()], shim, |_| {
            Found::Other("a file".into())
        });
        assert_eq!(taken, Err(vec![r"x\ry exists and is a file".to_string()]));
    }

    #[test]
    fn a_venv_that_cannot_be_listed_is_named_with_its_errno() {
        let venv = Path::new("/nonexistent/hermes-shim-venv");
        let e = entry_points(venv, "hermes-agent").unwrap_err();
        assert_eq!(
            e,
            InstallError::NotAVenv {
                lib: venv.join("lib"),
                venv: venv.into(),
                errno: Errno::ENOENT
            }
        );
        assert_eq!(
            e.to_string(),
            "/nonexistent/hermes-shim-venv/lib: ENOENT: No such file or directory — is /nonexistent/hermes-shim-venv a venv?"
        );
    }

    #[test]
    fn console_scripts_come_from_their_section_only() {
        let text = "\
[console_scripts]
hermes = hermes_cli.main:main
hermes-acp = acp_adapter.entry:main
# a comment
# hermes-old = old_cli:main
; hermes-off = off:main
  hermes-agent=run_agent:main

[gui_scripts]
hermes-gui = gui:main
[console_scripts]
hermes = again:main
";
        assert_eq!(
            console_scripts(text),
            ["hermes", "hermes-acp", "hermes-agent"]
        );
        assert!(console_scripts("[other]\na = b\n").is_empty());
        assert!(console_scripts("").is_empty());
    }

    #[test]
    fn distribution_names_normalise() {
        for (a, b) in [
            ("hermes-agent", "hermes_agent"),
            ("Hermes_Agent", "hermes_agent"),
            ("hermes.-agent", "hermes_agent"),
        ] {
            assert_eq!(normalized(a), b);
        }
    }

    #[test]
    fn plans_create_keep_and_refuse() {
        let names: Vec<String> = ["hermes", "hermes-agent", "hermes-acp"]
            .map(String::from)
            .to_vec();
        let shim = OsStr::new("hermes-shim");
        let fresh = plan(&names, shim, |_| Found::Nothing).unwrap();
        assert!(fresh.iter().all(|(_, create)| *create));
        let again = plan(&names, shim, |_| Found::OurLink).unwrap();
        assert!(again.iter().all(|(_, create)| !*create), "idempotent");
        let mixed = plan(&names, shim, |n| {
            if n == "hermes-acp" {
                Found::Other("not a symlink".into())
            } else {
                Found::Nothing
            }
        });
        assert_eq!(
            mixed,
            Err(vec!["hermes-acp exists and is not a symlink".into()])
        );
        for bad in ["", ".", "..", "a/b", "hermes-shim"] {
            assert!(
                plan(&[bad.to_string()], shim, |_| Found::Nothing).is_err(),
                "{bad:?}"
            );
        }
    }
}
