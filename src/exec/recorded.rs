//! The start-up environment s6-overlay records, for a root `docker exec`.
//!
//! Under s6-overlay, the container's environment and what start-up scripts add to it live in
//! `/run/s6/container_environment`, one file per variable; `with-contenv` gives them to the
//! main program and services, but a `docker exec` starts with the engine's environment only.
//! When the shim drops, the variables recorded there that the exec's own environment lacks are
//! added, so `docker exec -e` still wins. The values are read as `with-contenv` reads them
//! (`s6-envdir -Lf`): the whole file, one trailing newline cut, NUL bytes made newlines, an
//! empty file meaning no variable.
//!
//! Threat model: those files decide what the program runs with (a `PYTHONPATH`, say), so only
//! root may have written them. The directory is read only when it is root's and no other user
//! can write it, only regular files of root's are taken, and names that are not variable names
//! are skipped. A missing directory (the image without s6-overlay) costs two failed opens.

use std::ffi::{CStr, CString};
use std::path::Path;

use crate::sys::envdir::{self, File, Listing};
use crate::sys::fs::Stat;

/// Where s6-overlay keeps the container's environment.
pub const DIR: &str = "/run/s6/container_environment";

/// Never taken from the record: what the drop sets itself for the target user, and what
/// describes the process that made the record rather than this one (its working directory,
/// a shell's depth and last command).
const NOT_RECORDED: [&[u8]; 7] = [
    b"HOME", b"USER", b"LOGNAME", b"PWD", b"OLDPWD", b"SHLVL", b"_",
];

/// The longest string the kernel takes into an environment, its NUL included
/// (`MAX_ARG_STRLEN`: 32 pages, and pages are 4 KiB at least). One longer would fail the whole
/// exec with E2BIG, so it is left out.
const MAX_ARG_STRLEN: usize = 32 * 4096;

/// Whether a directory with this status may be read: root's, and writable by nobody else
/// (group write only for root's group).
pub fn trusted(st: &Stat) -> bool {
    st.uid == 0 && st.mode & 0o002 == 0 && (st.mode & 0o020 == 0 || st.gid == 0)
}

/// A portable variable name: a letter or `_`, then letters, digits and `_`.
pub fn is_var_name(name: &[u8]) -> bool {
    match name.split_first() {
        Some((first, rest)) => {
            (first.is_ascii_alphabetic() || *first == b'_')
                && rest.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
        }
        None => false,
    }
}

/// The value a file gives its variable, as `s6-envdir -Lf` makes it; `None` for an empty file.
pub fn value_of(content: &[u8]) -> Option<Vec<u8>> {
    if content.is_empty() {
        return None;
    }
    let body = content.strip_suffix(b"\n").unwrap_or(content);
    Some(
        body.iter()
            .map(|b| if *b == 0 { b'\n' } else { *b })
            .collect(),
    )
}

/// The `NAME=value` strings of `files` to add to an environment `own`: valid names, regular
/// files of root's, not set in `own`, not one of [`NOT_RECORDED`], within [`MAX_ARG_STRLEN`].
/// Sorted by name, so the program sees the same order every time.
pub fn missing(own: &[&CStr], files: &[File]) -> Vec<CString> {
    let set = |name: &[u8]| {
        own.iter().any(|kv| {
            let kv = kv.to_bytes();
            kv.len() > name.len() && kv.starts_with(name) && kv[name.len()] == b'='
        })
    };
    let mut add: Vec<CString> = files
        .iter()
        .filter(|f| f.uid == 0 && is_var_name(&f.name))
        .filter(|f| !NOT_RECORDED.contains(&f.name.as_slice()) && !set(&f.name))
        .filter_map(|f| {
            let value = value_of(f.content.as_deref()?)?;
            CString::new([&f.name[..], b"=", &value].concat()).ok()
        })
        .filter(|kv| kv.as_bytes_with_nul().len() <= MAX_ARG_STRLEN)
        .collect();
    add.sort();
    add
}

/// Reads the recorded files of `dir`, while still root; says in one line why none are taken
/// when the directory is there but cannot be trusted or read. Nothing when it is missing.
pub fn read(dir: &Path) -> Listing {
    let none = Listing {
        files: Vec::new(),
        left: 0,
    };
    let shown = dir.display();
    match envdir::open_dir(dir) {
        Ok(None) => none,
        Ok(Some((_, st))) if !trusted(&st) => {
            say!(
                "hermes-shim: WARNING: {shown} is not root's alone (owner uid {}, gid {}, mode {:04o}); its variables are not added — the start-up scripts must keep it root's, 0755",
                st.uid,
                st.gid,
                st.mode
            );
            none
        }
        Ok(Some((fd, _))) => match envdir::list(&fd) {
            Ok(listing) => {
                if listing.left > 0 {
                    say!(
                        "hermes-shim: WARNING: {shown} holds more than {} files, {} bytes in all or a file over {} bytes; entries not added: {}",
                        envdir::MAX_FILES,
                        envdir::MAX_TOTAL,
                        envdir::MAX_VALUE,
                        listing.left
                    );
                }
                listing
            }
            Err(e) => {
                say!("hermes-shim: WARNING: cannot read {shown}: {e}; its variables are not added");
                none
            }
        },
        Err(e) => {
            say!("hermes-shim: WARNING: cannot open {shown}: {e}; its variables are not added");
            none
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fs::Kind;

    fn stat(uid: u32, gid: u32, mode: u32) -> Stat {
        Stat {
            dev: 1,
            ino: 2,
            kind: Kind::Dir,
            uid,
            gid,
            nlink: 2,
            mode,
            mnt_id: 3,
        }
    }

    #[test]
    fn only_a_directory_of_roots_alone_is_trusted() {
        for (uid, gid, mode, want) in [
            (0, 0, 0o755, true),
            (0, 0, 0o700, true),
            (0, 0, 0o775, true),
            (0, 0, 0o1755, true),
            (0, 10000, 0o755, true),
            (0, 10000, 0o775, false),
            (0, 0, 0o757, false),
            (0, 0, 0o1777, false),
            (10000, 0, 0o755, false),
            (10000, 10000, 0o700, false),
        ] {
            assert_eq!(trusted(&stat(uid, gid, mode)), want, "{uid}:{gid} {mode:o}");
        }
    }

    #[test]
    fn variable_names() {
        for ok in ["A", "_", "PATH", "s6_x", "X1", "_9"] {
            assert!(is_var_name(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "", "1A", "A=B", "A-B", "A B", ".hidden", "Ä", "A\nB", "S6.x",
        ] {
            assert!(!is_var_name(bad.as_bytes()), "{bad:?}");
        }
    }

    #[test]
    fn values_as_with_contenv_reads_them() {
        assert_eq!(value_of(b""), None);
        assert_eq!(value_of(b"\n"), Some(vec![]));
        assert_eq!(value_of(b"x"), Some(b"x".to_vec()));
        assert_eq!(value_of(b"x\n"), Some(b"x".to_vec()));
        assert_eq!(value_of(b"x\n\n"), Some(b"x\n".to_vec()));
        assert_eq!(value_of(b"a b\nc "), Some(b"a b\nc ".to_vec()));
        assert_eq!(value_of(b"a\0b"), Some(b"a\nb".to_vec()));
    }

    fn file(name: &str, uid: u32, content: Option<&str>) -> File {
        File {
            name: name.into(),
            uid,
            content: content.map(|c| c.as_bytes().to_vec()),
        }
    }

    #[test]
    fn only_what_the_exec_did_not_set_is_added() {
        let own = [
            c"PATH=/usr/bin",
            c"SET=by-exec",
            c"EMPTYSET=",
            c"HOME=/root",
            // A string with no `=` sets nothing, even when it is exactly a recorded name.
            c"BARE",
        ];
        let files = [
            file("ZED", 0, Some("z\n")),
            file("BROWSER", 0, Some("/opt/browser")),
            file("SET", 0, Some("recorded")),
            file("EMPTYSET", 0, Some("recorded")),
            file("PATH", 0, Some("/recorded")),
            file("HOME", 0, Some("/root")),
            file("USER", 0, Some("root")),
            file("LOGNAME", 0, Some("root")),
            file("PWD", 0, Some("/")),
            file("OLDPWD", 0, Some("/")),
            file("SHLVL", 0, Some("1")),
            file("_", 0, Some("/init")),
            file("EMPTY", 0, Some("")),
            file("NOTROOTS", 10000, Some("x")),
            file("A-B", 0, Some("x")),
            file("UNREAD", 0, None),
            file("SE", 0, Some("prefix of SET, not set itself")),
            file("BARE", 0, Some("recorded")),
            // The longest value the kernel takes with its name, and one byte more.
            file("EDGE", 0, Some(&"e".repeat(MAX_ARG_STRLEN - 6))),
            file("OVER", 0, Some(&"o".repeat(MAX_ARG_STRLEN - 5))),
        ];
        let got: Vec<String> = missing(&own, &files)
            .into_iter()
            .map(|c| c.into_string().unwrap())
            .collect();
        let edge = format!("EDGE={}", "e".repeat(MAX_ARG_STRLEN - 6));
        assert_eq!(
            got,
            [
                "BARE=recorded",
                "BROWSER=/opt/browser",
                &edge,
                "SE=prefix of SET, not set itself",
                "ZED=z"
            ]
        );
    }
}
