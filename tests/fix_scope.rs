//! Root integration tests of the sweep's scope against renames by the agent (the target user):
//! a root with an ancestor the target can write is refused, since the agent could swap another
//! directory in under the root's name between two sweeps; an excluded entry the agent could
//! rename out of its exclusion is named in a WARNING, since excludes are a speed tool and only
//! a mount keeps root's data out.
//!
//! Safety: these run as root on temporary trees only; no fixture holds a symlink.

mod common;

use std::path::Path;

use common::fix::{T, fo, in_private_mntns, run_cmd};
use common::fixture::{Fx, owner};
use common::{TempDir, require};

/// A temporary directory holding `parent` (with that owner and mode) holding the root `data`
/// (root-owned, with one root-owned file): the layout of `HERMES_HOME=/opt/data/.hermes`.
fn nested(tag: &str, parent: (u32, u32, u32)) -> (TempDir, std::path::PathBuf) {
    let base = TempDir::new(tag);
    let (uid, gid, mode) = parent;
    let p = base.path().join("parent");
    Fx::make_dir(&p, mode, uid, gid);
    let root = p.join("data");
    Fx::make_dir(&root, 0o700, 0, 0);
    Fx::make_file(&root.join("f"), 0o600, 0, 0);
    (base, root)
}

#[test]
fn a_root_below_a_directory_the_target_can_write_is_refused() {
    require!(root);
    let cases = [
        ("owned", (T, T, 0o755)),
        ("owned-read-only", (T, T, 0o500)),
        ("group", (0, T, 0o770)),
        ("other", (0, 0, 0o777)),
        ("sticky", (0, 0, 0o1777)),
    ];
    for (tag, parent) in cases {
        let (_base, root) = nested(&format!("fo-scope-{tag}"), parent);
        let out = fo(&root, "fallback", &[]);
        assert_eq!(out.code, Some(2), "{tag}\n{out}");
        let lines = out.stderr_lines_with("who could rename another directory in under this name");
        assert_eq!(lines.len(), 1, "{tag}: one line\n{out}");
        let parent = root.parent().unwrap().display().to_string();
        assert!(lines[0].contains(&parent), "{tag}: names {parent}\n{out}");
        assert!(
            lines[0].contains("sweep a directory whose parents only root can change"),
            "{tag}: and the remedy\n{out}"
        );
        assert_eq!(owner(&root), (0, 0), "{tag}: nothing changed\n{out}");
        assert_eq!(
            owner(&root.join("f")),
            (0, 0),
            "{tag}: nothing changed\n{out}"
        );
    }
}

#[test]
fn a_writable_grandparent_is_refused_too_and_a_root_only_chain_is_accepted() {
    require!(root);
    let base = TempDir::new("fo-scope-grand");
    let top = base.path().join("top");
    Fx::make_dir(&top, 0o755, T, T);
    let mid = top.join("mid");
    Fx::make_dir(&mid, 0o755, 0, 0);
    let root = mid.join("data");
    Fx::make_dir(&root, 0o755, 0, 0);
    let out = fo(&root, "fallback", &[]);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(
        out.stderr.contains(&format!("{} above it", top.display())),
        "the writable one is named\n{out}"
    );
    assert_eq!(owner(&root), (0, 0), "{out}");
    // Control: the same shape with a root-only top is swept.
    let (_b, root) = nested("fo-scope-ok", (0, 0, 0o755));
    let out = fo(&root, "fallback", &[]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(owner(&root.join("f")), (T, T), "{out}");
}

/// Excludes `secrets` from a root the target owns, and returns the run.
fn sweep_excluding(fx: &Fx) -> common::fix::Out {
    fo(
        fx.path(),
        "fallback",
        &["--exclude", "secrets", "--exclude", "mine"],
    )
}

#[test]
fn an_excluded_root_owned_entry_the_agent_could_rename_is_warned_of() {
    require!(root);
    let mut fx = Fx::new("fo-scope-exclude");
    fx.dir("secrets", 0o700, 0, 0)
        .file("secrets/key", 0o600, 0, 0)
        .dir("mine", 0o700, T, T);
    let out = sweep_excluding(&fx);
    assert_eq!(out.code, Some(0), "{out}");
    let lines = out.stderr_lines_with("WARNING");
    assert_eq!(lines.len(), 1, "one warning, for secrets only\n{out}");
    let secrets = fx.abs("secrets").display().to_string();
    assert!(lines[0].contains(&secrets), "names it\n{out}");
    assert!(
        lines[0].contains("keep root's data on a separate mount"),
        "and the remedy\n{out}"
    );
    assert_eq!(owner(&fx.abs("secrets")), (0, 0), "still excluded\n{out}");
    assert_eq!(owner(&fx.abs("secrets/key")), (0, 0), "{out}");
}

/// The ways an excluded entry can be moved out of its exclusion without its own directory being
/// the agent's: a directory further up the agent can rename, an entry of another user holding
/// root's files, and a dry run, which must warn as the real run (that hands the root over first)
/// does. And the one way it cannot: no directory on its way is, or becomes, the agent's.
#[test]
fn an_exclude_is_warned_of_whenever_a_directory_on_its_way_is_the_agents() {
    require!(root);
    // (a) a/secrets, with `a` a stranger's (uid 1) in the agent's root: `mv a a2` frees it.
    let mut fx = Fx::new("fo-scope-way");
    fx.dir("a", 0o755, 1, 1).dir("a/secrets", 0o700, 0, 0);
    let out = fo(fx.path(), "fallback", &["--exclude", "a/secrets"]);
    assert_eq!(out.stderr_lines_with("WARNING").len(), 1, "(a)\n{out}");
    assert!(out.stderr.contains("a/secrets is excluded"), "(a)\n{out}");
    // (b) another user's directory (not changed itself) holding root's key.
    let mut fx = Fx::new("fo-scope-other");
    fx.dir("secrets", 0o755, 1, 1)
        .file("secrets/key", 0o600, 0, 0);
    let out = fo(fx.path(), "fallback", &["--exclude", "secrets"]);
    assert_eq!(out.stderr_lines_with("WARNING").len(), 1, "(b)\n{out}");
    assert_eq!(owner(&fx.abs("secrets/key")), (0, 0), "(b)\n{out}");
    // (c) a dry run over a root-owned root, which the real run hands over before the exclude.
    let mut fx = Fx::new("fo-scope-dry");
    fx.dir("b", 0o755, 0, 0).dir("b/secrets", 0o700, 0, 0);
    let out = fo(
        fx.path(),
        "fallback",
        &["--exclude", "b/secrets", "--dry-run"],
    );
    assert_eq!(
        out.stderr_lines_with("WARNING").len(),
        1,
        "(c) dry run\n{out}"
    );
    assert_eq!(
        owner(fx.path()),
        (0, 0),
        "(c) a dry run changes nothing\n{out}"
    );
    // Control: a root the sweep leaves to a stranger, root's `secrets` in it: no way in.
    let base = TempDir::new("fo-scope-none");
    let root = base.path().join("r");
    Fx::make_dir(&root, 0o755, 1, 1);
    Fx::make_dir(&root.join("secrets"), 0o700, 0, 0);
    let out = fo(&root, "fallback", &["--exclude", "secrets"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stderr_lines_with("WARNING").is_empty(),
        "control\n{out}"
    );
    // Control, one level deeper: the climb passes a stranger's directory before the root.
    Fx::make_dir(&root.join("s"), 0o755, 1, 1);
    Fx::make_dir(&root.join("s/secrets"), 0o700, 0, 0);
    let out = fo(&root, "fallback", &["--exclude", "s/secrets"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stderr_lines_with("WARNING").is_empty(),
        "control, deeper\n{out}"
    );
}

#[test]
fn an_excluded_mount_point_cannot_be_renamed_and_is_not_warned_of() {
    require!(root, tools: ["unshare", "mount", "sh"]);
    let mut fx = Fx::new("fo-scope-mnt");
    fx.dir("secrets", 0o700, 0, 0);
    let src = TempDir::new("fo-scope-mnt-src");
    Fx::make_file(&src.path().join("key"), 0o600, 0, 0);
    let script = r#"set -e
mount --bind "$1" "$2/secrets"
"$0" fix-ownership "$2" --user 10000:10000 --exclude secrets"#;
    let mut cmd = in_private_mntns(script);
    cmd.arg(src.path()).arg(fx.path());
    let out = run_cmd(cmd, 60);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stderr_lines_with("WARNING").is_empty(), "{out}");
    assert_eq!(owner(&src.path().join("key")), (0, 0), "{out}");
    assert!(Path::new(&fx.abs("secrets")).is_dir());
}
