//! The environment the settings table reads, any bytes in any variable: each value means what
//! the README's table says, and a value no applet can use is one clean line naming it.
#![no_main]

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use hermes_shim::fuzzing::{MAX_REMAP_ID, Settings, UserSpec, WalkChoice, exclude_path};
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 10] = [
    "HERMES_SHIM_USER",
    "HERMES_SHIM_EXCLUDE",
    "HERMES_SHIM_WALK",
    "HERMES_UID",
    "PUID",
    "HERMES_GID",
    "PGID",
    "HERMES_DOCKER_EXEC_AS_ROOT",
    "HERMES_HOME",
    "HERMES_SHIM_REAL_DIR",
];

fn one_line(message: &str) {
    assert!(
        !message.chars().any(char::is_control),
        "a refusal that is not one clean line: {message:?}"
    );
}

/// `HERMES_UID` (else `PUID`), or the gid pair: an empty value is unset; a set value is an id
/// from 1 to 65534 in plain digits, or refused.
fn remap_id(primary: Option<&[u8]>, alias: Option<&[u8]>) -> Result<Option<u32>, ()> {
    let Some(v) = primary
        .filter(|v| !v.is_empty())
        .or(alias.filter(|v| !v.is_empty()))
    else {
        return Ok(None);
    };
    let digits = std::str::from_utf8(v)
        .ok()
        .filter(|s| s.bytes().all(|b| b.is_ascii_digit()));
    match digits.and_then(|s| s.parse::<u32>().ok()) {
        Some(n) if (1..=MAX_REMAP_ID).contains(&n) => Ok(Some(n)),
        _ => Err(()),
    }
}

fuzz_target!(|data: &[u8]| {
    // NUL-separated values for the variables in order (no value holds a NUL in a real
    // environment); a value starting with 0xff leaves its variable unset.
    let values: Vec<Option<&[u8]>> = data
        .split(|&b| b == 0)
        .chain(std::iter::repeat(&[0xff_u8][..]))
        .take(NAMES.len())
        .map(|v| (v.first() != Some(&0xff)).then_some(v))
        .collect();
    let value = |name: &str| values[NAMES.iter().position(|n| *n == name).unwrap()];
    let s = Settings::from_vars(|k| {
        NAMES
            .iter()
            .position(|n| *n == k)
            .and_then(|i| values[i])
            .map(|v| OsStr::from_bytes(v).to_os_string())
    });
    let text = |name: &str| value(name).map(|v| String::from_utf8_lossy(v).into_owned());

    match (value("HERMES_SHIM_USER"), &s.user) {
        (None, Ok(spec)) => assert_eq!(*spec, UserSpec::Name("hermes".into())),
        (Some(v), user) => match (std::str::from_utf8(v), user) {
            (Ok(v), Ok(spec)) => assert_eq!(UserSpec::parse(v).as_ref(), Ok(spec)),
            (Ok(v), Err(_)) => assert!(UserSpec::parse(v).is_err()),
            (Err(_), Ok(_)) => panic!("a user spec that is not UTF-8 accepted"),
            (Err(_), Err(_)) => {}
        },
        (None, Err(e)) => panic!("no HERMES_SHIM_USER, yet {e}"),
    }
    if let Err(e) = &s.user {
        one_line(&e.to_string());
    }

    let pieces: Vec<String> = text("HERMES_SHIM_EXCLUDE")
        .unwrap_or_default()
        .split(':')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    match &s.excludes {
        Ok(paths) => {
            let want: Vec<PathBuf> = pieces.iter().map(|p| exclude_path(p).unwrap()).collect();
            assert_eq!(*paths, want);
        }
        Err(e) => {
            assert!(pieces.iter().any(|p| exclude_path(p).is_err()));
            one_line(&e.to_string());
        }
    }

    let walk = text("HERMES_SHIM_WALK").map(|w| w.to_ascii_lowercase());
    match (walk.as_deref(), &s.walk) {
        (None | Some("auto"), Ok(WalkChoice::Auto))
        | (Some("openat2"), Ok(WalkChoice::Openat2))
        | (Some("fallback"), Ok(WalkChoice::Fallback)) => {}
        (Some(w), Err(e)) if !["auto", "openat2", "fallback"].contains(&w) => {
            one_line(&e.to_string());
        }
        (w, got) => panic!("HERMES_SHIM_WALK {w:?} gave {got:?}"),
    }

    let uid = remap_id(value("HERMES_UID"), value("PUID"));
    let gid = remap_id(value("HERMES_GID"), value("PGID"));
    match (&s.remap, uid, gid) {
        (Ok(None), Ok(None), Ok(None)) => {}
        (Ok(Some(r)), Ok(u), Ok(g)) => {
            assert_eq!((r.uid, r.gid), (u, g));
            assert!(u.is_some() || g.is_some());
        }
        (Err(e), u, g) => {
            assert!(u.is_err() || (u.is_ok() && g.is_err()));
            one_line(&e.to_string());
        }
        (got, u, g) => panic!("remap {got:?}, want uid {u:?} gid {g:?}"),
    }

    let opt_out = value("HERMES_DOCKER_EXEC_AS_ROOT")
        .and_then(|v| std::str::from_utf8(v).ok())
        .is_some_and(|v| {
            v == "1" || v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("yes")
        });
    assert_eq!(s.opt_out, opt_out);

    let home = value("HERMES_HOME").filter(|v| !v.is_empty()).map_or_else(
        || PathBuf::from("/opt/data"),
        |v| PathBuf::from(OsString::from(OsStr::from_bytes(v))),
    );
    assert_eq!(s.home, home);
});
