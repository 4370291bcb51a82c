//! Root integration tests of what a root caller hands on through the drop: the container's
//! supplementary groups (`docker run --group-add`), each run in a private mount namespace whose
//! /etc is a test directory and /run a tmpfs of its own.

mod common;

use std::path::Path;

use common::fix::{Out, in_private_mntns, run_cmd};
use common::fixture::etc_dir;
use common::seccomp::answer;
use common::{TempDir, require};

/// `hermtest` is uid 10000 with primary group 10001 and a member of `crew` (150).
const PASSWD: &str =
    "root:x:0:0:root:/root:/bin/sh\nhermtest:x:10000:10001::/nonexistent:/bin/sh\n";
const GROUP: &str = "root:x:0:\nshadow:x:42:\ncrew:x:150:hermtest\nhermgrp:x:10001:\n";

/// Runs `hermes-shim ARGS…` with /etc and /run of its own, `env` set, and the caller's
/// supplementary groups and gid set by `setpriv` as the runtime sets them (`groups` empty:
/// none; `regid`: the gid a root shell has after `newgrp`).
fn applet_with_groups(
    etc: &Path,
    env: &[(&str, &str)],
    groups: &str,
    regid: u32,
    args: &[&str],
) -> Out {
    let script = r#"set -e
mount --bind "$1" /etc
mount -t tmpfs tmpfs /run
groups=$2 regid=$3
shift 3
if [ -n "$groups" ]; then set -- --groups "$groups" -- "$0" "$@"; else set -- --clear-groups -- "$0" "$@"; fi
exec setpriv --regid "$regid" "$@""#;
    let mut cmd = in_private_mntns(script);
    cmd.arg(etc)
        .arg(groups)
        .arg(regid.to_string())
        .args(args)
        .envs(env.iter().copied());
    run_cmd(cmd, 30)
}

fn env(home: &TempDir) -> Vec<(&'static str, String)> {
    vec![
        ("HERMES_SHIM_USER", "hermtest".into()),
        ("HERMES_HOME", home.path().to_str().unwrap().into()),
        ("HERMES_SHIM_REAL_DIR", "/usr/bin".into()),
    ]
}

fn borrowed<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The gids `id -G` printed (the program's own, after the drop).
fn gids_printed(out: &Out) -> Vec<u32> {
    let mut g: Vec<u32> = out
        .stdout
        .split_whitespace()
        .map(|n| {
            n.parse()
                .unwrap_or_else(|_| panic!("not a gid list\n{out}"))
        })
        .collect();
    g.sort_unstable();
    g
}

/// The line for a refused `--group-add 42`, before and after what the walk says 42 grants on
/// this host (tests/gid_evidence.rs checks that part).
const SHADOW_LINE: [&str; 2] = [
    "hermes-shim: the container's supplementary gid 42, the system group 'shadow' (",
    ") is not kept for user 'hermtest': it grants far more than the user's own files — leave it out of --group-add (group_add, supplementalGroups)\n",
];

#[track_caller]
fn assert_one_shadow_line(text: &str, out: &Out) {
    let line = text
        .lines()
        .find(|l| l.starts_with(SHADOW_LINE[0]))
        .unwrap_or_else(|| panic!("no line for gid 42\n{out}"));
    assert!(
        format!("{line}\n").ends_with(SHADOW_LINE[1]),
        "{line:?}\n{out}"
    );
    assert_eq!(text.matches(SHADOW_LINE[0]).count(), 1, "{out}");
}

#[test]
fn the_containers_supplementary_groups_survive_the_drop_for_the_shim_and_the_entrypoint() {
    require!(root, tools: ["unshare", "mount", "sh", "setpriv", "id"]);
    let etc = etc_dir("groups-add-etc", PASSWD, GROUP);
    let home = TempDir::new("groups-add-home");
    let env = env(&home);
    let env = borrowed(&env);
    // `--group-add 4242 --group-add 42 --group-add 0`: 4242 is kept, root's group silently
    // dropped, shadow dropped with one line; the program runs.
    let shim = applet_with_groups(etc.path(), &env, "4242,42,0", 0, &["exec", "id", "-G"]);
    assert_eq!(shim.code, Some(0), "{shim}");
    assert_eq!(gids_printed(&shim), [150, 4242, 10001], "{shim}");
    assert_eq!(
        shim.stderr.lines().count(),
        1,
        "one line for the refused gid\n{shim}"
    );
    assert_one_shadow_line(&shim.stderr, &shim);
    let entry = applet_with_groups(
        etc.path(),
        &env,
        "4242,42,0",
        0,
        &["entrypoint", "id", "-G"],
    );
    assert_eq!(entry.code, Some(0), "{entry}");
    assert_eq!(gids_printed(&entry), [150, 4242, 10001], "{entry}");
    assert_one_shadow_line(&entry.stderr, &entry);
    // Without any: the user's own groups, nothing said.
    let none = applet_with_groups(etc.path(), &env, "", 0, &["exec", "id", "-G"]);
    assert_eq!(
        (none.code, gids_printed(&none)),
        (Some(0), vec![150, 10001]),
        "{none}"
    );
    assert_eq!(none.stderr, "", "{none}");
}

#[test]
fn a_root_shell_that_changed_its_group_does_not_pass_its_groups_on() {
    require!(root, tools: ["unshare", "mount", "sh", "setpriv", "id"]);
    let etc = etc_dir("groups-newgrp-etc", PASSWD, GROUP);
    let home = TempDir::new("groups-newgrp-home");
    let env = env(&home);
    let env = borrowed(&env);
    // `newgrp` leaves root with another gid: that session's groups are its own, not the
    // container's.
    let out = applet_with_groups(etc.path(), &env, "4242,4243", 4243, &["exec", "id", "-G"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(gids_printed(&out), [150, 10001], "{out}");
}

#[test]
fn getgroups_answered_with_an_error_refuses_the_drop() {
    require!(root, tools: ["unshare", "mount", "sh", "setpriv", "id"]);
    let etc = etc_dir("groups-errno-etc", PASSWD, GROUP);
    let home = TempDir::new("groups-errno-home");
    let env = env(&home);
    for errno in [nix::libc::ENOSYS, nix::libc::EPERM] {
        let script = r#"set -e
mount --bind "$1" /etc
shift
exec setpriv --groups 4242 -- "$0" "$@""#;
        let mut cmd = in_private_mntns(script);
        cmd.arg(etc.path())
            .args(["exec", "id", "-G"])
            .envs(env.iter().map(|(k, v)| (k, v)));
        // The filter goes on before `unshare`, so the shim meets it; `setgroups` still works.
        answer(&mut cmd, &[(nix::libc::SYS_getgroups, errno)]);
        let out = run_cmd(cmd, 30);
        assert_eq!(out.code, Some(126), "errno {errno}: {out}");
        assert!(out.stdout.is_empty(), "errno {errno}: nothing ran\n{out}");
        assert!(
            out.stderr.starts_with(
                "hermes-shim: cannot drop to user 'hermtest': verifying the new ids: "
            ),
            "errno {errno}: {out}"
        );
    }
}
