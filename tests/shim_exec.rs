//! Root integration tests of the exec the shim ends in: arguments byte for byte, exit codes and
//! signals passed through, the same PID, the signal state the program starts with, its working
//! directory, a closed stdout, and the entrypoint's own refusals (itself as its program, a home
//! its uid cannot write).
//!
//! Every run happens in the sandbox of tests/common/sandbox.rs: a private mount namespace with
//! the test's own passwd and group, and real programs that report what they saw.

mod common;

use std::ffi::OsString;
use std::fs::{self};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::Command;

use common::sandbox::*;
use common::{TempDir, require};

#[test]
fn arguments_pass_through_byte_exact() {
    require!(root);
    let sb = Sandbox::new("argv");
    sb.probe("hermes");
    let all: Vec<OsString> = vec![
        os("plain"),
        os(""),
        OsString::from_vec(b"non-utf8 \xff\xfe\x80".to_vec()),
        os(""),
        os("with space"),
        os("line\nbreak"),
        os("$HOME *"),
        os("-x"),
        os("--help"),
        os("--"),
        os("--version"),
        os(""),
    ];
    // Options of the shim's own CLI must reach the program too, whatever their position.
    let cases: Vec<Vec<OsString>> = vec![
        all,
        vec![],
        vec![os("")],
        vec![os("--help")],
        vec![os("--version")],
        vec![os("-h"), os("x")],
        vec![os("--"), os("-x")],
        vec![os("a"), os("--"), os("--")],
        vec![os("exec"), os("hermes")],
    ];
    // Every case on both entries, collecting all mismatches so one run shows the whole picture.
    let mut failures = Vec::new();
    for args in &cases {
        let expected: Vec<u8> = args
            .iter()
            .flat_map(|a| a.as_bytes().iter().copied().chain([0]))
            .collect();
        for (what, cmd) in [
            ("symlink", sb.via_link("hermes", args)),
            ("exec", sb.via_exec("hermes", args)),
        ] {
            let o = sb.run(cmd);
            if o.status.code() != Some(0) || !sb.ran() {
                failures.push(format!(
                    "{what} {args:?}: program did not run ({:?}); stdout {:?}",
                    o.status,
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .next()
                        .unwrap_or("")
                ));
                continue;
            }
            let got = fs::read(sb.out().join("argv")).unwrap();
            if got != expected {
                let got: Vec<OsString> = got
                    .split(|b| *b == 0)
                    .map(|a| OsString::from_vec(a.to_vec()))
                    .collect();
                failures.push(format!(
                    "{what} {args:?}: program got {:?}",
                    &got[..got.len() - 1]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "argv not passed through:\n{}",
        failures.join("\n")
    );
}

#[test]
fn exit_code_passes_through() {
    require!(root);
    let sb = Sandbox::new("exit42");
    sb.program("hermes", "echo ran > \"$out/ran\"\nexit 42\n");
    let mut optout = sb.via_link("hermes", &[]);
    optout.env("HERMES_DOCKER_EXEC_AS_ROOT", "1");
    for (what, cmd) in [
        ("symlink", sb.via_link("hermes", &[])),
        ("exec", sb.via_exec("hermes", &[])),
        ("opt-out", optout),
    ] {
        let o = sb.run(cmd);
        assert!(sb.ran(), "{what}: program did not run: {}", o.stderr);
        assert_eq!(o.status.code(), Some(42), "{what}: {}", o.stderr);
    }
}

#[test]
fn signal_death_passes_through() {
    require!(root);
    let sb = Sandbox::new("sigterm");
    sb.program(
        "hermes",
        "echo ran > \"$out/ran\"\nkill -TERM $$\nsleep 5\nexit 3\n",
    );
    for (what, cmd) in [
        ("symlink", sb.via_link("hermes", &[])),
        ("exec", sb.via_exec("hermes", &[])),
    ] {
        let o = sb.run(cmd);
        assert!(sb.ran(), "{what}: program did not run: {}", o.stderr);
        assert_eq!(o.status.signal(), Some(15), "{what}: {:?}", o.status);
        assert_eq!(o.status.code(), None, "{what}");
    }
}

#[test]
fn same_pid_before_and_after_exec() {
    require!(root);
    let sb = Sandbox::new("pid");
    sb.probe("hermes");
    let mut optout = sb.via_exec("hermes", &[]);
    optout.env("HERMES_DOCKER_EXEC_AS_ROOT", "yes");
    // The entrypoint run by hand, not PID 1 and with no terminal: no relay, so the same PID too.
    let run = sb.path("run");
    fs::create_dir(&run).unwrap();
    let mut entry = sb.command_with_mounts(
        &[(run, "/run")],
        &[common::bin().into(), "entrypoint".into()],
    );
    entry.env("HERMES_HOME", sb.home());
    for (what, cmd) in [
        ("symlink", sb.via_link("hermes", &[])),
        ("exec", sb.via_exec("hermes", &[])),
        ("opt-out", optout),
        ("entrypoint", entry),
    ] {
        let o = sb.run(cmd);
        sb.report(&o, what);
        let pid: u32 = sb.read_out("pid").trim().parse().unwrap();
        assert_eq!(pid, o.pid, "{what}: the program runs in another process");
    }
}

#[test]
fn sigpipe_default_and_empty_mask_in_child() {
    use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, signal, sigprocmask};
    require!(root);
    let sb = Sandbox::new("sigpipe");
    // Not a shell: dash empties the signal mask at startup and would hide what the shim left.
    // The kernel runs `cat /proc/self/status SCRIPT`, so the report is the status of the very
    // process the shim exec'd, on stdout.
    let program = sb.real_dir().join("hermes");
    common::write_program(&program, "#!/bin/cat /proc/self/status\n", 0o755);
    let hostile = |mut cmd: Command| {
        // SAFETY: runs in the forked child before exec; signal(2) and sigprocmask(2) are
        // async-signal-safe and the closure touches no memory shared with the parent.
        unsafe {
            cmd.pre_exec(|| {
                signal(Signal::SIGPIPE, SigHandler::SigIgn)?;
                let mut set = SigSet::empty();
                set.add(Signal::SIGUSR1);
                set.add(Signal::SIGPIPE);
                set.add(Signal::SIGTERM);
                sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
                Ok(())
            });
        }
        cmd
    };
    let status_of = |o: &Outcome, what: &str| {
        assert_eq!(o.status.code(), Some(0), "{what}: {}", o.stderr);
        Report {
            status: String::from_utf8_lossy(&o.stdout).into_owned(),
            env: String::new(),
        }
    };
    let sigpipe_bit = 1u64 << (Signal::SIGPIPE as i32 - 1);
    // Control: run straight, the program inherits the ignored SIGPIPE and the mask, so the
    // assertions below can tell the shim's reset from no change at all.
    let r = status_of(&sb.run(hostile(sb.command(&[program.into()]))), "control");
    assert_ne!(
        r.mask("SigIgn") & sigpipe_bit,
        0,
        "control: SIGPIPE not ignored"
    );
    assert_ne!(r.mask("SigBlk"), 0, "control: mask empty");
    for (what, cmd) in [
        ("symlink", sb.via_link("hermes", &[])),
        ("exec", sb.via_exec("hermes", &[])),
    ] {
        let r = status_of(&sb.run(hostile(cmd)), what);
        assert_eq!(r.ids("Uid"), [HERMES_UID; 4], "{what}: Uid");
        assert_eq!(
            r.mask("SigIgn") & sigpipe_bit,
            0,
            "{what}: SIGPIPE still ignored"
        );
        assert_eq!(r.mask("SigBlk"), 0, "{what}: signal mask not empty");
    }
}

#[test]
fn a_working_directory_the_user_cannot_reach_is_left_after_the_drop() {
    require!(root);
    let sb = Sandbox::new("cwd");
    sb.program(
        "hermes",
        "pwd > \"$out/pwd\"\nif cat ./key > \"$out/read\" 2>/dev/null; then echo leaked > \"$out/leaked\"; fi\necho ran > \"$out/ran\"\n",
    );
    // A readable directory inside root's own, which only root may enter (as /root/secret in
    // /root): by path the user cannot get there, through the inherited handle it could.
    let private = sb.path("private");
    let secret = private.join("secret");
    fs::create_dir_all(&secret).unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o700)).unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(secret.join("key"), "TOPSECRET\n").unwrap();
    fs::set_permissions(secret.join("key"), fs::Permissions::from_mode(0o644)).unwrap();
    let mut cmd = sb.via_link("hermes", &[]);
    cmd.current_dir(&secret);
    let o = sb.run(cmd);
    assert_eq!(o.status.code(), Some(0), "{}", o.stderr);
    assert!(
        !sb.out().join("leaked").exists(),
        "the program read ./key through root's working directory"
    );
    assert_eq!(sb.read_out("pwd").trim(), sb.home().to_str().unwrap());
    assert!(
        o.stderr
            .contains("is not reachable by user 'hermes'; starting in"),
        "one line says so: {}",
        o.stderr
    );

    // A directory the user can reach is kept.
    let open = sb.path("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = sb.via_link("hermes", &[]);
    cmd.current_dir(&open);
    let o = sb.run(cmd);
    assert_eq!(o.status.code(), Some(0), "{}", o.stderr);
    assert_eq!(sb.read_out("pwd").trim(), open.to_str().unwrap());
    assert!(o.stderr.is_empty(), "{}", o.stderr);
}

/// The binary starts without Rust's runtime start-up (src/start.rs), so it opens /dev/null
/// on a closed standard stream itself, as that start-up would: the program it runs finds
/// /dev/null there, not a closed descriptor (or a file the shim happened to open).
#[test]
fn a_closed_stdout_reaches_the_program_as_dev_null() {
    require!(root, tools: ["setpriv", "sh", "python3"]);
    // Not root, the shim runs the program straight away; a copy any uid can execute.
    let dir = TempDir::new("closed-stdout");
    let bin = dir.path().join("hermes-shim");
    common::copy_bin(&bin, 0o755);
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
        ])
        .arg(r#"exec "$0" exec python3 -c "$1" >&-"#)
        .arg(&bin)
        .arg(r#"import os, sys; sys.stderr.write(os.readlink("/proc/self/fd/1"))"#)
        .env("HERMES_SHIM_REAL_DIR", "/usr/bin")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "/dev/null");
}

#[test]
fn the_entrypoint_started_as_another_uid_needs_a_home_that_uid_can_write() {
    require!(root, tools: ["setpriv"]);
    let sb = Sandbox::new("entry-uid");
    sb.probe("hermes");
    // `docker run --user 1234`: neither root nor hermes, so no repair and no drop, and the
    // program runs only where uid 1234 can create entries in HERMES_HOME.
    let entry = |home: &Path| {
        let mut argv: Vec<OsString> = ["setpriv", "--reuid=1234", "--regid=1234"]
            .iter()
            .map(|s| os(s))
            .collect();
        argv.extend([os("--clear-groups"), os("--"), common::bin().into()]);
        argv.push(os("entrypoint"));
        let mut cmd = sb.command(&argv);
        cmd.env("HERMES_HOME", home);
        sb.run(cmd)
    };
    // The sandbox's home: hermes's, 0755, so uid 1234 may reach and search it but not write.
    let o = entry(&sb.home());
    assert_eq!(o.status.code(), Some(126), "{}", o.stderr);
    assert!(!sb.ran(), "the program must not run\n{}", o.stderr);
    let line = format!(
        "hermes-shim entrypoint: uid 1234 cannot write HERMES_HOME {} (EACCES: Permission denied) — start the container as root with HERMES_UID=1234 ",
        sb.home().display()
    );
    assert!(o.stderr.starts_with(&line), "{line:?}\n{}", o.stderr);
    assert_eq!(o.stderr.lines().count(), 1, "one line\n{}", o.stderr);
    // A home anyone can write (the output directory, 0777): the program runs as uid 1234.
    let o = entry(&sb.out());
    assert_eq!(o.status.code(), Some(0), "{}", o.stderr);
    sb.report(&o, "a writable home")
        .assert_ids(1234, 1234, "a writable home");
}

#[test]
fn the_entrypoint_repairs_then_refuses_only_itself_as_its_program() {
    require!(root);
    let sb = Sandbox::new("entry-loop");
    let run = sb.path("run");
    fs::create_dir(&run).unwrap();
    let me = common::bin().into_os_string();
    let entry = |args: &[&str]| {
        let mut argv = vec![me.clone(), os("entrypoint"), me.clone()];
        argv.extend(args.iter().map(|a| os(a)));
        let mut cmd = sb.command_with_mounts(&[(run.clone(), "/run")], &argv);
        cmd.env("HERMES_HOME", sb.home());
        sb.run(cmd)
    };
    // `entrypoint hermes-shim entrypoint` would exec itself forever: refused before anything.
    let o = entry(&["entrypoint"]);
    assert_eq!(o.status.code(), Some(126), "{}", o.stderr);
    assert!(o.stderr.contains("is hermes-shim itself"), "{}", o.stderr);
    // Any other applet of the binary is a program like another (run as the hermes user), after
    // the start-up repair: no start of this container has run one (the run directory is empty).
    let made = sb.home().join("made-by-root");
    fs::write(&made, "x").unwrap();
    let o = entry(&["--version"]);
    assert_eq!(o.status.code(), Some(0), "{}", o.stderr);
    assert!(o.stderr.contains("repairing now"), "{}", o.stderr);
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&fs::metadata(&made).unwrap()),
        HERMES_UID,
        "{}",
        o.stderr
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("hermes-shim "),
        "{:?}",
        String::from_utf8_lossy(&o.stdout)
    );
}
