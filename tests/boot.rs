//! Root integration tests of `hermes-shim boot`, each in a private mount namespace whose /etc is a
//! test directory (and /run a tmpfs): the uid/gid remap moves the user's files and is finished
//! by the next start if cut short, a failing remap leaves the accounts whole and still repairs
//! root's files, and a missing home is created, but never through a symlink.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, lchown};
use std::path::Path;

use common::fix::{Out, T, fo_cmd, in_private_mntns, run_cmd};
use common::fixture::{chattr, etc_dir, lstat, owner, victim};
use common::report::{assert_refused, summary};
use common::{TempDir, require};

/// The passwd file of the tests' /etc: `hermtest` is uid 10000 with primary group 10001.
const PASSWD: &str =
    "root:x:0:0:root:/root:/bin/sh\nhermtest:x:10000:10001::/nonexistent:/bin/sh\n";

#[test]
fn a_bad_setting_is_the_same_one_line_refusal_in_fix_ownership_and_boot() {
    require!(root, tools: ["unshare", "mount", "sh"]);
    const SAYS: &str = r#"HERMES_SHIM_WALK="bogus" is not a walk — give auto, openat2 or fallback"#;
    let fx = victim("fo-bad-setting");
    let mut cmd = fo_cmd(&[fx.path().to_str().unwrap(), "--user", "10000:10001"]);
    cmd.env("HERMES_SHIM_WALK", "bogus");
    let out = run_cmd(cmd, 30);
    assert_eq!(out.code, Some(2), "{out}");
    assert_eq!(
        out.stderr,
        format!("hermes-shim fix-ownership: {SAYS}\n"),
        "named first, alone"
    );
    fx.check_untouched(&out);
    // Named before anything else is looked at, even a root that does not exist.
    let missing = fx.path().join("missing");
    let mut cmd = fo_cmd(&[missing.to_str().unwrap(), "--user", "10000:10001"]);
    cmd.env("HERMES_SHIM_WALK", "bogus");
    let out = run_cmd(cmd, 30);
    assert_eq!(
        out.stderr,
        format!("hermes-shim fix-ownership: {SAYS}\n"),
        "{out}"
    );

    let etc = etc_dir(
        "fo-bad-setting-etc",
        PASSWD,
        "root:x:0:\nhermgrp:x:10001:\n",
    );
    let env = [
        ("HERMES_SHIM_USER", "hermtest"),
        ("HERMES_SHIM_WALK", "bogus"),
    ];
    let out = boot_in(etc.path(), fx.path(), &env, "", "");
    assert_eq!(out.code, Some(2), "{out}");
    // boot's sweep says it in the same words, then boot warns that the repair was refused.
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(
        lines[0],
        format!("hermes-shim fix-ownership: {SAYS}"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("hermes-shim boot: WARNING: ownership repair of "),
        "{out}"
    );
    fx.check_untouched(&out);
}

#[test]
fn boot_remaps_the_user_and_moves_its_files() {
    require!(root, tools: ["unshare", "mount", "sh"]);
    // A private /etc (a directory bind-mounted over it in a mount namespace), so the remap can
    // replace passwd and group by rename as it does in a container.
    let group_text = "root:x:0:\nstaff:x:50:\nhermgrp:x:10001:\n";
    let etc = etc_dir("fo-boot-etc", PASSWD, group_text);
    let passwd = etc.path().join("passwd");
    let group = etc.path().join("group");
    let marker = etc.path().join("hermes-shim-remap");
    let home = TempDir::new("fo-boot-home");
    let h = |rel: &str| home.path().join(rel);
    for (rel, uid, gid) in [
        ("old", T, 10001),
        ("oldstaff", T, 50),
        ("rootfile", 0, 0),
        ("host", 1000, 1000),
    ] {
        fs::write(h(rel), "x").unwrap();
        lchown(h(rel), Some(uid), Some(gid)).unwrap();
    }
    lchown(home.path(), Some(T), Some(10001)).unwrap();
    let boot = |uid: &str, gid: &str| {
        let env = [
            ("HERMES_SHIM_USER", "hermtest"),
            ("HERMES_UID", uid),
            ("PGID", gid),
        ];
        boot_in(etc.path(), home.path(), &env, "", "")
    };

    // A refused request changes no account, yet root's files are still repaired.
    let out = boot("0", "2001");
    assert_eq!(out.code, Some(2), "{out}");
    assert!(out.stderr.contains("HERMES_UID=\"0\""), "{out}");
    assert_eq!(fs::read_to_string(&passwd).unwrap(), PASSWD);
    assert_eq!(owner(&h("rootfile")), (T, 10001), "{out}");
    assert!(!marker.exists());

    let out = boot("2000", "2001");
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stderr.contains("from 10000:10001 to 2000:2001"),
        "{out}"
    );
    assert_eq!(
        fs::read_to_string(&passwd).unwrap(),
        PASSWD.replace(":10000:10001:", ":2000:2001:")
    );
    assert_eq!(
        fs::read_to_string(&group).unwrap(),
        group_text.replace("hermgrp:x:10001:", "hermgrp:x:2001:")
    );
    for (rel, want) in [
        ("", (2000, 2001)),
        ("old", (2000, 2001)),
        ("oldstaff", (2000, 50)),
        ("rootfile", (2000, 2001)),
        ("host", (1000, 1000)),
    ] {
        assert_eq!(owner(&h(rel)), want, "{rel:?}\n{out}");
    }
    assert!(
        !marker.exists(),
        "forgotten once the sweep fixed everything\n{out}"
    );

    // The next start finds the ids as asked: no remap, nothing left to move.
    let out = boot("2000", "2001");
    assert_eq!(out.code, Some(0), "{out}");
    assert!(!out.stderr.contains("remapped"), "{out}");
    assert_eq!(summary(&out, home.path(), false).changed, 0, "{out}");

    // A start cut short after the accounts changed: the recorded old ids still move.
    fs::write(h("late"), "x").unwrap();
    lchown(h("late"), Some(T), Some(10001)).unwrap();
    fs::write(&marker, "10000:10001").unwrap();
    let out = boot("2000", "2001");
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(owner(&h("late")), (2000, 2001), "{out}");
    assert!(!marker.exists(), "{out}");
}

/// Runs `hermes-shim boot` in a private mount namespace where /etc is a test directory, after
/// `prelude` (a shell snippet run there first, e.g. more mounts), then `after` (whose output
/// shows what the namespace's /etc holds, since a tmpfs there vanishes with it).
fn boot_in(etc: &Path, home: &Path, env: &[(&str, &str)], prelude: &str, after: &str) -> Out {
    let script = format!(
        r#"set -e
mount --bind "$1" /etc
# A /run of its own: no host Docker socket, no start record left on the host.
mount -t tmpfs tmpfs /run
{prelude}
rc=0
"$0" boot || rc=$?
{after}
exit "$rc""#
    );
    let mut cmd = in_private_mntns(&script);
    cmd.arg(etc)
        .env("HERMES_HOME", home)
        .envs(env.iter().copied());
    run_cmd(cmd, 30)
}

#[test]
fn boot_remap_failures_leave_accounts_whole_and_still_repair() {
    require!(root, tools: ["unshare", "mount", "sh"]);
    let group_text = "root:x:0:\nshadow:x:42:\nhermgrp:x:10001:\n";
    let fresh = |tag: &str| {
        let etc = etc_dir(tag, PASSWD, group_text);
        let home = TempDir::new(&format!("{tag}-home"));
        lchown(home.path(), Some(T), Some(10001)).unwrap();
        fs::write(home.path().join("rootfile"), "x").unwrap();
        (etc, home)
    };
    let remap = [
        ("HERMES_SHIM_USER", "hermtest"),
        ("PUID", "2000"),
        ("PGID", "2001"),
    ];
    let leftovers = |etc: &Path| -> Vec<String> {
        fs::read_dir(etc)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("hermes-shim"))
            .collect()
    };

    // /etc/passwd bind-mounted read-only over the container's, as compose files often do.
    let (etc, home) = fresh("fo-boot-ro");
    let ro = etc.path().join("passwd.host");
    fs::write(&ro, PASSWD).unwrap();
    let prelude = format!(
        "mount --bind '{0}' /etc/passwd && mount -o remount,bind,ro /etc/passwd",
        ro.display()
    );
    let out = boot_in(etc.path(), home.path(), &remap, &prelude, "");
    assert_eq!(out.code, Some(2), "the remap is refused\n{out}");
    let line = out.stderr_lines_with("cannot remap");
    assert_eq!(line.len(), 1, "one line says why\n{out}");
    assert!(
        line[0].contains("/etc/passwd") && line[0].contains("mount point"),
        "{out}"
    );
    assert_eq!(
        fs::read_to_string(etc.path().join("group")).unwrap(),
        group_text
    );
    assert!(
        leftovers(etc.path()).is_empty(),
        "{:?}",
        leftovers(etc.path())
    );
    assert_eq!(
        owner(&home.path().join("rootfile")),
        (T, 10001),
        "repaired anyway\n{out}"
    );
    // Every later start repairs, with or without the request.
    fs::write(home.path().join("rootfile2"), "x").unwrap();
    let out = boot_in(
        etc.path(),
        home.path(),
        &[("HERMES_SHIM_USER", "hermtest")],
        &prelude,
        "",
    );
    assert_eq!(out.code, Some(0), "a later start without PUID\n{out}");
    assert_eq!(owner(&home.path().join("rootfile2")), (T, 10001), "{out}");
    fs::write(home.path().join("rootfile3"), "x").unwrap();
    let out = boot_in(etc.path(), home.path(), &remap, &prelude, "");
    assert_eq!(out.code, Some(2), "{out}");
    assert_eq!(owner(&home.path().join("rootfile3")), (T, 10001), "{out}");

    // /etc on a tmpfs with no room left: nothing can be staged, nothing changes.
    let (etc, home) = fresh("fo-boot-full");
    // ($1 is the test directory, still reachable by its own path once /etc is covered.)
    let prelude = r#"mount -t tmpfs -o size=64k tmpfs /etc && cp "$1/passwd" "$1/group" /etc/ \
                   && { dd if=/dev/zero of=/etc/filler bs=4k 2>/dev/null || true; }"#;
    let after = "echo '--- passwd'; cat /etc/passwd; echo '--- group'; cat /etc/group; \
                 echo '--- files'; ls -a /etc";
    let out = boot_in(etc.path(), home.path(), &remap, prelude, after);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(out.stderr.contains("No space left"), "{out}");
    let shown = |part: &str| -> String {
        let start = out.stdout.find(&format!("--- {part}\n")).expect("section") + part.len() + 5;
        let rest = &out.stdout[start..];
        rest[..rest.find("---").unwrap_or(rest.len())].to_string()
    };
    assert_eq!(shown("passwd"), PASSWD, "{out}");
    assert_eq!(shown("group"), group_text, "{out}");
    assert!(!shown("files").contains("hermes-shim"), "{out}");
    assert_eq!(owner(&home.path().join("rootfile")), (T, 10001), "{out}");

    // Root's own account is never remapped.
    let (etc, home) = fresh("fo-boot-root");
    let out = boot_in(
        etc.path(),
        home.path(),
        &[
            ("HERMES_SHIM_USER", "root"),
            ("PUID", "2000"),
            ("PGID", "2001"),
        ],
        "",
        "",
    );
    assert_eq!(out.code, Some(2), "{out}");
    assert!(out.stderr.contains("never remapped"), "{out}");
    assert_eq!(
        fs::read_to_string(etc.path().join("passwd")).unwrap(),
        PASSWD
    );
    assert_eq!(
        fs::read_to_string(etc.path().join("group")).unwrap(),
        group_text
    );

    // A remap that succeeds keeps each file's owner, group and mode (`root:shadow 0640`).
    let (etc, home) = fresh("fo-boot-mode");
    let group = etc.path().join("group");
    lchown(&group, Some(0), Some(42)).unwrap();
    fs::set_permissions(&group, fs::Permissions::from_mode(0o640)).unwrap();
    let out = boot_in(etc.path(), home.path(), &remap, "", "");
    assert_eq!(out.code, Some(0), "{out}");
    let m = lstat(&group);
    assert_eq!(
        (m.uid(), m.gid(), m.mode() & 0o7777),
        (0, 42, 0o640),
        "{out}"
    );
    assert!(
        fs::read_to_string(&group)
            .unwrap()
            .contains("hermgrp:x:2001:")
    );
    assert!(
        leftovers(etc.path()).is_empty(),
        "{:?}",
        leftovers(etc.path())
    );
}

#[test]
fn boot_creates_a_missing_home_but_never_through_a_symlink() {
    require!(root, tools: ["unshare", "mount", "sh", "stat"]);
    let etc = etc_dir(
        "fo-home-etc",
        "root:x:0:0::/root:/bin/sh\nhermtest:x:10000:10001::/nonexistent:/bin/sh\n",
        "root:x:0:\nhermgrp:x:10001:\n",
    );
    let scratch = TempDir::new("fo-home");
    // In a mount namespace: /etc is the test's, and the scratch directory a fresh tmpfs.
    let script = r#"set -e
mount --bind "$1" /etc
mount -t tmpfs tmpfs /run
mount -t tmpfs -o mode=0755 tmpfs "$2"
mkdir "$2/real" "$2/agents"
chown 10000:10001 "$2/agents"
ln -s "$2/real" "$2/link"
# A umask that would leave every directory boot makes at 0500: the modes are boot's own.
umask 0277
for home in "$2/a/b/home" "$2/link/home" /etc/hermes "$2/agents/.hermes" "$2/agents/x/.hermes"; do
    rc=0
    HERMES_HOME="$home" "$0" boot 2>>"$2/err" || rc=$?
    echo "rc $home $rc"
done
stat -c 'stat %n %u:%g %a' "$2/a" "$2/a/b" "$2/a/b/home"
echo "real holds: $(ls -A "$2/real" | wc -l)"
echo "etc/hermes: $(test -e /etc/hermes && echo exists || echo absent)"
echo "agents holds: $(ls -A "$2/agents" | wc -l)"
cat "$2/err" >&2
"#;
    let mut cmd = in_private_mntns(script);
    cmd.arg(etc.path())
        .arg(scratch.path())
        .env("HERMES_SHIM_USER", "hermtest");
    let out = run_cmd(cmd, 60);
    assert_eq!(out.code, Some(0), "{out}");
    let d = scratch.path().display();
    for (line, what) in [
        (
            format!("rc {d}/a/b/home 0"),
            "a missing home is created, then swept",
        ),
        (
            format!("stat {d}/a 0:0 755"),
            "a missing parent is root's, 0755",
        ),
        (format!("stat {d}/a/b 0:0 755"), "every missing parent"),
        (
            format!("stat {d}/a/b/home 10000:10001 700"),
            "the home is the user's, 0700",
        ),
        (
            format!("rc {d}/link/home 2"),
            "a symlink on the way: refused",
        ),
        (
            "real holds: 0".to_string(),
            "nothing created through the symlink",
        ),
        (
            "rc /etc/hermes 2".to_string(),
            "a path the sweep refuses stays refused",
        ),
        ("etc/hermes: absent".to_string(), "and is not created"),
        (
            format!("rc {d}/agents/.hermes 2"),
            "below a directory the user can write: refused",
        ),
        (
            format!("rc {d}/agents/x/.hermes 2"),
            "a missing parent there too",
        ),
        (
            "agents holds: 0".to_string(),
            "nothing created where the agent could swap it",
        ),
    ] {
        assert!(
            out.stdout.lines().any(|l| l == line),
            "{what}: no line {line:?}\n{out}"
        );
    }
    assert!(
        out.stderr
            .contains(&format!("hermes-shim boot: created {d}/a/b/home")),
        "one line says so\n{out}"
    );
}

#[test]
fn a_start_cut_short_between_the_group_and_the_user_is_finished_by_the_next() {
    require!(root, tools: ["unshare", "mount", "sh"]);
    // The state a start killed between renaming /etc/group and /etc/passwd leaves: the private
    // group already renumbered to 2001, the user still at 10000:10001, the old ids recorded.
    let etc = etc_dir("fo-boot-cut", PASSWD, "root:x:0:\nhermgrp:x:2001:\n");
    fs::write(etc.path().join("hermes-shim-remap"), "10000:10001").unwrap();
    let home = TempDir::new("fo-boot-cut-home");
    lchown(home.path(), Some(T), Some(10001)).unwrap();
    let file = home.path().join("old");
    fs::write(&file, "x").unwrap();
    lchown(&file, Some(T), Some(10001)).unwrap();
    let env = [
        ("HERMES_SHIM_USER", "hermtest"),
        ("PUID", "2000"),
        ("PGID", "2001"),
    ];
    let out = boot_in(etc.path(), home.path(), &env, "", "");
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        fs::read_to_string(etc.path().join("passwd")).unwrap(),
        PASSWD.replace(":10000:10001:", ":2000:2001:")
    );
    for p in [home.path(), &file] {
        assert_eq!(
            owner(p),
            (2000, 2001),
            "{}: the old gid moved too\n{out}",
            p.display()
        );
    }
    assert!(!etc.path().join("hermes-shim-remap").exists(), "{out}");
}

#[test]
fn a_remap_whose_sweep_could_not_finish_is_finished_by_the_next_start() {
    require!(root, tools: ["unshare", "mount", "sh", "chattr"]);
    let etc = etc_dir(
        "fo-boot-unfinished",
        PASSWD,
        "root:x:0:\nhermgrp:x:10001:\n",
    );
    let marker = etc.path().join("hermes-shim-remap");
    let home = TempDir::new("fo-boot-unfinished-home");
    lchown(home.path(), Some(T), Some(10001)).unwrap();
    let stuck = home.path().join("stuck");
    fs::write(&stuck, "x").unwrap();
    lchown(&stuck, Some(T), Some(10001)).unwrap();
    let chattr = |flag: &str| assert!(chattr(flag, &stuck), "chattr {flag}");
    // An immutable file cannot change owner: this start remaps the accounts but cannot move it.
    chattr("+i");
    let env = [
        ("HERMES_SHIM_USER", "hermtest"),
        ("PUID", "2000"),
        ("PGID", "2001"),
    ];
    let out = boot_in(etc.path(), home.path(), &env, "", "");
    chattr("-i");
    assert_eq!(out.code, Some(0), "boot reports and goes on\n{out}");
    assert_eq!(owner(home.path()), (2000, 2001), "{out}");
    assert_eq!(owner(&stuck), (T, 10001), "{out}");
    assert_eq!(
        fs::read_to_string(&marker).ok().as_deref(),
        Some("10000:10001"),
        "the old ids stay recorded while a file still has them\n{out}"
    );
    // The next start, with the ids already as asked, moves what is left and forgets the remap.
    let out = boot_in(etc.path(), home.path(), &env, "", "");
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(owner(&stuck), (2000, 2001), "{out}");
    assert!(!marker.exists(), "{out}");
}

#[test]
fn the_entrypoint_trusts_only_a_record_of_this_very_start() {
    require!(root, tools: ["unshare", "mount", "sh", "cut"]);
    // A container start in miniature: a PID namespace whose PID 1 is `sh` (sharing our mount
    // namespace, as in a container), a /run of its own, and the hermes user in a test /etc.
    let etc = etc_dir("fo-boot-record", PASSWD, "root:x:0:\nhermgrp:x:10001:\n");
    let home = TempDir::new("fo-boot-record-home");
    lchown(home.path(), Some(T), Some(10001)).unwrap();
    let script = r#"set -e
mount --bind "$1" /etc
mount -t tmpfs tmpfs /run
entry() { "$0" entrypoint true 2>&1 | grep 'repair' || true; }
# A refused repair first (exit 2), then one that works: the record is the last one's.
HERMES_HOME=/ "$0" boot 2>/dev/null || echo "first exit: $?"
echo "first record: $(cut -d' ' -f3 /run/hermes-shim/boot)"
"$0" boot 2>/dev/null
echo "record: $(cut -d' ' -f2,3 /run/hermes-shim/boot)"
echo "pid 1 started: $(cut -d' ' -f22 /proc/1/stat)"
echo "recorded: $(entry)"
read -r boot start code </run/hermes-shim/boot
echo "$boot $((start + 1)) $code" >/run/hermes-shim/boot
echo "another start: $(entry)"
echo "$boot $start $code" >/run/hermes-shim/boot
chmod 0775 /run/hermes-shim
echo "group-writable: $(entry)"
chmod 0755 /run/hermes-shim
chown 10000 /run/hermes-shim/boot
echo "not root's: $(entry)"
# A /run that cannot take the record: boot says why, in the kernel's words.
umount /run
mount -t tmpfs -o ro tmpfs /run
echo "read-only run: $("$0" boot 2>&1 | grep 'cannot record' || true)"
"#;
    let mut cmd = common::fix::clean_cmd("unshare");
    cmd.args(["-m", "--propagation", "private", "-p", "-f", "--mount-proc"])
        .args(["sh", "-c", script])
        .arg(common::bin())
        .arg(etc.path())
        .env("HERMES_HOME", home.path())
        .env("HERMES_SHIM_USER", "hermtest");
    let out = run_cmd(cmd, 30);
    assert_eq!(out.code, Some(0), "{out}");
    let said = |key: &str| {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key:?} line\n{out}"))
            .trim()
            .to_string()
    };
    assert_eq!(said("first exit:"), "2", "{out}");
    assert_eq!(said("first record:"), "2", "{out}");
    let started = said("pid 1 started:");
    assert_eq!(
        said("record:"),
        format!("{started} 0"),
        "boot names this start\n{out}"
    );
    assert!(
        said("recorded:").contains("already ran in this container start (exit 0)"),
        "{out}"
    );
    assert!(
        said("read-only run:").contains("(Read-only file system"),
        "{out}"
    );
    for case in ["another start:", "group-writable:", "not root's:"] {
        assert!(
            said(case).contains("no start-up repair has run in this container start"),
            "{case} the record must not count\n{out}"
        );
    }
}

#[test]
fn a_gid_remap_off_a_shared_group_moves_no_files_and_records_nothing() {
    require!(root, tools: ["unshare", "mount", "sh"]);
    // Group 10001 is also another user's primary group: its files are not hermtest's alone, so
    // only hermtest's line changes, no file moves and there is nothing to record.
    let passwd = format!("{PASSWD}other:x:10002:10001::/nonexistent:/bin/sh\n");
    let etc = etc_dir("fo-boot-shared", &passwd, "root:x:0:\nhermgrp:x:10001:\n");
    let home = TempDir::new("fo-boot-shared-home");
    lchown(home.path(), Some(T), Some(10001)).unwrap();
    let file = home.path().join("shared");
    fs::write(&file, "x").unwrap();
    lchown(&file, Some(T), Some(10001)).unwrap();
    let env = [("HERMES_SHIM_USER", "hermtest"), ("PGID", "2001")];
    let out = boot_in(etc.path(), home.path(), &env, "", "");
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        fs::read_to_string(etc.path().join("passwd")).unwrap(),
        passwd.replace("hermtest:x:10000:10001:", "hermtest:x:10000:2001:")
    );
    assert_eq!(
        fs::read_to_string(etc.path().join("group")).unwrap(),
        "root:x:0:\nhermgrp:x:10001:\n",
        "the shared group keeps its gid"
    );
    assert_eq!(
        owner(&file),
        (T, 10001),
        "a shared group's file keeps its gid\n{out}"
    );
    assert!(!etc.path().join("hermes-shim-remap").exists(), "{out}");
}

#[test]
fn boot_gives_the_docker_sockets_group_once_and_never_a_system_one() {
    require!(root, tools: ["unshare", "mount", "sh"]);
    let group_text = "root:x:0:\ntty:x:5:\nhermgrp:x:10001:\n";
    let etc = etc_dir("fo-boot-sock-etc", PASSWD, group_text);
    let home = TempDir::new("fo-boot-sock-home");
    lchown(home.path(), Some(T), Some(10001)).unwrap();
    // A socket as dockerd's, bind-mounted at /run/docker.sock in the namespace.
    let sock = TempDir::new("fo-boot-sock");
    let path = sock.path().join("docker.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let boot = |gid: u32| {
        lchown(&path, Some(0), Some(gid)).unwrap();
        let env = [
            ("HERMES_SHIM_USER", "hermtest"),
            ("TEST_SOCK", path.to_str().unwrap()),
        ];
        let prelude = r#"touch /run/docker.sock && mount --bind "$TEST_SOCK" /run/docker.sock"#;
        boot_in(etc.path(), home.path(), &env, prelude, "")
    };
    let group = || fs::read_to_string(etc.path().join("group")).unwrap();

    for (gid, says) in [
        (0, "WARNING: the Docker socket belongs to group 0"),
        (
            5,
            "WARNING: the Docker socket belongs to gid 5, the system group 'tty'",
        ),
    ] {
        let out = boot(gid);
        assert_eq!(out.code, Some(0), "{out}");
        assert!(out.stderr.contains(says), "{out}");
        assert_eq!(group(), group_text, "no group given\n{out}");
    }
    let joined = format!("{group_text}hostdocker:x:4998:hermtest\n");
    let out = boot(4998);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stderr.contains(
            "created group 'hostdocker' (gid 4998, the Docker socket's) with member 'hermtest'"
        ),
        "{out}"
    );
    assert_eq!(group(), joined);
    let out = boot(4998);
    assert!(
        !out.stderr.contains("hostdocker"),
        "nothing more to say\n{out}"
    );
    assert_eq!(group(), joined, "a second start changes nothing");
}

#[test]
fn a_remap_record_that_cannot_be_read_or_removed_leaves_the_accounts_alone() {
    require!(root, tools: ["unshare", "mount", "sh", "chattr"]);
    // Group 10001 is shared, so moving hermtest off it records nothing: a stale record (of ids
    // hermtest still has) is removed, or the remap refused if it cannot be.
    let passwd = format!("{PASSWD}other:x:10002:10001::/nonexistent:/bin/sh\n");
    let etc = etc_dir("fo-boot-marker", &passwd, "root:x:0:\nhermgrp:x:10001:\n");
    let home = TempDir::new("fo-boot-marker-home");
    lchown(home.path(), Some(T), Some(10001)).unwrap();
    let marker = etc.path().join("hermes-shim-remap");
    let env = [("HERMES_SHIM_USER", "hermtest"), ("PGID", "2001")];

    fs::create_dir(&marker).unwrap();
    let out = boot_in(etc.path(), home.path(), &env, "", "");
    assert_eq!(out.code, Some(2), "{out}");
    assert!(
        out.stderr.contains(
            "cannot read /etc/hermes-shim-remap: EISDIR: Is a directory; repairing root-owned files only"
        ),
        "{out}"
    );
    assert_eq!(
        fs::read_to_string(etc.path().join("passwd")).unwrap(),
        passwd
    );
    fs::remove_dir(&marker).unwrap();

    fs::write(&marker, "10000:10001").unwrap();
    assert!(chattr("+i", &marker), "chattr +i on the test's /etc");
    let out = boot_in(etc.path(), home.path(), &env, "", "");
    assert!(chattr("-i", &marker));
    assert_eq!(out.code, Some(2), "{out}");
    assert!(
        out.stderr.contains(
            "cannot remap user 'hermtest': /etc/hermes-shim-remap: EPERM: Operation not permitted; accounts unchanged"
        ),
        "{out}"
    );
    assert_eq!(
        fs::read_to_string(etc.path().join("passwd")).unwrap(),
        passwd
    );

    // Removable, it is removed and the remap goes on; no start complains of a missing record.
    let out = boot_in(etc.path(), home.path(), &env, "", "");
    assert_eq!(out.code, Some(0), "{out}");
    assert!(!marker.exists(), "{out}");
    assert!(!out.stderr.contains("cannot remove"), "{out}");
    let out = boot_in(etc.path(), home.path(), &env[..1], "", "");
    assert_eq!(out.code, Some(0), "{out}");
    assert!(!out.stderr.contains("cannot remove"), "{out}");
}

#[test]
fn a_passwd_that_cannot_be_replaced_after_the_group_was_puts_the_group_back() {
    require!(root, tools: ["unshare", "mount", "sh", "chattr"]);
    // hermgrp is private to hermtest, so the group file changes first; an immutable passwd
    // then refuses its rename, and the group must be put back as it was.
    let group_text = "root:x:0:\nhermgrp:x:10001:\n";
    let etc = etc_dir("fo-boot-undo", PASSWD, group_text);
    let home = TempDir::new("fo-boot-undo-home");
    lchown(home.path(), Some(T), Some(10001)).unwrap();
    fs::write(home.path().join("rootfile"), "x").unwrap();
    let passwd = etc.path().join("passwd");
    assert!(chattr("+i", &passwd), "chattr +i on the test's /etc/passwd");
    let env = [
        ("HERMES_SHIM_USER", "hermtest"),
        ("PUID", "2000"),
        ("PGID", "2001"),
    ];
    let out = boot_in(etc.path(), home.path(), &env, "", "");
    assert!(chattr("-i", &passwd));
    assert_eq!(out.code, Some(2), "{out}");
    assert!(
        out.stderr.contains(
            "cannot remap user 'hermtest': /etc/passwd: EPERM: Operation not permitted; accounts unchanged"
        ),
        "{out}"
    );
    assert_eq!(fs::read_to_string(&passwd).unwrap(), PASSWD);
    assert_eq!(
        fs::read_to_string(etc.path().join("group")).unwrap(),
        group_text,
        "the group is put back\n{out}"
    );
    let mut left: Vec<String> = fs::read_dir(etc.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["group", "passwd"], "nothing staged is left\n{out}");
    assert_eq!(
        owner(&home.path().join("rootfile")),
        (T, 10001),
        "repaired anyway\n{out}"
    );
}

/// `text` without what a refusal says a system gid grants here (" (owner of …)", " (the group
/// of every terminal in …)", " (what it grants here is unknown: …)"): on the host the walk's
/// findings vary (tests/gid_evidence.rs checks them in a root of its own); these tests check
/// that the gid is refused whichever way it comes.
fn no_evidence(text: &str) -> String {
    let mut out = text.to_string();
    for start in [
        " (owner of ",
        " (the group of every terminal in ",
        " (what it grants here is unknown: ",
    ] {
        while let Some(i) = out.find(start) {
            let Some(len) = out[i..].find(')') else { break };
            out.replace_range(i..=i + len, "");
        }
    }
    out
}

/// Runs `hermes-shim ARGS…` in a private mount namespace whose /etc is `etc` and /run a tmpfs
/// of its own, with `env` set.
fn applet_in(etc: &Path, env: &[(&str, &str)], args: &[&str]) -> Out {
    let script = r#"set -e
mount --bind "$1" /etc
mount -t tmpfs tmpfs /run
shift
exec "$0" "$@""#;
    let mut cmd = in_private_mntns(script);
    cmd.arg(etc).args(args).envs(env.iter().copied());
    run_cmd(cmd, 30)
}

#[test]
fn a_system_gid_never_reaches_the_drop_whichever_way_it_comes() {
    require!(root, tools: ["unshare", "mount", "sh", "id"]);
    // hermtest is an ordinary user (the control); sysmember has an ordinary gid of its own but
    // /etc/group makes it a member of shadow; sysgid's passwd entry gives it gid 42 itself.
    let passwd = format!(
        "{PASSWD}sysmember:x:10002:10003::/nonexistent:/bin/sh\nsysgid:x:10004:42::/nonexistent:/bin/sh\n"
    );
    let group_text = "root:x:0:\nshadow:x:42:sysmember\nhermgrp:x:10001:\nsysgrp:x:10003:\n";
    let etc = etc_dir("fo-boot-sysgid-etc", &passwd, group_text);
    let home = TempDir::new("fo-boot-sysgid-home");
    let rootfile = home.path().join("rootfile");
    fs::write(&rootfile, "x").unwrap();
    let home_str = home.path().to_str().unwrap();
    let shadow = "gid 42, the system group 'shadow'";
    for (spec, why) in [
        (
            "10000:42",
            format!(
                "user '10000:42' has {shadow}, which grants far more than the user's own files; give it a gid of 100 or above"
            ),
        ),
        (
            "sysgid",
            format!(
                "user 'sysgid' has {shadow}, which grants far more than the user's own files; give it a gid of 100 or above"
            ),
        ),
        (
            "sysmember",
            format!(
                "user 'sysmember' is a member (in /etc/group) of {shadow}, which grants far more than the user's own files; take it out of that group"
            ),
        ),
    ] {
        let env = [
            ("HERMES_SHIM_USER", spec),
            ("HERMES_HOME", home_str),
            ("HERMES_SHIM_REAL_DIR", "/usr/bin"),
        ];
        // The shim (as `exec`, what a `docker exec … hermes` runs) and the entrypoint.
        let shim = applet_in(etc.path(), &env, &["exec", "id"]);
        assert_eq!(shim.code, Some(126), "{spec}: shim\n{shim}");
        assert_eq!(
            no_evidence(&shim.stderr),
            format!(
                "hermes-shim: cannot drop to user '{spec}': {why} — run docker exec --user hermes …, or set HERMES_SHIM_USER to a user this container has\n"
            ),
            "{spec}: shim, one line"
        );
        assert!(!shim.stdout.contains("uid="), "{spec}: nothing ran\n{shim}");
        let entry = applet_in(etc.path(), &env, &["entrypoint", "id"]);
        assert_eq!(entry.code, Some(126), "{spec}: entrypoint\n{entry}");
        assert!(
            no_evidence(&entry.stderr).contains(&format!("hermes-shim: cannot drop to user '{spec}': {why} — start the container with --user hermes")),
            "{spec}: entrypoint\n{entry}"
        );
        assert!(
            !entry.stdout.contains("uid="),
            "{spec}: nothing ran\n{entry}"
        );
        // fix-ownership's --user, and boot's sweep (HERMES_SHIM_USER): refused, nothing changed.
        let fo = applet_in(
            etc.path(),
            &env[1..],
            &["fix-ownership", home_str, "--user", spec],
        );
        assert_eq!(
            no_evidence(&assert_refused(&fo)),
            format!(
                "hermes-shim fix-ownership: {why} — pass --user NAME or UID:GID of the hermes user"
            ),
            "{spec}: fix-ownership"
        );
        let boot = applet_in(etc.path(), &env, &["boot"]);
        assert_eq!(boot.code, Some(2), "{spec}: boot\n{boot}");
        assert!(
            no_evidence(&boot.stderr).starts_with(&format!("hermes-shim fix-ownership: {why} — ")),
            "{spec}: boot\n{boot}"
        );
        assert_eq!(owner(&rootfile), (0, 0), "{spec}: nothing changed\n{boot}");
        assert_eq!(
            fs::read_to_string(etc.path().join("group")).unwrap(),
            group_text
        );
    }
    // The control: the same runs for an ordinary user drop and repair.
    let env = [
        ("HERMES_SHIM_USER", "hermtest"),
        ("HERMES_HOME", home_str),
        ("HERMES_SHIM_REAL_DIR", "/usr/bin"),
    ];
    let shim = applet_in(etc.path(), &env, &["exec", "id"]);
    assert_eq!(shim.code, Some(0), "{shim}");
    assert!(
        shim.stdout
            .contains("uid=10000(hermtest) gid=10001(hermgrp)"),
        "{shim}"
    );
    let boot = applet_in(etc.path(), &env, &["boot"]);
    assert_eq!(boot.code, Some(0), "{boot}");
    assert_eq!(owner(&rootfile), (T, 10001), "{boot}");
}

#[test]
fn a_numeric_user_and_no_remap_is_no_refused_remap() {
    require!(root, tools: ["unshare", "mount", "sh"]);
    // Without a remap asked for or recorded, boot has no use for a user name.
    let etc = etc_dir(
        "fo-boot-numeric-etc",
        PASSWD,
        "root:x:0:\nhermgrp:x:10001:\n",
    );
    let home = TempDir::new("fo-boot-numeric-home");
    fs::write(home.path().join("rootfile"), "x").unwrap();
    let out = boot_in(
        etc.path(),
        home.path(),
        &[("HERMES_SHIM_USER", "10000:10001")],
        "",
        "",
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert!(!out.stderr.contains("remap"), "{out}");
    assert_eq!(owner(&home.path().join("rootfile")), (T, 10001), "{out}");
}

#[test]
fn what_a_killed_start_left_in_etc_is_removed_by_the_next() {
    require!(root, tools: ["unshare", "mount", "sh"]);
    // A SIGKILL between staging and commit leaves NAME.hermes-shim-TAG beside the file. Nothing
    // asks for a remap here, so nothing would stage those names again: the start itself must
    // clear them, root's regular files only, and leave the accounts whole.
    let group_text = "root:x:0:\nhermgrp:x:10001:\n";
    let etc = etc_dir("fo-boot-leftover-etc", PASSWD, group_text);
    let home = TempDir::new("fo-boot-leftover-home");
    lchown(home.path(), Some(T), Some(10001)).unwrap();
    let e = |name: &str| etc.path().join(name);
    // What the remap stages: the new passwd (half written), the new group, the group's undo,
    // the new remap record.
    for (name, text) in [
        (
            "passwd.hermes-shim-new",
            "root:x:0:0:root:/root:/bin/sh\nhermtest:x:2",
        ),
        ("group.hermes-shim-new", "root:x:0:\nhermgrp:x:2001:\n"),
        ("group.hermes-shim-old", group_text),
        ("hermes-shim-remap.hermes-shim-new", "10000:10001"),
    ] {
        fs::write(e(name), text).unwrap();
    }
    // At the other staged names, what staging never makes: a symlink (to a canary that must
    // keep its owner), another user's file, a directory. Left alone, each named once.
    let canary = TempDir::new("fo-boot-leftover-canary");
    let canary_file = canary.path().join("canary");
    fs::write(&canary_file, "x").unwrap();
    std::os::unix::fs::symlink(&canary_file, e("passwd.hermes-shim-old")).unwrap();
    fs::write(e("hermes-shim-remap.hermes-shim-old"), "10000:10001").unwrap();
    lchown(e("hermes-shim-remap.hermes-shim-old"), Some(T), Some(T)).unwrap();
    // Not a staged name: never touched.
    fs::write(e("group-"), group_text).unwrap();

    let out = boot_in(
        etc.path(),
        home.path(),
        &[("HERMES_SHIM_USER", "hermtest")],
        "",
        "",
    );
    assert_eq!(out.code, Some(0), "{out}");
    for name in [
        "passwd.hermes-shim-new",
        "group.hermes-shim-new",
        "group.hermes-shim-old",
        "hermes-shim-remap.hermes-shim-new",
    ] {
        assert!(!e(name).exists(), "{name} is removed\n{out}");
        assert!(
            out.stderr.contains(&format!(
                "hermes-shim boot: removed /etc/{name}, left behind by a start that was cut short\n"
            )),
            "{name} is named\n{out}"
        );
    }
    for (name, what) in [
        ("passwd.hermes-shim-old", "a symlink"),
        (
            "hermes-shim-remap.hermes-shim-old",
            "a file that is not root's",
        ),
    ] {
        assert!(
            out.stderr.contains(&format!("hermes-shim boot: WARNING: /etc/{name} is {what}, which this tool never stages; left alone")),
            "{name}\n{out}"
        );
    }
    assert!(
        lstat(&e("passwd.hermes-shim-old")).file_type().is_symlink(),
        "{out}"
    );
    assert_eq!(
        owner(&e("hermes-shim-remap.hermes-shim-old")),
        (T, T),
        "{out}"
    );
    assert_eq!(owner(&canary_file), (0, 0), "{out}");
    assert_eq!(fs::read_to_string(&canary_file).unwrap(), "x");
    assert_eq!(fs::read_to_string(e("group-")).unwrap(), group_text);
    // The accounts are whole: as they were, no remap record, the user's files as before.
    assert_eq!(fs::read_to_string(e("passwd")).unwrap(), PASSWD);
    assert_eq!(fs::read_to_string(e("group")).unwrap(), group_text);
    assert!(!e("hermes-shim-remap").exists(), "{out}");
    assert_eq!(owner(home.path()), (T, 10001), "{out}");
}

#[test]
fn a_system_gid_asked_for_by_pgid_is_refused_and_the_accounts_stay() {
    require!(root, tools: ["unshare", "mount", "sh"]);
    let group_text = "root:x:0:\nshadow:x:42:\nhermgrp:x:10001:\n";
    let etc = etc_dir("fo-boot-pgid-sys-etc", PASSWD, group_text);
    let home = TempDir::new("fo-boot-pgid-sys-home");
    let home_str = home.path().to_str().unwrap();
    for var in ["PGID", "HERMES_GID"] {
        let env = [
            ("HERMES_SHIM_USER", "hermtest"),
            ("HERMES_HOME", home_str),
            (var, "42"),
        ];
        let boot = applet_in(etc.path(), &env, &["boot"]);
        assert_eq!(boot.code, Some(2), "{var}\n{boot}");
        assert!(
            no_evidence(&boot.stderr).starts_with("hermes-shim boot: gid 42 is the system group 'shadow', which grants far more than the user's own files — pick a gid of 100 or above, or one that owns nothing outside HERMES_HOME; repairing root-owned files only\n"),
            "{var}\n{boot}"
        );
        assert_eq!(
            fs::read_to_string(etc.path().join("passwd")).unwrap(),
            PASSWD
        );
        assert_eq!(
            fs::read_to_string(etc.path().join("group")).unwrap(),
            group_text
        );
    }
}

#[test]
fn a_directory_at_a_staged_name_is_left_alone_and_the_remap_waits_for_it() {
    require!(root, tools: ["unshare", "mount", "sh"]);
    let group_text = "root:x:0:\nhermgrp:x:10001:\n";
    let etc = etc_dir("fo-boot-leftover-dir-etc", PASSWD, group_text);
    let home = TempDir::new("fo-boot-leftover-dir-home");
    lchown(home.path(), Some(T), Some(10001)).unwrap();
    let e = |name: &str| etc.path().join(name);
    fs::write(e("group-"), group_text).unwrap();
    fs::create_dir(e("group.hermes-shim-old")).unwrap();
    let env = [
        ("HERMES_SHIM_USER", "hermtest"),
        ("PUID", "2000"),
        ("PGID", "2001"),
    ];
    let out = boot_in(etc.path(), home.path(), &env, "", "");
    assert_eq!(
        out.code,
        Some(2),
        "the undo cannot be staged over a directory\n{out}"
    );
    assert!(
        out.stderr
            .contains("WARNING: /etc/group.hermes-shim-old is a directory"),
        "{out}"
    );
    assert_eq!(fs::read_to_string(e("passwd")).unwrap(), PASSWD, "{out}");
    fs::remove_dir(e("group.hermes-shim-old")).unwrap();
    let out = boot_in(etc.path(), home.path(), &env, "", "");
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        fs::read_to_string(e("passwd")).unwrap(),
        PASSWD.replace(":10000:10001:", ":2000:2001:")
    );
    let mut left: Vec<String> = fs::read_dir(etc.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["group", "group-", "passwd"], "{out}");
}
