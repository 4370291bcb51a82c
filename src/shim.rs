//! The shim applet: run a venv console script as the hermes user when `docker exec` made us root.
//!
//! Threat model: the caller is root inside the container (the `docker exec` default) and means
//! well; the danger is leaving root-owned files in `$HERMES_HOME` or, worse, running on as root
//! after a drop that silently failed. So every failure refuses (exit 126) instead of continuing,
//! the drop is verified before exec, and the shim itself is never a setuid program: with real
//! and effective ids apart it refuses, so it cannot become a privilege-escalation helper.

use std::ffi::{CString, OsStr, OsString};
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use crate::sys::{self, Privileges};
use crate::users::{self, Target};
use crate::{policy, relay};

/// Where the real console scripts live unless `HERMES_SHIM_REAL_DIR` says otherwise.
pub const DEFAULT_REAL_DIR: &str = "/opt/hermes/.venv/bin";

/// Exit code for a refusal: the program was found but we will not run it this way.
pub const EXIT_REFUSED: u8 = 126;
/// Exit code when the real program is missing or cannot be executed.
pub const EXIT_NOT_FOUND: u8 = 127;

/// Who asks for the drop: a refusal names the remedy that applies there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// The shim, under a root `docker exec`.
    Shim,
    /// The entrypoint, for the container's main program (the opt-out does not apply there).
    Entrypoint,
}

impl Caller {
    fn remedy(self) -> &'static str {
        match self {
            Caller::Shim => "run docker exec --user hermes …, or set HERMES_DOCKER_EXEC_AS_ROOT=1",
            Caller::Entrypoint => {
                "start the container with --user hermes, or set HERMES_SHIM_USER to a user this container has"
            }
        }
    }
}

/// One step of the drop, named in the refusal message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    SetGroups,
    SetGid,
    SetUid,
    Verify,
    RegainRoot,
    CloseFds,
    NoNewPrivs,
    GuardTerminal,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::SetGroups => "setgroups",
            Step::SetGid => "setresgid",
            Step::SetUid => "setresuid",
            Step::Verify => "verifying the new ids",
            Step::RegainRoot => "setuid(0) still succeeds after the drop",
            Step::CloseFds => "closing inherited descriptors",
            Step::NoNewPrivs => "setting no_new_privs",
            Step::GuardTerminal => "installing the seccomp filter against terminal injection",
        }
    }
}

/// A drop that did not hold: which step, and what the kernel or the check said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropError {
    pub step: Step,
    pub detail: String,
}

/// Drops to `target`: supplementary groups, then gid, then uid (real, effective and saved),
/// then verifies, then closes inherited descriptors and installs the terminal guard. Groups and gid go first because they need privilege that the uid change
/// takes away; the verification catches a kernel, seccomp filter or user namespace that
/// reported success without doing the work.
/// Whether the program will have a terminal (then the seccomp filter of [`crate::sys::guard`]
/// goes in too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terminal {
    None,
    Some,
}

impl Terminal {
    /// Whether any of 0, 1, 2 is a terminal now.
    pub fn of_stdio() -> Terminal {
        if (0..=2).any(sys::pty::is_tty) {
            Terminal::Some
        } else {
            Terminal::None
        }
    }
}

pub fn drop_privileges<P: Privileges>(
    p: &mut P,
    t: &Target,
    terminal: Terminal,
) -> Result<(), DropError> {
    let fail = |step, e: Errno| DropError {
        step,
        detail: e.desc().to_string(),
    };
    p.set_groups(&t.groups)
        .map_err(|e| fail(Step::SetGroups, e))?;
    p.set_gid(t.gid).map_err(|e| fail(Step::SetGid, e))?;
    p.set_uid(t.uid).map_err(|e| fail(Step::SetUid, e))?;
    let now = p.current().map_err(|e| fail(Step::Verify, e))?;
    let want = sys::Ids {
        ruid: t.uid,
        euid: t.uid,
        suid: t.uid,
        rgid: t.gid,
        egid: t.gid,
        sgid: t.gid,
        groups: t.groups.clone(),
    };
    if now != want {
        return Err(DropError {
            step: Step::Verify,
            detail: format!("asked for {want:?}, kernel reports {now:?}"),
        });
    }
    match p.capabilities() {
        Ok(0) => {}
        Ok(caps) => {
            return Err(DropError {
                step: Step::Verify,
                detail: format!("capabilities left: {caps:#x}"),
            });
        }
        Err(e) => return Err(fail(Step::Verify, e)),
    }
    if p.regain_root().is_ok() {
        return Err(DropError {
            step: Step::RegainRoot,
            detail: "the drop is reversible".into(),
        });
    }
    // What root's session holds must not reach the program: open files (`hermes 3</etc/shadow`)
    // and the power to type into root's terminal.
    p.close_fds().map_err(|e| fail(Step::CloseFds, e))?;
    match terminal {
        Terminal::Some => p
            .guard_terminal()
            .map_err(|e| fail(Step::GuardTerminal, e))?,
        Terminal::None => p.no_new_privs().map_err(|e| fail(Step::NoNewPrivs, e))?,
    }
    Ok(())
}

/// Drops with `p` and, only if the drop held, calls `exec` (which returns only on failure).
pub fn drop_then<P: Privileges>(
    p: &mut P,
    t: &Target,
    terminal: Terminal,
    caller: Caller,
    exec: impl FnOnce() -> u8,
) -> u8 {
    match drop_privileges(p, t, terminal) {
        Ok(()) => exec(),
        Err(e) => refuse(
            &user_label(t),
            &format!("{}: {}", e.step.name(), e.detail),
            caller,
        ),
    }
}

fn user_label(t: &Target) -> String {
    t.name
        .clone()
        .unwrap_or_else(|| format!("{}:{}", t.uid, t.gid))
}

fn refuse(user: &str, why: &str, caller: Caller) -> u8 {
    say!(
        "hermes-shim: cannot drop to user '{user}': {why} — {}",
        caller.remedy()
    );
    EXIT_REFUSED
}

/// Refuses when this process runs with real and effective ids apart, or from a binary with the
/// setuid or setgid bit: the shim must never be an escalation path.
pub fn refuse_setuid(me: Option<&Metadata>) -> Option<u8> {
    let (ruid, euid, rgid, egid) = sys::caller_ids();
    let bits = me.map(|m| m.mode() & 0o6000).unwrap_or(0);
    if ruid != euid || rgid != egid || bits != 0 {
        say!(
            "hermes-shim: refusing to run setuid or setgid (uid {ruid}/{euid}, gid {rgid}/{egid}) — install it with mode 0755 and no s-bits"
        );
        return Some(EXIT_REFUSED);
    }
    None
}

/// This binary's own inode (for the setuid-bit and exec-loop checks); `None` without /proc.
pub fn self_exe() -> Option<Metadata> {
    std::fs::metadata("/proc/self/exe").ok()
}

/// `$HERMES_SHIM_REAL_DIR`, else the default.
pub fn real_dir() -> PathBuf {
    std::env::var_os("HERMES_SHIM_REAL_DIR").map_or_else(|| DEFAULT_REAL_DIR.into(), PathBuf::from)
}

/// The real program for `name`: `$HERMES_SHIM_REAL_DIR/name`.
pub fn real_program(name: &OsStr) -> Result<PathBuf, (u8, String)> {
    let dir = real_dir();
    if !dir.is_absolute() {
        let msg = format!(
            "hermes-shim: HERMES_SHIM_REAL_DIR={} is not absolute — set it to the venv's bin directory, e.g. {DEFAULT_REAL_DIR}",
            dir.display()
        );
        return Err((EXIT_REFUSED, msg));
    }
    let plain = !name.is_empty() && name != "." && name != ".." && !name.as_bytes().contains(&b'/');
    if !plain {
        let msg = format!(
            "hermes-shim: '{}' is not a program name — give a name such as hermes",
            name.to_string_lossy()
        );
        return Err((EXIT_NOT_FOUND, msg));
    }
    Ok(dir.join(name))
}

/// Checks the real program exists, is an executable file, and is not this very binary
/// (a symlink loop back to the shim would exec itself forever).
pub fn check_program(path: &Path, me: Option<&Metadata>) -> Result<(), (u8, String)> {
    let meta = std::fs::metadata(path).map_err(|e| {
        let msg = format!(
            "hermes-shim: real program {} cannot be used: {e} — install hermes-agent in that venv or set HERMES_SHIM_REAL_DIR",
            path.display()
        );
        (EXIT_NOT_FOUND, msg)
    })?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        let msg = format!(
            "hermes-shim: real program {} is not an executable file — check its mode",
            path.display()
        );
        return Err((EXIT_NOT_FOUND, msg));
    }
    if let Some(me) = me
        && (me.dev(), me.ino()) == (meta.dev(), meta.ino())
    {
        let msg = format!(
            "hermes-shim: real program {} is hermes-shim itself — point HERMES_SHIM_REAL_DIR at the venv's bin directory",
            path.display()
        );
        return Err((EXIT_REFUSED, msg));
    }
    Ok(())
}

fn cstring(s: &OsStr) -> CString {
    // Arguments and environment strings come from the kernel NUL-terminated, so none holds a NUL.
    CString::new(s.as_bytes()).expect("no NUL inside an argument")
}

/// A program ready to exec: argv and environment built up front, so that a forked child only
/// execs (see [`Launch::Supervise`]).
pub struct Prepared {
    path: PathBuf,
    prog: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
}

impl Prepared {
    /// `path` with `args` (argv[0] is `path`), in this process's environment; with `as_user`,
    /// HOME, USER and LOGNAME describe that user.
    pub fn new(path: &Path, args: &[OsString], as_user: Option<&Target>) -> Prepared {
        let mut env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
        if let Some(t) = as_user {
            env.retain(|(k, _)| !matches!(k.as_bytes(), b"HOME" | b"USER" | b"LOGNAME"));
            env.push(("HOME".into(), t.home.clone().into()));
            if let Some(n) = &t.name {
                env.push(("USER".into(), n.into()));
                env.push(("LOGNAME".into(), n.into()));
            }
        }
        let envp = env
            .iter()
            .map(|(k, v)| {
                let mut kv = k.clone();
                kv.push("=");
                kv.push(v);
                cstring(&kv)
            })
            .collect();
        let prog = cstring(path.as_os_str());
        let argv = std::iter::once(prog.clone())
            .chain(args.iter().map(|a| cstring(a)))
            .collect();
        Prepared {
            path: path.to_path_buf(),
            prog,
            argv,
            envp,
        }
    }

    /// Execs the program as the current user; returns the exit code only when exec failed.
    pub fn exec(&self) -> u8 {
        if let Err(e) = sys::reset_signals() {
            say!("hermes-shim: cannot reset signal state: {e} — report this as a bug");
            return EXIT_REFUSED;
        }
        let e = sys::exec(&self.prog, &self.argv, &self.envp);
        say!(
            "hermes-shim: cannot execute {}: {} — check the file and its interpreter",
            self.path.display(),
            e.desc()
        );
        EXIT_NOT_FOUND
    }
}

/// Execs `path` with `args` as the current user (see [`Prepared::new`]). Returns the exit code
/// only when exec failed.
pub fn exec(path: &Path, args: &[OsString], as_user: Option<&Target>) -> u8 {
    Prepared::new(path, args, as_user).exec()
}

/// How the program is started once this process is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launch {
    /// Exec it in this process (same PID, its own exit code and signals).
    Exec,
    /// Stay as PID 1 and run it in a child (see [`crate::init`]).
    Supervise,
    /// Run it on a terminal of its own in a child, relayed by this process (see
    /// [`crate::relay`]); the child execs.
    Relay,
}

impl Launch {
    /// Starts `p` this way; returns only with an exit code.
    pub fn start(self, p: &Prepared) -> u8 {
        match self {
            Launch::Exec | Launch::Relay => p.exec(),
            Launch::Supervise => crate::init::supervise(|| p.exec()),
        }
    }
}

/// The shim applet: runs the real program for `name` with `args`, dropping root first.
pub fn run(name: &OsStr, args: &[OsString], me: Option<&Metadata>) -> u8 {
    let path = match real_program(name).and_then(|p| check_program(&p, me).map(|()| p)) {
        Ok(p) => p,
        Err((code, msg)) => {
            say!("{msg}");
            return code;
        }
    };
    let (ruid, ..) = sys::caller_ids();
    if ruid != 0 || policy::opt_out(std::env::var("HERMES_DOCKER_EXEC_AS_ROOT").ok().as_deref()) {
        return exec(&path, args, None);
    }
    // From a terminal session, the program gets a terminal of its own (see crate::relay).
    let how = if relay::needed() {
        Launch::Relay
    } else {
        Launch::Exec
    };
    run_as_target(&path, args, how, Caller::Shim)
}

/// Resolves the target user, drops to it and starts `path`; every failure refuses with 126.
pub fn run_as_target(path: &Path, args: &[OsString], how: Launch, caller: Caller) -> u8 {
    let spec = match users::spec_from(None) {
        Ok(s) => s,
        Err(e) => {
            return refuse(
                &std::env::var("HERMES_SHIM_USER").unwrap_or_default(),
                &e.to_string(),
                caller,
            );
        }
    };
    let target = match users::resolve(&spec) {
        Ok(t) => t,
        Err(e) => return refuse(&spec.to_string(), &e.to_string(), caller),
    };
    let exec = || {
        leave_unreachable_cwd(&target);
        how.start(&Prepared::new(path, args, Some(&target)))
    };
    // The relay forks first: the parent stays root to relay, the child drops and becomes the
    // monitor of the program in the new session.
    if how == Launch::Relay {
        relay::run(|| {
            let terminal = Terminal::of_stdio();
            drop_then(&mut sys::Linux, &target, terminal, caller, || {
                relay::monitor(exec)
            })
        })
    } else {
        drop_then(&mut sys::Linux, &target, Terminal::of_stdio(), caller, exec)
    }
}

/// After the drop: a working directory the user could not reach by its path (root in
/// `/root/secret`) is left for the user's home (else `/`), so the program cannot read through
/// the directory handle root's session lent it.
fn leave_unreachable_cwd(t: &Target) {
    let Ok(cwd) = std::env::current_dir() else {
        return;
    };
    if sys::fs::reachable(&cwd).is_ok() {
        return;
    }
    let to = [t.home.as_path(), Path::new("/")]
        .into_iter()
        .find(|d| sys::fs::reachable(d).is_ok() && std::env::set_current_dir(d).is_ok());
    if let Some(to) = to {
        say!(
            "hermes-shim: the working directory {} is not reachable by user '{}'; starting in {}",
            crate::escape::shown(&cwd),
            user_label(t),
            crate::escape::shown(to)
        );
    }
}

#[cfg(test)]
mod tests {
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
        fn guard_terminal(&mut self) -> Result<(), Errno> {
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

    fn run_with(r: &mut Recorder) -> (u8, bool) {
        let mut exec_called = false;
        let code = drop_then(r, &target(), Terminal::Some, Caller::Shim, || {
            exec_called = true;
            0
        });
        (code, exec_called)
    }

    #[test]
    fn drop_order_then_verify_then_exec() {
        let mut r = Recorder::default();
        assert_eq!(run_with(&mut r), (0, true));
        assert_eq!(
            r.calls,
            [
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
    fn the_terminal_filter_only_where_there_is_a_terminal() {
        let mut r = Recorder::default();
        let code = drop_then(&mut r, &target(), Terminal::None, Caller::Shim, || 0);
        assert_eq!(code, 0);
        assert_eq!(r.calls.last(), Some(&"no_new_privs"));
        assert!(!r.calls.contains(&"seccomp"));
    }

    #[test]
    fn failure_at_each_step_refuses_without_exec() {
        for (fail, calls) in [
            ("setgroups", &["setgroups"][..]),
            ("setresgid", &["setgroups", "setresgid"][..]),
            ("setresuid", &["setgroups", "setresgid", "setresuid"][..]),
            ("current", &["setgroups", "setresgid", "setresuid"][..]),
            (
                "close fds",
                &[
                    "setgroups",
                    "setresgid",
                    "setresuid",
                    "setuid(0)",
                    "close fds",
                ][..],
            ),
            (
                "seccomp",
                &[
                    "setgroups",
                    "setresgid",
                    "setresuid",
                    "setuid(0)",
                    "close fds",
                    "seccomp",
                ][..],
            ),
        ] {
            let mut r = Recorder {
                fail: Some(fail),
                ..Default::default()
            };
            assert_eq!(run_with(&mut r), (EXIT_REFUSED, false), "failing {fail}");
            assert_eq!(r.calls, calls, "failing {fail}");
        }
    }

    #[test]
    fn verification_catches_a_drop_that_did_not_hold() {
        let mut lying = Recorder {
            lie: true,
            ..Default::default()
        };
        assert_eq!(run_with(&mut lying), (EXIT_REFUSED, false));
        let err = drop_privileges(
            &mut Recorder {
                lie: true,
                ..Default::default()
            },
            &target(),
            Terminal::Some,
        )
        .unwrap_err();
        assert_eq!(err.step, Step::Verify);

        let wrong_groups = Ids {
            ruid: 10000,
            euid: 10000,
            suid: 10000,
            rgid: 10000,
            egid: 10000,
            sgid: 10000,
            groups: vec![0, 10000],
        };
        let mut r = Recorder {
            ids: Some(wrong_groups),
            ..Default::default()
        };
        assert_eq!(run_with(&mut r), (EXIT_REFUSED, false));

        let mut kept = Recorder {
            caps: 1 << 21,
            ..Default::default()
        };
        assert_eq!(
            run_with(&mut kept),
            (EXIT_REFUSED, false),
            "CAP_SYS_ADMIN kept"
        );

        let mut rev = Recorder {
            reversible: true,
            ..Default::default()
        };
        assert_eq!(run_with(&mut rev), (EXIT_REFUSED, false));
        let err = drop_privileges(
            &mut Recorder {
                reversible: true,
                ..Default::default()
            },
            &target(),
            Terminal::Some,
        )
        .unwrap_err();
        assert_eq!(err.step, Step::RegainRoot);
    }

    #[test]
    fn real_program_names() {
        assert!(
            real_program(OsStr::new("hermes"))
                .unwrap()
                .ends_with("hermes")
        );
        for bad in ["", ".", "..", "a/b", "/bin/sh"] {
            assert_eq!(
                real_program(OsStr::new(bad)).unwrap_err().0,
                EXIT_NOT_FOUND,
                "{bad:?}"
            );
        }
    }
}
