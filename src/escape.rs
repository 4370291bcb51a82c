//! How a path from an untrusted writer is printed in a log line or a JSON report.
//!
//! Names under `$HERMES_HOME` are chosen by the agent, so what reaches a log must be
//! unambiguous and inert: distinct names always print distinctly (a name `a<LF>b` and a name
//! literally `a\nb` differ), no byte is lost (invalid UTF-8 is shown, not replaced), and nothing
//! can forge a line, move the cursor or reorder the text (line and paragraph separators and the
//! bidirectional controls such as U+202E are escaped). The escapes:
//!
//! | in the name | printed |
//! |---|---|
//! | `\` | `\\` |
//! | newline, tab, carriage return | `\n`, `\t`, `\r` |
//! | other control characters (C0, DEL, C1) | `\u{1b}` |
//! | U+061C, U+200B–U+200F, U+2028–U+202E, U+2066–U+2069, U+FEFF | `\u{202e}` |
//! | a byte that is not UTF-8 | `\xff` |
//!
//! Everything else prints as itself. Every escape begins with `\` and `\` itself is escaped,
//! so the mapping can be undone: two names never print the same.

use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Characters that are invisible or rearrange the text around them.
fn hidden(c: char) -> bool {
    matches!(c,
        '\u{061c}'
        | '\u{200b}'..='\u{200f}'
        | '\u{2028}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}'
        | '\u{feff}')
}

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
                c if c.is_control() || hidden(c) => {
                    let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
                }
                c => out.push(c),
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
                "/x/caf\u{e9} \u{1f600}",
            ),
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
