//! The verified drop: supplementary groups, gid, uid, then a check that the drop holds, then
//! what root's session must not hand on (inherited descriptors, the power to raise privileges
//! again or to type into a terminal). Every call goes through [`Privileges`], so the order and
//! each failure are tested here with a recording double (`tests.rs`); the root integration
//! tests prove the real thing.

use std::fmt;

use nix::errno::Errno;

use crate::exit::Exit;
use crate::sys::guard::NotInForce;
use crate::sys::{self, Privileges};
use crate::users::Target;

#[cfg(test)]
mod tests;

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

pub fn user_label(t: &Target) -> String {
    t.name
        .clone()
        .unwrap_or_else(|| format!("{}:{}", t.uid, t.gid))
}

pub fn refuse(user: &str, why: &dyn fmt::Display, caller: Caller) -> Exit {
    say!(
        "hermes-shim: cannot drop to user '{user}': {why} — {}",
        caller.remedy()
    );
    Exit::NotRun
}
