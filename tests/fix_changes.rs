//! Root integration tests of what `hermes-shim fix-ownership` changes, driving the built binary on
//! temporary trees under both walk backends: every depth and file type, the damage `hermes config
//! set` leaves, and what it must leave alone on the way (other owners, symlink targets, hardlinks,
//! devices, mounts), then a second run with nothing left to do.
//!
//! Safety: these run as root against a binary that may be wrong; no fixture holds a symlink that
//! leads out of the temporary trees except into another temporary tree.

mod common;

use std::fs;
use std::path::Path;

use common::fix::{T, fo, in_private_mntns, per_walk, run_cmd};
use common::fixture::{Fx, HERMES_DIRS, assert_same_snapshot, main_fixture, owner, snapshot};
use common::report::{Counts, report, summary, verbose};
use common::{TempDir, require};

fn fixes_every_depth_and_the_hermes_config_set_damage(walk: &str) {
    require!(root);
    let fx = main_fixture(&format!("fo-main-{walk}"));
    // The fixture itself must be as damaged as claimed, or the test proves nothing.
    assert!(
        fx.counts.changed >= 60,
        "fixture too small: {:?}",
        fx.counts
    );
    let out = fx.run_and_check(walk, &[]);
    // Without --verbose the report is exactly the summary line.
    assert_eq!(out.stderr.lines().count(), 1, "stderr lines\n{out}");
}
per_walk!(fixes_every_depth_and_the_hermes_config_set_damage);

fn exact_hermes_config_set_damage_alone(walk: &str) {
    require!(root);
    let mut fx = Fx::new(&format!("fo-damage-{walk}"));
    fx.file("config.yaml", 0o600, 0, 0)
        .file("SOUL.md", 0o644, 0, 0);
    for d in HERMES_DIRS {
        fx.dir(d, 0o700, 0, 0);
    }
    fx.file("logs/agent.log", 0o644, 0, 0)
        .file("logs/errors.log", 0o644, 0, 0);
    fx.run_and_check(walk, &[]);
    // After the run, the hermes user owns its whole home; spot-check what broke the gateway.
    for rel in ["", "config.yaml", "SOUL.md", "logs/agent.log", "sessions"] {
        assert_eq!(owner(&fx.abs(rel)), (T, T), "{rel}");
    }
}
per_walk!(exact_hermes_config_set_damage_alone);

fn other_owners_are_untouched_but_their_directories_are_walked(walk: &str) {
    require!(root);
    let mut fx = Fx::new(&format!("fo-other-{walk}"));
    fx.dir("host", 0o755, 1000, 1000)
        .file("host/mine", 0o644, 1000, 1000)
        .file("host/rootgroup", 0o644, 1000, 0)
        .symlink("host/link", "mine", 1000, 0)
        .dir("host/sub", 0o700, 1000, 0)
        // The rule is per entry: a root-owned file in a host user's directory is still healed.
        .file("host/rootfile", 0o644, 0, 0)
        .file("top", 0o644, 1000, 0)
        .file("staff", 0o644, 1000, 50);
    assert_eq!(fx.counts.other_owner, 7);
    let out = fx.run_and_check(walk, &["--verbose"]);
    let v = verbose(&out);
    for rel in [
        "host",
        "host/mine",
        "host/rootgroup",
        "host/link",
        "host/sub",
        "top",
    ] {
        assert_eq!(
            v.skip_reason(&fx.abs(rel)),
            Some("other owner"),
            "--verbose skip line for {rel}\n{out}"
        );
    }
}
per_walk!(other_owners_are_untouched_but_their_directories_are_walked);

fn symlink_to_outside_root_file_changes_only_the_link(walk: &str) {
    require!(root);
    let mut fx = Fx::new(&format!("fo-symlink-{walk}"));
    let secret = fx.outside_file("fo-symlink-out");
    let outdir = secret.parent().unwrap().to_str().unwrap().to_string();
    // A relative escape too, but only ever into the temporary outside tree: a link that
    // reached `/` would let a symlink-following binary re-own the whole host.
    let escape = format!(
        "../../{}",
        Path::new(&outdir).file_name().unwrap().to_str().unwrap()
    );
    fx.symlink("to-file", secret.to_str().unwrap(), 0, 0)
        .symlink("to-dir", &outdir, 0, 0)
        .dir("a", 0o755, 0, 0)
        .symlink("a/deep-to-dir", &outdir, 0, 0)
        .symlink("a/relative-escape", &escape, 0, 0);
    fx.run_and_check(walk, &[]);
    assert_eq!(owner(&secret), (0, 0), "outside file");
    assert_eq!(owner(Path::new(&outdir)), (0, 0), "outside dir");
    assert_eq!(owner(&fx.abs("to-file")), (T, T), "the link itself (lstat)");
}
per_walk!(symlink_to_outside_root_file_changes_only_the_link);

fn hardlink_to_outside_file_is_skipped(walk: &str) {
    require!(root);
    let mut fx = Fx::new(&format!("fo-hardlink-{walk}"));
    fx.hardlink_outside("hl").dir("d", 0o755, 0, 0);
    fx.hardlink_outside("d/hl2");
    assert_eq!(fx.counts.hardlink, 2);
    let out = fx.run_and_check(walk, &["--verbose"]);
    let v = verbose(&out);
    assert_eq!(v.skip_reason(&fx.abs("hl")), Some("hardlinked"), "{out}");
    assert_eq!(owner(&fx.abs("hl")), (0, 0));
}
per_walk!(hardlink_to_outside_file_is_skipped);

fn device_nodes_are_skipped(walk: &str) {
    require!(root);
    let mut fx = Fx::new(&format!("fo-dev-{walk}"));
    fx.dir("dev", 0o755, 0, 0).devices("dev/chr", "dev/blk");
    assert_eq!(fx.counts.device, 2);
    let out = fx.run_and_check(walk, &["--verbose"]);
    let v = verbose(&out);
    for rel in ["dev/chr", "dev/blk"] {
        assert_eq!(v.skip_reason(&fx.abs(rel)), Some("device"), "{rel}\n{out}");
        assert_eq!(owner(&fx.abs(rel)), (0, 0), "{rel}");
    }
}
per_walk!(device_nodes_are_skipped);

fn bind_mount_and_tmpfs_inside_path_are_not_entered(walk: &str) {
    require!(root, tools: ["unshare", "mount", "sh", "stat"]);
    let mut fx = Fx::new(&format!("fo-mnt-{walk}"));
    fx.file("a", 0o644, 0, 0)
        .dir("sub", 0o755, 0, 0)
        .dir("t", 0o755, 0, 0);
    // The bind source sits on the same filesystem as PATH (/tmp): only the mount id tells.
    let src = TempDir::new(&format!("fo-mnt-src-{walk}"));
    Fx::make_dir(&src.path().join("inner"), 0o700, 0, 0);
    Fx::make_file(&src.path().join("inner/f"), 0o600, 0, 0);
    Fx::make_file(&src.path().join("g"), 0o644, 0, 0);
    let src_before = snapshot(src.path());
    let outdir = TempDir::new(&format!("fo-mnt-out-{walk}"));
    let json_file = outdir.path().join("report.json");
    let script = r#"set -e
mount --bind "$1" "$2/sub"
mount -t tmpfs none "$2/t"
mkdir "$2/t/d"
touch "$2/t/f" "$2/t/d/g"
rc=0
"$0" fix-ownership "$2" --user 10000:10000 --walk "$3" --json >"$4" || rc=$?
stat -c '%u:%g %n' "$2/sub" "$2/sub/g" "$2/sub/inner/f" "$2/t" "$2/t/f" "$2/t/d" "$2/t/d/g"
exit "$rc""#;
    let mut cmd = in_private_mntns(script);
    cmd.arg(src.path()).arg(fx.path()).arg(walk).arg(&json_file);
    let mut out = run_cmd(cmd, 60);
    let stats = std::mem::take(&mut out.stdout);
    out.stdout = fs::read_to_string(&json_file).unwrap_or_default();
    assert_eq!(out.code, Some(0), "exit code\n{out}\n--- stat ---\n{stats}");
    // Inside the namespace, every entry of both mounts kept root ownership.
    let lines: Vec<&str> = stats.lines().collect();
    assert_eq!(lines.len(), 7, "stat output:\n{stats}\n{out}");
    for l in &lines {
        assert!(l.starts_with("0:0 "), "changed inside a mount: {l}\n{out}");
    }
    // PATH and `a` changed; the two mount points are seen and skipped, nothing below them.
    let want = Counts {
        scanned: 4,
        changed: 2,
        mount: 2,
        ..Counts::default()
    };
    let counts = report(&out, fx.path(), Some(walk), false, (T, T));
    assert_eq!(counts, want, "counts\n{out}");
    assert_same_snapshot(&src_before, &snapshot(src.path()), "bind mount source");
    assert_eq!(owner(&fx.abs("a")), (T, T), "{out}");
    assert_eq!(owner(fx.path()), (T, T), "{out}");
}
per_walk!(bind_mount_and_tmpfs_inside_path_are_not_entered);

fn second_run_changes_nothing(walk: &str) {
    require!(root);
    let fx = main_fixture(&format!("fo-second-{walk}"));
    fx.run_and_check(walk, &[]);
    let second = fo(fx.path(), walk, &["--json"]);
    assert_eq!(second.code, Some(0), "{second}");
    let c = report(&second, fx.path(), Some(walk), false, (T, T));
    // Same entries seen, same skips, nothing left to do.
    let want = Counts {
        changed: 0,
        ..fx.counts
    };
    assert_eq!(c, want, "second run\n{second}");
    fx.check_fixed(&second);
    // And without --json, the summary alone says the same.
    let third = fo(fx.path(), walk, &[]);
    assert_eq!(third.code, Some(0), "{third}");
    assert!(third.stdout.is_empty(), "stdout without --json\n{third}");
    assert_eq!(summary(&third, fx.path(), false), want, "{third}");
}
per_walk!(second_run_changes_nothing);
