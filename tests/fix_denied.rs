//! Root integration tests of fix-ownership where chown is denied: where it cannot work at all (a
//! user namespace that maps only uid 0, as rootless Podman) it says so once and stops, while a few
//! immutable files, even the first ones it tries, are ordinary errors and the rest is fixed.

mod common;

use common::fix::{Out, T, USER, clean_cmd, fo, in_private_mntns, per_walk, run_cmd};
use common::fixture::{Fx, owner, victim};
use common::report::summary;
use common::{TempDir, require};

/// The value of the `KEY: value` line a test script printed on stdout.
fn field(out: &Out, key: &str) -> String {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key} line\n{out}"))
        .trim()
        .to_string()
}

fn chown_impossible_is_said_once_and_stops(walk: &str) {
    require!(root, tools: ["unshare"]);
    // In a user namespace that maps only uid 0, every chown to 10000 is EINVAL: the same answer
    // rootless Podman and some NAS mounts give container root.
    let mut fx = victim(&format!("fo-impossible-{walk}"));
    for i in 0..20 {
        fx.file(&format!("f{i}"), 0o644, 0, 0);
    }
    let mut cmd = clean_cmd("unshare");
    cmd.args(["--user", "--map-root-user"])
        .arg(common::bin())
        .args(["fix-ownership", "--walk", walk, "--user", USER])
        .arg(fx.path());
    let out = run_cmd(cmd, 30);
    assert_eq!(
        out.code,
        Some(1),
        "--walk {walk}: some entries were not fixed\n{out}"
    );
    let said = out.stderr_lines_with("chown is not permitted here");
    assert_eq!(said.len(), 1, "--walk {walk}: said once\n{out}");
    assert!(
        !out.stderr.contains("error:"),
        "--walk {walk}: no per-entry flood before the verdict\n{out}"
    );
    let c = summary(&out, fx.path(), false);
    assert_eq!(c.changed, 0, "--walk {walk}\n{out}");
    assert!(
        c.scanned < 26,
        "--walk {walk}: it stops instead of walking on ({} scanned)\n{out}",
        c.scanned
    );
    fx.check_untouched(&out);
}
per_walk!(chown_impossible_is_said_once_and_stops);

#[test]
fn one_unmapped_target_id_is_enough_to_make_chown_impossible() {
    require!(root, tools: ["unshare", "sh", "mkfifo"]);
    // A user namespace that maps root and one of the target's ids but not the other: every
    // chown to the pair is EINVAL, though a chown to root's own ids (the probe's other test)
    // works. The maps are written from outside, as root, once the child is in its namespace.
    let script = r#"set -e
mkfifo "$1/ready" "$1/go"
unshare --user sh -c 'echo > "$0/ready"; read x < "$0/go"; exec "$@"' "$1" \
    "$0" fix-ownership --user 10000:10000 "$2" &
pid=$!
read x < "$1/ready"
printf "$3" > /proc/$pid/uid_map
printf "$4" > /proc/$pid/gid_map
echo > "$1/go"
wait $pid"#;
    for (uids, gids) in [
        ("0 0 1\n10000 10000 1\n", "0 0 1\n"),
        ("0 0 1\n", "0 0 1\n10000 10000 1\n"),
    ] {
        let fifos = TempDir::new("fo-half-mapped-fifos");
        let mut fx = victim("fo-half-mapped");
        for i in 0..20 {
            fx.file(&format!("f{i}"), 0o644, 0, 0);
        }
        let mut cmd = clean_cmd("sh");
        cmd.args(["-c", script])
            .arg(common::bin())
            .arg(fifos.path())
            .arg(fx.path())
            .args([uids, gids]);
        let out = run_cmd(cmd, 30);
        let case = format!("uid_map {uids:?}, gid_map {gids:?}");
        assert_eq!(out.code, Some(1), "{case}\n{out}");
        assert_eq!(
            out.stderr_lines_with("chown is not permitted here").len(),
            1,
            "{case}: said once\n{out}"
        );
        assert!(!out.stderr.contains("error:"), "{case}: no flood\n{out}");
        fx.check_untouched(&out);
    }
}

#[test]
fn a_few_denied_chowns_are_ordinary_errors() {
    require!(root, tools: ["chattr"]);
    // One immutable root-owned file refuses chown with EPERM even to root. With nothing else to
    // change, that is one ordinary, reported error: not "chown is impossible here".
    let mut fx = Fx::new("fo-immutable");
    fx.dir("d", 0o755, T, T).file("d/stuck", 0o644, 0, 0);
    let stuck = fx.abs("d/stuck");
    let chattr = |flag: &str| common::fixture::chattr(flag, &stuck);
    require!(
        chattr("+i"),
        "chattr +i is not supported on the temp filesystem"
    );
    let out = fo(fx.path(), "openat2", &[]);
    chattr("-i");
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr.contains("error:") && out.stderr.contains("d/stuck"),
        "the failing entry is reported by path\n{out}"
    );
    assert!(!out.stderr.contains("not permitted here"), "{out}");
    assert_eq!(owner(&stuck), (0, 0));
}

fn immutable_files_first_do_not_pass_for_chown_being_impossible(walk: &str) {
    require!(root, tools: ["unshare", "mount", "chattr"]);
    // On a tmpfs of its own (gone with the namespace, immutable files and all), which lists a
    // directory newest first: 200 ordinary root-owned files, then 8 immutable ones, so the
    // immutable ones are the first 8 chowns the sweep tries. The root itself is already the
    // hermes user's, so no chown succeeds before them.
    let dir = TempDir::new(&format!("fo-immutable-first-{walk}"));
    let script = r#"set -e
mount -t tmpfs -o mode=0755 tmpfs "$1"
mkdir "$1/home"
chown 10000:10000 "$1/home"
for i in $(seq 200); do : > "$1/home/ordinary$i"; done
for i in $(seq 8); do : > "$1/home/stuck$i"; chattr +i "$1/home/stuck$i"; done
echo "first: $(ls -U "$1/home" | head -n 8 | tr '\n' ' ')"
rc=0
"$0" fix-ownership "$1/home" --user 10000:10000 || rc=$?
echo "rc: $rc"
echo "root-owned: $(find "$1/home" -user 0 | tr '\n' ' ')"
"#;
    let mut cmd = in_private_mntns(script);
    cmd.arg(dir.path()).env("HERMES_SHIM_WALK", walk);
    let out = run_cmd(cmd, 60);
    let first = field(&out, "first");
    assert!(
        first.split(' ').all(|n| n.starts_with("stuck")),
        "precondition: the immutable files come first ({first})\n{out}"
    );
    assert_eq!(field(&out, "rc"), "1", "--walk {walk}\n{out}");
    assert!(
        !out.stderr.contains("not permitted here"),
        "--walk {walk}\n{out}"
    );
    let stuck: Vec<String> = (1..=8).map(|i| format!("stuck{i}")).collect();
    let left = field(&out, "root-owned");
    let mut left: Vec<&str> = left
        .split(' ')
        .map(|p| p.rsplit('/').next().unwrap())
        .collect();
    left.sort_unstable();
    let mut want: Vec<&str> = stuck.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(
        left, want,
        "--walk {walk}: only the immutable files stay root's\n{out}"
    );
    let c = summary(&out, &dir.path().join("home"), false);
    assert_eq!((c.changed, c.errors), (200, 8), "--walk {walk}\n{out}");
    for s in &stuck {
        assert!(
            out.stderr.contains(&format!("{s}: fchownat")),
            "{s} reported\n{out}"
        );
    }
}
per_walk!(immutable_files_first_do_not_pass_for_chown_being_impossible);

fn a_chown_that_worked_settles_it_before_any_denial(walk: &str) {
    require!(root, tools: ["unshare", "mount", "chattr"]);
    // A root that is the hermes user's and immutable, so the probe's own chown of it is denied
    // and would say "impossible". But the first entry listed (tmpfs lists newest first) is an
    // ordinary root-owned file whose chown succeeds: from then on chown is known to work, and
    // the 8 immutable files after it are 8 ordinary errors, never a stop.
    let dir = TempDir::new(&format!("fo-worked-first-{walk}"));
    let script = r#"set -e
mount -t tmpfs -o mode=0755 tmpfs "$1"
mkdir "$1/home"
chown 10000:10000 "$1/home"
for i in $(seq 8); do : > "$1/home/stuck$i"; chattr +i "$1/home/stuck$i"; done
: > "$1/home/ordinary"
chattr +i "$1/home"
echo "first: $(ls -U "$1/home" | head -n 1)"
rc=0
"$0" fix-ownership "$1/home" --user 10000:10000 || rc=$?
echo "rc: $rc"
echo "ordinary: $(stat -c %u:%g "$1/home/ordinary")"
"#;
    let mut cmd = in_private_mntns(script);
    cmd.arg(dir.path()).env("HERMES_SHIM_WALK", walk);
    let out = run_cmd(cmd, 60);
    assert_eq!(field(&out, "first"), "ordinary", "precondition\n{out}");
    assert_eq!(field(&out, "rc"), "1", "--walk {walk}\n{out}");
    assert_eq!(
        field(&out, "ordinary"),
        "10000:10000",
        "--walk {walk}\n{out}"
    );
    assert!(
        !out.stderr.contains("not permitted here"),
        "--walk {walk}: chown worked once, so it is not impossible\n{out}"
    );
    let c = summary(&out, &dir.path().join("home"), false);
    assert_eq!((c.changed, c.errors), (1, 8), "--walk {walk}\n{out}");
    assert_eq!(
        out.stderr_lines_with(": fchownat").len(),
        8,
        "--walk {walk}: each immutable file reported\n{out}"
    );
}
per_walk!(a_chown_that_worked_settles_it_before_any_denial);

fn a_mount_point_root_may_not_open_is_skipped_as_a_mount(walk: &str) {
    require!(root, tools: ["unshare", "mount", "sh", "mkfifo", "stat"]);
    // On a tmpfs of its own: a mount inside the root whose top directory belongs to uid 4242,
    // 0700, and a sweep in a user namespace that does not map 4242, where root is refused that
    // directory as it is a FUSE mount without allow_other. The maps are written from outside.
    let dir = TempDir::new(&format!("fo-closed-mount-{walk}"));
    let script = r#"set -e
mount -t tmpfs -o mode=0755 tmpfs "$1"
mkdir "$1/home" "$1/home/m"
: > "$1/home/f"
mount -t tmpfs -o mode=0700,uid=4242,gid=4242 tmpfs "$1/home/m"
: > "$1/home/m/inner"
mkfifo "$1/ready" "$1/go"
unshare --user sh -c 'echo > "$0/ready"; read x < "$0/go"; exec "$@"' "$1" \
    "$0" fix-ownership --user 10000:10000 --walk "$2" "$1/home" &
pid=$!
read x < "$1/ready"
printf '0 0 1\n10000 10000 1\n' > /proc/$pid/uid_map
printf '0 0 1\n10000 10000 1\n' > /proc/$pid/gid_map
echo > "$1/go"
rc=0
wait $pid || rc=$?
echo "rc: $rc"
echo "inner: $(stat -c %u:%g "$1/home/m/inner")"
echo "f: $(stat -c %u:%g "$1/home/f")"
"#;
    let mut cmd = in_private_mntns(script);
    cmd.arg(dir.path()).arg(walk);
    let out = run_cmd(cmd, 60);
    assert_eq!(field(&out, "rc"), "0", "--walk {walk}: no error\n{out}");
    assert_eq!(field(&out, "f"), "10000:10000", "--walk {walk}\n{out}");
    assert_eq!(
        field(&out, "inner"),
        "0:0",
        "--walk {walk}: not entered\n{out}"
    );
    let c = summary(&out, &dir.path().join("home"), false);
    assert_eq!(
        (c.scanned, c.changed, c.mount, c.errors),
        (3, 2, 1, 0),
        "--walk {walk}\n{out}"
    );
}
per_walk!(a_mount_point_root_may_not_open_is_skipped_as_a_mount);
