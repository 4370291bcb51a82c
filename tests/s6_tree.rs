//! Lints the shipped `s6-overlay/` tree (installed as /etc/s6-overlay in the image) for the
//! mistakes s6-overlay 3.2.3.2 only reports at container boot, if at all: a `type` with a typo,
//! CRLF line endings, a shebang in an execline `up`, a dependency or bundle member naming a
//! service that does not exist, both the old and the new `user` bundle layouts, scripts that are
//! not executable. Pure file checks, no root. The negative tests feed deliberately broken trees
//! to the same lint so a lint that accepts everything fails the suite.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::TempDir;

/// Services and bundles s6-overlay 3.2.3.2 itself defines; ours may depend on or contain them.
const BUILTINS: &[&str] = &[
    "base",
    "user",
    "user2",
    "legacy-cont-init",
    "legacy-services",
    "fix-attrs",
    "s6rc-fdholder",
    "s6rc-oneshot-runner",
];

/// The bundles s6-overlay 3.x reads from `user-bundles.d/`.
const USER_BUNDLES: &[&str] = &["user", "user2"];

/// Where the image installs the tree; absolute paths in `up` files point below it.
const INSTALL_ROOT: &str = "/etc/s6-overlay/";

fn shipped_tree() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("s6-overlay")
}

/// All regular files below `dir`, depth first (symlinks are reported, not followed).
fn files_below(dir: &Path, out: &mut Vec<PathBuf>, problems: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        problems.push(format!("{}: cannot read directory", dir.display()));
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            problems.push(format!("{}: symlink (ship a plain file)", path.display()));
        } else if meta.is_dir() {
            files_below(&path, out, problems);
        } else {
            out.push(path);
        }
    }
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 == 0o111)
}

/// Checks that every name listed in `dir` (a `dependencies.d` or `contents.d`) exists.
fn check_names(dir: &Path, services: &[String], problems: &mut Vec<String>) {
    for name in names_in(dir) {
        if !services.contains(&name) && !BUILTINS.contains(&name.as_str()) {
            problems.push(format!(
                "{}/{name}: names no shipped service and no s6-overlay built-in",
                dir.display()
            ));
        }
    }
}

/// Returns every problem found in the s6-overlay tree at `root`; empty means clean.
fn lint(root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let mut files = Vec::new();
    files_below(root, &mut files, &mut problems);

    for file in &files {
        let bytes = fs::read(file).unwrap_or_default();
        if bytes.contains(&b'\r') {
            problems.push(format!(
                "{}: contains CR bytes (use LF line endings)",
                file.display()
            ));
        }
        // Anything with a shebang is run as a program, so it must be executable.
        if bytes.starts_with(b"#!") && !is_executable(file) {
            problems.push(format!(
                "{}: has a shebang but is not executable",
                file.display()
            ));
        }
    }
    let scripts = root.join("scripts");
    for file in files.iter().filter(|f| f.starts_with(&scripts)) {
        if !is_executable(file) {
            problems.push(format!("{}: script is not executable", file.display()));
        }
    }

    if root.join("s6-rc.d/user").exists() && root.join("user-bundles.d/user").exists() {
        problems.push(
            "both s6-rc.d/user and user-bundles.d/user exist (3.2.3.2 then takes s6-rc.d/user and ignores user-bundles.d: what is listed there never starts)"
                .to_string(),
        );
    }

    let rc = root.join("s6-rc.d");
    let services = names_in(&rc);
    for name in &services {
        let dir = rc.join(name);
        let kind = fs::read_to_string(dir.join("type")).unwrap_or_default();
        let kind = kind.strip_suffix('\n').unwrap_or(&kind);
        match kind {
            "oneshot" => check_up(&dir.join("up"), root, &mut problems),
            "longrun" => {
                let run = dir.join("run");
                if !is_executable(&run) {
                    problems.push(format!(
                        "{}: longrun needs an executable run",
                        run.display()
                    ));
                }
            }
            "bundle" => check_names(&dir.join("contents.d"), &services, &mut problems),
            other => problems.push(format!(
                "{}/type: {other:?} is not exactly oneshot, longrun or bundle",
                dir.display()
            )),
        }
        check_names(&dir.join("dependencies.d"), &services, &mut problems);
    }

    let bundles = root.join("user-bundles.d");
    for bundle in names_in(&bundles) {
        if !USER_BUNDLES.contains(&bundle.as_str()) {
            problems.push(format!(
                "user-bundles.d/{bundle}: s6-overlay only reads {USER_BUNDLES:?}"
            ));
        }
        check_names(
            &bundles.join(&bundle).join("contents.d"),
            &services,
            &mut problems,
        );
    }
    problems
}

/// An `up` is one execline command line: no shebang, and a program shipped in this tree must be
/// there and executable.
fn check_up(up: &Path, root: &Path, problems: &mut Vec<String>) {
    let Ok(text) = fs::read_to_string(up) else {
        problems.push(format!("{}: oneshot without a readable up", up.display()));
        return;
    };
    if text.starts_with("#!") {
        problems.push(format!(
            "{}: up is execline, not a script: no shebang",
            up.display()
        ));
    }
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.len() != 1 {
        problems.push(format!(
            "{}: expected one command line, found {}",
            up.display(),
            lines.len()
        ));
    }
    let program = lines
        .first()
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("");
    if let Some(rel) = program.strip_prefix(INSTALL_ROOT) {
        let shipped = root.join(rel);
        if !shipped.is_file() || !is_executable(&shipped) {
            problems.push(format!(
                "{}: runs {program}, which the tree does not ship as an executable file",
                up.display()
            ));
        }
    }
}

#[test]
fn shipped_tree_is_clean() {
    let root = shipped_tree();
    assert!(
        root.join("s6-rc.d").is_dir(),
        "{} has no s6-rc.d",
        root.display()
    );
    let problems = lint(&root);
    assert!(
        problems.is_empty(),
        "s6-overlay tree problems:\n{}",
        problems.join("\n")
    );
}

#[test]
fn fix_ownership_oneshot_is_in_the_user_bundle() {
    let root = shipped_tree();
    let svc = root.join("s6-rc.d/hermes-fix-ownership");
    assert_eq!(fs::read_to_string(svc.join("type")).unwrap(), "oneshot\n");
    assert!(svc.join("dependencies.d/base").is_file());
    assert!(
        root.join("user-bundles.d/user/contents.d/hermes-fix-ownership")
            .is_file()
    );
    // `boot` does the whole start-up repair and says what it did; with-contenv gives it the
    // container's environment (HERMES_HOME, HERMES_SHIM_USER, PUID…), which /init withholds.
    assert_eq!(
        fs::read_to_string(svc.join("up")).unwrap(),
        "/command/with-contenv /opt/hermes/bin/hermes-shim boot\n"
    );
}

/// A temporary copy of a small valid tree that a test then breaks in one way.
struct Scratch(TempDir);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let tmp = TempDir::new(&format!("s6lint-{tag}"));
        let dir = tmp.path();
        let svc = dir.join("s6-rc.d/svc");
        fs::create_dir_all(svc.join("dependencies.d")).unwrap();
        fs::create_dir_all(dir.join("user-bundles.d/user/contents.d")).unwrap();
        fs::create_dir_all(dir.join("scripts")).unwrap();
        fs::write(svc.join("type"), "oneshot\n").unwrap();
        fs::write(svc.join("up"), "/etc/s6-overlay/scripts/svc\n").unwrap();
        fs::write(svc.join("dependencies.d/base"), "").unwrap();
        fs::write(dir.join("user-bundles.d/user/contents.d/svc"), "").unwrap();
        let script = dir.join("scripts/svc");
        fs::write(&script, "#!/command/with-contenv sh\ntrue\n").unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        Scratch(tmp)
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.0.path().join(rel)
    }
}

/// Breaks a fresh valid tree with `damage` and asserts the lint reports `expect`.
fn assert_caught(tag: &str, expect: &str, damage: impl FnOnce(&Scratch)) {
    let tree = Scratch::new(tag);
    assert_eq!(
        lint(tree.0.path()),
        Vec::<String>::new(),
        "{tag}: the valid scratch tree must lint clean"
    );
    damage(&tree);
    let problems = lint(tree.0.path());
    assert!(
        problems.iter().any(|p| p.contains(expect)),
        "{tag}: expected a problem containing {expect:?}, got {problems:?}"
    );
}

#[test]
fn lint_catches_broken_trees() {
    assert_caught("type-typo", "is not exactly", |t| {
        fs::write(t.path("s6-rc.d/svc/type"), "one-shot\n").unwrap();
    });
    assert_caught("type-trailing-space", "is not exactly", |t| {
        fs::write(t.path("s6-rc.d/svc/type"), "oneshot \n").unwrap();
    });
    assert_caught("crlf", "CR bytes", |t| {
        fs::write(t.path("s6-rc.d/svc/up"), "/etc/s6-overlay/scripts/svc\r\n").unwrap();
    });
    assert_caught("shebang-up", "no shebang", |t| {
        fs::write(
            t.path("s6-rc.d/svc/up"),
            "#!/bin/sh\n/etc/s6-overlay/scripts/svc\n",
        )
        .unwrap();
    });
    assert_caught("unknown-dependency", "names no shipped service", |t| {
        fs::write(t.path("s6-rc.d/svc/dependencies.d/nosuch"), "").unwrap();
    });
    assert_caught("unknown-bundle-member", "names no shipped service", |t| {
        fs::write(t.path("user-bundles.d/user/contents.d/nosuch"), "").unwrap();
    });
    assert_caught("both-user-layouts", "both s6-rc.d/user", |t| {
        fs::create_dir_all(t.path("s6-rc.d/user/contents.d")).unwrap();
        fs::write(t.path("s6-rc.d/user/type"), "bundle\n").unwrap();
    });
    assert_caught("script-not-executable", "not executable", |t| {
        fs::set_permissions(t.path("scripts/svc"), fs::Permissions::from_mode(0o644)).unwrap();
    });
    assert_caught("up-runs-missing-script", "does not ship", |t| {
        fs::remove_file(t.path("scripts/svc")).unwrap();
    });
    assert_caught("unknown-user-bundle", "only reads", |t| {
        fs::create_dir_all(t.path("user-bundles.d/users/contents.d")).unwrap();
    });
}
