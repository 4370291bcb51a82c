//! The entrypoint as PID 1 when no init runs it (the image without s6-overlay, or the s6 image
//! under `docker run --user`, where `/init` cannot start): a minimal init in the manner of tini.
//!
//! A program exec'd as PID 1 gets no default signal actions (so `docker stop`'s SIGTERM is
//! ignored and the engine falls back to SIGKILL after its grace time) and inherits every orphan
//! in the container without reaping it. So PID 1 stays a small supervisor instead: it forks the
//! program into its own process group (the terminal's foreground, if there is one), passes every
//! signal it gets on to it, reaps whatever ends, and exits with the program's status (128 + the
//! signal when the program was killed). The supervisor has already dropped to the program's
//! user, so nothing stays root for the life of the container. The `tini` applet
//! ([`crate::tini`]) is the same supervisor with tini's options.

use crate::exit::Exit;
use crate::sys::process::{self, Ended, Forked};

/// How the supervisor behaves: the entrypoint's way, or as `tini`'s flags ask ([`crate::tini`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Supervision {
    /// The prefix of every line it says.
    pub who: &'static str,
    /// Signals go to the program's whole process group (`tini -g`), not the program alone.
    pub group: bool,
    /// One line for each orphan reaped (`tini -w`): a program that leaves zombies is worth a look.
    pub warn_reap: bool,
    /// 1 warnings only; 2 also the start and end of the program; 3 also each signal passed on.
    pub verbosity: u8,
}

impl Supervision {
    /// The entrypoint's: signals to the program, orphans reaped silently.
    pub const ENTRYPOINT: Supervision = Supervision {
        who: "hermes-shim entrypoint",
        group: false,
        warn_reap: false,
        verbosity: 1,
    };
}

/// Runs `start` (which execs the program, returning only on failure) in a child and supervises
/// it; returns the exit code for the container. If the supervisor cannot be set up, `start`
/// runs in this process instead, as before.
pub fn supervise(start: impl FnOnce() -> Exit) -> Exit {
    supervise_with(&Supervision::ENTRYPOINT, start)
}

/// [`supervise`], as `how` says.
pub fn supervise_with(how: &Supervision, start: impl FnOnce() -> Exit) -> Exit {
    let who = how.who;
    if let Err(e) = process::block_signals() {
        say!("{who}: cannot block signals ({e}); running the program as PID 1");
        return start();
    }
    let child = match process::fork() {
        Ok(Forked::Child) => {
            process::own_terminal();
            process::exit_now(start().code());
        }
        Ok(Forked::Parent(pid)) => pid,
        Err(e) => {
            say!("{who}: cannot fork ({e}); running the program as PID 1");
            return start();
        }
    };
    if how.verbosity >= 2 {
        say!("{who}: started the program as pid {child}");
    }
    // The child leads its own process group (own_terminal), so its group id is its pid.
    let target = if how.group { -child } else { child };
    loop {
        let sig = match process::wait_signal() {
            Ok(sig) => sig,
            Err(e) => {
                say!("{who}: waiting for signals failed ({e}); stopping");
                return Exit::Program(1);
            }
        };
        if sig == nix::libc::SIGCHLD {
            let ended = process::reap(child, |pid| {
                if how.warn_reap {
                    say!("{who}: reaped zombie process {pid}");
                }
            });
            if let Some(ended) = ended {
                if how.verbosity >= 2 {
                    match ended {
                        Ended::Exited(code) => say!("{who}: the program ended: exit status {code}"),
                        Ended::Killed(sig) => {
                            say!("{who}: the program ended: killed by signal {sig}");
                        }
                    }
                }
                return Exit::Program(exit_code(ended));
            }
        } else {
            if how.verbosity >= 3 {
                say!("{who}: passing signal {sig} on to {target}");
            }
            if let Err(e) = process::send(target, sig) {
                say!("{who}: cannot pass signal {sig} on ({e})");
            }
        }
    }
}

/// The container's exit code for how the program ended, as a shell reports it.
pub fn exit_code(ended: Ended) -> u8 {
    match ended {
        Ended::Exited(code) => code,
        // Signal numbers are below 65, so 128 + sig fits; clamp anyway rather than wrap.
        Ended::Killed(sig) => u8::try_from(128 + sig).unwrap_or(u8::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell() {
        assert_eq!(exit_code(Ended::Exited(0)), 0);
        assert_eq!(exit_code(Ended::Exited(42)), 42);
        assert_eq!(exit_code(Ended::Killed(nix::libc::SIGTERM)), 143);
        assert_eq!(exit_code(Ended::Killed(nix::libc::SIGKILL)), 137);
        assert_eq!(exit_code(Ended::Killed(200)), 255);
    }
}
