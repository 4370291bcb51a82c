//! The `tini` applet as callers of upstream's /usr/bin/tini use it: the binary run through a
//! symlink named `tini`, its exit codes, its options' effects, and (as root, in a new PID
//! namespace) PID 1's duties.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{TempDir, require, run};

/// A `tini` symlink to the binary under test, in `dir`.
fn tini(dir: &Path) -> PathBuf {
    let link = dir.join("tini");
    std::os::unix::fs::symlink(common::bin(), &link).unwrap();
    link
}

fn tini_run(args: &[&str]) -> Output {
    let t = TempDir::new("tini");
    run(Command::new(tini(t.path())).args(args), "tini")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// True once `pid` has ended (gone, or a zombie no one reaped yet), within `secs`.
fn ends_within(pid: i32, secs: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(s)
                if s.rsplit_once(')')
                    .is_some_and(|(_, r)| r.trim_start().starts_with('Z')) =>
            {
                return true;
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    false
}

fn kill(pid: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

#[test]
fn exit_codes_pass_through_and_e_remaps_them() {
    let table: [(&[&str], i32); 6] = [
        (&["--", "sh", "-c", "exit 3"], 3),
        (&["sh", "-c", "exit 3"], 3),
        (&["-e", "3", "--", "sh", "-c", "exit 3"], 0),
        (&["-e", "4", "--", "sh", "-c", "exit 3"], 3),
        // Killed by signal N: 128 + N, which -e can remap like any other code.
        (&["--", "sh", "-c", "kill -TERM $$"], 143),
        (&["-e", "143", "--", "sh", "-c", "kill -TERM $$"], 0),
    ];
    for (args, want) in table {
        let o = tini_run(args);
        assert_eq!(o.status.code(), Some(want), "{args:?}: {}", stderr(&o));
    }
    let o = tini_run(&["--", "/nonexistent/program"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("cannot run /nonexistent/program: ENOENT"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_bad_option_is_one_line_and_exit_2_with_nothing_run() {
    let t = TempDir::new("tini-bad");
    let marker = t.path().join("ran");
    let script = format!("touch {}", marker.display());
    for args in [
        vec!["-x", "--", "sh", "-c", &script],
        vec!["-e", "256", "--", "sh", "-c", &script],
        vec!["-p", "SIGNOPE", "--", "sh", "-c", &script],
        vec!["--"],
    ] {
        let o = run(Command::new(tini(&t.path().join(".."))).args(&args), "tini");
        let _ = std::fs::remove_file(t.path().join("../tini"));
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("hermes-shim tini: "), "{err}");
        assert!(!marker.exists(), "{args:?} ran the program");
    }
    let o = tini_run(&["-h"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("-e CODE"));
    let o = tini_run(&["-l"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("MIT"));
}

#[test]
fn hermes_shim_tini_is_tinis_own_command_line() {
    // `hermes-shim tini ARGS` hands ARGS to tini's parser as the symlink does: -h and --version
    // are tini's, not the command-line parser's of the other subcommands.
    let t = TempDir::new("tini-sub");
    for (args, want) in [
        (&["-h"][..], "usage: tini [-h]"),
        (&["--version"][..], "tini (hermes-shim "),
    ] {
        let via_link = run(Command::new(tini(t.path())).args(args), "tini");
        let _ = std::fs::remove_file(t.path().join("tini"));
        let via_sub = run(
            Command::new(common::bin()).arg("tini").args(args),
            "hermes-shim tini",
        );
        assert_eq!(via_sub.status.code(), Some(0), "{args:?}");
        let out = String::from_utf8_lossy(&via_sub.stdout);
        assert!(out.starts_with(want), "{args:?}: {out}");
        assert_eq!(via_sub.stdout, via_link.stdout, "{args:?}");
    }
}

#[test]
fn s_makes_it_the_reaper_of_orphans_and_w_names_them() {
    // The subshell's `sleep` is orphaned at once: with -s it comes to tini, which -w reports.
    let prog = ["sh", "-c", "(sleep 0.2 &); sleep 1"];
    let o = tini_run(&[&["-s", "-w", "--"][..], &prog[..]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("hermes-shim tini: reaped zombie process"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("WARNING"), "{}", stderr(&o));
    // Without -s the orphan goes to the real init: nothing for tini to reap, and it warns.
    let o = tini_run(&[&["-w", "--"][..], &prog[..]].concat());
    assert!(!stderr(&o).contains("reaped zombie"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("WARNING: not PID 1 and not a subreaper"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn v_says_when_the_program_starts_and_ends() {
    let o = tini_run(&["-s", "--", "true"]);
    assert_eq!(stderr(&o), "");
    let o = tini_run(&["-s", "-v", "--", "true"]);
    assert!(
        stderr(&o).contains("started the program as pid"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("the program ended: exit status 0"),
        "{}",
        stderr(&o)
    );
}

/// Starts `tini ARGS` in the background of a shell that exits half a second later (by then tini
/// has set its options up), and returns tini's pid.
fn orphaned_tini(dir: &Path, args: &str) -> i32 {
    let link = tini(dir);
    let o = run(
        Command::new("sh").arg("-c").arg(format!(
            "{} {args} >/dev/null 2>&1 & echo $!; sleep 0.5",
            link.display()
        )),
        "sh",
    );
    String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
}

#[test]
fn p_signals_tini_when_its_parent_dies() {
    let t = TempDir::new("tini-p");
    // The parent, a shell, is gone at once: -p SIGTERM reaches tini, which passes it on.
    let pid = orphaned_tini(t.path(), "-p SIGTERM -- sleep 30");
    let ended = ends_within(pid, 5);
    kill(pid);
    assert!(ended, "tini -p SIGTERM outlived its parent");
    // Without -p it lives on.
    let t = TempDir::new("tini-nop");
    let pid = orphaned_tini(t.path(), "-- sleep 30");
    let ended = ends_within(pid, 1);
    kill(pid);
    assert!(!ended, "tini without -p ended with its parent");
}

#[test]
fn g_passes_signals_to_the_whole_process_group() {
    // -vv also names each signal passed on; less says nothing of it.
    for (flags, sleep_survives, names_it) in [
        (&["-g"][..], false, false),
        (&["-s"][..], true, false),
        (&["-s", "-v", "-v"][..], true, true),
    ] {
        let flag = flags.join(" ");
        let t = TempDir::new("tini-g");
        let pidfile = t.path().join("sleep.pid");
        let mut child = Command::new(tini(t.path()))
            .args(flags)
            .args(["--", "sh", "-c"])
            .arg(format!("sleep 30 & echo $! >{}; wait", pidfile.display()))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let sleep_pid = loop {
            if let Ok(s) = std::fs::read_to_string(&pidfile)
                && let Ok(p) = s.trim().parse::<i32>()
            {
                break p;
            }
            assert!(Instant::now() < deadline, "no sleep pid");
            std::thread::sleep(Duration::from_millis(20));
        };
        let pid = i32::try_from(child.id()).unwrap();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let st = common::wait_timeout(&mut child, 10, "tini");
        let ended = ends_within(sleep_pid, 2);
        kill(sleep_pid);
        assert_eq!(st.code(), Some(143), "{flag}");
        assert_eq!(
            !ended, sleep_survives,
            "{flag}: the sleep in the program's group"
        );
        let mut said = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut said).unwrap();
        assert_eq!(
            said.contains("passing signal 15 on to"),
            names_it,
            "{flag}: {said}"
        );
    }
}

#[test]
fn as_pid1_it_reaps_every_orphan() {
    require!(root, tools: ["unshare"]);
    let t = TempDir::new("tini-pid1");
    let link = tini(t.path());
    // A new PID namespace with tini as its PID 1 (and /proc mounted for it, in a private mount
    // namespace). The orphaned `sleep` comes to tini; the program counts the zombies left.
    let o = run(
        Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc", "--"])
            .arg(&link)
            .args(["-w", "--", "sh", "-c"])
            .arg(
                "(sleep 0.2 &); sleep 1; echo pid1=$(cat /proc/1/comm);
                 grep -l '^State:.*Z' /proc/[0-9]*/status 2>/dev/null | wc -l; exit 5",
            ),
        "unshare",
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(5), "{out} {}", stderr(&o));
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["pid1=tini", "0"],
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("reaped zombie process"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("WARNING"), "{}", stderr(&o));
}
