//! The drop's order and every failure, with a recording double of [`Privileges`].

use super::*;
use crate::sys::Ids;

/// A recording double: the calls in order, an optional step that fails, and what the
/// "kernel" reports afterwards.
#[derive(Default)]
struct Recorder {
    calls: Vec<&'static str>,
    fail: Option<&'static str>,
    lie: bool,
    reversible: bool,
    lost: Option<NotInForce>,
    caps: u64,
    ids: Option<Ids>,
    groups: Vec<u32>,
    gid: u32,
    uid: u32,
}

impl Recorder {
    fn step(&mut self, name: &'static str) -> Result<(), Errno> {
        self.calls.push(name);
        if self.fail == Some(name) {
            Err(Errno::EPERM)
        } else {
            Ok(())
        }
    }
}

impl Privileges for Recorder {
    fn set_groups(&mut self, g: &[u32]) -> Result<(), Errno> {
        self.step("setgroups")?;
        self.groups = g.to_vec();
        Ok(())
    }
    fn set_gid(&mut self, gid: u32) -> Result<(), Errno> {
        self.step("setresgid")?;
        self.gid = gid;
        Ok(())
    }
    fn set_uid(&mut self, uid: u32) -> Result<(), Errno> {
        self.step("setresuid")?;
        self.uid = uid;
        Ok(())
    }
    fn current(&self) -> Result<Ids, Errno> {
        if self.fail == Some("current") {
            return Err(Errno::EIO);
        }
        let saved = if self.lie { 0 } else { self.uid };
        Ok(self.ids.clone().unwrap_or(Ids {
            ruid: self.uid,
            euid: self.uid,
            suid: saved,
            rgid: self.gid,
            egid: self.gid,
            sgid: self.gid,
            groups: self.groups.clone(),
        }))
    }
    fn capabilities(&self) -> Result<u64, Errno> {
        Ok(self.caps)
    }
    fn regain_root(&mut self) -> Result<(), Errno> {
        self.calls.push("setuid(0)");
        if self.reversible {
            Ok(())
        } else {
            Err(Errno::EPERM)
        }
    }
    fn close_fds(&mut self) -> Result<(), Errno> {
        self.step("close fds")
    }
    fn no_new_privs(&mut self) -> Result<(), Errno> {
        self.step("no_new_privs")
    }
    type Filter = ();
    fn probe_terminal(&mut self) -> Result<(), NotInForce> {
        self.calls.push("probe");
        self.lost.map_or(Ok(()), Err)
    }
    fn guard_terminal(&mut self, (): &()) -> Result<(), Errno> {
        self.step("seccomp")
    }
}

fn target() -> Target {
    Target {
        name: Some("hermes".into()),
        uid: 10000,
        gid: 10000,
        groups: vec![990, 10000],
        home: "/opt/data".into(),
    }
}

fn run_with(r: &mut Recorder) -> (Exit, bool) {
    let mut exec_called = false;
    let code = drop_then(r, &target(), Terminal::Relayed, Caller::Shim, || {
        exec_called = true;
        Exit::Ok
    });
    (code, exec_called)
}

#[test]
fn drop_order_then_verify_then_exec() {
    let mut r = Recorder::default();
    assert_eq!(run_with(&mut r), (Exit::Ok, true));
    assert_eq!(
        r.calls,
        [
            "probe",
            "setgroups",
            "setresgid",
            "setresuid",
            "setuid(0)",
            "close fds",
            "seccomp"
        ]
    );
    assert_eq!(
        (r.groups.clone(), r.gid, r.uid),
        (vec![990, 10000], 10000, 10000)
    );
}

#[test]
fn a_filter_that_cannot_be_in_force_is_left_out_with_one_warning_and_the_program_runs() {
    for why in [
        NotInForce::Kills(libc_sigsys()),
        NotInForce::Ignored,
        NotInForce::Refused(Errno::EINVAL),
    ] {
        let mut r = Recorder {
            lost: Some(why),
            ..Default::default()
        };
        assert_eq!(run_with(&mut r), (Exit::Ok, true), "{why:?}");
        // Tried first, as root; left out; no_new_privs all the same.
        assert_eq!(r.calls.first(), Some(&"probe"));
        assert_eq!(r.calls.last(), Some(&"no_new_privs"));
        assert!(!r.calls.contains(&"seccomp"));
        let mut again = Recorder {
            lost: Some(why),
            ..Default::default()
        };
        assert_eq!(
            drop_privileges(&mut again, &target(), Terminal::Inherited),
            Ok(Some(why))
        );
    }
    let relayed = filter_lost(Terminal::Relayed, NotInForce::Ignored);
    for needle in [
        "WARNING",
        "seccomp filter against terminal injection cannot be in force",
        "judges nothing",
        "TIOCSTI",
        "the relay still keeps root's terminal from the program",
    ] {
        assert!(relayed.contains(needle), "{needle:?} in {relayed:?}");
    }
    assert_eq!(relayed.lines().count(), 1);
    let console = filter_lost(Terminal::Inherited, NotInForce::Kills(libc_sigsys()));
    assert!(console.contains("the container's console"), "{console}");
    assert!(console.contains("signal 31"), "{console}");
}

fn libc_sigsys() -> i32 {
    nix::libc::SIGSYS
}

#[test]
fn the_terminal_filter_only_where_there_is_a_terminal() {
    let mut r = Recorder::default();
    let code = drop_then(&mut r, &target(), Terminal::None, Caller::Shim, || Exit::Ok);
    assert_eq!(code, Exit::Ok);
    assert_eq!(r.calls.last(), Some(&"no_new_privs"));
    assert!(!r.calls.contains(&"seccomp"));
    assert!(!r.calls.contains(&"probe"), "no terminal, no probe");
}

#[test]
fn failure_at_each_step_refuses_without_exec() {
    const ALL: [&str; 7] = [
        "probe",
        "setgroups",
        "setresgid",
        "setresuid",
        "setuid(0)",
        "close fds",
        "seccomp",
    ];
    // The step that fails, how many calls were made up to it ("current" is the
    // verification's read of the ids, after setresuid), and what the refusal says.
    for (fail, made, says) in [
        ("setgroups", 2, "setgroups: EPERM: Operation not permitted"),
        ("setresgid", 3, "setresgid: EPERM: Operation not permitted"),
        ("setresuid", 4, "setresuid: EPERM: Operation not permitted"),
        ("current", 4, "verifying the new ids: EIO: I/O error"),
        (
            "close fds",
            6,
            "closing inherited descriptors: EPERM: Operation not permitted",
        ),
        (
            "seccomp",
            7,
            "installing the seccomp filter against terminal injection: EPERM: Operation not permitted",
        ),
    ] {
        let calls = &ALL[..made];
        let mut r = Recorder {
            fail: Some(fail),
            ..Default::default()
        };
        assert_eq!(run_with(&mut r), (Exit::NotRun, false), "failing {fail}");
        assert_eq!(r.calls, calls, "failing {fail}");
        let mut again = Recorder {
            fail: Some(fail),
            ..Default::default()
        };
        let err = drop_privileges(&mut again, &target(), Terminal::Relayed).unwrap_err();
        assert_eq!(err.to_string(), says);
    }
}

#[test]
fn verification_catches_a_drop_that_did_not_hold() {
    let wrong_groups = Ids {
        ruid: 10000,
        euid: 10000,
        suid: 10000,
        rgid: 10000,
        egid: 10000,
        sgid: 10000,
        groups: vec![0, 10000],
    };
    let cases = [
        (
            "saved uid left at 0",
            Recorder {
                lie: true,
                ..Default::default()
            },
            Step::Verify,
            "verifying the new ids: asked for",
        ),
        (
            "root's group kept",
            Recorder {
                ids: Some(wrong_groups),
                ..Default::default()
            },
            Step::Verify,
            "verifying the new ids: asked for",
        ),
        (
            "CAP_SYS_ADMIN kept",
            Recorder {
                caps: 1 << 21,
                ..Default::default()
            },
            Step::Verify,
            "verifying the new ids: capabilities left: 0x200000",
        ),
        (
            "reversible",
            Recorder {
                reversible: true,
                ..Default::default()
            },
            Step::RegainRoot,
            "setuid(0) still succeeds after the drop: the drop is reversible",
        ),
    ];
    for (what, mut r, step, says) in cases {
        assert_eq!(run_with(&mut r), (Exit::NotRun, false), "{what}");
        let mut again = Recorder {
            calls: Vec::new(),
            ..r
        };
        let err = drop_privileges(&mut again, &target(), Terminal::Relayed).unwrap_err();
        assert_eq!(err.step, step, "{what}");
        assert!(err.to_string().starts_with(says), "{what}: {err}");
    }
}
