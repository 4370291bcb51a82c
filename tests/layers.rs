//! The crate's layers (described in the README's "Layout and dependencies"): a module imports
//! only from the layers below its own, so the import graph has no circle and no arrow up.
//!
//! The check reads every `crate::` and `super::` path in the non-test code of `src/` (comments
//! and the `#[cfg(test)]` modules at the end of a file left out) and resolves each to the module
//! that holds it. Between two modules of the same parent, the importer must sit in a layer above
//! the imported one; a child may not import from its own ancestors (a parent module is the top
//! of its own directory). A module missing from the table fails the check: a new one is placed
//! in a layer on purpose.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// For each parent module (`""` is the crate), its children's layers from top to bottom; the
/// modules of one layer import nothing from each other.
const LAYERS: &[(&str, &[&[&str]])] = &[
    (
        "",
        &[
            // Above the applets: doctor, which asks boot's remap and socket plans what a start
            // would do, and (with the `fuzzing` feature) the parsers re-exported for fuzz/.
            &["doctor", "fuzzing"],
            // The applets.
            &["shim", "entrypoint", "boot", "install", "tini"],
            // What the applets are built from: the sweep and running a program as the user.
            &["fix", "exec"],
            &["cli", "record", "relay"],
            &["init", "settings", "etcfile"],
            &["users"],
            // Leaves: every syscall (the only module with `unsafe`), exit codes; below them
            // escaping, which the syscall layer's messages use too.
            &["sys", "exit"],
            &["escape"],
        ],
    ),
    ("boot", &[&["remap", "socket", "home"]]),
    ("boot::remap", &[&["plan"], &["error"]]),
    ("doctor", &[&["check"], &["scan"]]),
    ("exec", &[&["launch"], &["privdrop", "program", "recorded"]]),
    (
        "fix",
        &[
            &["prepare"],
            &["walk"],
            &["judge"],
            &["config", "frames", "queue", "verdict", "refusal"],
            &["roots", "rule", "scope"],
        ],
    ),
    ("users", &[&["gids"], &["records", "spec"]]),
    (
        "sys",
        &[&["envdir", "gidscan", "guard", "pty"], &["fs", "process"]],
    ),
    ("sys::fs", &[&["dents"]]),
    ("sys::guard", &[&["bpf"]]),
];

/// Test-only modules, outside the layers.
const TEST_ONLY: &[&str] = &["testing"];

/// A module's path below the crate, from its file under `src/` (`None` for the binary's files).
fn module_of(rel: &Path) -> Option<Vec<String>> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop()?;
    let stem = last.strip_suffix(".rs")?;
    match stem {
        "main" | "start" if parts.is_empty() => return None,
        "lib" if parts.is_empty() => {}
        "mod" => {}
        _ => parts.push(stem.to_string()),
    }
    Some(parts)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("src/ is readable") {
        let p = e.expect("a directory entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The file's code without comments and without its test modules (a `#[cfg(test)]` before a
/// `mod … {`: by this crate's habit, at the end of the file).
fn code(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") {
            let next = lines[i + 1..]
                .iter()
                .map(|l| l.trim_start())
                .find(|l| !l.starts_with("#[") && !l.starts_with("//"));
            if next.is_some_and(|l| {
                (l.starts_with("mod ") || l.starts_with("pub mod ")) && l.ends_with('{')
            }) {
                break;
            }
        }
        let without_comment = t.find("//").map_or(t, |at| &t[..at]);
        out.push_str(without_comment);
        out.push('\n');
    }
    out
}

/// Every path of a `use` tree or an expression that starts at `crate` or `super`, with the
/// braces of `use a::{b, c::{d}}` expanded.
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let word_start = i == 0 || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_');
        let rest: String = bytes[i..bytes.len().min(i + 7)].iter().collect();
        if word_start && (rest.starts_with("crate::") || rest.starts_with("super::")) {
            let (trees, end) = tree(&bytes, i);
            out.extend(trees);
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

/// Parses a path (with an optional brace group at its end) starting at `at`; returns its
/// expansions and where it ends.
fn tree(s: &[char], mut at: usize) -> (Vec<Vec<String>>, usize) {
    let mut prefix = Vec::new();
    loop {
        let start = at;
        while at < s.len() && (s[at].is_alphanumeric() || s[at] == '_') {
            at += 1;
        }
        if at > start {
            prefix.push(s[start..at].iter().collect::<String>());
        }
        if s.get(at) == Some(&':') && s.get(at + 1) == Some(&':') {
            at += 2;
            while s.get(at).is_some_and(|c| c.is_whitespace()) {
                at += 1;
            }
            if s.get(at) == Some(&'{') {
                at += 1;
                let mut out = Vec::new();
                loop {
                    while s.get(at).is_some_and(|c| c.is_whitespace() || *c == ',') {
                        at += 1;
                    }
                    match s.get(at) {
                        None => return (out, at),
                        Some('}') => return (out, at + 1),
                        _ => {}
                    }
                    let (inner, end) = tree(s, at);
                    for p in inner {
                        out.push(prefix.iter().cloned().chain(p).collect());
                    }
                    // `self` in a group names the prefix itself.
                    at = end.max(at + 1);
                }
            }
            continue;
        }
        return (vec![prefix], at);
    }
}

/// The module a path names or holds its last item, as a path from the crate root; `None` for
/// a path that leaves the crate's modules (a test-only module).
fn resolve(from: &[String], path: &[String], modules: &BTreeSet<Vec<String>>) -> Vec<String> {
    let mut here: Vec<String> = Vec::new();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => rest = &rest[1..],
        Some("super") => {
            here = from.to_vec();
            while rest.first().is_some_and(|p| p == "super") {
                here.pop();
                rest = &rest[1..];
            }
        }
        _ => unreachable!("only crate:: and super:: paths are collected"),
    }
    for part in rest {
        if part == "self" {
            continue;
        }
        let mut next = here.clone();
        next.push(part.clone());
        if !modules.contains(&next) {
            break;
        }
        here = next;
    }
    here
}

fn layer_of(parent: &[String], child: &str) -> Result<usize, String> {
    let key = parent.join("::");
    let (_, layers) = LAYERS
        .iter()
        .find(|(p, _)| *p == key)
        .ok_or_else(|| format!("no layers declared for the children of `{key}`"))?;
    layers
        .iter()
        .position(|l| l.contains(&child))
        .ok_or_else(|| {
            format!("module `{key}::{child}` is in no layer of tests/layers.rs — place it in one")
        })
}

/// What is wrong with `from` importing `to`, if anything.
fn arrow(from: &[String], to: &[String]) -> Result<(), String> {
    let name = |m: &[String]| {
        if m.is_empty() {
            "crate".to_string()
        } else {
            m.join("::")
        }
    };
    if from == to || to.first().is_some_and(|t| TEST_ONLY.contains(&t.as_str())) {
        return Ok(());
    }
    if from.starts_with(to) {
        return Err(format!(
            "`{}` imports from its own parent `{}`: move what it needs into a module below it",
            name(from),
            name(to)
        ));
    }
    if to.starts_with(from) {
        return Ok(());
    }
    let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
    let parent = &from[..common];
    let (f, t) = (
        layer_of(parent, &from[common])?,
        layer_of(parent, &to[common])?,
    );
    if f < t {
        Ok(())
    } else {
        Err(format!(
            "`{}` imports from `{}`, which is {} layer",
            name(from),
            name(to),
            if f == t { "in the same" } else { "in a higher" }
        ))
    }
}

#[test]
fn no_module_imports_from_its_own_layer_or_above() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut modules = BTreeSet::new();
    let mut sources = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let Some(m) = module_of(rel) else { continue };
        // A file of tests only, included from its module's file (`mod tests;`).
        if rel.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        modules.insert(m.clone());
        sources.push((m, std::fs::read_to_string(f).unwrap()));
    }
    assert!(modules.len() > 20, "found the crate's modules: {modules:?}");
    let mut wrong = BTreeSet::new();
    let mut arrows = 0;
    for (m, text) in &sources {
        // Every module sits in a layer, imported or not.
        if let Some((child, parent)) = m.split_last()
            && !TEST_ONLY.contains(&child.as_str())
            && let Err(e) = layer_of(parent, child)
        {
            wrong.insert(e);
        }
        if m.is_empty() {
            continue; // the crate root sits above everything
        }
        for p in paths(&code(text)) {
            let to = resolve(m, &p, &modules);
            arrows += 1;
            if let Err(e) = arrow(m, &to) {
                wrong.insert(e);
            }
        }
    }
    assert!(arrows > 100, "read the imports: {arrows}");
    assert!(
        wrong.is_empty(),
        "the layers are broken:\n{}",
        wrong.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn the_check_finds_an_arrow_up_a_circle_and_a_parent_import() {
    let m = |s: &str| -> Vec<String> {
        s.split("::")
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect()
    };
    assert!(arrow(&m("fix::walk"), &m("fix::judge")).is_ok());
    assert!(arrow(&m("fix::judge"), &m("fix::walk")).is_err(), "up");
    assert!(
        arrow(&m("fix::config"), &m("fix::queue")).is_err(),
        "same layer"
    );
    assert!(arrow(&m("fix::config"), &m("fix")).is_err(), "parent");
    assert!(
        arrow(&m("fix"), &m("fix::config")).is_ok(),
        "a parent uses its children"
    );
    assert!(arrow(&m("boot::remap"), &m("fix")).is_ok());
    assert!(arrow(&m("users"), &m("settings")).is_err());
    assert!(
        arrow(&m("newapplet"), &m("sys")).is_err(),
        "not in the table"
    );
    let modules: BTreeSet<Vec<String>> = [m("sys"), m("sys::fs"), m("fix"), m("fix::rule")]
        .into_iter()
        .collect();
    let code = code(
        "use crate::sys::{self, fs::{Kind, Stat}};\n// crate::fix::rule in a comment\nlet x = super::rule::decide(1);\n#[cfg(test)]\nmod tests {\n    use crate::fix;\n}\n",
    );
    let got: Vec<Vec<String>> = paths(&code)
        .iter()
        .map(|p| resolve(&m("fix::judge"), p, &modules))
        .collect();
    assert_eq!(
        got,
        [m("sys"), m("sys::fs"), m("sys::fs"), m("fix::rule")],
        "{code}"
    );
}
