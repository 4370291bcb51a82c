//! The relay: a program dropped from root's terminal session runs on a terminal of its own.
//!
//! Threat model: root runs `hermes` from an interactive shell (`docker exec -it c bash`). Handed
//! root's terminal, the program (or anything it starts, or any process it passes the descriptor
//! to over a socket) could read what root types after it exits, and push input with TIOCSTI;
//! no seccomp list can close the first, since a descriptor can be passed to a process outside
//! any filter. So, as `su --pty` and sudo's `use_pty` do, the program never gets root's
//! terminal: it runs in a session of its own on a fresh pty, and this process, still root,
//! copies bytes between root's terminal and the pty's master until the program exits, then
//! closes the master, so whatever still holds the program's terminal reads only EIO. With no
//! terminal on 0, 1 or 2 but a controlling terminal still (`hermes </dev/null >log` typed at a
//! root prompt), the program just gets a session of its own, without a terminal at all. The
//! entrypoint typed at such a prompt (`docker exec -it c sh`, then `/opt/hermes/entrypoint.sh`)
//! is relayed the same way; only as PID 1, the container's main program, does it keep the
//! terminal it has, the container's console, which is the program's own.
//!
//! Root's terminal is in raw mode meanwhile: keys pass through untouched and the pty's own line
//! discipline (with root's modes copied onto it) turns Ctrl-C into SIGINT, Ctrl-Z into SIGTSTP
//! for the program. In the new session a monitor (already dropped to the program's user) is
//! the session leader and the program runs in a process group of its own, the terminal's
//! foreground: a group whose parent is in the same session is not orphaned, so the kernel
//! delivers Ctrl-Z to it (as sudo's monitor does). A stopped program stops the monitor, which
//! stops this process, so root's shell gets its prompt back, and `fg` continues all three.
//! Window-size changes are copied over; signals sent to this process are passed on; the
//! program's exit status is this process's.

use std::os::fd::{AsFd, OwnedFd, RawFd};

use nix::libc;

use crate::exit::Exit;
use crate::init;
use crate::sys::process::{self, Ended, Forked};
use crate::sys::pty::{self, ChildState, Raw, std_fd};

/// Whether the caller is in a terminal session the program must not share: a terminal on 0,
/// 1 or 2, or a controlling terminal.
pub fn needed() -> bool {
    pty::in_terminal_session()
}

/// Runs `start` in a child on a fresh pty (in a session of its own), relaying until it ends;
/// returns its exit code. `start` drops privileges and then calls [`monitor`].
pub fn run(start: impl FnOnce() -> Exit) -> Exit {
    let ttys: Vec<RawFd> = (0..=2).filter(|fd| pty::is_tty(*fd)).collect();
    // Output goes back to the terminal the program would have written to: stdout if it is one.
    let out = [1, 2, 0].into_iter().find(|fd| ttys.contains(fd));
    let pty = match out.map(|fd| pty::open_like(std_fd(fd))).transpose() {
        Ok(p) => p,
        Err(e) => {
            say!(
                "hermes-shim: cannot open a terminal for the program: {e} — run docker exec without -t, or --user hermes"
            );
            return Exit::NotRun;
        }
    };
    let signals = match pty::signal_fd() {
        Ok(s) => s,
        Err(e) => {
            say!("hermes-shim: cannot set up the terminal relay: {e} — report this as a bug");
            return Exit::NotRun;
        }
    };
    let child = match process::fork() {
        Ok(Forked::Child) => {
            drop(signals);
            let slave = pty.as_ref().map(|(_, s)| s.as_fd());
            if let Err(e) = pty::take_slave(slave, &ttys) {
                say!("hermes-shim: cannot give the program its own terminal: {e}");
                process::exit_now(Exit::NotRun.code());
            }
            drop(pty);
            process::exit_now(start().code());
        }
        Ok(Forked::Parent(pid)) => pid,
        Err(e) => {
            say!("hermes-shim: cannot fork the program: {e}");
            return Exit::NotRun;
        }
    };
    let master = pty.map(|(m, _slave)| m);
    let ended = relay(child, master.as_ref(), out, &signals);
    Exit::Program(init::exit_code(ended))
}

/// Copies bytes and passes signals on until the child ends; then lets the program's last output
/// out and closes the master (the caller drops it).
fn relay(
    child: libc::pid_t,
    master: Option<&OwnedFd>,
    out: Option<RawFd>,
    signals: &nix::sys::signalfd::SignalFd,
) -> Ended {
    let raw = (master.is_some() && pty::is_tty(0))
        .then(|| Raw::set(std_fd(0)).ok())
        .flatten();
    let mut stdin_open = raw.is_some();
    let mut master_open = master.is_some();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let mut fds = vec![signals.as_fd()];
        if let Some(m) = master.filter(|_| master_open) {
            fds.push(m.as_fd());
        }
        if stdin_open {
            fds.push(std_fd(0));
        }
        let Ok(ready) = pty::ready(&fds, -1) else {
            continue;
        };
        if ready[0] {
            while let Ok(Some(info)) = signals.read_signal() {
                let Ok(sig) = libc::c_int::try_from(info.ssi_signo) else {
                    continue;
                };
                if let Some(ended) = on_signal(sig, child, master, out, raw.as_ref()) {
                    drain(master, out, &mut buf);
                    return ended;
                }
            }
        }
        let mut i = 1;
        if let Some(m) = master.filter(|_| master_open) {
            if ready[i] {
                match pty::read(m.as_fd(), &mut buf) {
                    Ok(n) if n > 0 => {
                        if let Some(out) = out {
                            let _ = pty::write_all(std_fd(out), &buf[..n]);
                        }
                    }
                    // EIO: no process holds the slave any more; the child's exit comes next.
                    _ => master_open = false,
                }
            }
            i += 1;
        }
        if stdin_open && ready[i] {
            match pty::read(std_fd(0), &mut buf) {
                Ok(n) if n > 0 => {
                    if let Some(m) = master {
                        let _ = pty::write_all(m.as_fd(), &buf[..n]);
                    }
                }
                _ => stdin_open = false,
            }
        }
    }
}

/// Handles one signal; returns how the child ended once it has.
fn on_signal(
    sig: libc::c_int,
    child: libc::pid_t,
    master: Option<&OwnedFd>,
    out: Option<RawFd>,
    raw: Option<&Raw>,
) -> Option<Ended> {
    let window = || {
        if let (Some(m), Some(out)) = (master, out) {
            pty::copy_window(std_fd(out), m.as_fd());
        }
    };
    match sig {
        libc::SIGCHLD => match pty::child_state(child) {
            ChildState::Exited(code) => return Some(Ended::Exited(code)),
            ChildState::Killed(s) => return Some(Ended::Killed(s)),
            ChildState::Stopped => {
                // The monitor stopped (the program did, Ctrl-Z on its terminal): stop too, so
                // root's shell gets its prompt and its terminal back; `fg` continues this
                // process, which then takes the terminal again and continues the monitor.
                if let Some(r) = raw {
                    r.restore();
                }
                pty::stop_self();
                if let Some(r) = raw {
                    r.again();
                }
                window();
                let _ = process::send(child, libc::SIGCONT);
            }
            ChildState::Running => {}
        },
        libc::SIGWINCH => window(),
        libc::SIGCONT => {
            if let Some(r) = raw {
                r.again();
            }
            let _ = process::send(child, libc::SIGCONT);
        }
        // Nothing to pass on: writing to a closed terminal just fails.
        libc::SIGPIPE => {}
        // Keys root's terminal turned into signals (no pty: the program has no terminal) or
        // signals sent to this process: the monitor passes them to the program's group.
        other => {
            let _ = process::send(child, other);
        }
    }
    None
}

/// Copies what the program wrote before it ended, without waiting for more.
fn drain(master: Option<&OwnedFd>, out: Option<RawFd>, buf: &mut [u8]) {
    let (Some(m), Some(out)) = (master, out) else {
        return;
    };
    if pty::nonblocking(m).is_err() {
        return;
    }
    // A bounded number of reads: a child left behind could keep writing forever.
    for _ in 0..64 {
        match pty::read(m.as_fd(), buf) {
            Ok(n) if n > 0 && pty::write_all(std_fd(out), &buf[..n]).is_ok() => {}
            _ => break,
        }
    }
}

/// The monitor, in the new session after the drop: runs `exec` (which returns only on failure)
/// in a child that leads its own process group, the terminal's foreground, and passes signals
/// to that group until it ends; returns its exit code (128 + the signal if it was killed).
pub fn monitor(exec: impl FnOnce() -> Exit) -> Exit {
    let tty = (0..=2).find(|fd| pty::is_tty(*fd));
    if process::block_signals().is_err() {
        return exec();
    }
    let program = match process::fork() {
        Ok(Forked::Child) => {
            pty::lead_foreground(tty);
            process::exit_now(exec().code());
        }
        Ok(Forked::Parent(pid)) => pid,
        Err(e) => {
            say!("hermes-shim: cannot fork the program: {e}");
            return Exit::NotRun;
        }
    };
    loop {
        let Ok(sig) = process::wait_signal() else {
            continue;
        };
        match sig {
            libc::SIGCHLD => match pty::child_state(program) {
                ChildState::Exited(code) => return Exit::Program(code),
                ChildState::Killed(s) => return Exit::Program(init::exit_code(Ended::Killed(s))),
                // Stop with it; whoever continues this process continues the program: the
                // SIGCONT that does stays pending (blocked) and is the next signal taken here.
                ChildState::Stopped => pty::stop_self(),
                ChildState::Running => {}
            },
            libc::SIGCONT => {
                pty::give_foreground(tty, program);
                let _ = process::send(-program, libc::SIGCONT);
            }
            other => {
                let _ = process::send(-program, other);
            }
        }
    }
}
