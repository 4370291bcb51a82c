//! Root integration tests of the start-up environment s6-overlay records
//! (`/run/s6/container_environment`) reaching a root `docker exec … hermes`: each run in a
//! private mount namespace whose /etc is a test directory and /run a fresh tmpfs, where the
//! script builds the recorded directory before it runs the shim.

mod common;

use common::fix::{Out, in_private_mntns, run_cmd};
use common::fixture::etc_dir;
use common::{TempDir, require};

const PASSWD: &str =
    "root:x:0:0:root:/root:/bin/sh\nhermtest:x:10000:10001::/nonexistent:/bin/sh\n";
const GROUP: &str = "root:x:0:\nhermgrp:x:10001:\n";

/// The recorded directory as s6-overlay leaves it, with what a start-up script could add and
/// what must never be taken: a symlink to /etc/shadow (missing here) and one to /etc/passwd, a FIFO, a bad name, the drop's own HOME,
/// an empty file (no variable), a value the exec sets itself, a file of another user's.
const RECORD: &str = r"d=/run/s6/container_environment
mkdir -p -m 0755 /run/s6 && mkdir -m 0755 $d
printf /opt/browser > $d/BROWSER
printf 'two\nlines\n' > $d/MULTI
printf recorded > $d/SET
printf /recorded-home > $d/HOME
printf x > $d/BAD-NAME
: > $d/EMPTY
ln -s /etc/shadow $d/LINKED
ln -s /etc/passwd $d/LINKED_FILE
mkfifo $d/FIFO
printf theirs > $d/THEIRS && chown 10000 $d/THEIRS
";

/// The warning's start when the directory is over its bounds.
const TOO_MANY: &str = "hermes-shim: WARNING: /run/s6/container_environment holds more than 1024 \
                        files, 1048576 bytes in all or a file over 131072 bytes";

/// Builds the recorded directory, runs `extra` (a change to it), then `hermes-shim exec env`
/// with `SET=mine` as `docker exec -e` would set it.
fn exec_env(etc: &TempDir, home: &TempDir, record: &str, extra: &str) -> Out {
    let script = format!(
        r#"set -e
mount --bind "$1" /etc
mount -t tmpfs -o mode=0755 tmpfs /run
{record}
{extra}
exec "$0" exec env"#
    );
    let mut cmd = in_private_mntns(&script);
    cmd.arg(etc.path()).envs([
        ("HERMES_SHIM_USER", "hermtest"),
        ("HERMES_HOME", home.path().to_str().unwrap()),
        ("HERMES_SHIM_REAL_DIR", "/usr/bin"),
        ("SET", "mine"),
    ]);
    run_cmd(cmd, 30)
}

fn var<'o>(out: &'o Out, name: &str) -> Option<&'o str> {
    let prefix = format!("{name}=");
    out.stdout.lines().find_map(|l| l.strip_prefix(&prefix))
}

#[test]
fn recorded_variables_the_exec_lacks_are_added_and_the_execs_own_win() {
    require!(root, tools: ["unshare", "mount", "sh", "mkfifo", "env"]);
    let etc = etc_dir("recorded-etc", PASSWD, GROUP);
    let home = TempDir::new("recorded-home");
    let out = exec_env(&etc, &home, RECORD, "");
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(out.stderr, "", "nothing to say\n{out}");
    assert_eq!(var(&out, "BROWSER"), Some("/opt/browser"), "{out}");
    assert!(out.stdout.contains("MULTI=two\nlines\n"), "{out}");
    assert_eq!(var(&out, "SET"), Some("mine"), "docker exec -e wins\n{out}");
    assert_eq!(
        var(&out, "HOME"),
        Some("/nonexistent"),
        "the drop's own HOME\n{out}"
    );
    for never in [
        "BAD-NAME",
        "EMPTY",
        "LINKED",
        "LINKED_FILE",
        "FIFO",
        "THEIRS",
    ] {
        assert_eq!(var(&out, never), None, "{never}\n{out}");
    }
    // Without the directory (the image without s6-overlay): nothing added, nothing said.
    let out = exec_env(&etc, &home, "", "");
    assert_eq!((out.code, out.stderr.as_str()), (Some(0), ""), "{out}");
    assert_eq!(var(&out, "BROWSER"), None, "{out}");
}

#[test]
fn a_recorded_directory_another_user_could_write_is_not_read() {
    require!(root, tools: ["unshare", "mount", "sh", "mkfifo", "env"]);
    let etc = etc_dir("recorded-untrusted-etc", PASSWD, GROUP);
    let home = TempDir::new("recorded-untrusted-home");
    let d = "/run/s6/container_environment";
    for (change, says) in [
        (
            format!("chmod 0757 {d}"),
            "is not root's alone (owner uid 0, gid 0, mode 0757)",
        ),
        (
            format!("chown 10000 {d}"),
            "is not root's alone (owner uid 10000, gid 0, mode 0755)",
        ),
        (
            format!("chgrp 10001 {d} && chmod 0775 {d}"),
            "is not root's alone (owner uid 0, gid 10001, mode 0775)",
        ),
        // A symlink in its place, to a directory of root's: not followed.
        (
            format!("mv {d} /run/s6/real && ln -s real {d}"),
            "cannot open /run/s6/container_environment: ",
        ),
        (
            "mv /run/s6 /run/s6real && ln -s s6real /run/s6".to_string(),
            "cannot open /run/s6/container_environment: ",
        ),
    ] {
        let out = exec_env(&etc, &home, RECORD, &change);
        assert_eq!(out.code, Some(0), "{change}: the program still runs\n{out}");
        assert_eq!(var(&out, "BROWSER"), None, "{change}\n{out}");
        assert_eq!(out.stderr.lines().count(), 1, "{change}: one line\n{out}");
        assert!(
            out.stderr.starts_with("hermes-shim: WARNING: ") && out.stderr.contains(says),
            "{change}: {says:?}\n{out}"
        );
    }
}

#[test]
fn getdents_answered_with_an_error_adds_nothing_and_says_so() {
    require!(root, tools: ["unshare", "mount", "sh", "mkfifo", "env"]);
    let etc = etc_dir("recorded-errno-etc", PASSWD, GROUP);
    let home = TempDir::new("recorded-errno-home");
    for errno in [nix::libc::ENOSYS, nix::libc::EPERM] {
        let script = format!(
            r#"set -e
mount --bind "$1" /etc
mount -t tmpfs -o mode=0755 tmpfs /run
{RECORD}
exec "$0" exec env"#
        );
        let mut cmd = in_private_mntns(&script);
        cmd.arg(etc.path()).envs([
            ("HERMES_SHIM_USER", "hermtest"),
            ("HERMES_HOME", home.path().to_str().unwrap()),
            ("HERMES_SHIM_REAL_DIR", "/usr/bin"),
        ]);
        common::seccomp::answer(&mut cmd, &[(nix::libc::SYS_getdents64, errno)]);
        let out = run_cmd(cmd, 30);
        assert_eq!(out.code, Some(0), "errno {errno}: the program runs\n{out}");
        assert_eq!(var(&out, "BROWSER"), None, "errno {errno}\n{out}");
        assert!(
            out.stderr
                .starts_with("hermes-shim: WARNING: cannot read /run/s6/container_environment: ")
                && out.stderr.lines().count() == 1,
            "errno {errno}\n{out}"
        );
    }
}

#[test]
fn a_recorded_directory_over_its_bounds_is_read_in_part_and_says_so() {
    require!(root, tools: ["unshare", "mount", "sh", "mkfifo", "env", "seq"]);
    let etc = etc_dir("recorded-many-etc", PASSWD, GROUP);
    let home = TempDir::new("recorded-many-home");
    // RECORD's 10 entries and 1,030 more: 16 over the bound of 1,024 files.
    let many = "for i in $(seq 1030); do printf x > $d/MANY_$i; done";
    let out = exec_env(&etc, &home, RECORD, many);
    assert_eq!(out.code, Some(0), "the program still runs\n{out}");
    assert_eq!(
        out.stderr,
        format!("{TOO_MANY}; entries not added: 16\n"),
        "{out}"
    );
    let added = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("MANY_"))
        .count();
    assert!(
        (1024 - 10..=1024).contains(&added),
        "the first 1,024 entries are read: {added} of them MANY_\n{out}"
    );
}

#[test]
fn a_recorded_value_the_kernel_would_refuse_is_left_out_and_the_program_runs() {
    require!(root, tools: ["unshare", "mount", "sh", "mkfifo", "env", "head", "tr"]);
    let etc = etc_dir("recorded-long-etc", PASSWD, GROUP);
    let home = TempDir::new("recorded-long-home");
    // `NAME=value` and its NUL: EDGE's is exactly the kernel's 128 KiB, OVER's one byte more,
    // which would fail the exec with E2BIG.
    let long = "head -c 131066 /dev/zero | tr '\\0' e > $d/EDGE
head -c 131067 /dev/zero | tr '\\0' o > $d/OVER";
    let out = exec_env(&etc, &home, RECORD, long);
    assert_eq!(out.code, Some(0), "the program runs\n{out}");
    assert_eq!(out.stderr, "", "{out}");
    assert_eq!(var(&out, "EDGE").map(str::len), Some(131_066), "{out}");
    assert_eq!(var(&out, "OVER"), None, "{out}");
    assert_eq!(
        var(&out, "BROWSER"),
        Some("/opt/browser"),
        "the rest is added\n{out}"
    );
}

#[test]
fn the_recorded_values_are_bounded_in_bytes_and_what_is_left_out_is_said() {
    require!(root, tools: ["unshare", "mount", "sh", "mkfifo", "env", "head", "tr", "seq"]);
    let etc = etc_dir("recorded-bytes-etc", PASSWD, GROUP);
    let home = TempDir::new("recorded-bytes-home");
    // tmpfs lists the newest first: these files come before RECORD's 10 entries.
    let files = |n: usize, size: usize| {
        format!("for i in $(seq {n}); do head -c {size} /dev/zero | tr '\\0' v > $d/BIG$i; done")
    };
    // Eight values of 120,000 bytes fit in the 1 MiB bound; the ninth does not fit the room
    // left and is left out, but what comes after it, smaller, is still read.
    let out = exec_env(&etc, &home, RECORD, &files(9, 120_000));
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        out.stderr,
        format!("{TOO_MANY}; entries not added: 1\n"),
        "{out}"
    );
    let big = out.stdout.lines().filter(|l| l.starts_with("BIG")).count();
    assert_eq!(big, 8, "{out}");
    assert_eq!(var(&out, "BROWSER"), Some("/opt/browser"), "{out}");
    // Eight files of exactly 128 KiB fill the bound: each is read (too long for the kernel
    // with its name, so none is added), and all that comes after them is left out.
    let out = exec_env(&etc, &home, RECORD, &files(8, 131_072));
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        out.stderr,
        format!("{TOO_MANY}; entries not added: 10\n"),
        "{out}"
    );
    assert_eq!(var(&out, "BROWSER"), None, "{out}");
    // One byte over 128 KiB: that file alone is left out.
    let out = exec_env(&etc, &home, RECORD, &files(1, 131_073));
    assert_eq!(
        out.stderr,
        format!("{TOO_MANY}; entries not added: 1\n"),
        "{out}"
    );
    assert_eq!(var(&out, "BROWSER"), Some("/opt/browser"), "{out}");
}
