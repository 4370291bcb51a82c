//! Root integration tests of the sweep on old kernels and under old seccomp profiles, simulated
//! by a filter (tests/common/seccomp.rs): no statx (Linux < 4.11, or a profile older than it),
//! no mount id from statx (< 5.8), no openat2 (< 5.6), no file handles. The promise holds on
//! every one: a bind mount of the sweep's own filesystem is never entered, and where no source
//! of mount ids is left, the sweep refuses rather than guess from the device.
//!
//! Safety: these run as root against a binary that may be wrong; the bind source is a
//! temporary tree whose snapshot must not change, and the mounts live in a private namespace.

mod common;

use std::path::Path;

use common::fix::{Out, T, in_private_mntns, run_cmd};
use common::fixture::{Fx, assert_same_snapshot, owner, snapshot};
use common::report::{Counts, json_object, report};
use common::seccomp::answer;
use common::{TempDir, require};
use nix::libc::{self, ENOSYS, EOPNOTSUPP, EPERM, SYS_name_to_handle_at, SYS_openat2, SYS_statx};

/// Runs the sweep (auto walk, JSON, verbose) on a tree holding a bind mount of another
/// temporary directory of the same filesystem, in a private mount namespace, under `answers`;
/// `hide_proc` puts an empty tmpfs over /proc there. Returns the run, the fixture and whether the
/// bind source stayed as it was.
fn sweep_with_bind_mount(tag: &str, answers: &[(libc::c_long, i32)], hide_proc: bool) -> (Out, Fx) {
    let mut fx = Fx::new(&format!("fo-old-{tag}"));
    // A FIFO, which no mount-id source may open (it would wait for a writer), and a symlink
    // into the bind mount, which is on the sweep's mount whatever it points at.
    fx.file("a", 0o644, 0, 0)
        .dir("ws", 0o755, 0, 0)
        .fifo("pipe", 0, 0)
        .symlink("to-ws", "ws/host-file", 0, 0);
    let src = TempDir::new(&format!("fo-old-src-{tag}"));
    Fx::make_dir(&src.path().join("inner"), 0o700, 0, 0);
    Fx::make_file(&src.path().join("inner/f"), 0o600, 0, 0);
    Fx::make_file(&src.path().join("host-file"), 0o600, 0, 0);
    let before = snapshot(src.path());
    let outdir = TempDir::new(&format!("fo-old-out-{tag}"));
    let json = outdir.path().join("report.json");
    let script = r#"set -e
mount --bind "$1" "$2/ws"
if [ "$4" = hide ]; then mount -t tmpfs none /proc; fi
rc=0
"$0" fix-ownership "$2" --user 10000:10000 --json --verbose >"$3" || rc=$?
exit "$rc""#;
    let mut cmd = in_private_mntns(script);
    cmd.arg(src.path())
        .arg(fx.path())
        .arg(&json)
        .arg(if hide_proc { "hide" } else { "keep" });
    answer(&mut cmd, answers);
    let mut out = run_cmd(cmd, 60);
    out.stdout = std::fs::read_to_string(&json).unwrap_or_default();
    assert_same_snapshot(
        &before,
        &snapshot(src.path()),
        &format!("{tag}: the bind source\n{out}"),
    );
    (out, fx)
}

/// The sweep ran, said where its mount ids came from, skipped the bind mount and changed the
/// rest.
fn holds(out: &Out, fx: &Fx, ids: &str) {
    assert_eq!(out.code, Some(0), "{out}");
    let want = Counts {
        scanned: 5,
        changed: 4,
        mount: 1,
        ..Counts::default()
    };
    assert_eq!(report(out, fx.path(), None, false, (T, T)), want, "{out}");
    assert_eq!(json_object(out)["mount_ids"], ids, "{out}");
    assert_eq!(json_object(out)["walk"], "fallback", "no openat2: {out}");
    assert!(
        out.stderr.contains(&format!("mount ids from {ids}")),
        "--verbose names the source\n{out}"
    );
    for entry in ["a", "pipe", "to-ws"] {
        assert_eq!(owner(&fx.abs(entry)), (T, T), "{entry}\n{out}");
    }
    assert_eq!(owner(fx.path()), (T, T), "{out}");
}

const NO_STATX: [(libc::c_long, i32); 2] = [(SYS_statx, ENOSYS), (SYS_openat2, ENOSYS)];

#[test]
fn linux_4_4_without_statx_tells_a_bind_mount_by_its_file_handle_mount_id() {
    require!(root, tools: ["unshare", "mount", "sh"]);
    let (out, fx) = sweep_with_bind_mount("enosys", &NO_STATX, false);
    holds(&out, &fx, "name_to_handle_at");
}

#[test]
fn a_profile_that_denies_statx_with_eperm_falls_back_the_same_way() {
    require!(root, tools: ["unshare", "mount", "sh"]);
    let (out, fx) =
        sweep_with_bind_mount("eperm", &[(SYS_statx, EPERM), (SYS_openat2, EPERM)], false);
    holds(&out, &fx, "name_to_handle_at");
}

#[test]
fn without_file_handles_the_mount_id_comes_from_fdinfo() {
    require!(root, tools: ["unshare", "mount", "sh"]);
    for (tag, errno) in [
        ("nofh-enosys", ENOSYS),
        ("nofh-eperm", EPERM),
        ("nofh-eopnotsupp", EOPNOTSUPP),
    ] {
        let mut answers = NO_STATX.to_vec();
        answers.push((SYS_name_to_handle_at, errno));
        let (out, fx) = sweep_with_bind_mount(tag, &answers, false);
        holds(&out, &fx, "fdinfo");
    }
}

#[test]
fn with_no_source_of_mount_ids_the_sweep_refuses_and_changes_nothing() {
    require!(root, tools: ["unshare", "mount", "sh"]);
    let mut answers = NO_STATX.to_vec();
    answers.push((SYS_name_to_handle_at, ENOSYS));
    let (out, fx) = sweep_with_bind_mount("none", &answers, true);
    assert_eq!(out.code, Some(2), "{out}");
    let lines = out.stderr_lines_with("cannot tell mounts apart here");
    assert_eq!(lines.len(), 1, "one line naming the problem\n{out}");
    assert!(lines[0].contains("mount /proc"), "and the remedy\n{out}");
    assert_eq!(owner(&fx.abs("a")), (0, 0), "nothing changed\n{out}");
    assert_eq!(owner(fx.path()), (0, 0), "nothing changed\n{out}");
}

/// The filter does what it claims: a control run with statx answered normally uses statx.
#[test]
fn a_current_kernel_takes_mount_ids_from_statx() {
    require!(root, tools: ["unshare", "mount", "sh"]);
    let (out, _fx) = sweep_with_bind_mount("control", &[], false);
    assert_eq!(out.code, Some(0), "{out}");
    let ids = json_object(&out)["mount_ids"].clone();
    // A kernel before 5.8 running these tests takes the next source; never none.
    assert!(ids == "statx" || ids == "name_to_handle_at", "{out}");
    if Path::new("/proc/self/fdinfo").exists() && kernel_at_least(5, 8) {
        assert_eq!(ids, "statx", "{out}");
    }
}

fn kernel_at_least(major: u32, minor: u32) -> bool {
    let release = nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned());
    let Ok(release) = release else { return false };
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse::<u32>().ok());
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (major, minor)
}
