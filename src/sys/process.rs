//! Process control for the entrypoint when it is PID 1 without an init: fork, waiting for
//! signals, forwarding them, reaping.

use nix::errno::Errno;
use nix::libc::{self, c_int};

/// Signals the kernel raises for a fault of the process itself; they stay unblocked so that a
/// bug here still crashes visibly instead of waiting forever in a queue.
const SYNCHRONOUS: [c_int; 7] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGTRAP,
    libc::SIGSYS,
    libc::SIGABRT,
];

/// Every signal an init waits for and passes on: all but the synchronous ones (SIGKILL and
/// SIGSTOP cannot be blocked anyway).
fn forwardable() -> libc::sigset_t {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: sigfillset and sigdelset only write the set they are given, a valid sigset_t.
    unsafe {
        libc::sigfillset(set.as_mut_ptr());
        for sig in SYNCHRONOUS {
            libc::sigdelset(set.as_mut_ptr(), sig);
        }
        set.assume_init()
    }
}

/// True when this process is PID 1 of its PID namespace.
pub fn is_pid1() -> bool {
    std::process::id() == 1
}

/// Blocks every forwardable signal, so that they queue for [`wait_signal`]. PID 1 gets a signal
/// from outside its namespace only if it handles it; a blocked signal is never discarded.
pub fn block_signals() -> Result<(), Errno> {
    let set = forwardable();
    // SAFETY: a valid set, and no old set asked for.
    Errno::result(unsafe {
        libc::sigprocmask(libc::SIG_BLOCK, &raw const set, std::ptr::null_mut())
    })
    .map(drop)
}

/// Which side of a fork this is.
pub enum Forked {
    Child,
    Parent(libc::pid_t),
}

/// fork(2).
pub fn fork() -> Result<Forked, Errno> {
    // SAFETY: the caller is single-threaded (the entrypoint starts no thread), so the child may
    // do anything the parent could; it only sets up its process group and execs.
    let pid = Errno::result(unsafe { libc::fork() })?;
    Ok(if pid == 0 {
        Forked::Child
    } else {
        Forked::Parent(pid)
    })
}

/// In the child: its own process group, and the foreground of the terminal on stdin if there is
/// one, so that Ctrl-C and window-size changes reach the program and not the init. SIGTTOU is
/// still blocked here, so taking the foreground from the background works.
pub fn own_terminal() {
    // SAFETY: plain calls on this process and fd 0; failures are harmless (no terminal).
    unsafe {
        libc::setpgid(0, 0);
        if libc::isatty(0) == 1 {
            libc::tcsetpgrp(0, libc::getpgrp());
        }
    }
}

/// Waits for the next forwardable signal and returns its number.
pub fn wait_signal() -> Result<c_int, Errno> {
    let set = forwardable();
    loop {
        // SAFETY: a valid set, and no siginfo asked for.
        match Errno::result(unsafe { libc::sigwaitinfo(&raw const set, std::ptr::null_mut()) }) {
            Err(Errno::EINTR) => {}
            other => return other,
        }
    }
}

/// Sends `sig` to `pid`; a process that is already gone is not an error.
pub fn send(pid: libc::pid_t, sig: c_int) -> Result<(), Errno> {
    // SAFETY: kill(2) on a pid we forked.
    match Errno::result(unsafe { libc::kill(pid, sig) }) {
        Ok(_) | Err(Errno::ESRCH) => Ok(()),
        Err(e) => Err(e),
    }
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exited(u8),
    Killed(c_int),
}

/// Reaps every child that has ended, without waiting; returns how `main` ended if it was one.
/// Every other pid reaped (an orphan the init inherited) is handed to `other`.
pub fn reap(main: libc::pid_t, mut other: impl FnMut(libc::pid_t)) -> Option<Ended> {
    let mut found = None;
    loop {
        let mut status: c_int = 0;
        // SAFETY: waitpid writes only the status we pass.
        let pid = unsafe { libc::waitpid(-1, &raw mut status, libc::WNOHANG) };
        if pid <= 0 {
            return found;
        }
        if pid == main {
            found = if libc::WIFEXITED(status) {
                Some(Ended::Exited(exit_status(status)))
            } else if libc::WIFSIGNALED(status) {
                Some(Ended::Killed(libc::WTERMSIG(status)))
            } else {
                None
            };
        } else {
            other(pid);
        }
    }
}

/// The exit status of a waitpid status that says the child exited: 0 to 255.
pub fn exit_status(status: c_int) -> u8 {
    u8::try_from(libc::WEXITSTATUS(status)).unwrap_or(u8::MAX)
}

/// Ends this process at once with `code`, running no destructor or atexit handler: for a
/// forked child whose exec failed.
pub fn exit_now(code: u8) -> ! {
    // SAFETY: _exit(2) never returns.
    unsafe { libc::_exit(c_int::from(code)) }
}
