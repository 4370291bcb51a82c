//! Root integration tests of `hermes-shim doctor` on temporary trees, driving the built binary:
//! a healthy home, root-owned entries (counted, the first named, escaped), an unwritable home,
//! bad usage, and that it changes nothing, run as root or as the hermes uid, as text or JSON.
//!
//! Safety: the doctor only reads; the trees are fresh temporary ones, with no symlink leading
//! out of them.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, lchown, symlink};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use common::fix::{Out, T, USER, clean_cmd, run_cmd};
use common::{TempDir, bin, require};

fn make(p: &Path, dir: bool, mode: u32, uid: u32, gid: u32) {
    if dir {
        fs::create_dir(p).unwrap();
    } else {
        fs::write(p, "x").unwrap();
    }
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
    lchown(p, Some(uid), Some(gid)).unwrap();
}

/// A home that is the hermes user's throughout: files, a 0700 directory, a symlink.
fn healthy(tag: &str) -> (TempDir, PathBuf) {
    let tmp = TempDir::new(tag);
    let home = tmp.path().join("data");
    make(&home, true, 0o700, T, T);
    make(&home.join("config.yaml"), false, 0o600, T, T);
    make(&home.join("sessions"), true, 0o700, T, T);
    make(&home.join("sessions/one.json"), false, 0o644, T, T);
    symlink("config.yaml", home.join("link")).unwrap();
    lchown(home.join("link"), Some(T), Some(T)).unwrap();
    (tmp, home)
}

/// What `hermes config set` as root leaves: root-owned entries, one in a root-only directory,
/// one with a newline in its name.
fn damage(home: &Path) {
    make(&home.join("SOUL.md"), false, 0o644, 0, 0);
    make(&home.join("logs"), true, 0o700, 0, 0);
    make(&home.join("logs/agent.log"), false, 0o644, 0, 0);
    make(&home.join("sessions/new\nline"), false, 0o644, 0, 0);
    make(&home.join("sessions/group"), false, 0o644, T, 0);
}

fn doctor(home: &Path, as_hermes: bool, args: &[&str]) -> Out {
    doctor_for(USER, home, as_hermes, args)
}

/// The doctor's command line, with `user` as `HERMES_SHIM_USER`.
fn doctor_cmd(user: &str, home: &Path, args: &[&str]) -> std::process::Command {
    let mut cmd = clean_cmd(bin());
    cmd.arg("doctor")
        .args(args)
        .env("HERMES_HOME", home)
        .env("HERMES_SHIM_USER", user);
    cmd
}

/// The doctor with `user` as `HERMES_SHIM_USER`.
fn doctor_for(user: &str, home: &Path, as_hermes: bool, args: &[&str]) -> Out {
    let mut cmd = doctor_cmd(user, home, args);
    if as_hermes {
        // std drops root's supplementary groups along with the uid.
        cmd.uid(T).gid(T);
    }
    run_cmd(cmd, 60)
}

/// The checks of a `--json` report, by name: (status, detail, action).
fn checks(out: &Out) -> Vec<(String, String, String, Option<String>)> {
    let v: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e})\n{out}"));
    let healthy = v["healthy"].as_bool().unwrap();
    assert_eq!(out.code, Some(if healthy { 0 } else { 1 }), "{out}");
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["check"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
                c["detail"].as_str().unwrap().to_string(),
                c["action"].as_str().map(str::to_string),
            )
        })
        .collect()
}

fn check<'a>(
    all: &'a [(String, String, String, Option<String>)],
    name: &str,
) -> &'a (String, String, String, Option<String>) {
    all.iter()
        .find(|c| c.0 == name)
        .unwrap_or_else(|| panic!("no {name:?} check in {all:?}"))
}

#[test]
fn a_healthy_home_is_all_well_as_root_and_as_hermes() {
    require!(root);
    let (_tmp, home) = healthy("doctor-healthy");
    for as_hermes in [false, true] {
        let out = doctor(&home, as_hermes, &["--json"]);
        let all = checks(&out);
        for (name, status, detail, _) in &all {
            assert_ne!(status, "fix", "{name}: {detail}\n{out}");
        }
        assert_eq!(out.code, Some(0), "{out}");
        assert_eq!(check(&all, "ownership").1, "ok");
        assert_eq!(check(&all, "home").1, "ok");
        // The container's own groups are root's supplementary groups: only root sees them.
        assert_eq!(
            check(&all, "user").2.contains("seen only as root"),
            as_hermes,
            "{out}"
        );
        for kernel in [
            "mount ids",
            "openat2",
            "close_range",
            "seccomp",
            "terminal filter",
        ] {
            check(&all, kernel);
        }
        let scope = &check(&all, "repair scope").1;
        assert_eq!(scope, if as_hermes { "note" } else { "ok" }, "{out}");
        let text = doctor(&home, as_hermes, &[]);
        assert_eq!(text.code, Some(0), "{text}");
        assert!(
            text.stdout.ends_with("hermes-shim doctor: all is well\n"),
            "{text}"
        );
        assert!(!text.stdout.contains("FIX"), "{text}");
    }
}

#[test]
fn root_owned_entries_are_counted_named_and_the_action_given() {
    require!(root);
    let (_tmp, home) = healthy("doctor-damaged");
    damage(&home);
    let out = doctor(&home, false, &["--json"]);
    assert_eq!(out.code, Some(1), "{out}");
    let all = checks(&out);
    let (_, status, detail, action) = check(&all, "ownership");
    assert_eq!(status, "fix", "{out}");
    assert!(
        detail.starts_with(&format!(
            "5 entries under {} have root's owner or group:",
            home.display()
        )),
        "{detail}"
    );
    // Names come from the agent: printed escaped, a newline as `\n`.
    assert!(detail.contains("sessions/new\\nline"), "{detail}");
    assert!(!detail.contains('\n'), "{detail}");
    assert!(
        action
            .as_deref()
            .unwrap()
            .contains("hermes-shim fix-ownership"),
        "{action:?}"
    );
    // As hermes, the root-only logs/ cannot be read: its own entry counts, what is inside
    // does not, and the checklist says so by counting 4.
    let mine = doctor(&home, true, &["--json"]);
    assert_eq!(mine.code, Some(1), "{mine}");
    let all = checks(&mine);
    assert!(
        check(&all, "ownership").2.starts_with("4 entries under"),
        "{mine}"
    );
    let text = doctor(&home, false, &[]);
    assert_eq!(text.code, Some(1), "{text}");
    let line = text
        .stdout
        .lines()
        .find(|l| l.starts_with("  FIX  ownership"))
        .unwrap_or_else(|| panic!("no FIX ownership line\n{text}"));
    assert!(line.contains("5 entries under"), "{line}");
    assert!(
        text.stdout
            .ends_with("hermes-shim doctor: 1 thing needs fixing (the FIX line says how)\n"),
        "{text}"
    );
}

#[test]
fn an_unwritable_home_is_named_with_its_remedy() {
    require!(root);
    let (_tmp, home) = healthy("doctor-unwritable");
    lchown(&home, Some(1000), Some(1001)).unwrap();
    fs::set_permissions(&home, fs::Permissions::from_mode(0o755)).unwrap();
    let out = doctor(&home, false, &["--json"]);
    assert_eq!(out.code, Some(1), "{out}");
    let all = checks(&out);
    let (_, status, detail, action) = check(&all, "home");
    assert_eq!(status, "fix", "{out}");
    assert!(
        detail.contains("1000:1001 0755, NOT writable by 10000"),
        "{detail}"
    );
    assert!(
        action.as_deref().unwrap().contains("PUID=1000 PGID=1001"),
        "{action:?}"
    );
    let missing = doctor(&home.join("nothing-here"), false, &["--json"]);
    let all = checks(&missing);
    assert!(
        check(&all, "home").2.contains("does not exist"),
        "{missing}"
    );
    assert_eq!(missing.code, Some(1));
}

#[test]
fn a_home_that_is_not_a_directory_is_named_and_not_looked_into() {
    require!(root);
    let (tmp, home) = healthy("doctor-not-dir");
    let file = tmp.path().join("file");
    make(&file, false, 0o600, T, T);
    let link = tmp.path().join("link");
    symlink(&home, &link).unwrap();
    for not_dir in [&file, &link] {
        let out = doctor(not_dir, false, &["--json"]);
        assert_eq!(out.code, Some(1), "{out}");
        let all = checks(&out);
        assert_eq!(check(&all, "home").1, "fix", "{out}");
        for absent in ["ownership", "repair scope"] {
            assert!(
                all.iter().all(|c| c.0 != absent),
                "{}: a {absent} check of what is no directory\n{out}",
                not_dir.display()
            );
        }
    }
}

#[test]
fn root_sees_the_groups_the_drop_keeps() {
    require!(root);
    let (_tmp, home) = healthy("doctor-group-add");
    // What `docker run --group-add 5000` gives the container's root.
    let held = [nix::unistd::Gid::from_raw(5000)];
    let mut cmd = doctor_cmd(USER, &home, &["--json"]);
    // SAFETY: setgroups is one raw syscall on a slice prepared before the fork.
    unsafe {
        cmd.pre_exec(move || nix::unistd::setgroups(&held).map_err(std::io::Error::from));
    }
    let out = run_cmd(cmd, 60);
    let all = checks(&out);
    let (_, status, detail, _) = check(&all, "user");
    assert_eq!(status, "ok", "{out}");
    assert!(
        detail.contains("group_add kept through the drop: 5000"),
        "{detail}"
    );
}

#[test]
fn a_refused_user_gets_the_remedy_for_its_refusal() {
    require!(root);
    let (_tmp, home) = healthy("doctor-refused-user");
    for (user, remedy) in [
        ("10000:0", "give the user a gid of 100 or above"),
        (
            "no-such-user-here",
            "set HERMES_SHIM_USER to a user this container has",
        ),
    ] {
        let out = doctor_for(user, &home, false, &["--json"]);
        assert_eq!(out.code, Some(1), "{out}");
        let all = checks(&out);
        let (_, status, _, action) = check(&all, "user");
        assert_eq!(status, "fix", "{user}: {out}");
        assert!(
            action.as_deref().is_some_and(|a| a.starts_with(remedy)),
            "{user}: {action:?}"
        );
    }
}

type Snapshot = Vec<(PathBuf, [i64; 7])>;

/// Every entry's inode, owner, group, mode, size, mtime and ctime (nanoseconds): a chown, a
/// chmod, a write or a rename anywhere shows, since each moves the ctime.
fn snapshot(root: &Path) -> Snapshot {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(root).sort_by_file_name() {
        let e = e.unwrap();
        let m = fs::symlink_metadata(e.path()).unwrap();
        let i = |v: u64| i64::try_from(v).unwrap();
        out.push((
            e.into_path(),
            [
                i(m.ino()),
                i64::from(m.uid()),
                i64::from(m.gid()),
                i64::from(m.mode()),
                i(m.size()),
                m.mtime() * 1_000_000_000 + m.mtime_nsec(),
                m.ctime() * 1_000_000_000 + m.ctime_nsec(),
            ],
        ));
    }
    out
}

#[test]
fn it_changes_nothing_whoever_runs_it() {
    require!(root);
    let (tmp, home) = healthy("doctor-readonly");
    damage(&home);
    let before = snapshot(tmp.path());
    assert!(before.len() >= 10, "{before:?}");
    for as_hermes in [false, true] {
        for args in [&[][..], &["--json"][..]] {
            let out = doctor(&home, as_hermes, args);
            assert_eq!(out.code, Some(1), "{out}");
            assert_eq!(
                snapshot(tmp.path()),
                before,
                "doctor {args:?} (as hermes: {as_hermes}) changed the tree\n{out}"
            );
        }
    }
}

#[test]
fn bad_usage_is_exit_2() {
    let (_tmp, home) = healthy_or_plain("doctor-usage");
    let out = doctor(&home, false, &["--bogus"]);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(out.stderr.contains("--bogus"), "{out}");
    assert!(out.stdout.is_empty(), "{out}");
}

/// A home for tests that need no particular owner (and so no root).
fn healthy_or_plain(tag: &str) -> (TempDir, PathBuf) {
    let tmp = TempDir::new(tag);
    let home = tmp.path().join("data");
    fs::create_dir(&home).unwrap();
    (tmp, home)
}

#[test]
fn a_directory_the_kernel_will_not_list_is_never_all_well() {
    require!(root);
    let (_tmp, home) = healthy("doctor-getdents");
    for errno in [nix::libc::ENOSYS, nix::libc::EPERM] {
        for as_hermes in [false, true] {
            let mut cmd = doctor_cmd(USER, &home, &["--json"]);
            if as_hermes {
                cmd.uid(T).gid(T);
            }
            common::seccomp::answer(&mut cmd, &[(nix::libc::SYS_getdents64, errno)]);
            let out = run_cmd(cmd, 60);
            let all = checks(&out);
            let (_, status, detail, _) = check(&all, "ownership");
            let who = if as_hermes {
                "could not be read — run the doctor as root"
            } else {
                "could not be read even as root"
            };
            assert_eq!(
                status, "note",
                "errno {errno}, as hermes: {as_hermes}\n{out}"
            );
            assert!(
                detail.contains(&format!("1 directory {who}")),
                "errno {errno}, as hermes: {as_hermes}: the home itself\n{out}"
            );
        }
    }
}

/// The access times of `dirs` (seconds), read by stat alone: listing them would move them.
fn atimes(dirs: &[PathBuf]) -> Vec<i64> {
    dirs.iter()
        .map(|d| fs::symlink_metadata(d).unwrap().atime())
        .collect()
}

/// Sets the access time of `p` to 2000-01-01, leaving its mtime.
fn age(p: &Path) {
    use nix::sys::stat::{UtimensatFlags, utimensat};
    use nix::sys::time::TimeSpec;
    utimensat(
        nix::fcntl::AT_FDCWD,
        p,
        &TimeSpec::new(946_684_800, 0),
        &TimeSpec::UTIME_OMIT,
        UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
}

#[test]
fn as_root_it_reads_directories_without_moving_their_access_time() {
    require!(root);
    let (tmp, home) = healthy("doctor-atime");
    damage(&home);
    // A control: reading a directory with an old access time moves it here (relatime does, for
    // an access time older than the mtime), or this filesystem cannot show the difference.
    let control = tmp.path().join("control");
    fs::create_dir(&control).unwrap();
    age(&control);
    fs::read_dir(&control).unwrap().for_each(drop);
    let moved = fs::symlink_metadata(&control).unwrap().atime() != 946_684_800;
    require!(
        moved,
        "the temporary filesystem does not update access times"
    );
    let dirs: Vec<PathBuf> = walkdir::WalkDir::new(&home)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_dir())
        .map(walkdir::DirEntry::into_path)
        .collect();
    assert!(dirs.len() >= 3, "{dirs:?}");
    for dir in &dirs {
        age(dir);
    }
    let out = doctor(&home, false, &[]);
    assert_eq!(out.code, Some(1), "{out}");
    assert_eq!(
        atimes(&dirs),
        vec![946_684_800; dirs.len()],
        "O_NOATIME on every directory read\n{out}"
    );
}

#[test]
fn a_filter_that_cannot_be_told_from_a_broken_kernel_is_not_called_in_force() {
    require!(root);
    let (_tmp, home) = healthy("doctor-tcgets");
    // A profile that answers TCGETS with EPERM: the probe's allowed call no longer reaches the
    // kernel, so it cannot show that the filter judges TIOCSTI alone.
    let mut cmd = doctor_cmd(USER, &home, &["--json"]);
    let tcgets = u32::try_from(nix::libc::TCGETS).unwrap();
    common::seccomp::answer_if(
        &mut cmd,
        &[(nix::libc::SYS_ioctl, Some((1, tcgets)), nix::libc::EPERM)],
    );
    let out = run_cmd(cmd, 60);
    let all = checks(&out);
    let (_, status, detail, _) = check(&all, "terminal filter");
    assert_ne!(status, "ok", "{out}");
    assert!(detail.contains("judges nothing"), "{out}");
}

#[test]
fn close_range_refused_is_a_note_naming_the_answer() {
    require!(root);
    let (_tmp, home) = healthy("doctor-close-range");
    for (errno, name) in [(nix::libc::ENOSYS, "ENOSYS"), (nix::libc::EPERM, "EPERM")] {
        let mut cmd = doctor_cmd(USER, &home, &["--json"]);
        common::seccomp::answer(&mut cmd, &[(nix::libc::SYS_close_range, errno)]);
        let out = run_cmd(cmd, 60);
        let all = checks(&out);
        let (_, status, detail, _) = check(&all, "close_range");
        assert_eq!(status, "note", "{name}\n{out}");
        assert!(
            detail.starts_with(&format!("no ({name}")),
            "{name}: {detail}\n{out}"
        );
    }
}
