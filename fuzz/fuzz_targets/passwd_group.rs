//! /etc/passwd and /etc/group text: the parser against a plain reading of the format, and the
//! editor (one field changed, a line added) leaving every other entry as it was.
#![no_main]

use std::ops::Range;

use hermes_shim::fuzzing::{
    Evidence, LowGids, UserError, UserSpec, group_entries, passwd_entries, resolve_in, with_field,
    with_line,
};
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

/// The README's resolution of a target user in this text (as passwd and as group): the first
/// entry with that name (or uid); a `UID:GID` spec takes its own gid, a bare uid with no entry
/// its own number; the supplementary groups are the primary one plus every group listing the
/// entry's name as a member; uid 0, gid 0 among them, or (where the gids below 100 cannot be
/// shown to grant nothing) such a gid, are refused. `Ok((name, uid, gid, groups, home))`, or
/// the refusal's kind.
fn resolution(spec: &UserSpec, text: &str, low_unknown: bool) -> Result<Resolved, &'static str> {
    let users: Vec<Passwd> = passwd(text);
    let entry = users.iter().find(|u| match spec {
        UserSpec::Name(n) => u.0 == n,
        UserSpec::Ids { uid, .. } => u.1 == *uid,
    });
    let (uid, gid) = match (spec, entry) {
        (UserSpec::Ids { uid, gid: Some(g) }, _) => (*uid, *g),
        (_, Some(e)) => (e.1, e.2),
        (UserSpec::Ids { uid, gid: None }, None) => (*uid, *uid),
        (UserSpec::Name(_), None) => return Err("unknown"),
    };
    if uid == 0 {
        return Err("root");
    }
    let mut groups = vec![gid];
    if let Some(e) = entry {
        for g in group(text) {
            if g.2
                .split(',')
                .map(str::trim)
                .any(|m| !m.is_empty() && m == e.0)
            {
                groups.push(g.1);
            }
        }
    }
    groups.sort_unstable();
    groups.dedup();
    if groups.contains(&0) {
        return Err("root group");
    }
    if low_unknown && groups.iter().any(|g| (1..=99).contains(g)) {
        return Err("system group");
    }
    let home = entry.map_or("/", |e| e.3).to_string();
    Ok((entry.map(|e| e.0.to_string()), uid, gid, groups, home))
}

type Resolved = (Option<String>, u32, u32, Vec<u32>, String);

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

    // Resolving a target user: a name, a uid, or uid:gid of an entry (or of none).
    if let [a, b, c, ..] = data {
        let low_unknown = a & 1 == 1;
        let low = if low_unknown {
            LowGids::known(Evidence::Unknown("fuzz".into()))
        } else {
            LowGids::known(Evidence::Found(std::collections::BTreeMap::new()))
        };
        let e = got.get(usize::from(*b) % got.len().max(1));
        let spec = match (c % 4, e) {
            (0, Some(e)) => UserSpec::Name(e.0.to_string()),
            (1, Some(e)) => UserSpec::Ids {
                uid: e.1,
                gid: None,
            },
            (2, Some(e)) => UserSpec::Ids {
                uid: e.1,
                gid: Some(u32::from(*a)),
            },
            (3, _) => UserSpec::Name("no-such-user".into()),
            _ => UserSpec::Ids {
                uid: u32::from(*b),
                gid: None,
            },
        };
        let got = resolve_in(&spec, text, text, &low).map(|t| {
            let home = t.home.to_str().unwrap().to_string();
            (t.name, t.uid, t.gid, t.groups, home)
        });
        let kind = |e: &UserError| match e {
            UserError::Unknown(_) => "unknown",
            UserError::Root(_) => "root",
            UserError::RootGroup(_) => "root group",
            UserError::SystemGroup { .. } => "system group",
            _ => "other",
        };
        assert_eq!(
            got.as_ref().map_err(kind),
            resolution(&spec, text, low_unknown)
                .as_ref()
                .map_err(|k| *k),
            "{spec:?}"
        );
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
