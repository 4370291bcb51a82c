//! The environment, read once: every variable any applet reads, in one validated value handed
//! to the applets, so that a bad value is the same error wherever it is used. The table of
//! variables here is also what `--help` prints and what the README's table must say (a test
//! checks it).

use std::ffi::OsString;
use std::fmt::{self, Write as _};
use std::path::{Component, Path, PathBuf};

use clap::ValueEnum;

use crate::escape::shown;
use crate::users::{UserError, UserSpec};

/// One variable an applet reads.
pub struct Variable {
    /// As written in the table (aliases included).
    pub names: &'static str,
    pub meaning: &'static str,
    pub default: &'static str,
}

/// Every variable, in the order the README and `--help` list them.
pub const VARIABLES: &[Variable] = &[
    Variable {
        names: "`HERMES_SHIM_USER`",
        meaning: "target user, `NAME`, `UID` or `UID:GID`",
        default: "`hermes`",
    },
    Variable {
        names: "`HERMES_SHIM_REAL_DIR`",
        meaning: "where the real console scripts are",
        default: "`/opt/hermes/.venv/bin`",
    },
    Variable {
        names: "`HERMES_DOCKER_EXEC_AS_ROOT`",
        meaning: "`1`/`true`/`yes` (any case) keeps root, with a warning: root then runs config and plugins the agent can write; anything else drops",
        default: "unset",
    },
    Variable {
        names: "`HERMES_HOME`",
        meaning: "fix-ownership's, boot's and entrypoint's PATH",
        default: "`/opt/data`",
    },
    Variable {
        names: "`HERMES_SHIM_EXCLUDE`",
        meaning: "fix-ownership excludes, colon-separated, relative to PATH",
        default: "none",
    },
    Variable {
        names: "`HERMES_SHIM_WALK`",
        meaning: "`auto`, `openat2` or `fallback`",
        default: "`auto`",
    },
    Variable {
        names: "`HERMES_UID`, `HERMES_GID` (aliases `PUID`, `PGID`)",
        meaning: "`boot`: remap the hermes user to these ids (1–65534) first",
        default: "unset",
    },
];

/// The README's table of [`VARIABLES`] (a test checks the README has it).
#[cfg(test)]
fn markdown_table() -> String {
    let mut out = String::from("| variable | meaning | default |\n|---|---|---|\n");
    for v in VARIABLES {
        let _ = writeln!(out, "| {} | {} | {} |", v.names, v.meaning, v.default);
    }
    out
}

/// The `--help` text of [`VARIABLES`]: the same rows without markdown.
pub fn help_text() -> String {
    let plain = |s: &str| s.replace('`', "");
    let mut out = String::from("Environment:\n");
    for v in VARIABLES {
        let _ = writeln!(
            out,
            "  {}\n      {} (default: {})",
            plain(v.names),
            plain(v.meaning),
            plain(v.default)
        );
    }
    out
}

/// The largest id a remap accepts, as upstream's start-up hook does: 65535 is (uid_t)-1 to the
/// 16-bit calls, and a user namespace of the usual 65536 ids maps nothing above it.
pub const MAX_REMAP_ID: u32 = 65534;

/// Where the real console scripts live unless `HERMES_SHIM_REAL_DIR` says otherwise.
pub const DEFAULT_REAL_DIR: &str = "/opt/hermes/.venv/bin";
/// The sweep's root unless `HERMES_HOME` says otherwise.
pub const DEFAULT_HOME: &str = "/opt/data";

/// How fix-ownership opens what it walks (`--walk`, `HERMES_SHIM_WALK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WalkChoice {
    /// openat2 when the kernel and seccomp allow it, else the fallback.
    Auto,
    /// openat2 only; refuse when it is unavailable.
    Openat2,
    /// openat with `O_NOFOLLOW` and a mount-id check on each handle.
    Fallback,
}

/// The ids `HERMES_UID`/`PUID` and `HERMES_GID`/`PGID` ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// A variable whose value no applet can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    pub name: &'static str,
    pub value: String,
    /// What would do instead.
    pub remedy: String,
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={:?} {}", self.name, self.value, self.remedy)
    }
}

impl std::error::Error for SettingError {}

/// The environment, read once and validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `HERMES_SHIM_USER`, as written (messages name it), and parsed.
    pub user_raw: Option<String>,
    pub user: Result<UserSpec, UserError>,
    pub real_dir: PathBuf,
    pub opt_out: bool,
    pub home: PathBuf,
    pub excludes: Result<Vec<PathBuf>, ExcludeError>,
    pub walk: Result<WalkChoice, SettingError>,
    pub remap: Result<Option<Request>, SettingError>,
    /// PATH, for the programs the entrypoint may run and the directories a sweep must spare.
    pub path: Option<OsString>,
}

impl Settings {
    /// This process's environment.
    pub fn from_env() -> Settings {
        Settings::from_vars(|k| std::env::var_os(k))
    }

    /// The settings `get` describes (tests pass a table).
    pub fn from_vars(get: impl Fn(&str) -> Option<OsString>) -> Settings {
        let text = |k: &str| get(k).map(|v| v.to_string_lossy().into_owned());
        let user_raw = text("HERMES_SHIM_USER");
        let user = match get("HERMES_SHIM_USER") {
            None => Ok(UserSpec::default()),
            Some(v) => match v.to_str() {
                Some(s) => UserSpec::parse(s),
                None => Err(UserError::BadSpec(v.to_string_lossy().into_owned())),
            },
        };
        let excludes = text("HERMES_SHIM_EXCLUDE")
            .unwrap_or_default()
            .split(':')
            .filter(|s| !s.is_empty())
            .map(|v| exclude_path_from("HERMES_SHIM_EXCLUDE", v))
            .collect();
        let walk = match text("HERMES_SHIM_WALK") {
            None => Ok(WalkChoice::Auto),
            Some(v) => WalkChoice::from_str(&v, true).map_err(|_| SettingError {
                name: "HERMES_SHIM_WALK",
                value: v,
                remedy: "is not a walk — give auto, openat2 or fallback".into(),
            }),
        };
        Settings {
            user_raw,
            user,
            real_dir: get("HERMES_SHIM_REAL_DIR")
                .map_or_else(|| PathBuf::from(DEFAULT_REAL_DIR), PathBuf::from),
            opt_out: opt_out(text("HERMES_DOCKER_EXEC_AS_ROOT").as_deref()),
            home: get("HERMES_HOME")
                .filter(|v| !v.is_empty())
                .map_or_else(|| PathBuf::from(DEFAULT_HOME), PathBuf::from),
            excludes,
            walk,
            remap: remap_request(&text),
            path: get("PATH"),
        }
    }
}

/// `HERMES_UID` (else `PUID`) and `HERMES_GID` (else `PGID`); `None` when neither is set.
fn remap_request(get: &dyn Fn(&str) -> Option<String>) -> Result<Option<Request>, SettingError> {
    let id = |primary: &'static str, alias: &'static str| -> Result<Option<u32>, SettingError> {
        // An empty value is unset: compose files often pass `PUID=${PUID}` through unset.
        let set = |k: &str| get(k).filter(|v| !v.is_empty());
        let Some((name, value)) = set(primary)
            .map(|v| (primary, v))
            .or_else(|| set(alias).map(|v| (alias, v)))
        else {
            return Ok(None);
        };
        match value.parse::<u32>() {
            Ok(n)
                if (1..=MAX_REMAP_ID).contains(&n)
                    && value.as_bytes().iter().all(u8::is_ascii_digit) =>
            {
                Ok(Some(n))
            }
            _ => Err(SettingError {
                name,
                value,
                remedy: format!("is not a usable id — give a number from 1 to {MAX_REMAP_ID}"),
            }),
        }
    };
    let req = Request {
        uid: id("HERMES_UID", "PUID")?,
        gid: id("HERMES_GID", "PGID")?,
    };
    Ok((req.uid.is_some() || req.gid.is_some()).then_some(req))
}

/// `HERMES_DOCKER_EXEC_AS_ROOT` opts out of the drop only for `1`, `true` or `yes` in any
/// letter case. Everything else, including whitespace around a true word, keeps the drop:
/// a typo must never leave root-owned files behind.
pub fn opt_out(value: Option<&str>) -> bool {
    matches!(value, Some(v) if v == "1" || v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("yes"))
}

/// An `--exclude` or `HERMES_SHIM_EXCLUDE` entry (`from` says which) that names nothing under
/// the sweep root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExcludeError {
    /// Absolute, or with `..`.
    NotRelative { from: &'static str, value: String },
    /// Empty, or only `.`.
    Empty { from: &'static str, value: String },
}

impl fmt::Display for ExcludeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExcludeError::NotRelative { from, value } => write!(
                f,
                "{from} {}: must be a path relative to the sweep root, without '..'",
                shown(Path::new(value))
            ),
            ExcludeError::Empty { from, value } => {
                write!(f, "{from} {value:?}: names no entry under the sweep root")
            }
        }
    }
}

/// Normalises an `--exclude` value to a relative path under the sweep root.
pub fn exclude_path(value: &str) -> Result<PathBuf, ExcludeError> {
    exclude_path_from("--exclude", value)
}

/// Normalises an exclude entry that came `from` an option or a variable (named by its error).
fn exclude_path_from(from: &'static str, value: &str) -> Result<PathBuf, ExcludeError> {
    let mut out = PathBuf::new();
    for c in Path::new(value).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => {
                return Err(ExcludeError::NotRelative {
                    from,
                    value: value.to_string(),
                });
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err(ExcludeError::Empty {
            from,
            value: value.to_string(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Settings {
        let pairs: Vec<(String, OsString)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        Settings::from_vars(|k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn defaults() {
        let s = with(&[]);
        assert_eq!(s.user, Ok(UserSpec::Name("hermes".into())));
        assert_eq!(s.real_dir, PathBuf::from("/opt/hermes/.venv/bin"));
        assert!(!s.opt_out);
        assert_eq!(s.home, PathBuf::from("/opt/data"));
        assert_eq!(s.excludes, Ok(vec![]));
        assert_eq!(s.walk, Ok(WalkChoice::Auto));
        assert_eq!(s.remap, Ok(None));
        assert_eq!(
            with(&[("HERMES_HOME", "")]).home,
            PathBuf::from("/opt/data")
        );
    }

    #[test]
    fn values() {
        let s = with(&[
            ("HERMES_SHIM_USER", "4321:99"),
            ("HERMES_SHIM_REAL_DIR", "/venv/bin"),
            ("HERMES_DOCKER_EXEC_AS_ROOT", "YES"),
            ("HERMES_HOME", "/srv/hermes"),
            ("HERMES_SHIM_EXCLUDE", "a/b::c/"),
            ("HERMES_SHIM_WALK", "Fallback"),
            ("PUID", "1000"),
        ]);
        assert_eq!(
            s.user,
            Ok(UserSpec::Ids {
                uid: 4321,
                gid: Some(99)
            })
        );
        assert_eq!(s.real_dir, PathBuf::from("/venv/bin"));
        assert!(s.opt_out);
        assert_eq!(s.home, PathBuf::from("/srv/hermes"));
        assert_eq!(
            s.excludes,
            Ok(vec![PathBuf::from("a/b"), PathBuf::from("c")])
        );
        assert_eq!(s.walk, Ok(WalkChoice::Fallback));
        assert_eq!(
            s.remap,
            Ok(Some(Request {
                uid: Some(1000),
                gid: None
            }))
        );
    }

    #[test]
    fn bad_values_are_one_error_each() {
        let walk = with(&[("HERMES_SHIM_WALK", "bogus")]).walk.unwrap_err();
        assert_eq!(
            walk.to_string(),
            r#"HERMES_SHIM_WALK="bogus" is not a walk — give auto, openat2 or fallback"#
        );
        let user = with(&[("HERMES_SHIM_USER", "a b")]).user.unwrap_err();
        assert_eq!(user, UserError::BadSpec("a b".into()));
        let x = with(&[("HERMES_SHIM_EXCLUDE", "ok:../up")])
            .excludes
            .unwrap_err();
        assert_eq!(
            x,
            ExcludeError::NotRelative {
                from: "HERMES_SHIM_EXCLUDE",
                value: "../up".into()
            }
        );
        assert_eq!(
            x.to_string(),
            "HERMES_SHIM_EXCLUDE ../up: must be a path relative to the sweep root, without '..'",
            "named by where it came from"
        );
    }

    #[test]
    fn remap_requests() {
        let r = |uid, gid| Ok(Some(Request { uid, gid }));
        let remap = |pairs: &[(&str, &str)]| with(pairs).remap;
        assert_eq!(remap(&[]), Ok(None));
        assert_eq!(
            remap(&[("PUID", ""), ("PGID", "")]),
            Ok(None),
            "empty is unset"
        );
        assert_eq!(remap(&[("HERMES_UID", "1000")]), r(Some(1000), None));
        assert_eq!(
            remap(&[("PUID", "1000"), ("PGID", "100")]),
            r(Some(1000), Some(100))
        );
        assert_eq!(
            remap(&[("HERMES_UID", "1000"), ("PUID", "5")]),
            r(Some(1000), None)
        );
        assert_eq!(
            remap(&[("HERMES_GID", "2000"), ("PGID", "5")]),
            r(None, Some(2000))
        );
        assert_eq!(remap(&[("PUID", "65534")]), r(Some(65534), None));
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
            let e = remap(&[("HERMES_UID", bad)]).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("HERMES_UID={bad:?} is not a usable id — give a number from 1 to 65534")
            );
            assert!(remap(&[("PGID", bad)]).is_err(), "PGID={bad:?}");
        }
    }

    #[test]
    fn the_readme_lists_exactly_these_variables() {
        let readme = include_str!("../README.md");
        assert!(
            readme.contains(&markdown_table()),
            "README's environment table differs from settings::VARIABLES; put this there:\n{}",
            markdown_table()
        );
    }

    #[test]
    fn truthiness_table() {
        for yes in ["1", "true", "TRUE", "True", "tRuE", "yes", "YES", "Yes"] {
            assert!(opt_out(Some(yes)), "{yes:?} opts out");
        }
        for no in [
            "0", "false", "no", "", "garbage", "2", " 1", "1 ", "y", "on", "01", "yes\n", "t",
        ] {
            assert!(!opt_out(Some(no)), "{no:?} must keep the drop");
        }
        assert!(!opt_out(None));
    }

    #[test]
    fn excludes() {
        assert_eq!(exclude_path("a/b/").unwrap(), PathBuf::from("a/b"));
        assert_eq!(exclude_path("./a//b").unwrap(), PathBuf::from("a/b"));
        for (bad, says) in [
            (
                "/abs",
                "--exclude /abs: must be a path relative to the sweep root",
            ),
            (
                "../x",
                "--exclude ../x: must be a path relative to the sweep root",
            ),
            ("a/../b", "without '..'"),
            // Shown escaped, on one line (what user_spec.rs in fuzz/ checks).
            (
                "/a\nb",
                "--exclude /a\\nb: must be a path relative to the sweep root",
            ),
            (".", "--exclude \".\": names no entry under the sweep root"),
            ("", "--exclude \"\": names no entry"),
        ] {
            let e = exclude_path(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }
}
