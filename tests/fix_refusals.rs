//! Root integration tests of what `hermes-shim fix-ownership` refuses (exit 2, one line, nothing
//! changed): relative, system and shared roots, roots that hold what root runs, a PATH that is or
//! passes through a symlink, a non-directory, a setuid install, a caller that is not root, and an
//! unknown or uid-0 target.
//!
//! Safety: a binary that failed to refuse a system directory would re-own the host, so every run
//! on one happens in a user namespace where only uid 0 is mapped and chown to 10000 fails.

mod common;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::symlink;

use common::fix::{PREFIX, USER, clean_cmd, fo_cmd, run_cmd};
use common::fixture::{Fx, assert_same_snapshot, owner, snapshot, victim};
use common::report::assert_refused;
use common::{TempDir, require};

#[test]
fn refuses_relative_path() {
    require!(root);
    let fx = victim("fo-ref-rel");
    for rel in [".", "logs", "./logs"] {
        let mut cmd = fo_cmd(&[rel, "--user", USER]);
        cmd.current_dir(fx.path());
        let out = run_cmd(cmd, 30);
        assert_refused(&out);
        fx.check_untouched(&out);
    }
}

#[test]
fn refuses_root_and_system_directories() {
    require!(root, tools: ["unshare"]);
    // A binary that failed to refuse would chown the host, so each attempt runs in a user
    // namespace where only uid 0 is mapped: there chown to 10000 is EINVAL, and the refusal,
    // which looks only at the path, is unaffected. The control run proves the sandbox itself is
    // not what makes it refuse.
    let sandboxed = |args: &[&OsStr]| {
        let mut cmd = clean_cmd("unshare");
        cmd.args(["--user", "--map-root-user"])
            .arg(common::bin())
            .arg("fix-ownership")
            .args(args);
        run_cmd(cmd, 30)
    };
    let control = victim("fo-ref-sys-control");
    let out = sandboxed(&[
        control.path().as_os_str(),
        OsStr::new("--user"),
        OsStr::new(USER),
        OsStr::new("--dry-run"),
    ]);
    assert_eq!(
        out.code,
        Some(0),
        "control: a dry run of a temp tree in the sandbox must succeed\n{out}"
    );
    control.check_untouched(&out);
    for dir in [
        "/",
        "/etc",
        "/usr",
        "/tmp",
        "/var",
        "/home",
        "/root",
        "/bin",
        "/sbin",
        "/lib",
        "/boot",
        "/dev",
        "/proc",
        "/run",
        "/srv",
        "/sys",
        "/etc/",
        "/etc/ssl",
        "/usr/local",
        "/opt",
        "/var/lib",
        "/var/log",
        "/root/.cache",
    ] {
        let out = sandboxed(&[dir, "--user", USER].map(OsStr::new));
        let line = assert_refused(&out);
        assert!(
            line.contains(dir.trim_end_matches('/')),
            "names {dir}\n{out}"
        );
    }
    // Never run these outside the sandbox, not even with --dry-run: a binary that both ignored
    // --dry-run and failed to refuse would re-own the host (a test-suite mutant did exactly that).
}

#[test]
fn roots_holding_what_root_runs_are_refused_and_data_homes_accepted() {
    require!(root, tools: ["unshare"]);
    // The image's layout, rebuilt on tmpfs in a user and mount namespace of its own (only uid 0
    // mapped, so no chown can succeed): the shim runs from /opt/hermes/bin, the real programs
    // are in a venv at /opt/hermes/.venv, both on PATH. Each root is tried with --dry-run and
    // its exit code printed.
    let script = r#"set -e
for d in /opt /mnt /srv /home /var/lib; do mount -t tmpfs -o mode=0755 tmpfs "$d"; done
mkdir -p /opt/hermes/bin /opt/hermes/.venv/bin /opt/hermes/.venv/lib /opt/data /mnt/x \
    /srv/hermes /home/hermes/.hermes /var/lib/hermes
: > /opt/hermes/.venv/pyvenv.cfg
cp "$1" /opt/hermes/bin/hermes-shim
shift
export PATH=/opt/hermes/bin:/opt/hermes/.venv/bin:/usr/bin:/bin
export HERMES_SHIM_REAL_DIR=/opt/hermes/.venv/bin
for root in "$@"; do
    rc=0
    /opt/hermes/bin/hermes-shim fix-ownership "$root" --user 10000:10000 --dry-run \
        >/dev/null 2>/opt/err || rc=$?
    echo "$root $rc $(head -n 1 /opt/err)"
done
"#;
    let refused = [
        "/opt",
        "/opt/hermes",
        "/opt/hermes/bin",
        "/opt/hermes/.venv",
        "/opt/hermes/.venv/bin",
        "/opt/hermes/.venv/lib",
    ];
    let accepted = [
        "/opt/data",
        "/mnt/x",
        "/srv/hermes",
        "/home/hermes/.hermes",
        "/var/lib/hermes",
    ];
    let mut cmd = clean_cmd("unshare");
    cmd.args([
        "--user",
        "--map-root-user",
        "--mount",
        "sh",
        "-c",
        script,
        "sh",
    ])
    .arg(common::bin())
    .args(refused)
    .args(accepted);
    let out = run_cmd(cmd, 60);
    assert_eq!(out.code, Some(0), "{out}");
    let results: BTreeMap<&str, (&str, &str)> = out
        .stdout
        .lines()
        .filter_map(|l| {
            let (root, rest) = l.split_once(' ')?;
            Some((root, rest.split_once(' ').unwrap_or((rest, ""))))
        })
        .collect();
    for root in refused {
        let (rc, msg) = results
            .get(root)
            .unwrap_or_else(|| panic!("{root}: no result\n{out}"));
        assert_eq!(*rc, "2", "{root} must be refused: {msg}");
        assert!(msg.starts_with(PREFIX), "{root}: {msg}");
    }
    for root in accepted {
        let (rc, msg) = results
            .get(root)
            .unwrap_or_else(|| panic!("{root}: no result\n{out}"));
        assert_eq!(*rc, "0", "{root} must be accepted: {msg}");
    }
}

#[test]
fn refuses_path_that_is_a_symlink_and_names_the_real_path() {
    require!(root);
    let fx = victim("fo-ref-link");
    let holder = TempDir::new("fo-ref-link-holder");
    let link = holder.path().join("home");
    symlink(fx.path(), &link).unwrap();
    let link_before = owner(&link);
    let out = run_cmd(
        fo_cmd(&[link.as_os_str(), OsStr::new("--user"), OsStr::new(USER)]),
        30,
    );
    let line = assert_refused(&out);
    assert!(
        line.contains(fx.path().to_str().unwrap()),
        "refusal must suggest the real path {}\n{out}",
        fx.path().display()
    );
    assert!(
        line.contains("symlink") || line.contains("symbolic link"),
        "{out}"
    );
    fx.check_untouched(&out);
    assert_eq!(owner(&link), link_before, "the PATH symlink itself\n{out}");
}

#[test]
fn refuses_symlinks_anywhere_in_path_even_with_a_trailing_slash() {
    require!(root);
    // `lstat("link/")` and `open("link/", O_NOFOLLOW)` both follow the link: the trailing slash
    // must not smuggle a symlink past the check, and neither may a symlink earlier in PATH.
    let fx = victim("fo-ref-slash");
    fs::create_dir(fx.path().join("sub")).unwrap();
    Fx::set(&fx.path().join("sub"), None, 0, 0);
    let holder = TempDir::new("fo-ref-slash-holder");
    let link = holder.path().join("home");
    symlink(fx.path(), &link).unwrap();
    let before = snapshot(fx.path());
    for path in [
        format!("{}/", link.display()),
        format!("{}/.", link.display()),
        format!("{}/sub", link.display()),
        format!("{}/sub/", link.display()),
    ] {
        let out = run_cmd(fo_cmd(&[path.as_str(), "--user", USER]), 30);
        let line = assert_refused(&out);
        assert!(line.contains("symlink"), "{path}: names the symlink\n{out}");
        assert!(
            line.contains(fx.path().to_str().unwrap()),
            "{path}: suggests the real path\n{out}"
        );
        assert_same_snapshot(&before, &snapshot(fx.path()), &out.to_string());
    }
}

#[test]
fn no_applet_runs_setuid() {
    require!(root);
    // Installed setuid root, fix-ownership would let any user chown as root: every applet refuses.
    let fx = victim("fo-setuid");
    let dir = TempDir::new("fo-setuid-bin");
    let copy = dir.path().join("hermes-shim");
    for mode in [0o4755, 0o2755] {
        common::copy_bin(&copy, mode);
        let mut cmd = clean_cmd(&copy);
        cmd.arg("fix-ownership")
            .arg(fx.path())
            .args(["--user", USER]);
        let out = run_cmd(cmd, 30);
        assert_eq!(out.code, Some(126), "mode {mode:o}\n{out}");
        assert!(out.stderr.contains("setuid"), "mode {mode:o}\n{out}");
        fx.check_untouched(&out);
    }
}

#[test]
fn refuses_non_directory_and_nonexistent_path() {
    require!(root);
    let fx = victim("fo-ref-notdir");
    for rel in ["config.yaml", "missing", "logs/missing/deeper"] {
        let out = run_cmd(
            fo_cmd(&[
                fx.abs(rel).as_os_str(),
                OsStr::new("--user"),
                OsStr::new(USER),
            ]),
            30,
        );
        assert_refused(&out);
        fx.check_untouched(&out);
    }
}

#[test]
fn refuses_caller_that_is_not_root() {
    require!(root, tools: ["setpriv"]);
    let fx = victim("fo-ref-nonroot");
    // A copy other uids can certainly execute, whatever the target directory's permissions.
    let bindir = TempDir::new("fo-ref-nonroot-bin");
    let bin = bindir.path().join("hermes-shim");
    common::copy_bin(&bin, 0o755);
    let mut cmd = clean_cmd("setpriv");
    cmd.args(["--reuid=10000", "--regid=10000", "--clear-groups"])
        .arg(&bin)
        .arg("fix-ownership")
        .arg(fx.path())
        .args(["--user", USER]);
    let out = run_cmd(cmd, 30);
    let line = assert_refused(&out);
    assert!(line.contains("root"), "must say it needs root\n{out}");
    fx.check_untouched(&out);
}

#[test]
fn refuses_unknown_user_and_uid_zero() {
    require!(root);
    let fx = victim("fo-ref-user");
    for user in [
        "no-such-user-hermes-shim-test",
        "0",
        "root",
        "0:10000",
        "0:0",
    ] {
        let out = run_cmd(
            fo_cmd(&[
                fx.path().as_os_str(),
                OsStr::new("--user"),
                OsStr::new(user),
            ]),
            30,
        );
        assert_refused(&out);
        fx.check_untouched(&out);
    }
    // The same through HERMES_SHIM_USER.
    for user in ["no-such-user-hermes-shim-test", "0"] {
        let mut cmd = fo_cmd(&[fx.path()]);
        cmd.env("HERMES_SHIM_USER", user);
        let out = run_cmd(cmd, 30);
        assert_refused(&out);
        fx.check_untouched(&out);
    }
}

#[test]
fn refuses_a_system_gid_as_it_refuses_gid_zero() {
    require!(root);
    // A gid below 100 that grants something (shadow owns /etc/shadow, tty is devpts' group) would
    // hand the tree to that group; the gid rule refuses it here as for every other way a gid
    // reaches the drop. (A gid that owns nothing here is given: which one that is depends on the
    // system, so none is named here; tests/gid_evidence.rs builds a root of its own for that.)
    let fx = victim("fo-ref-sysgid");
    for (user, env) in [("10000:42", false), ("10000:5", false), ("10000:42", true)] {
        let mut cmd = if env {
            let mut c = fo_cmd(&[fx.path()]);
            c.env("HERMES_SHIM_USER", user);
            c
        } else {
            fo_cmd(&[
                fx.path().as_os_str(),
                OsStr::new("--user"),
                OsStr::new(user),
            ])
        };
        cmd.arg("--dry-run");
        let out = run_cmd(cmd, 30);
        let line = assert_refused(&out);
        let gid = user.split_once(':').unwrap().1;
        assert!(
            line.starts_with(&format!("{PREFIX}user '{user}' has gid {gid}, ")),
            "{line}"
        );
        assert!(
            line.contains("give it a gid of 100 or above — pass --user NAME or UID:GID"),
            "{line}"
        );
        fx.check_untouched(&out);
    }
    // The first gid the rule gives: accepted (a dry run changes nothing either way).
    let mut cmd = fo_cmd(&[
        fx.path().as_os_str(),
        OsStr::new("--user"),
        OsStr::new("10000:100"),
    ]);
    cmd.arg("--dry-run");
    let out = run_cmd(cmd, 30);
    assert_eq!(out.code, Some(0), "{out}");
    fx.check_untouched(&out);
}
