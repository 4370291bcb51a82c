//! Root integration tests of the gid rule by evidence (`users::gid_use`): a gid below 100 is
//! refused only when it grants something in the container. Each run happens in a root of its
//! own: a private mount namespace, a fresh tmpfs as `/` (chroot), the host's /usr bound into it
//! read-only (another mount: never walked), its own proc, /dev (a tmpfs), /dev/pts (a new devpts
//! instance whose terminals get gid 5, as Docker mounts it) and /run. So what the walk finds is
//! exactly what the test put there: /etc/shadow (root:42, 0640), and the test's own files.

mod common;

use common::fix::{Out, in_private_mntns, run_cmd};
use common::seccomp::{Then, answer, pause_openat};
use common::{TempDir, require};

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nhermes:x:10000:10000::/opt/data:/bin/sh\n";
const GROUP: &str = "root:x:0:\ntty:x:5:\ndialout:x:20:\nshadow:x:42:\nhermes:x:10000:\n";

/// Builds the root, runs `setup` in it (a shell snippet, `$R` the root), then
/// `chroot $R /opt/shim/hermes-shim ARGS…` with `env`, then `after` (its output joins stdout).
fn in_root(setup: &str, after: &str, env: &[(&str, &str)], args: &[&str]) -> Out {
    in_root_with(setup, after, env, args, &[])
}

/// How long one root may take: a minute, or ten for the walk-bound test, which builds 400,000
/// entries (seconds here, minutes in an emulated arm64 guest). Its tmpfs has no inode limit
/// (`nr_inodes=0`): recent kernels count a hard link against it, and the default, from the RAM
/// size, is under 400,000 in a guest of 3 GB.
const SECS: u64 = 60;
const BIG_SECS: u64 = 600;

thread_local! {
    static TIMEOUT: std::cell::Cell<u64> = const { std::cell::Cell::new(SECS) };
}

fn in_root_with(
    setup: &str,
    after: &str,
    env: &[(&str, &str)],
    args: &[&str],
    errnos: &[(nix::libc::c_long, i32)],
) -> Out {
    in_root_adjusted(setup, after, env, args, |cmd| {
        if !errnos.is_empty() {
            answer(cmd, errnos);
        }
    })
}

/// [`in_root`], with `adjust` given the command before it runs.
fn in_root_adjusted(
    setup: &str,
    after: &str,
    env: &[(&str, &str)],
    args: &[&str],
    adjust: impl FnOnce(&mut std::process::Command),
) -> Out {
    let root = TempDir::new("gid-evidence-root");
    let script = r#"set -e
R=$1
shift
mount -t tmpfs -o mode=0755,nr_inodes=0 root "$R"
mkdir -m 0755 "$R/usr" "$R/etc" "$R/proc" "$R/dev" "$R/run" "$R/opt" "$R/opt/data" "$R/srv"
mount --bind /usr "$R/usr"
for l in bin lib lib64 sbin; do ln -s "usr/$l" "$R/$l"; done
mkdir -m 0755 "$R/opt/shim"
: > "$R/opt/shim/hermes-shim"
mount --bind "$0" "$R/opt/shim/hermes-shim"
mount -t proc proc "$R/proc"
mount -t tmpfs -o mode=0755 dev "$R/dev"
mkdir -m 0755 "$R/dev/pts"
mount -t devpts -o newinstance,gid=5,mode=620,ptmxmode=666 devpts "$R/dev/pts"
mount -t tmpfs -o mode=0755 run "$R/run"
printf '%s' "$T_PASSWD" > "$R/etc/passwd"
printf '%s' "$T_GROUP" > "$R/etc/group"
printf 'root:*:1::::::\n' > "$R/etc/shadow"
chgrp 42 "$R/etc/shadow"
chmod 0640 "$R/etc/shadow"
chown 10000:10000 "$R/opt/data"
eval "$T_SETUP"
set +e
chroot "$R" /opt/shim/hermes-shim "$@"
rc=$?
eval "$T_AFTER"
exit $rc"#;
    let mut cmd = in_private_mntns(script);
    cmd.arg(root.path())
        .args(args)
        .envs([
            ("T_PASSWD", PASSWD),
            ("T_GROUP", GROUP),
            ("T_SETUP", setup),
            ("T_AFTER", after),
            ("HERMES_HOME", "/opt/data"),
            ("HERMES_SHIM_REAL_DIR", "/usr/bin"),
        ])
        .envs(env.iter().copied());
    adjust(&mut cmd);
    run_cmd(cmd, TIMEOUT.get())
}

/// `HERMES_SHIM_USER=SPEC hermes-shim exec id -g` in a root prepared by `setup`.
fn exec_id(spec: &str, setup: &str) -> Out {
    in_root(
        setup,
        "",
        &[("HERMES_SHIM_USER", spec)],
        &["exec", "id", "-g"],
    )
}

#[track_caller]
fn assert_given(out: &Out, gid: u32, what: &str) {
    assert_eq!(out.code, Some(0), "{what}\n{out}");
    assert_eq!(out.stdout.trim(), gid.to_string(), "{what}\n{out}");
}

#[track_caller]
fn assert_refused_for(out: &Out, why: &str, what: &str) {
    assert_eq!(out.code, Some(126), "{what}\n{out}");
    assert!(out.stdout.is_empty(), "{what}: nothing ran\n{out}");
    assert!(out.stderr.contains(why), "{what}: {why:?}\n{out}");
    assert_eq!(out.stderr.lines().count(), 1, "{what}: one line\n{out}");
}

#[test]
fn a_gid_below_100_that_owns_nothing_here_is_given() {
    require!(root, tools: ["unshare", "mount", "sh", "chroot", "chgrp"]);
    // A Mac's `id -g` is 20 (staff there, dialout here): nothing in the container has it.
    assert_given(&exec_id("10000:20", ""), 20, "dialout, owning nothing");
    // Owning something without group bits grants nothing either.
    let owner_only =
        r#"printf x > "$R/srv/mine"; chgrp 21 "$R/srv/mine"; chmod 0600 "$R/srv/mine""#;
    assert_given(&exec_id("10000:21", owner_only), 21, "0600 file");
    // A symlink's group grants nothing.
    let link = r#"ln -s /etc/passwd "$R/srv/link"; chgrp -h 24 "$R/srv/link""#;
    assert_given(&exec_id("10000:24", link), 24, "a symlink of gid 24");
    // The user's own files, in HERMES_HOME, are not looked at.
    let in_home = r#"mkdir -m 0770 "$R/opt/data/shared"; chgrp 22 "$R/opt/data/shared""#;
    assert_given(&exec_id("10000:22", in_home), 22, "in HERMES_HOME");
    // Nor is a mount the container did not make (a volume, a bind mount).
    let on_volume = r#"mkdir "$R/srv/vol"; mount -t tmpfs vol "$R/srv/vol"; printf x > "$R/srv/vol/f"; chgrp 23 "$R/srv/vol/f"; chmod 0660 "$R/srv/vol/f""#;
    assert_given(&exec_id("10000:23", on_volume), 23, "on a volume");
}

#[test]
fn hermes_home_is_never_walked_whoever_owns_it() {
    require!(root, tools: ["unshare", "mount", "sh", "chroot", "chgrp"]);
    // HERMES_HOME and a 0770 directory of gid 22 in it, both root's: the owner rule does not
    // leave them out (root is never an owner left out), so only the skip of the home itself
    // keeps the walk out of them.
    let in_home = |home: &str| {
        format!(
            r#"chown 0:0 "$R{home}"; mkdir -m 0770 "$R{home}/shared"; chgrp 22 "$R{home}/shared""#
        )
    };
    assert_given(
        &exec_id("10000:22", &in_home("/opt/data")),
        22,
        "root's directory of gid 22 in HERMES_HOME",
    );
    // The same tree anywhere else is found: the test above shows the skip, not a tree the walk
    // would miss anyway.
    assert_refused_for(
        &exec_id("10000:22", &in_home("/srv")),
        "(owner of /srv/shared with group access)",
        "the same tree outside HERMES_HOME",
    );
}

#[test]
fn a_volume_is_not_the_containers_own_and_is_not_walked() {
    require!(root, tools: ["unshare", "mount", "sh", "chroot", "chgrp"]);
    // A volume mounted at /srv/vol holding root's 0770 directory and 0660 file of gid 22, the
    // file also bind-mounted alone at /srv/bound: what a volume grants is the host's business,
    // not the image's, so none of it is evidence.
    let volume = r#"mkdir "$R/srv/vol"; mount -t tmpfs -o mode=0755 vol "$R/srv/vol"
mkdir -m 0770 "$R/srv/vol/shared"; chgrp 22 "$R/srv/vol/shared"
printf x > "$R/srv/vol/f"; chgrp 22 "$R/srv/vol/f"; chmod 0660 "$R/srv/vol/f"
: > "$R/srv/bound"; mount --bind "$R/srv/vol/f" "$R/srv/bound""#;
    assert_given(
        &exec_id("10000:22", volume),
        22,
        "gid-22 entries on a volume",
    );
}

#[test]
fn the_users_own_files_anywhere_are_no_evidence_and_cannot_stop_the_walk() {
    require!(root, tools: ["unshare", "mount", "sh", "chroot", "chgrp"]);
    // PGID=20: what the user makes outside HERMES_HOME (a file in /run, a 0770 directory) has
    // its group; it is the user's own, not something 20 grants.
    let own = r#"printf x > "$R/run/mine"; chown 10000:20 "$R/run/mine"; chmod 0664 "$R/run/mine"; mkdir -m 0770 "$R/srv/work"; chown 10000:20 "$R/srv/work""#;
    assert_given(&exec_id("10000:20", own), 20, "the user's own files");
    // The user's former uid (before a remap) too: HERMES_SHIM_USER names the new one, and the
    // old files keep 10000. Only the uid being judged is left out: a file of another uid counts.
    let other =
        r#"printf x > "$R/run/theirs"; chown 20000:20 "$R/run/theirs"; chmod 0660 "$R/run/theirs""#;
    assert_refused_for(
        &exec_id("10000:20", other),
        "(owner of /run/theirs with group access)",
        "another user's file",
    );
    // Nor can a tree of the user's, too deep or too large for the walk, stop it (the walk does
    // not enter it), where the same tree of root's refuses every gid below 100.
    let deep = |owner: &str| {
        format!(
            r#"d="$R/srv/own"; mkdir "$d"; for i in $(seq 70); do d="$d/d"; mkdir "$d"; done; chown -R --no-dereference {owner} "$R/srv/own""#
        )
    };
    assert_given(
        &exec_id("10000:20", &deep("10000:10000")),
        20,
        "a deep tree of the user's",
    );
    assert_refused_for(
        &exec_id("10000:20", &deep("0:0")),
        "more than 64 levels deep",
        "the same tree of root's",
    );
    // Root's uid is never left out: judged for root, root's files still count.
    let shadow_for_root = exec_id("0:42", "");
    assert_ne!(shadow_for_root.code, Some(0), "{shadow_for_root}");
}

#[test]
fn a_refused_gids_path_is_shown_escaped_on_one_line() {
    require!(root, tools: ["unshare", "mount", "sh", "chroot", "chgrp"]);
    let setup = r#"f="$R/run/$(printf 'a\033]0;x\007\nb')"; printf x > "$f"; chgrp 26 "$f"; chmod 0640 "$f""#;
    let out = exec_id("10000:26", setup);
    assert_refused_for(
        &out,
        "(owner of /run/a\\u{1b}]0;x\\u{7}\\nb with group access)",
        "escaped",
    );
    assert!(!out.stderr.contains('\u{1b}'), "no raw escape\n{out}");
}

#[test]
fn a_gid_below_100_that_grants_something_here_is_refused_naming_it() {
    require!(root, tools: ["unshare", "mount", "sh", "chroot", "chgrp"]);
    assert_refused_for(
        &exec_id("10000:42", ""),
        "user '10000:42' has gid 42, the system group 'shadow' (owner of /etc/shadow with group access), which grants far more than the user's own files; give it a gid of 100 or above",
        "shadow",
    );
    // tty: no terminal is open, but devpts gives every new one gid 5.
    assert_refused_for(
        &exec_id("10000:5", ""),
        "gid 5, the system group 'tty' (the group of every terminal in /dev/pts)",
        "tty",
    );
    // The same files as the test above, on the container's own filesystem, outside the home.
    for (gid, setup, path) in [
        (
            "22",
            r#"mkdir -m 0770 "$R/srv/shared"; chgrp 22 "$R/srv/shared""#,
            "/srv/shared",
        ),
        (
            "25",
            r#"printf x > "$R/srv/x"; chgrp 25 "$R/srv/x"; chmod 0010 "$R/srv/x""#,
            "/srv/x",
        ),
        (
            "26",
            r#"printf x > "$R/run/state"; chgrp 26 "$R/run/state"; chmod 0640 "$R/run/state""#,
            "/run/state",
        ),
        (
            "27",
            r#"mkfifo -m 0620 "$R/dev/fifo"; chgrp 27 "$R/dev/fifo""#,
            "/dev/fifo",
        ),
    ] {
        assert_refused_for(
            &exec_id(&format!("10000:{gid}"), setup),
            &format!("gid {gid}, a system gid (owner of {path} with group access)"),
            path,
        );
    }
    // As a member through /etc/group, too.
    let member = r#"printf 'dialout:x:20:hermes\n' >> "$R/etc/group"; printf x > "$R/srv/modem"; chgrp 20 "$R/srv/modem"; chmod 0660 "$R/srv/modem""#;
    assert_refused_for(
        &in_root(member, "", &[], &["exec", "id", "-g"]),
        "user 'hermes' is a member (in /etc/group) of gid 20, the system group 'dialout' (owner of /srv/modem with group access)",
        "a member",
    );
}

#[test]
fn a_walk_that_cannot_finish_refuses_every_gid_below_100() {
    require!(root, tools: ["unshare", "mount", "sh", "chroot", "chgrp"]);
    let deep = r#"d="$R/srv"; for i in $(seq 70); do d="$d/d"; mkdir "$d"; done"#;
    assert_refused_for(
        &exec_id("10000:20", deep),
        &format!(
            "(what it grants here is unknown: the walk stopped: /srv{} is more than 64 levels deep)",
            "/d".repeat(63)
        ),
        "too deep",
    );
    assert_given(&exec_id("10000:100", deep), 100, "100 costs no walk");
    // getdents answered with an error: the walk cannot look, so nothing is shown unused.
    for errno in [nix::libc::ENOSYS, nix::libc::EPERM] {
        let out = in_root_with(
            "",
            "",
            &[("HERMES_SHIM_USER", "10000:20")],
            &["exec", "id", "-g"],
            &[(nix::libc::SYS_getdents64, errno)],
        );
        assert_refused_for(
            &out,
            "(what it grants here is unknown: the walk stopped: /: E",
            &format!("getdents errno {errno}"),
        );
    }
    // statx answered with an error: fstatat does the work, with the same verdicts. ENOSYS only
    // here: util-linux 2.41's mount(8), which builds this root, itself gives up when statx
    // answers EPERM (Debian 13); the sweep's fallback for EPERM, the same sys::fs code, is shown
    // in tests/fix_old_kernel.rs.
    {
        let errno = nix::libc::ENOSYS;
        let run = |spec: &str| {
            in_root_with(
                "",
                "",
                &[("HERMES_SHIM_USER", spec)],
                &["exec", "id", "-g"],
                &[(nix::libc::SYS_statx, errno)],
            )
        };
        assert_given(&run("10000:20"), 20, &format!("statx errno {errno}"));
        assert_refused_for(
            &run("10000:42"),
            "(owner of /etc/shadow with group access)",
            &format!("statx errno {errno}"),
        );
    }
}

/// The flags the walk opens a directory with (`sys::fs::open_child`, `Open::Dir`).
const WALK_DIR_FLAGS: i32 =
    nix::libc::O_RDONLY | nix::libc::O_DIRECTORY | nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC;

/// `exec id -g` as `10000:23` in a root prepared by `setup`, with the walk's open of
/// `/srv/victim` held until `act` (given the walker's pid) has changed the tree: the race
/// between the walk's stat and its open, won every time.
fn with_victim_changed_at_its_open(setup: &str, act: fn(&str)) -> Out {
    let mut paused = None;
    let out = in_root_adjusted(
        setup,
        "",
        &[("HERMES_SHIM_USER", "10000:23")],
        &["exec", "id", "-g"],
        |cmd| {
            paused = Some(pause_openat(cmd, WALK_DIR_FLAGS, move |p| {
                if p.path != b"victim" {
                    return Then::Pass;
                }
                act(&p.pid.to_string());
                Then::Run
            }));
        },
    );
    let acted = paused.unwrap().join().expect("the pausing thread");
    assert_eq!(acted, 1, "the walk opened /srv/victim once\n{out}");
    out
}

/// Runs `argv` in the mount namespace and root of process `pid` (the chroot of [`in_root`]).
fn in_its_root(pid: &str, argv: &[&str]) {
    let o = std::process::Command::new("nsenter")
        .args(["-t", pid, "-m", "-r"])
        .args(argv)
        .output()
        .expect("nsenter");
    assert!(o.status.success(), "{argv:?}: {o:?}");
}

/// /srv/victim with a gid-23 file the group can read.
const VICTIM: &str = r#"mkdir -m 0755 "$R/srv/victim"
printf x > "$R/srv/victim/secret"; chgrp 23 "$R/srv/victim/secret"; chmod 0640 "$R/srv/victim/secret""#;

#[test]
fn a_directory_replaced_between_its_stat_and_its_open_is_not_walked() {
    require!(root, tools: ["unshare", "mount", "sh", "chroot", "chgrp", "nsenter"]);
    // The walk stats an empty /srv/victim; by its open, a directory with a gid-23 file, kept in
    // the home (never walked), has taken the name. What it opened is not what it judged.
    let setup = r#"mkdir -m 0755 "$R/srv/victim" "$R/opt/data/other"
printf x > "$R/opt/data/other/secret"; chgrp 23 "$R/opt/data/other/secret"; chmod 0640 "$R/opt/data/other/secret""#;
    // Control: had the walk looked in that directory, the gid would be refused for it.
    let moved =
        format!(r#"{setup}; rmdir "$R/srv/victim"; mv "$R/opt/data/other" "$R/srv/victim""#);
    assert_refused_for(
        &exec_id("10000:23", &moved),
        "(owner of /srv/victim/secret with group access)",
        "control",
    );
    let out = with_victim_changed_at_its_open(setup, |pid| {
        in_its_root(pid, &["mv", "-T", "/srv/victim", "/srv/victim.was"]);
        in_its_root(pid, &["mv", "-T", "/opt/data/other", "/srv/victim"]);
    });
    assert_given(&out, 23, "the swapped-in directory was left unwalked");
}

#[test]
fn a_directory_given_to_the_user_between_its_stat_and_its_open_is_not_walked() {
    require!(root, tools: ["unshare", "mount", "sh", "chroot", "chgrp", "nsenter"]);
    // The user's own directories are never entered (they could make the walk endless). One
    // that became the user's between the stat and the open is judged as it was opened.
    assert_refused_for(
        &exec_id("10000:23", VICTIM),
        "(owner of /srv/victim/secret with group access)",
        "control: walked",
    );
    let given = format!(r#"{VICTIM}; chown -h 10000 "$R/srv/victim""#);
    assert_given(&exec_id("10000:23", &given), 23, "control: the user's");
    let out = with_victim_changed_at_its_open(VICTIM, |pid| {
        in_its_root(pid, &["chown", "-h", "10000", "/srv/victim"]);
    });
    assert_given(
        &out,
        23,
        "the directory, the user's by its open, was left unwalked",
    );
}

#[test]
fn a_mount_put_on_a_directory_between_its_stat_and_its_open_is_not_walked() {
    require!(root, tools: ["unshare", "mount", "sh", "chroot", "chgrp", "nsenter", "find", "cp", "xargs"]);
    // By the walk's open, /srv/victim is bind-mounted onto itself: the same inode, on a mount
    // the walk does not cover. Mounted before the stat it would have been skipped; so it is.
    let mounted = format!(r#"{VICTIM}; mount --bind "$R/srv/victim" "$R/srv/victim""#);
    assert_given(&exec_id("10000:23", &mounted), 23, "control: mounted first");
    let mount = |pid: &str| {
        in_its_root(
            pid,
            &["mount", "--no-mtab", "--bind", "/srv/victim", "/srv/victim"],
        )
    };
    let out = with_victim_changed_at_its_open(VICTIM, mount);
    assert_given(&out, 23, "the directory's new mount was left unwalked");
    // Nor are its entries listed toward the walk's bound: MAX_ENTRIES + 1 in all before the
    // mount, the file in the directory among them.
    TIMEOUT.set(BIG_SECS);
    let full = format!("{VICTIM}\n{}", entries_in_all(MAX_ENTRIES + 1));
    let out = with_victim_changed_at_its_open(&full, mount);
    assert_given(&out, 23, "the new mount's entries were not counted");
}

/// `sys::gidscan::MAX_ENTRIES`: the most entries the walk looks at.
const MAX_ENTRIES: usize = 400_000;

/// A setup snippet that brings the entries the walk lists to exactly `total`: what `find`
/// lists on the walked mounts (their mount points listed, not entered, as the walk does; the
/// home is empty), then /srv/pad with the rest. Hard links of 999 empty files, copied by
/// `cp -al`, make the 400 000 entries in a few seconds and little memory.
fn entries_in_all(total: usize) -> String {
    format!(
        r#"n=$(( {total} - $(for m in "$R" "$R/dev" "$R/dev/pts" "$R/run"; do find "$m" -xdev -mindepth 1; done | wc -l) ))
p="$R/srv/pad"; mkdir "$p" "$p/0"; n=$((n - 2))
(cd "$p/0" && seq 999 | xargs touch); n=$((n - 999))
i=1; while [ "$n" -ge 1000 ]; do cp -al "$p/0" "$p/$i"; i=$((i + 1)); n=$((n - 1000)); done
(cd "$p" && seq -f 'f%g' "$n" | xargs -r touch)"#
    )
}

#[test]
fn a_walk_of_more_than_max_entries_refuses_every_gid_below_100() {
    require!(root, tools: ["unshare", "mount", "sh", "chroot", "chgrp", "find", "cp", "xargs"]);
    TIMEOUT.set(BIG_SECS);
    // gid 20 owns nothing here: given while the walk can look at everything.
    assert_given(
        &exec_id("10000:20", &entries_in_all(MAX_ENTRIES)),
        20,
        "exactly MAX_ENTRIES entries",
    );
    // One more and the walk stops, so nothing shows that 20 grants nothing: refused.
    assert_refused_for(
        &exec_id("10000:20", &entries_in_all(MAX_ENTRIES + 1)),
        "gid 20, the system group 'dialout' (what it grants here is unknown: the walk stopped: more than 400000 entries)",
        "MAX_ENTRIES + 1 entries",
    );
}

#[test]
fn a_refused_pgid_keeps_the_puid_remap_with_the_users_own_gid() {
    require!(root, tools: ["unshare", "mount", "sh", "chroot", "chgrp"]);
    let after = r#"grep '^hermes:' "$R/etc/passwd"; grep '^hermes:' "$R/etc/group""#;
    // The home a volume, as in the image (the sweep refuses a home on the root filesystem).
    let volume =
        r#"mount -t tmpfs -o mode=0755 vol "$R/opt/data"; chown 10000:10000 "$R/opt/data""#;
    let out = in_root(volume, after, &[("PUID", "501"), ("PGID", "42")], &["boot"]);
    assert_eq!(out.code, Some(0), "the start goes on\n{out}");
    assert_eq!(
        out.stdout, "hermes:x:501:10000::/opt/data:/bin/sh\nhermes:x:10000:\n",
        "uid remapped, gid kept\n{out}"
    );
    let line = "hermes-shim boot: WARNING: gid 42 is the system group 'shadow' (owner of /etc/shadow with group access), which grants far more than the user's own files — pick a gid of 100 or above, or one that owns nothing outside HERMES_HOME; remapping the uid alone: user 'hermes' keeps gid 10000\n";
    assert!(out.stderr.starts_with(line), "{out}");
    assert!(
        out.stderr
            .contains("remapped user 'hermes' from 10000:10000 to 501:10000"),
        "{out}"
    );
    // PUID=501 PGID=20, as from a Mac: both taken.
    let out = in_root(volume, after, &[("PUID", "501"), ("PGID", "20")], &["boot"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        out.stdout, "hermes:x:501:20::/opt/data:/bin/sh\nhermes:x:10000:\n",
        "{out}"
    );
    // PGID alone, refused: nothing changes, the start says so and repairs root's files.
    let out = in_root(volume, after, &[("PGID", "5")], &["boot"]);
    assert_eq!(out.code, Some(2), "{out}");
    assert_eq!(
        out.stdout, "hermes:x:10000:10000::/opt/data:/bin/sh\nhermes:x:10000:\n",
        "{out}"
    );
    assert!(
        out.stderr.starts_with("hermes-shim boot: gid 5 is the system group 'tty' (the group of every terminal in /dev/pts), which grants far more"),
        "{out}"
    );
}
