//! The shim applet: run a venv console script as the hermes user when `docker exec` made us root.
//!
//! Threat model: the caller is root inside the container (the `docker exec` default) and means
//! well; the danger is leaving root-owned files in `$HERMES_HOME` or, worse, running on as root
//! after a drop that silently failed, or handing the program what root's session holds (its
//! descriptors, its terminal). So every failure refuses (exit 126) instead of continuing, the
//! drop is verified before exec, inherited descriptors are closed, a terminal session gets the
//! relay ([`crate::relay`]), and the shim itself is never a setuid program: with real and
//! effective ids apart it refuses, so it cannot become a privilege-escalation helper.

use std::borrow::Cow;
use std::ffi::{CStr, CString, OsStr, OsString};
use std::fmt;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;

mod recorded;

use crate::escape::shown;
use crate::exit::Exit;
use crate::relay;
use crate::settings::{DEFAULT_REAL_DIR, Settings};
use crate::sys::guard::NotInForce;
use crate::sys::{self, Privileges};
use crate::users::{self, Target, UserError};

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
            // Never the opt-out: as root, hermes loads config and plugins the agent can write.
            Caller::Shim => {
                "run docker exec --user hermes …, or set HERMES_SHIM_USER to a user this container has"
            }
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

/// What went wrong at a step of the drop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The call failed.
    Call(Errno),
    /// The kernel reports other ids than asked for.
    Ids { want: sys::Ids, now: sys::Ids },
    /// Capabilities are left in the effective or permitted set.
    Capabilities(u64),
    /// setuid(0) succeeded.
    Reversible,
}

/// A drop that did not hold: which step, and what the kernel or the check said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropError {
    pub step: Step,
    pub failure: Failure,
}

impl fmt::Display for DropError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.step.name())?;
        match &self.failure {
            Failure::Call(e) => write!(f, "{e}"),
            Failure::Ids { want, now } => write!(f, "asked for {want:?}, kernel reports {now:?}"),
            Failure::Capabilities(caps) => write!(f, "capabilities left: {caps:#x}"),
            Failure::Reversible => f.write_str("the drop is reversible"),
        }
    }
}

/// Which terminal the program will have (with one, the seccomp filter of [`crate::sys::guard`]
/// goes in too, where it can be in force).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terminal {
    /// None: no terminal on 0, 1 or 2 and no controlling terminal.
    None,
    /// A pty of its own, behind the relay ([`crate::relay`]).
    Relayed,
    /// The terminal of the session it was started in: as PID 1, the container's console.
    Inherited,
}

impl Terminal {
    /// The terminal a program started `how` will have, judged in this process's session: a
    /// terminal on 0, 1 or 2, or a controlling terminal that /dev/tty would open even with all
    /// three redirected. [`Launch::Exec`] is chosen only outside a terminal session, so it
    /// costs no call on the shim's common path.
    pub fn of_session(how: Launch) -> Terminal {
        match how {
            Launch::Exec => Terminal::None,
            _ if !sys::pty::in_terminal_session() => Terminal::None,
            Launch::Relay => Terminal::Relayed,
            Launch::Supervise => Terminal::Inherited,
        }
    }
}

/// The one line that says the terminal filter is not in force, what that loses, and what still
/// holds.
pub fn filter_lost(terminal: Terminal, why: NotInForce) -> String {
    let still = match terminal {
        Terminal::Inherited => {
            "its terminal is the one it was started on (the container's console), not a root session's"
        }
        Terminal::Relayed | Terminal::None => {
            "the relay still keeps root's terminal from the program"
        }
    };
    format!(
        "hermes-shim: WARNING: the seccomp filter against terminal injection cannot be in force here ({why}); running without it: the program and what it starts can push input (TIOCSTI) into a terminal they hold; {still}"
    )
}

/// Drops to `target`: supplementary groups, then gid, then uid (real, effective and saved),
/// then verifies, then closes inherited descriptors and sets `no_new_privs` (with the terminal
/// filter where the program will have a terminal). Groups and gid go first because they need
/// privilege that the uid change takes away; the verification catches a kernel, seccomp filter
/// or user namespace that reported success without doing the work. Returns why the terminal
/// filter is not in force, where the program has a terminal and the filter could not be.
pub fn drop_privileges<P: Privileges>(
    p: &mut P,
    t: &Target,
    terminal: Terminal,
) -> Result<Option<NotInForce>, DropError> {
    let fail = |step, failure| DropError { step, failure };
    let call = |step| move |e| fail(step, Failure::Call(e));
    // The terminal filter is tried while this process is still root: the throwaway child is
    // then root's too, out of the target user's reach (see guard::probe).
    let filter = match terminal {
        Terminal::None => None,
        Terminal::Relayed | Terminal::Inherited => Some(p.probe_terminal()),
    };
    p.set_groups(&t.groups).map_err(call(Step::SetGroups))?;
    p.set_gid(t.gid).map_err(call(Step::SetGid))?;
    p.set_uid(t.uid).map_err(call(Step::SetUid))?;
    let now = p.current().map_err(call(Step::Verify))?;
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
        return Err(fail(Step::Verify, Failure::Ids { want, now }));
    }
    match p.capabilities().map_err(call(Step::Verify))? {
        0 => {}
        caps => return Err(fail(Step::Verify, Failure::Capabilities(caps))),
    }
    if p.regain_root().is_ok() {
        return Err(fail(Step::RegainRoot, Failure::Reversible));
    }
    // What root's session holds must not reach the program: open files (`hermes 3</etc/shadow`),
    // and the power to raise privileges again or to type into a terminal.
    p.close_fds().map_err(call(Step::CloseFds))?;
    match filter {
        Some(Ok(f)) => p
            .guard_terminal(&f)
            .map_err(call(Step::GuardTerminal))
            .map(|()| None),
        Some(Err(why)) => p
            .no_new_privs()
            .map_err(call(Step::NoNewPrivs))
            .map(|()| Some(why)),
        None => p
            .no_new_privs()
            .map_err(call(Step::NoNewPrivs))
            .map(|()| None),
    }
}

/// Drops with `p` and, only if the drop held, calls `exec` (which returns only on failure).
pub fn drop_then<P: Privileges>(
    p: &mut P,
    t: &Target,
    terminal: Terminal,
    caller: Caller,
    exec: impl FnOnce() -> Exit,
) -> Exit {
    match drop_privileges(p, t, terminal) {
        Ok(lost) => {
            if let Some(why) = lost {
                say!("{}", filter_lost(terminal, why));
            }
            exec()
        }
        Err(e) => refuse(&user_label(t), &e, caller),
    }
}

fn user_label(t: &Target) -> String {
    t.name
        .clone()
        .unwrap_or_else(|| format!("{}:{}", t.uid, t.gid))
}

fn refuse(user: &str, why: &dyn fmt::Display, caller: Caller) -> Exit {
    say!(
        "hermes-shim: cannot drop to user '{user}': {why} — {}",
        caller.remedy()
    );
    Exit::NotRun
}

/// Refuses when this process runs with real and effective ids apart, or from a binary with the
/// setuid or setgid bit: the shim must never be an escalation path.
// Real and effective uid and gid: the kernel's own names.
#[allow(clippy::similar_names)]
pub fn refuse_setuid(me: Option<&Metadata>) -> Option<Exit> {
    let (ruid, euid, rgid, egid) = sys::caller_ids();
    let bits = me.map_or(0, |m| m.mode() & 0o6000);
    if ruid != euid || rgid != egid || bits != 0 {
        say!(
            "hermes-shim: refusing to run setuid or setgid (uid {ruid}/{euid}, gid {rgid}/{egid}) — install it with mode 0755 and no s-bits"
        );
        return Some(Exit::NotRun);
    }
    None
}

/// This binary's own inode (for the setuid-bit and exec-loop checks); `None` without /proc.
pub fn self_exe() -> Option<Metadata> {
    std::fs::metadata("/proc/self/exe").ok()
}

/// Why the real program cannot be run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgramError {
    /// `HERMES_SHIM_REAL_DIR` is not absolute.
    RelativeDir(PathBuf),
    /// Not a plain program name (empty, `.`, `..`, or with a `/`).
    NotAName(OsString),
    /// stat(2) of the program failed.
    Unusable { path: PathBuf, errno: Errno },
    /// Not a regular file with an execute bit.
    NotExecutable(PathBuf),
    /// The program is this very binary: it would exec itself forever.
    IsShim(PathBuf),
}

impl ProgramError {
    /// 126 for what is configured wrong, 127 for what is missing.
    pub fn exit(&self) -> Exit {
        match self {
            ProgramError::RelativeDir(_) | ProgramError::IsShim(_) => Exit::NotRun,
            _ => Exit::NotFound,
        }
    }
}

impl fmt::Display for ProgramError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProgramError::RelativeDir(dir) => write!(
                f,
                "HERMES_SHIM_REAL_DIR={} is not absolute — set it to the venv's bin directory, e.g. {DEFAULT_REAL_DIR}",
                shown(dir)
            ),
            ProgramError::NotAName(name) => write!(
                f,
                "'{}' is not a program name — give a name such as hermes",
                shown(Path::new(name))
            ),
            ProgramError::Unusable { path, errno } => write!(
                f,
                "real program {} cannot be used: {errno} — install hermes-agent in that venv or set HERMES_SHIM_REAL_DIR",
                shown(path)
            ),
            ProgramError::NotExecutable(path) => write!(
                f,
                "real program {} is not an executable file — check its mode",
                shown(path)
            ),
            ProgramError::IsShim(path) => write!(
                f,
                "real program {} is hermes-shim itself — point HERMES_SHIM_REAL_DIR at the venv's bin directory",
                shown(path)
            ),
        }
    }
}

/// The real program for `name`: `$HERMES_SHIM_REAL_DIR/name`.
pub fn real_program(dir: &Path, name: &OsStr) -> Result<PathBuf, ProgramError> {
    if !dir.is_absolute() {
        return Err(ProgramError::RelativeDir(dir.to_path_buf()));
    }
    let plain = !name.is_empty() && name != "." && name != ".." && !name.as_bytes().contains(&b'/');
    if !plain {
        return Err(ProgramError::NotAName(name.to_os_string()));
    }
    Ok(dir.join(name))
}

/// Checks the real program exists, is an executable file, and is not this very binary
/// (a symlink loop back to the shim would exec itself forever).
pub fn check_program(path: &Path, me: Option<&Metadata>) -> Result<(), ProgramError> {
    let meta = std::fs::metadata(path).map_err(|e| ProgramError::Unusable {
        path: path.to_path_buf(),
        errno: sys::errno_of(&e),
    })?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(ProgramError::NotExecutable(path.to_path_buf()));
    }
    if let Some(me) = me
        && (me.dev(), me.ino()) == (meta.dev(), meta.ino())
    {
        return Err(ProgramError::IsShim(path.to_path_buf()));
    }
    Ok(())
}

fn cstring(s: &[u8]) -> CString {
    // Arguments and environment strings come from the kernel NUL-terminated, so none holds a NUL.
    CString::new(s).expect("no NUL inside an argument")
}

/// A program ready to exec: argv and environment built up front, so that a forked child does
/// little more than exec (see [`Launch::Supervise`]).
///
/// Kept by hand rather than `CommandExt::exec`: that copies every variable of the environment
/// into a map as soon as one is changed (HOME, USER, LOGNAME here), and this runs in front of
/// every `docker exec … hermes`; the inherited variables are passed by reference instead.
pub struct Prepared {
    path: PathBuf,
    prog: CString,
    argv: Vec<CString>,
    envp: Vec<Cow<'static, CStr>>,
}

impl Prepared {
    /// `path` with `args` (argv[0] is `path`), in this process's environment; with `as_user`,
    /// HOME, USER and LOGNAME describe that user.
    // `argv` and `args`, `envp` and `env`: exec's own names for what it is given.
    #[allow(clippy::similar_names)]
    pub fn new(path: &Path, args: &[OsString], as_user: Option<&Target>) -> Prepared {
        let replaced = |kv: &CStr| {
            let kv = kv.to_bytes();
            [&b"HOME="[..], b"USER=", b"LOGNAME="]
                .iter()
                .any(|k| kv.starts_with(k))
        };
        let mut envp: Vec<Cow<'static, CStr>> = sys::environ()
            .into_iter()
            .filter(|kv| as_user.is_none() || !replaced(kv))
            .map(Cow::Borrowed)
            .collect();
        let var = |k: &str, v: &[u8]| Cow::Owned(cstring(&[k.as_bytes(), b"=", v].concat()));
        if let Some(t) = as_user {
            envp.push(var("HOME", t.home.as_os_str().as_bytes()));
            if let Some(n) = &t.name {
                envp.push(var("USER", n.as_bytes()));
                envp.push(var("LOGNAME", n.as_bytes()));
            }
        }
        let prog = cstring(path.as_os_str().as_bytes());
        let argv = std::iter::once(prog.clone())
            .chain(args.iter().map(|a| cstring(a.as_bytes())))
            .collect();
        Prepared {
            path: path.to_path_buf(),
            prog,
            argv,
            envp,
        }
    }

    /// Adds the variables s6-overlay recorded at start-up that this environment lacks (see
    /// [`recorded`]).
    fn with_recorded(mut self, listing: &crate::sys::envdir::Listing) -> Prepared {
        let add = recorded::missing(&sys::environ(), &listing.files);
        self.envp.extend(add.into_iter().map(Cow::Owned));
        self
    }

    /// Execs the program as the current user; returns only when exec failed.
    pub fn exec(&self) -> Exit {
        if let Err(e) = sys::reset_signals() {
            say!("hermes-shim: cannot reset signal state: {e} — report this as a bug");
            return Exit::NotRun;
        }
        let e = sys::exec(&self.prog, &self.argv, &self.envp);
        say!(
            "hermes-shim: cannot execute {}: {e} — check the file and its interpreter",
            shown(&self.path)
        );
        Exit::NotFound
    }
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
    /// How the shim starts a program: behind the relay from a terminal session (any terminal on
    /// 0, 1 or 2, or a controlling terminal), else in place.
    pub fn for_exec(terminal_session: bool) -> Launch {
        if terminal_session {
            Launch::Relay
        } else {
            Launch::Exec
        }
    }

    /// How the entrypoint starts the container's main program: as PID 1 it stays the
    /// program's init, and the terminal it has is the container's console, the program's own;
    /// otherwise (under an init, or typed at a root prompt of `docker exec -it`) as the shim.
    pub fn for_main(pid1: bool, terminal_session: bool) -> Launch {
        if pid1 {
            Launch::Supervise
        } else {
            Launch::for_exec(terminal_session)
        }
    }

    /// Starts `p` this way; returns only with an exit code.
    pub fn start(self, p: &Prepared) -> Exit {
        match self {
            Launch::Exec | Launch::Relay => p.exec(),
            Launch::Supervise => crate::init::supervise(|| p.exec()),
        }
    }
}

/// The shim applet: runs the real program for `name` with `args`, dropping root first.
pub fn run(name: &OsStr, args: &[OsString], me: Option<&Metadata>, settings: &Settings) -> Exit {
    let path = match real_program(&settings.real_dir, name)
        .and_then(|p| check_program(&p, me).map(|()| p))
    {
        Ok(p) => p,
        Err(e) => {
            say!("hermes-shim: {e}");
            return e.exit();
        }
    };
    if sys::real_uid() != 0 {
        return Prepared::new(&path, args, None).exec();
    }
    if settings.opt_out {
        say!(
            "hermes-shim: WARNING: HERMES_DOCKER_EXEC_AS_ROOT is set: running {} as root, with the config and plugins under HERMES_HOME that the agent can write",
            shown(&path)
        );
        return Prepared::new(&path, args, None).exec();
    }
    // From a terminal session, the program gets a terminal of its own (see crate::relay).
    let how = Launch::for_exec(relay::needed());
    run_as_target(&path, args, how, Caller::Shim, settings)
}

/// The target user of `settings`, resolved in this container's /etc/passwd and /etc/group,
/// gids below 100 judged by `low`.
pub fn target(settings: &Settings, low: &users::LowGids) -> Result<Target, UserError> {
    users::resolve_with(settings.user.as_ref().map_err(Clone::clone)?, low)
}

/// Resolves the target user, drops to it and starts `path`; every failure refuses with 126.
pub fn run_as_target(
    path: &Path,
    args: &[OsString],
    how: Launch,
    caller: Caller,
    settings: &Settings,
) -> Exit {
    // One look at the container for the user's gids and for --group-add's.
    let low = users::LowGids::of_container(Some(&settings.home));
    let mut target = match target(settings, &low) {
        Ok(t) => t,
        Err(e) => {
            let spec = settings.user.as_ref().map_or_else(
                |_| settings.user_raw.clone().unwrap_or_default(),
                ToString::to_string,
            );
            return refuse(&spec, &e, caller);
        }
    };
    keep_container_groups(&mut target, &low);
    // Read while still root: the directory need not be readable by the user.
    let started_with = recorded::read(Path::new(recorded::DIR));
    let exec = || {
        leave_unreachable_cwd(&target);
        how.start(&Prepared::new(path, args, Some(&target)).with_recorded(&started_with))
    };
    // The relay forks first: the parent stays root to relay, the child drops and becomes the
    // monitor of the program in the new session, where which terminal it has is judged.
    if how == Launch::Relay {
        relay::run(|| {
            let terminal = Terminal::of_session(how);
            drop_then(&mut sys::Linux, &target, terminal, caller, || {
                relay::monitor(exec)
            })
        })
    } else {
        drop_then(
            &mut sys::Linux,
            &target,
            Terminal::of_session(how),
            caller,
            exec,
        )
    }
}

/// Adds the container's supplementary groups (`--group-add`, see
/// [`users::container_groups`]) to the target's, read while this process is still root. A
/// refused one is left behind with one line. When the ids cannot be read, none are added: the
/// drop's own verification reads them again and refuses if the kernel will not answer.
fn keep_container_groups(t: &mut Target, low: &users::LowGids) {
    low.owned_by(t.uid);
    let Ok(gids) = sys::gids() else {
        return;
    };
    let Ok(held) = sys::supplementary_groups() else {
        return;
    };
    let found = users::container_groups(sys::real_uid(), gids, &held, low);
    for g in &found.refused {
        say!(
            "hermes-shim: the container's supplementary {} is not kept for user '{}': it grants far more than the user's own files — leave it out of --group-add (group_add, supplementalGroups)",
            users::system_gid_name_here(*g, low),
            user_label(t)
        );
    }
    t.add_groups(&found.kept);
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
            shown(&cwd),
            user_label(t),
            shown(to)
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
    fn the_relay_for_every_terminal_session_but_pid_1s() {
        assert_eq!(Launch::for_exec(true), Launch::Relay);
        assert_eq!(Launch::for_exec(false), Launch::Exec);
        assert_eq!(Launch::for_main(true, true), Launch::Supervise);
        assert_eq!(Launch::for_main(true, false), Launch::Supervise);
        assert_eq!(Launch::for_main(false, true), Launch::Relay);
        assert_eq!(Launch::for_main(false, false), Launch::Exec);
        // A program started in place has no terminal: it is chosen only outside a session.
        assert_eq!(Terminal::of_session(Launch::Exec), Terminal::None);
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

    #[test]
    fn real_program_names() {
        assert!(
            real_program(Path::new("/venv/bin"), OsStr::new("hermes"))
                .unwrap()
                .ends_with("hermes")
        );
        for bad in ["", ".", "..", "a/b", "/bin/sh"] {
            assert_eq!(
                real_program(Path::new("/venv/bin"), OsStr::new(bad))
                    .unwrap_err()
                    .exit(),
                Exit::NotFound,
                "{bad:?}"
            );
        }
        assert_eq!(
            real_program(Path::new("venv/bin"), OsStr::new("hermes"))
                .unwrap_err()
                .exit(),
            Exit::NotRun,
            "a relative HERMES_SHIM_REAL_DIR is refused"
        );
    }

    #[test]
    fn check_program_wants_an_executable_file_other_than_itself() {
        let sh = Path::new("/bin/sh");
        assert_eq!(check_program(sh, None), Ok(()));
        let other = std::fs::metadata("/etc/passwd").unwrap();
        assert_eq!(
            check_program(sh, Some(&other)),
            Ok(()),
            "another file is no loop"
        );
        let same = std::fs::metadata(sh).unwrap();
        assert_eq!(
            check_program(sh, Some(&same)),
            Err(ProgramError::IsShim(sh.into())),
            "the same inode by another name is a loop"
        );
        for not_a_program in ["/etc/passwd", "/"] {
            assert_eq!(
                check_program(Path::new(not_a_program), None),
                Err(ProgramError::NotExecutable(not_a_program.into())),
                "{not_a_program}"
            );
        }
        assert_eq!(
            check_program(Path::new("/nonexistent/hermes"), None),
            Err(ProgramError::Unusable {
                path: "/nonexistent/hermes".into(),
                errno: Errno::ENOENT
            })
        );
    }
}
