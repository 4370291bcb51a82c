//! How a path from an untrusted writer is printed in a log line or a JSON report.
//!
//! Names under `$HERMES_HOME` are chosen by the agent, so what reaches a log must be
//! unambiguous and inert: distinct names always print distinctly (a name `a<LF>b` and a name
//! literally `a\nb` differ), no byte is lost (invalid UTF-8 is shown, not replaced), and nothing
//! can forge a line, move the cursor, hide itself or reorder the text around it. Unicode has
//! many characters that do one of those (line separators, bidirectional controls, invisible
//! joiners and variation selectors, and every right-to-left letter reorders its neighbours in a
//! bidi-aware viewer), so only printable ASCII prints as itself:
//!
//! | in the name | printed |
//! |---|---|
//! | printable ASCII other than `\` | itself |
//! | `\` | `\\` |
//! | newline, tab, carriage return | `\n`, `\t`, `\r` |
//! | any other character (control, non-ASCII) | `\u{e9}`, `\u{202e}` |
//! | a byte that is not UTF-8 | `\xff` |
//!
//! Every escape begins with `\` and `\` itself is escaped, so the mapping can be undone: two
//! names never print the same.

use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `p` as it is printed in logs and reports (see the module doc).
pub fn shown(p: &Path) -> String {
    let bytes = p.as_os_str().as_bytes();
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                ' '..='~' => out.push(c),
                c => {
                    let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
                }
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    fn of(bytes: &[u8]) -> String {
        shown(Path::new(OsStr::from_bytes(bytes)))
    }

    #[test]
    fn escapes() {
        let table: &[(&[u8], &str)] = &[
            (b"/opt/data/ok.json", "/opt/data/ok.json"),
            (
                "/x/caf\u{e9} \u{1f600}".as_bytes(),
                "/x/caf\\u{e9} \\u{1f600}",
            ),
            // Invisible or reordering, one of each kind the attack review used, and RTL letters.
            (
                "a\u{2060}\u{ad}\u{34f}\u{3164}\u{fe0f}\u{e0041}".as_bytes(),
                "a\\u{2060}\\u{ad}\\u{34f}\\u{3164}\\u{fe0f}\\u{e0041}",
            ),
            ("\u{5d0}\u{627}".as_bytes(), "\\u{5d0}\\u{627}"),
            (b"/x/a\nb", "/x/a\\nb"),
            (b"/x/a\\nb", "/x/a\\\\nb"),
            (b"/x/\t\r", "/x/\\t\\r"),
            (b"/x/\x1b[2J", "/x/\\u{1b}[2J"),
            (b"/x/\x7f", "/x/\\u{7f}"),
            ("/x/\u{85}".as_bytes(), "/x/\\u{85}"),
            ("/x/evil\u{202e}txt.sh".as_bytes(), "/x/evil\\u{202e}txt.sh"),
            ("/x/\u{2028}\u{2029}".as_bytes(), "/x/\\u{2028}\\u{2029}"),
            (
                "/x/\u{2066}\u{2069}\u{200f}".as_bytes(),
                "/x/\\u{2066}\\u{2069}\\u{200f}",
            ),
            (b"/x/\xff\xfe", "/x/\\xff\\xfe"),
            (b"/x/\xe2\x80", "/x/\\xe2\\x80"),
            (b"/x/\\xff", "/x/\\\\xff"),
        ];
        for (name, want) in table {
            assert_eq!(of(name), *want, "{name:?}");
        }
    }

    /// Every pair of distinct names prints distinctly: checked over all short names from an
    /// alphabet of the troublemakers (backslash, the letters escapes use, newline, a lone
    /// continuation byte, the pieces of U+202E, braces).
    #[test]
    fn distinct_names_print_distinctly() {
        let alphabet: &[u8] = b"\\nxu{}\n\x80\xe2\xae1";
        let mut seen = std::collections::HashMap::new();
        let mut name = Vec::new();
        for len in 0..=4u32 {
            for mut i in 0..alphabet.len().pow(len) {
                name.clear();
                for _ in 0..len {
                    name.push(alphabet[i % alphabet.len()]);
                    i /= alphabet.len();
                }
                let printed = of(&name);
                assert!(
                    !printed.contains(['\n', '\u{202e}']),
                    "{name:?} printed {printed:?}"
                );
                if let Some(other) = seen.insert(printed.clone(), name.clone()) {
                    panic!("{other:?} and {name:?} both print {printed:?}");
                }
            }
        }
    }
}
