//! Integration tests of `hermes-shim install`, driving a copy of the built binary placed in a
//! fresh directory beside a made-up venv: it only ever creates symlinks there, so no root is
//! needed and nothing outside the temporary tree is touched.

mod common;

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::process::Command;

use common::TempDir;

/// A shim directory holding a copy of the binary, and a venv whose hermes-agent lists `scripts`.
struct Setup {
    _dir: TempDir,
    bin: PathBuf,
    venv: PathBuf,
}

impl Setup {
    fn new(tag: &str, scripts: &[&str]) -> Setup {
        let dir = TempDir::new(tag);
        let bin = dir.path().join("bin");
        fs::create_dir(&bin).unwrap();
        common::copy_bin(&bin.join("hermes-shim"), 0o755);
        let venv = dir.path().join("venv");
        fs::create_dir_all(venv.join("bin")).unwrap();
        let s = Setup {
            _dir: dir,
            bin,
            venv,
        };
        s.distribution("hermes_agent-0.19.0.dist-info", scripts);
        s
    }

    /// Adds a `.dist-info` directory named `name` listing `scripts` as console scripts, with
    /// entries of other sections around them that must not count.
    fn distribution(&self, name: &str, scripts: &[&str]) {
        let info = self.venv.join("lib/python3.13/site-packages").join(name);
        fs::create_dir_all(&info).unwrap();
        let mut text =
            String::from("[gui_scripts]\nhermes-gui = hermes.gui:main\n\n[console_scripts]\n");
        for s in scripts {
            writeln!(text, "{s} = hermes_cli.main:main").unwrap();
        }
        text.push_str("\n[hermes.plugins]\nplugin = hermes.plugin:main\n");
        fs::write(info.join("entry_points.txt"), text).unwrap();
    }

    /// `hermes-shim install ARGS`, finding the venv through `HERMES_SHIM_REAL_DIR` as in the image.
    fn install(&self, args: &[&str]) -> Run {
        let out = common::run(
            Command::new(self.bin.join("hermes-shim"))
                .arg("install")
                .args(args)
                .env("HERMES_SHIM_REAL_DIR", self.venv.join("bin")),
            "hermes-shim install",
        );
        Run {
            code: out.status.code(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// What the shim directory holds besides the binary: each name with its link target (or
    /// `None` for anything that is not a symlink), sorted.
    fn entries(&self) -> Vec<(String, Option<PathBuf>)> {
        let mut v: Vec<_> = fs::read_dir(&self.bin)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap() != "hermes-shim")
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, fs::read_link(&p).ok())
            })
            .collect();
        v.sort();
        v
    }
}

struct Run {
    code: Option<i32>,
    stderr: String,
}

fn ours(names: &[&str]) -> Vec<(String, Option<PathBuf>)> {
    let mut v: Vec<_> = names
        .iter()
        .map(|n| (n.to_string(), Some(PathBuf::from("hermes-shim"))))
        .collect();
    v.sort();
    v
}

#[test]
fn links_every_console_script_and_runs_again_unchanged() {
    let s = Setup::new(
        "install",
        &["hermes", "hermes-agent", "hermes-acp", "hermes"],
    );
    let dry = s.install(&["--dry-run"]);
    assert_eq!(dry.code, Some(0), "{}", dry.stderr);
    assert!(dry.stderr.contains("3 would be created"), "{}", dry.stderr);
    assert_eq!(s.entries(), vec![], "a dry run changes nothing");

    let first = s.install(&[]);
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    assert!(
        first.stderr.contains("3 created, 0 already there"),
        "{}",
        first.stderr
    );
    let linked = ours(&["hermes", "hermes-agent", "hermes-acp"]);
    assert_eq!(
        s.entries(),
        linked,
        "one relative link per name, no other section's"
    );

    // A link by the shim's absolute path is just as much ours: left as it is.
    fs::remove_file(s.bin.join("hermes-acp")).unwrap();
    symlink(s.bin.join("hermes-shim"), s.bin.join("hermes-acp")).unwrap();
    let again = s.install(&[]);
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert!(
        again.stderr.contains("0 created, 3 already there"),
        "{}",
        again.stderr
    );
    assert_eq!(
        fs::read_link(s.bin.join("hermes-acp")).unwrap(),
        s.bin.join("hermes-shim")
    );
}

#[test]
fn a_name_taken_by_anything_else_refuses_the_whole_install() {
    let s = Setup::new(
        "install-taken",
        &["hermes", "taken-file", "taken-link", "hermes-new"],
    );
    fs::write(s.bin.join("taken-file"), "#!/bin/sh\n").unwrap();
    symlink("/bin/sh", s.bin.join("taken-link")).unwrap();
    let before = s.entries();
    let r = s.install(&[]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    for needle in [
        "taken-file exists and is not a symlink",
        "taken-link exists and is a symlink to /bin/sh",
        "nothing changed",
        "(2 of 4 names)",
    ] {
        assert!(
            r.stderr.contains(needle),
            "{needle:?} missing from {}",
            r.stderr
        );
    }
    assert_eq!(s.entries(), before, "not even the free names were linked");
}

#[test]
fn names_that_cannot_be_links_here_are_refused() {
    // The shim's own name would replace the binary; the others are not file names.
    let s = Setup::new("install-names", &["hermes", "hermes-shim", "..", "a/b"]);
    let r = s.install(&[]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    for bad in ["'hermes-shim'", "'..'", "'a/b'"] {
        assert!(
            r.stderr
                .contains(&format!("{bad} is not a name a link can have here")),
            "{bad} missing from {}",
            r.stderr
        );
    }
    assert_eq!(s.entries(), vec![]);
}

#[test]
fn the_venv_must_hold_exactly_one_hermes_agent() {
    let s = Setup::new("install-venv", &["hermes"]);
    let nowhere = s.venv.join("missing");
    let r = s.install(&["--venv", nowhere.to_str().unwrap()]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("a venv?"), "{}", r.stderr);

    let r = s.install(&["--distribution", "other-thing"]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr.contains("no other-thing installed"),
        "{}",
        r.stderr
    );

    // The distribution's name compares normalised: `Hermes.Agent` finds hermes_agent.
    let r = s.install(&["--distribution", "Hermes.Agent", "--dry-run"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);

    s.distribution("hermes_agent-0.18.0.dist-info", &["hermes"]);
    let r = s.install(&[]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr.contains("2 installations of hermes-agent"),
        "{}",
        r.stderr
    );
    assert_eq!(s.entries(), vec![]);
}

#[test]
fn a_distribution_without_console_scripts_is_refused() {
    let s = Setup::new("install-empty", &[]);
    let r = s.install(&[]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("lists no console script"), "{}", r.stderr);
    assert_eq!(s.entries(), vec![]);
}
