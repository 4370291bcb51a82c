//! `entry_points.txt` (the distribution's `[console_scripts]`, whose names become the shim's
//! links): the parser against a plain reading of the format, and the install plan over its
//! names, which links only plain names and refuses the rest in clean one-line messages.
#![no_main]

use std::ffi::OsStr;

use hermes_shim::fuzzing::{Found, console_scripts, plan};
use libfuzzer_sys::fuzz_target;

/// The `[console_scripts]` keys, read the plain way: `[section]` headers (spaces inside the
/// brackets allowed), `name = value` lines, comments starting with `#` or `;`; in file order,
/// each once.
fn plain(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') && line.len() >= 2 {
            section = line[1..line.len() - 1].trim().to_string();
            continue;
        }
        if section == "console_scripts"
            && let Some(eq) = line.find('=')
        {
            let key = line[..eq].trim().to_string();
            if !out.contains(&key) {
                out.push(key);
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let names = console_scripts(text);
    assert_eq!(names, plain(text));
    match plan(&names, OsStr::new("hermes-shim"), |_| Found::Nothing) {
        Ok(todo) => {
            assert_eq!(todo.len(), names.len());
            for (name, create) in &todo {
                assert!(*create);
                assert!(!name.is_empty() && name != "." && name != "..");
                assert!(!name.contains(['/', '\0']) && name != "hermes-shim");
            }
        }
        Err(refusals) => {
            assert!(!refusals.is_empty());
            for r in &refusals {
                assert!(!r.chars().any(char::is_control), "refusal {r:?}");
            }
        }
    }
});
