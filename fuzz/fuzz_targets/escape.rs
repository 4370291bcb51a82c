//! `escape::shown`, how every name from the agent is printed: only printable ASCII comes out,
//! and the input can be read back from it exactly, so distinct names never print alike.
#![no_main]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use hermes_shim::fuzzing::shown;
use libfuzzer_sys::fuzz_target;

/// Reads the escapes back (`\\`, `\n`, `\t`, `\r`, `\u{hex}`, `\xhh`); `None` for text that no
/// name prints as.
fn unescape(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(u8::try_from(c).ok()?);
            continue;
        }
        match it.next()? {
            '\\' => out.push(b'\\'),
            'n' => out.push(b'\n'),
            't' => out.push(b'\t'),
            'r' => out.push(b'\r'),
            'x' => {
                let hex: String = [it.next()?, it.next()?].iter().collect();
                out.push(u8::from_str_radix(&hex, 16).ok()?);
            }
            'u' => {
                if it.next()? != '{' {
                    return None;
                }
                let hex: String = it.by_ref().take_while(|&c| c != '}').collect();
                let c = char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?;
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
            }
            _ => return None,
        }
    }
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let out = shown(Path::new(OsStr::from_bytes(data)));
    assert!(
        out.bytes().all(|b| (b' '..=b'~').contains(&b)),
        "not printable ASCII: {out:?}"
    );
    assert_eq!(
        unescape(&out).as_deref(),
        Some(data),
        "{out:?} reads back as another name"
    );
    // Printable ASCII without a backslash prints as itself.
    if data
        .iter()
        .all(|b| (b' '..=b'~').contains(b) && *b != b'\\')
    {
        assert_eq!(out.as_bytes(), data);
    }
});
