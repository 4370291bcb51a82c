//! The entrypoint as PID 1 when no init runs it (the image without s6-overlay, or the s6 image
//! under `docker run --user`, where `/init` cannot start): a minimal init in the manner of tini.
//!
//! A program exec'd as PID 1 gets no default signal actions (so `docker stop`'s SIGTERM is
//! ignored and the engine falls back to SIGKILL after its grace time) and inherits every orphan
//! in the container without reaping it. So PID 1 stays a small supervisor instead: it forks the
//! program into its own process group (the terminal's foreground, if there is one), passes every
//! signal it gets on to it, reaps whatever ends, and exits with the program's status (128 + the
//! signal when the program was killed). The supervisor has already dropped to the program's
//! user, so nothing stays root for the life of the container.

use crate::exit::Exit;
use crate::sys::process::{self, Ended, Forked};

/// Runs `start` (which execs the program, returning only on failure) in a child and supervises
/// it; returns the exit code for the container. If the supervisor cannot be set up, `start`
/// runs in this process instead, as before.
pub fn supervise(start: impl FnOnce() -> Exit) -> Exit {
    if let Err(e) = process::block_signals() {
        say!("hermes-shim entrypoint: cannot block signals ({e}); running the program as PID 1");
        return start();
    }
    let child = match process::fork() {
        Ok(Forked::Child) => {
            process::own_terminal();
            process::exit_now(start().code());
        }
        Ok(Forked::Parent(pid)) => pid,
        Err(e) => {
            say!("hermes-shim entrypoint: cannot fork ({e}); running the program as PID 1");
            return start();
        }
    };
    loop {
        let sig = match process::wait_signal() {
            Ok(sig) => sig,
            Err(e) => {
                say!("hermes-shim entrypoint: waiting for signals failed ({e}); stopping");
                return Exit::Program(1);
            }
        };
        if sig == nix::libc::SIGCHLD {
            if let Some(ended) = process::reap(child) {
                return Exit::Program(exit_code(ended));
            }
        } else if let Err(e) = process::send(child, sig) {
            say!("hermes-shim entrypoint: cannot pass signal {sig} on ({e})");
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
