//! What the operator asks for (`NAME`, `UID` or `UID:GID`), and why it may not become a usable
//! target.

use std::fmt;
use std::path::Path;

use nix::errno::Errno;

use crate::escape::shown;

/// The user name used when neither `--user` nor `HERMES_SHIM_USER` says otherwise.
pub const DEFAULT_USER: &str = "hermes";

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
    /// A gid [`super::gid_use`] refuses as a system gid, named as [`super::system_gid_name`]
    /// does; as the user's own gid, or (`member`) through /etc/group.
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
