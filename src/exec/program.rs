//! The real program: found by name in `$HERMES_SHIM_REAL_DIR`, checked to be an executable file
//! other than this very binary; and this binary itself, refused when installed setuid or setgid.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use crate::escape::shown;
use crate::exit::Exit;
use crate::settings::DEFAULT_REAL_DIR;
use crate::sys;

/// Refuses when this process runs with real and effective ids apart, or from a binary with the
/// setuid or setgid bit: the shim must never be an escalation path.
// Real and effective uid and gid: the kernel's own names.
#[allow(clippy::similar_names)]
pub fn refuse_setuid(me: Option<&Metadata>) -> Option<Exit> {
    let (ruid, euid, rgid, egid) = sys::caller_ids();
    let bits = me.map_or(0, |m| m.mode() & 0o6000);
    if ruid != euid || rgid != egid || bits != 0 {
        say!(
            "hermes-shim: refusing to run setuid or setgid (uid {ruid}/{euid}, gid {rgid}/{egid}) — install it with mode 0755 and no s-bits"
        );
        return Some(Exit::NotRun);
    }
    None
}

/// This binary's own inode (for the setuid-bit and exec-loop checks); `None` without /proc.
pub fn self_exe() -> Option<Metadata> {
    std::fs::metadata("/proc/self/exe").ok()
}

/// Why the real program cannot be run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgramError {
    /// `HERMES_SHIM_REAL_DIR` is not absolute.
    RelativeDir(PathBuf),
    /// Not a plain program name (empty, `.`, `..`, or with a `/`).
    NotAName(OsString),
    /// stat(2) of the program failed.
    Unusable { path: PathBuf, errno: Errno },
    /// Not a regular file with an execute bit.
    NotExecutable(PathBuf),
    /// The program is this very binary: it would exec itself forever.
    IsShim(PathBuf),
}

impl ProgramError {
    /// 126 for what is configured wrong, 127 for what is missing.
    pub fn exit(&self) -> Exit {
        match self {
            ProgramError::RelativeDir(_) | ProgramError::IsShim(_) => Exit::NotRun,
            _ => Exit::NotFound,
        }
    }
}

impl fmt::Display for ProgramError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProgramError::RelativeDir(dir) => write!(
                f,
                "HERMES_SHIM_REAL_DIR={} is not absolute — set it to the venv's bin directory, e.g. {DEFAULT_REAL_DIR}",
                shown(dir)
            ),
            ProgramError::NotAName(name) => write!(
                f,
                "'{}' is not a program name — give a name such as hermes",
                shown(Path::new(name))
            ),
            ProgramError::Unusable { path, errno } => write!(
                f,
                "real program {} cannot be used: {errno} — install hermes-agent in that venv or set HERMES_SHIM_REAL_DIR",
                shown(path)
            ),
            ProgramError::NotExecutable(path) => write!(
                f,
                "real program {} is not an executable file — check its mode",
                shown(path)
            ),
            ProgramError::IsShim(path) => write!(
                f,
                "real program {} is hermes-shim itself — point HERMES_SHIM_REAL_DIR at the venv's bin directory",
                shown(path)
            ),
        }
    }
}

/// The real program for `name`: `$HERMES_SHIM_REAL_DIR/name`.
pub fn real_program(dir: &Path, name: &OsStr) -> Result<PathBuf, ProgramError> {
    if !dir.is_absolute() {
        return Err(ProgramError::RelativeDir(dir.to_path_buf()));
    }
    let plain = !name.is_empty() && name != "." && name != ".." && !name.as_bytes().contains(&b'/');
    if !plain {
        return Err(ProgramError::NotAName(name.to_os_string()));
    }
    Ok(dir.join(name))
}

/// Checks the real program exists, is an executable file, and is not this very binary
/// (a symlink loop back to the shim would exec itself forever).
pub fn check_program(path: &Path, me: Option<&Metadata>) -> Result<(), ProgramError> {
    let meta = std::fs::metadata(path).map_err(|e| ProgramError::Unusable {
        path: path.to_path_buf(),
        errno: sys::errno_of(&e),
    })?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(ProgramError::NotExecutable(path.to_path_buf()));
    }
    if let Some(me) = me
        && (me.dev(), me.ino()) == (meta.dev(), meta.ino())
    {
        return Err(ProgramError::IsShim(path.to_path_buf()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_program_names() {
        assert!(
            real_program(Path::new("/venv/bin"), OsStr::new("hermes"))
                .unwrap()
                .ends_with("hermes")
        );
        for bad in ["", ".", "..", "a/b", "/bin/sh"] {
            assert_eq!(
                real_program(Path::new("/venv/bin"), OsStr::new(bad))
                    .unwrap_err()
                    .exit(),
                Exit::NotFound,
                "{bad:?}"
            );
        }
        assert_eq!(
            real_program(Path::new("venv/bin"), OsStr::new("hermes"))
                .unwrap_err()
                .exit(),
            Exit::NotRun,
            "a relative HERMES_SHIM_REAL_DIR is refused"
        );
    }

    #[test]
    fn check_program_wants_an_executable_file_other_than_itself() {
        let sh = Path::new("/bin/sh");
        assert_eq!(check_program(sh, None), Ok(()));
        let other = std::fs::metadata("/etc/passwd").unwrap();
        assert_eq!(
            check_program(sh, Some(&other)),
            Ok(()),
            "another file is no loop"
        );
        let same = std::fs::metadata(sh).unwrap();
        assert_eq!(
            check_program(sh, Some(&same)),
            Err(ProgramError::IsShim(sh.into())),
            "the same inode by another name is a loop"
        );
        for not_a_program in ["/etc/passwd", "/"] {
            assert_eq!(
                check_program(Path::new(not_a_program), None),
                Err(ProgramError::NotExecutable(not_a_program.into())),
                "{not_a_program}"
            );
        }
        assert_eq!(
            check_program(Path::new("/nonexistent/hermes"), None),
            Err(ProgramError::Unusable {
                path: "/nonexistent/hermes".into(),
                errno: Errno::ENOENT
            })
        );
    }
}
