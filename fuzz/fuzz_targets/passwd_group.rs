//! /etc/passwd and /etc/group text: the parser against a plain reading of the format, and the
//! editor (one field changed, a line added) leaving every other entry as it was.
#![no_main]

use std::ops::Range;

use hermes_shim::fuzzing::{group_entries, passwd_entries, with_field, with_line};
use libfuzzer_sys::fuzz_target;

/// The records of `text` with exactly `n` fields, read the plain way: one per line, the line
/// ending (`\n`, `\r\n`) not part of it, blank lines, comments and NIS compat lines (`+`, `-`)
/// left out, as libc's readers do; each with its span in `text`.
fn plain(text: &str, n: usize) -> Vec<(Vec<&str>, Range<usize>)> {
    let mut out = Vec::new();
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let start = at;
        at += line.len();
        let body = line.strip_suffix('\n').unwrap_or(line);
        let body = body.trim_end_matches('\r');
        let body = body.trim_end_matches('\n');
        if body.trim().is_empty() || body.starts_with(['#', '+', '-']) {
            continue;
        }
        let fields: Vec<&str> = body.split(':').collect();
        if fields.len() == n && !fields[0].is_empty() {
            out.push((fields, start..start + body.len()));
        }
    }
    out
}

type Passwd<'a> = (&'a str, u32, u32, &'a str, Range<usize>);
type Group<'a> = (&'a str, u32, &'a str, Range<usize>);

fn passwd(text: &str) -> Vec<Passwd<'_>> {
    passwd_entries(text)
        .map(|e| (e.name, e.uid, e.gid, e.home, e.span))
        .collect()
}

fn group(text: &str) -> Vec<Group<'_>> {
    group_entries(text)
        .map(|e| (e.name, e.gid, e.member_list, e.span))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let want: Vec<Passwd> = plain(text, 7)
        .into_iter()
        .filter_map(|(f, span)| Some((f[0], f[2].parse().ok()?, f[3].parse().ok()?, f[5], span)))
        .collect();
    let got = passwd(text);
    assert_eq!(got, want, "passwd entries");
    let want: Vec<Group> = plain(text, 4)
        .into_iter()
        .filter_map(|(f, span)| Some((f[0], f[2].parse().ok()?, f[3], span)))
        .collect();
    assert_eq!(group(text), want, "group entries");

    // Editing one field of one entry changes that field and nothing else.
    if let Some(k) = data
        .first()
        .map(|b| usize::from(*b))
        .filter(|_| !got.is_empty())
    {
        let k = k % got.len();
        let span = got[k].4.clone();
        for (index, value) in [(0, "fz"), (2, "4242"), (3, "4343"), (5, "/fz")] {
            let edited = with_field(text, &span, index, value);
            let after = passwd(&edited);
            assert_eq!(
                after.len(),
                got.len(),
                "entries after editing field {index}"
            );
            for (i, (a, b)) in after.iter().zip(&got).enumerate() {
                let (mut b, a) = (b.clone(), a.clone());
                if i == k {
                    match index {
                        0 => b.0 = value,
                        2 => b.1 = 4242,
                        3 => b.2 = 4343,
                        _ => b.3 = value,
                    }
                }
                assert_eq!((a.0, a.1, a.2, a.3), (b.0, b.1, b.2, b.3), "entry {i}");
            }
        }
    }

    // A line added comes last, after every entry as it was.
    let line = "fz:x:4242:4343::/fz:/bin/sh";
    let added = with_line(text, line);
    assert!(added.starts_with(text));
    let after = passwd(&added);
    let old: Vec<_> = got.iter().map(|e| (e.0, e.1, e.2, e.3)).collect();
    let kept: Vec<_> = after.iter().map(|e| (e.0, e.1, e.2, e.3)).collect();
    assert_eq!(
        kept.split_last().map(|(last, rest)| (*last, rest.to_vec())),
        Some((("fz", 4242, 4343, "/fz"), old))
    );
});
