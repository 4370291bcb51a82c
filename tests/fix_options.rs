//! Root integration tests of fix-ownership's options and settings: `--exclude` and
//! `HERMES_SHIM_EXCLUDE`, `--dry-run` (it reports exactly what a real run changes), names printed
//! unambiguously by `--verbose` and `--json`, `--walk` and `HERMES_SHIM_WALK`, PATH and user from
//! the environment, a user by name from /etc/passwd, and `--also-from`.

mod common;

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::lchown;
use std::path::PathBuf;

use common::fix::{PREFIX, T, USER, fo, fo_cmd, in_private_mntns, per_walk, run_cmd};
use common::fixture::{Fx, etc_dir, main_fixture, owner, victim};
use common::report::{assert_refused, json_object, report, verbose};
use common::{TempDir, require};

fn exclude_fixture(tag: &str) -> Fx {
    let mut fx = Fx::new(tag);
    fx.dir("skills", 0o700, 0, 0)
        .file("skills/keep", 0o644, 0, 0)
        .excluded_dir("skills/vendored")
        .excluded_file("auth.json")
        .file("other", 0o600, 0, 0);
    fx
}

fn exclude_flag_leaves_subtrees_alone(walk: &str) {
    require!(root);
    let fx = exclude_fixture(&format!("fo-excl-{walk}"));
    assert_eq!(fx.counts.excluded, 2);
    let out = fx.run_and_check(
        walk,
        &[
            "--exclude",
            "skills/vendored",
            "--exclude",
            "auth.json",
            "--verbose",
        ],
    );
    let v = verbose(&out);
    assert_eq!(
        v.skip_reason(&fx.abs("skills/vendored")),
        Some("excluded"),
        "{out}"
    );
    assert_eq!(owner(&fx.abs("skills/vendored/inner/f")), (0, 0));
}
per_walk!(exclude_flag_leaves_subtrees_alone);

fn exclude_from_environment_with_two_entries(walk: &str) {
    require!(root);
    let fx = exclude_fixture(&format!("fo-exclenv-{walk}"));
    let mut cmd = fo_cmd(&[fx.path().as_os_str()]);
    cmd.args(["--user", USER, "--walk", walk, "--json"])
        .env("HERMES_SHIM_EXCLUDE", "skills/vendored:auth.json");
    let out = run_cmd(cmd, 60);
    assert_eq!(out.code, Some(0), "{out}");
    let counts = report(&out, fx.path(), Some(walk), false, (T, T));
    assert_eq!(counts, fx.counts, "{out}");
    fx.check_fixed(&out);
}
per_walk!(exclude_from_environment_with_two_entries);

fn dry_run_changes_nothing_and_lists_exactly_what_the_real_run_changes(walk: &str) {
    require!(root);
    let fx = main_fixture(&format!("fo-dry-{walk}"));
    let dry = fo(fx.path(), walk, &["--dry-run", "--verbose", "--json"]);
    assert_eq!(dry.code, Some(0), "{dry}");
    fx.check_untouched(&dry);
    let dry_counts = report(&dry, fx.path(), Some(walk), true, (T, T));
    assert_eq!(dry_counts, fx.counts, "dry-run counts\n{dry}");
    let dv = verbose(&dry);
    assert!(
        dv.changed.is_empty(),
        "a dry run claims real changes\n{dry}"
    );
    assert_eq!(dv.would, fx.changes, "dry run's would-change set\n{dry}");
    assert_eq!(dv.skipped, fx.skips, "dry run's skip lines\n{dry}");

    let real = fo(fx.path(), walk, &["--verbose", "--json"]);
    assert_eq!(real.code, Some(0), "{real}");
    fx.check_fixed(&real);
    let rv = verbose(&real);
    assert!(
        rv.would.is_empty(),
        "a real run says 'would change'\n{real}"
    );
    assert_eq!(dv.would, rv.changed, "dry run vs real run\n{dry}\n{real}");
    assert_eq!(rv.skipped, fx.skips, "real run's skip lines\n{real}");
    let counts = report(&real, fx.path(), Some(walk), false, (T, T));
    assert_eq!(counts.changed, rv.changed.len() as u64, "{real}");
}
per_walk!(dry_run_changes_nothing_and_lists_exactly_what_the_real_run_changes);

#[test]
fn names_print_unambiguously_in_verbose_and_json() {
    require!(root);
    let base = TempDir::new("fo-names");
    // The sweep root itself has a byte that is not UTF-8 in its name.
    let root = base.path().join(OsStr::from_bytes(b"r\xff"));
    Fx::make_dir(&root, 0o755, T, T);
    let names: [(&[u8], &str); 7] = [
        (b"a\nb", "a\\nb"),
        (b"a\\nb", "a\\\\nb"),
        (b"\xff", "\\xff"),
        (b"\xfe", "\\xfe"),
        ("evil\u{202e}gpj.exe".as_bytes(), "evil\\u{202e}gpj.exe"),
        ("line\u{2028}sep".as_bytes(), "line\\u{2028}sep"),
        (b"tab\there", "tab\\there"),
    ];
    for (name, _) in names {
        Fx::make_file(&root.join(OsStr::from_bytes(name)), 0o600, 0, 0);
    }
    let out = fo(&root, "openat2", &["--dry-run", "--verbose", "--json"]);
    assert_eq!(out.code, Some(0), "{out}");
    let shown_root = format!("{}/r\\xff", base.path().display());
    let v = verbose(&out);
    let want: BTreeSet<PathBuf> = names
        .iter()
        .map(|(_, shown)| PathBuf::from(format!("{shown_root}/{shown}")))
        .collect();
    assert_eq!(v.would, want, "every name, escaped, each once\n{out}");
    for bad in ['\u{202e}', '\u{2028}', '\u{fffd}'] {
        assert!(!out.stderr.contains(bad), "{bad:?} reached the log\n{out}");
    }
    // One line per name, the walk line and the summary.
    assert_eq!(
        out.stderr.lines().count(),
        names.len() + 2,
        "no name forged a line\n{out}"
    );
    let obj = json_object(&out);
    assert_eq!(obj["root"], shown_root.as_str(), "{out}");
    assert!(
        out.stderr.contains(&format!(
            "{PREFIX}{shown_root}: would change 7 of 8 entries"
        )),
        "the summary names the root the same way\n{out}"
    );
}

#[test]
fn json_reports_the_backend_and_the_environment_switch_forces_fallback() {
    require!(root);
    let fx = victim("fo-json-walk");
    let mut cmd = fo_cmd(&[fx.path().as_os_str()]);
    cmd.args(["--user", USER, "--json", "--dry-run"])
        .env("HERMES_SHIM_WALK", "fallback");
    let out = run_cmd(cmd, 30);
    assert_eq!(out.code, Some(0), "{out}");
    report(&out, fx.path(), Some("fallback"), true, (T, T));
    // `auto` on this kernel (openat2 available, no seccomp) picks openat2.
    let out = fo(fx.path(), "auto", &["--json", "--dry-run"]);
    assert_eq!(out.code, Some(0), "{out}");
    report(&out, fx.path(), Some("openat2"), true, (T, T));
    fx.check_untouched(&out);
}

#[test]
fn default_path_and_user_come_from_the_environment() {
    require!(root);
    let fx = victim("fo-env-defaults");
    let mut cmd = fo_cmd::<&str>(&["--json"]);
    cmd.env("HERMES_HOME", fx.path())
        .env("HERMES_SHIM_USER", USER);
    let out = run_cmd(cmd, 30);
    assert_eq!(out.code, Some(0), "{out}");
    let c = report(&out, fx.path(), None, false, (T, T));
    assert_eq!(c, fx.counts, "{out}");
    fx.check_fixed(&out);
}

#[test]
fn user_by_name_is_resolved_from_etc_passwd_and_group() {
    require!(root, tools: ["unshare", "mount", "sh"]);
    // The test user's primary group (10001) differs from its uid, so a binary that guessed
    // gid = uid instead of reading the passwd entry would be caught.
    let etc = etc_dir(
        "fo-name-etc",
        "root:x:0:0:root:/root:/bin/sh\nhermtest:x:10000:10001:test:/nonexistent:/bin/sh\n",
        "root:x:0:\nstaff:x:50:\nhermgrp:x:10001:\n",
    );
    let passwd = etc.path().join("passwd");
    let group = etc.path().join("group");
    let in_ns = |args: &[&OsStr], env: &[(&str, &OsStr)]| {
        let mut cmd = in_private_mntns(
            r#"mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/group && shift 2 && exec "$0" "$@""#,
        );
        cmd.arg(&passwd).arg(&group).arg("fix-ownership").args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        run_cmd(cmd, 30)
    };
    let target = (T, 10001);
    let fixture = |tag: &str| {
        let mut fx = Fx::with_target(tag, target);
        fx.file("config.yaml", 0o600, 0, 0)
            .dir("logs", 0o700, 0, 0)
            .file("staff", 0o644, 0, 50)
            .file("half", 0o644, T, 0)
            .file("host", 0o644, 1000, 0);
        fx
    };
    let fx = fixture("fo-name-flag");
    let out = in_ns(
        &[
            fx.path().as_os_str(),
            OsStr::new("--user"),
            OsStr::new("hermtest"),
            OsStr::new("--json"),
        ],
        &[],
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        report(&out, fx.path(), None, false, target),
        fx.counts,
        "{out}"
    );
    fx.check_fixed(&out);

    let fx = fixture("fo-name-env");
    let out = in_ns(
        &[OsStr::new("--json")],
        &[
            ("HERMES_HOME", fx.path().as_os_str()),
            ("HERMES_SHIM_USER", OsStr::new("hermtest")),
        ],
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        report(&out, fx.path(), None, false, target),
        fx.counts,
        "{out}"
    );
    fx.check_fixed(&out);
}

#[test]
fn also_from_moves_a_previous_uid_and_refuses_root_and_held_uids() {
    require!(root);
    let mut fx = Fx::new("fo-also-from");
    fx.file("mine-before", 0o600, 0, 0);
    let p = fx.abs("mine-before");
    lchown(&p, Some(4242), Some(4242)).unwrap();
    let out = fo(fx.path(), "openat2", &["--also-from", "0:0"]);
    assert_refused(&out);
    assert_eq!(owner(&p), (4242, 4242));
    let out = fo(fx.path(), "openat2", &[]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        owner(&p),
        (4242, 4242),
        "without --also-from another uid is not ours\n{out}"
    );
    // A uid someone holds (the first non-root user of this machine) is not a previous one.
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let (name, uid) = passwd
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((f.first()?.to_string(), f.get(2)?.parse::<u32>().ok()?))
        })
        .find(|(_, uid)| *uid != 0)
        .expect("a non-root user in /etc/passwd");
    let out = fo(fx.path(), "openat2", &["--also-from", &format!("{uid}:")]);
    let line = assert_refused(&out);
    assert!(
        line.contains(&format!(
            "--also-from: uid {uid} still belongs to user '{name}'"
        )),
        "{out}"
    );
    assert_eq!(owner(&p), (4242, 4242));
    let out = fo(fx.path(), "openat2", &["--also-from", "4242:4242"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(owner(&p), (T, T), "{out}");
}
