//! `HERMES_SHIM_USER` / `--user` (`NAME`, `UID` or `UID:GID`), `--also-from` (`UID:GID`, `UID:`
//! or `:GID`) and `--exclude`: what parses prints back as itself, no id is 0 where refused or
//! `(uid_t)-1`, and every refusal is one line with nothing raw in it.
#![no_main]

use std::path::Component;

use hermes_shim::fuzzing::{Previous, UserSpec, exclude_path};
use libfuzzer_sys::fuzz_target;

/// One line, no control character: a hostile value cannot forge or hide a line.
fn one_line(message: &str) {
    assert!(
        !message.chars().any(char::is_control),
        "a refusal that is not one clean line: {message:?}"
    );
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    match UserSpec::parse(s) {
        Ok(spec) => {
            assert_eq!(
                UserSpec::parse(&spec.to_string()).as_ref(),
                Ok(&spec),
                "{s:?}"
            );
            match &spec {
                UserSpec::Ids { uid, gid } => {
                    assert_ne!(*uid, u32::MAX);
                    assert_ne!(*gid, Some(u32::MAX));
                    let (u, g) = s.split_once(':').unwrap_or((s, ""));
                    assert!(digits(u) && (gid.is_none() || digits(g)), "{s:?}");
                }
                UserSpec::Name(name) => {
                    assert_eq!(name, s);
                    assert!(!name.is_empty() && !name.contains(':') && !digits(name));
                    assert!(!name.chars().any(|c| c.is_whitespace() || c.is_control()));
                }
            }
        }
        Err(e) => one_line(&e.to_string()),
    }
    match Previous::parse(s) {
        Ok(p) => {
            assert_eq!(Previous::parse(&p.spec()), Ok(p), "{s:?}");
            assert!(p.uid.is_some() || p.gid.is_some());
            for id in [p.uid, p.gid].into_iter().flatten() {
                assert!(id != 0 && id != u32::MAX, "{s:?}");
            }
        }
        Err(e) => one_line(&e.to_string()),
    }
    match exclude_path(s) {
        Ok(p) => {
            assert!(p.components().next().is_some(), "{s:?}");
            assert!(
                p.components().all(|c| matches!(c, Component::Normal(_))),
                "{s:?} -> {}",
                p.display()
            );
        }
        Err(e) => one_line(&e.to_string()),
    }
});
