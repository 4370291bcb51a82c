//! The one parser for /etc/passwd and /etc/group lines, borrowed from the text with each line's
//! span, and the editor that changes one field of one line and leaves every other byte alone.
//! Lenient the way libc is: comments, blank lines, NIS `+`/`-` lines and malformed lines are
//! skipped, and the first of duplicate entries wins (that is what `getpwnam` returns).

use std::ops::Range;

/// One /etc/passwd line, as far as we use it, borrowed from the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry<'a> {
    pub name: &'a str,
    pub uid: u32,
    pub gid: u32,
    pub home: &'a str,
    /// Where the line lies in the text (without its line ending), for the editor.
    pub span: Range<usize>,
}

/// One /etc/group line, borrowed from the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry<'a> {
    pub name: &'a str,
    pub gid: u32,
    /// The member list as written (comma-separated).
    pub member_list: &'a str,
    pub span: Range<usize>,
}

impl<'a> GroupEntry<'a> {
    /// The member names.
    pub fn members(&self) -> impl Iterator<Item = &'a str> {
        self.member_list
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
    }
}

/// The fields of each line worth parsing (not blank, not a comment, not an NIS compat entry)
/// that has exactly `N` of them, with the line's span; other lines are skipped, as libc does.
fn records<const N: usize>(text: &str) -> impl Iterator<Item = ([&str; N], Range<usize>)> {
    let mut at = 0;
    text.split_inclusive('\n').filter_map(move |line| {
        let start = at;
        at += line.len();
        let body = line.trim_end_matches(['\n', '\r']);
        if body.trim().is_empty() || body.starts_with(['#', '+', '-']) {
            return None;
        }
        // One pass over the bytes (':' is ASCII, so every cut is a char boundary): the shim
        // parses passwd and group in front of every exec, and a split per field costs more.
        let mut record = [""; N];
        let (mut n, mut from) = (0, 0);
        for (i, b) in body.bytes().enumerate() {
            if b == b':' {
                *record.get_mut(n)? = &body[from..i];
                (n, from) = (n + 1, i + 1);
            }
        }
        *record.get_mut(n)? = &body[from..];
        (n + 1 == N).then_some((record, start..start + body.len()))
    })
}

/// The entries of /etc/passwd text, in order; malformed lines are skipped. Borrowed, so a
/// lookup allocates nothing: the shim does one in front of every exec.
pub fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    records(text).filter_map(|([name, _, uid, gid, _, home, _], span)| {
        (!name.is_empty()).then_some(())?;
        Some(PasswdEntry {
            name,
            uid: uid.parse().ok()?,
            gid: gid.parse().ok()?,
            home,
            span,
        })
    })
}

/// The entries of /etc/group text, in order; malformed lines are skipped.
pub fn group_entries(text: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    records(text).filter_map(|([name, _, gid, member_list], span)| {
        (!name.is_empty()).then_some(())?;
        Some(GroupEntry {
            name,
            gid: gid.parse().ok()?,
            member_list,
            span,
        })
    })
}

/// `text` with field `index` of the line at `span` (from [`passwd_entries`] or
/// [`group_entries`]) set to `value`; every other byte is kept.
pub fn with_field(text: &str, span: &Range<usize>, index: usize, value: &str) -> String {
    let line = &text[span.clone()];
    let mut fields: Vec<&str> = line.split(':').collect();
    fields[index] = value;
    [&text[..span.start], &fields.join(":"), &text[span.end..]].concat()
}

/// `text` with each `(index, value)` of `values` set in the line at `span`, in one edit.
pub fn with_fields(text: &str, span: &Range<usize>, values: &[(usize, String)]) -> String {
    let line = &text[span.clone()];
    let mut fields: Vec<&str> = line.split(':').collect();
    for (index, value) in values {
        fields[*index] = value;
    }
    [&text[..span.start], &fields.join(":"), &text[span.end..]].concat()
}

/// `text` with `line` added at the end (after a line ending, if the text lacks its last one).
pub fn with_line(text: &str, line: &str) -> String {
    let mut out = String::with_capacity(text.len() + line.len() + 2);
    out.push_str(text);
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(line);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::tests::{GROUP_TEXT, PASSWD_TEXT};

    #[test]
    fn passwd_skips_comments_malformed_and_nis() {
        let users: Vec<_> = passwd_entries(PASSWD_TEXT).collect();
        let names: Vec<_> = users.iter().map(|u| u.name).collect();
        assert_eq!(
            names,
            ["root", "hermes", "hermes", "toor", "nogroup0", "alice"]
        );
        assert_eq!(users[1].home, "/opt/data");
        assert_eq!(
            &PASSWD_TEXT[users[1].span.clone()],
            "hermes:x:10000:10000::/opt/data:/bin/sh",
            "the span is the line, without its ending"
        );
    }

    #[test]
    fn group_skips_malformed_and_trims_members() {
        let groups: Vec<_> = group_entries(GROUP_TEXT).collect();
        let names: Vec<_> = groups.iter().map(|g| g.name).collect();
        assert_eq!(names, ["root", "hermes", "docker", "crew", "users"]);
        assert_eq!(groups[3].members().collect::<Vec<_>>(), ["hermes", "bob"]);
        assert_eq!(groups[0].members().count(), 0);
    }

    #[test]
    fn the_editor_changes_one_field_of_one_line_and_nothing_else() {
        let text = "root:x:0:0::/root:/bin/sh\r\nhermes:x:10000:10000::/opt/data:/bin/sh";
        let e = passwd_entries(text).nth(1).unwrap();
        assert_eq!(
            with_field(text, &e.span, 2, "7"),
            "root:x:0:0::/root:/bin/sh\r\nhermes:x:7:10000::/opt/data:/bin/sh"
        );
        let g = group_entries("a:x:1:\nb:x:2:u\r\nc:x:3:\n").nth(1).unwrap();
        assert_eq!(
            with_field("a:x:1:\nb:x:2:u\r\nc:x:3:\n", &g.span, 3, "u,v"),
            "a:x:1:\nb:x:2:u,v\r\nc:x:3:\n"
        );
        assert_eq!(with_line("a:x:1:", "b:x:2:"), "a:x:1:\nb:x:2:\n");
        assert_eq!(with_line("a:x:1:\n", "b:x:2:"), "a:x:1:\nb:x:2:\n");
        assert_eq!(with_line("", "b:x:2:"), "b:x:2:\n");
    }
}
