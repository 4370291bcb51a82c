//! The README and `docs/`, kept in step with the code: every WARNING and refusal line the applets
//! can print has a row in the README's troubleshooting table and every row still matches a line
//! in `src/`; every relative link and anchor resolves; the README stays a short read that opens
//! with the two set-up commands. (The environment table is checked by `settings.rs`'s own test.)

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The lines the applets print that are progress, not trouble: each fragment must still match
/// a line in `src/` (or the list is stale), and no troubleshooting row is wanted for them.
const INFORMATIONAL: &[&str] = &[
    "started the program as pid",
    "reaped zombie process",
    "the program ended:",
    "passing signal",
    "already points at",
    "console scripts of",
    "created group '",
    "added '",
    "(owner …:…, mode 0700; missing parents root's, 0755)",
    "left behind by a start that was cut short",
    "remapped user '",
    "the start-up repair already ran in this container start",
    "no start-up repair has run in this container start",
    "walking … by",
    "entries; skipped",
    "hermes-shim doctor … as uid",
];

/// The source files of the binary, without the ones only tests compile.
fn sources() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![repo().join("src")];
    while let Some(d) = dirs.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("src/testing.rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The string literal starting at or after `from`: its text (escapes left as written) and the
/// index just past it.
fn literal_after(s: &str, from: usize) -> (String, usize) {
    let b = s.as_bytes();
    let start = from + s[from..].find('"').expect("a string literal") + 1;
    let mut i = start;
    while b[i] != b'"' {
        i += if b[i] == b'\\' { 2 } else { 1 };
    }
    (s[start..i].to_string(), i + 1)
}

/// Where the block opened just before `from` closes (string literals skipped).
fn block_end(s: &str, from: usize) -> usize {
    let b = s.as_bytes();
    let (mut depth, mut i) = (1, from);
    while depth > 0 {
        match b[i] {
            b'{' => depth += 1,
            b'}' => depth -= 1,
            b'"' => i = literal_after(s, i).1 - 1,
            b'\'' if b.get(i + 2) == Some(&b'\'') => i += 2,
            _ => {}
        }
        i += 1;
    }
    i
}

/// Every message of the applets, as a format string whose placeholders are shown as `…`: the
/// first literal of each `say!`, the literals of every `Display` impl (the refusal and error
/// types), and each `format!` that builds a whole line (`hermes-shim…`) or a WARNING. Only
/// messages with words besides placeholders and the `hermes-shim APPLET:` prefix count.
fn messages() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for p in sources() {
        let text = read(&p);
        // The test module written inline at the end of a file; one in a file of its own
        // (`mod tests;`, exec/privdrop.rs) leaves the code after it to be read.
        let code = text
            .find("#[cfg(test)]\nmod tests {")
            .map_or(text.as_str(), |i| &text[..i]);
        let file = p.strip_prefix(repo()).unwrap().display().to_string();
        let mut add = |m: String| {
            if words(&m) >= 2 {
                out.insert((shown(&m), file.clone()));
            }
        };
        for (i, _) in code.match_indices("say!(") {
            add(literal_after(code, i).0);
        }
        for (i, _) in code.match_indices("format!(") {
            // A format string given as a literal (not, say, the `say!` macro's own `$($arg)*`).
            if !code[i + "format!(".len()..].trim_start().starts_with('"') {
                continue;
            }
            let m = literal_after(code, i).0;
            if m.contains("WARNING") || m.starts_with("hermes-shim") {
                add(m);
            }
        }
        for (i, _) in code.match_indices("Display for ") {
            let open = i + code[i..].find('{').unwrap() + 1;
            let block = &code[open..block_end(code, open)];
            for call in ["write!(", "write_str("] {
                for (j, _) in block.match_indices(call) {
                    add(literal_after(block, j).0);
                }
            }
        }
    }
    out
}

/// A format string with every `{…}` placeholder shown as `…`.
fn shown(m: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in m.chars() {
        match c {
            '{' => {
                if depth == 0 {
                    out.push('…');
                }
                depth += 1;
            }
            '}' => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Words of two letters or more, the placeholders and the `hermes-shim APPLET:` prefix aside.
fn words(m: &str) -> usize {
    let s = shown(m);
    let text = s.strip_prefix("hermes-shim").map_or(s.as_str(), |r| {
        r.split_once(':').map_or(r, |(_, rest)| rest)
    });
    text.split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| w.len() >= 2)
        .count()
}

/// The code spans in the first column of the rows of the README's troubleshooting table.
fn troubleshooting_fragments(readme: &str) -> Vec<String> {
    let start = readme
        .find("\n## Troubleshooting\n")
        .expect("a Troubleshooting section");
    let rest = &readme[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    let mut out = Vec::new();
    for row in rest[..end].lines().filter(|l| l.starts_with("| `")) {
        let first = row[1..].split(" | ").next().unwrap();
        let mut spans = first.split('`');
        spans.next();
        while let Some(span) = spans.next() {
            out.push(span.to_string());
            spans.next();
        }
    }
    out
}

#[test]
fn troubleshooting_has_every_warning_and_refusal_and_no_stale_row() {
    let readme = read(&repo().join("README.md"));
    let fragments = troubleshooting_fragments(&readme);
    assert!(fragments.len() >= 40, "{fragments:?}");
    let messages = messages();
    assert!(
        messages.len() >= 80,
        "the scan of src/ found too little: {messages:?}"
    );
    let matches = |f: &str| messages.iter().filter(|(m, _)| m.contains(f)).count();
    let stale: Vec<_> = fragments.iter().filter(|f| matches(f) == 0).collect();
    assert!(
        stale.is_empty(),
        "README troubleshooting rows that match no line in src/ (remove them): {stale:?}"
    );
    let stale: Vec<_> = INFORMATIONAL.iter().filter(|f| matches(f) == 0).collect();
    assert!(
        stale.is_empty(),
        "INFORMATIONAL fragments that match nothing: {stale:?}"
    );
    let missing: Vec<_> = messages
        .iter()
        .filter(|(m, _)| {
            !fragments.iter().any(|f| m.contains(f.as_str()))
                && !INFORMATIONAL.iter().any(|f| m.contains(f))
        })
        .map(|(m, file)| format!("{file}: {m}"))
        .collect();
    assert!(
        missing.is_empty(),
        "lines the applets print that the README's troubleshooting table lacks (add a row, with what it means and what to do):\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_message_scan_sees_each_kind_of_line() {
    let all: Vec<String> = messages().into_iter().map(|(m, _)| m).collect();
    let has = |f: &str| all.iter().any(|m| m.contains(f));
    // A say! WARNING, a Display refusal, a format!-built WARNING, a multi-line say!.
    assert!(has("WARNING: the uid/gid remap was REFUSED"));
    assert!(has("who could rename another directory in under this name"));
    assert!(has("ownership repair failed (…); starting anyway"));
    assert!(has("chown is not permitted here"));
    assert!(!has("hermes-shim-unit"), "src/testing.rs is for tests only");
    assert!(
        !all.iter().any(|m| m.trim() == "…"),
        "bare placeholders carry no words"
    );
}

/// Markdown links outside code: `[text](target)`.
fn links(md: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fence = false;
    for line in md.lines() {
        if line.trim_start().starts_with("```") {
            fence = !fence;
            continue;
        }
        if fence {
            continue;
        }
        // Code spans hold no links.
        let prose: String = line
            .split('`')
            .enumerate()
            .filter(|(i, _)| i % 2 == 0)
            .map(|(_, s)| s)
            .collect::<Vec<_>>()
            .join(" ");
        for (i, _) in prose.match_indices("](") {
            let rest = &prose[i + 2..];
            if let Some(end) = rest.find(')') {
                out.push(rest[..end].to_string());
            }
        }
    }
    out
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(md: &str) -> BTreeSet<String> {
    let mut fence = false;
    let mut out = BTreeSet::new();
    for line in md.lines() {
        if line.trim_start().starts_with("```") {
            fence = !fence;
        } else if !fence && line.starts_with('#') {
            out.insert(slug(line.trim_start_matches('#')));
        }
    }
    out
}

fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![repo().join("README.md")];
    let mut docs: Vec<PathBuf> = fs::read_dir(repo().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

#[test]
fn every_link_in_the_readme_and_docs_resolves() {
    let mut checked = 0;
    let mut broken = Vec::new();
    for file in markdown_files() {
        let md = read(&file);
        for link in links(&md) {
            if link.starts_with("http://") || link.starts_with("https://") {
                broken.push(format!(
                    "{}: {link}: no external links (nothing here can check them offline)",
                    file.display()
                ));
                continue;
            }
            checked += 1;
            let (path, anchor) = link.split_once('#').unwrap_or((&link, ""));
            let target = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            if !target.exists() {
                broken.push(format!("{}: {link}: no such file", file.display()));
            } else if !anchor.is_empty() && !anchors(&read(&target)).contains(anchor) {
                broken.push(format!("{}: {link}: no such heading", file.display()));
            }
        }
    }
    assert!(checked >= 15, "too few links found: {checked}");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn every_doc_is_linked_from_the_readme() {
    let readme = read(&repo().join("README.md"));
    let linked: BTreeSet<String> = links(&readme).into_iter().collect();
    for file in markdown_files().iter().skip(1) {
        let name = format!("docs/{}", file.file_name().unwrap().to_string_lossy());
        assert!(
            linked
                .iter()
                .any(|l| l.split('#').next() == Some(name.as_str())),
            "{name} is not linked from the README"
        );
    }
}

#[test]
fn the_readme_is_a_short_read_that_opens_with_the_two_commands() {
    let readme = read(&repo().join("README.md"));
    let lines = readme.lines().count();
    assert!(
        lines <= 300,
        "README.md has {lines} lines; keep it under 300 (move detail to docs/)"
    );
    let first_block: Vec<&str> = readme
        .split("```")
        .nth(1)
        .expect("a code block")
        .lines()
        .skip(1)
        .collect();
    assert!(
        first_block[0].starts_with("docker/demo.sh "),
        "{first_block:?}"
    );
    assert!(
        first_block[1].starts_with("tests/run-all.sh "),
        "{first_block:?}"
    );
    for section in [
        "## Environment",
        "## Exit codes",
        "## Troubleshooting",
        "## Layout and dependencies",
    ] {
        assert!(
            readme.contains(&format!("\n{section}\n")),
            "README lacks {section}"
        );
    }
}

#[test]
fn slugs_and_links_are_parsed_as_github_does() {
    assert_eq!(slug(" This repository's image"), "this-repositorys-image");
    assert_eq!(slug(" Run it on…"), "run-it-on");
    assert_eq!(slug(" CI and timings"), "ci-and-timings");
    assert_eq!(
        links("see [a](docs/a.md#x) and `[no](code.md)`\n```\n[no](fenced.md)\n```\n[b](#y)"),
        ["docs/a.md#x", "#y"]
    );
}
