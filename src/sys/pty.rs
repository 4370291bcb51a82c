//! Terminal calls for the relay: a fresh pty for the dropped program, raw mode on root's
//! terminal, window sizes, the controlling terminal, and waiting on descriptors and signals.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::libc::{self, c_int};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{self, SetArg, Termios};

/// One of the standard descriptors, 0, 1 or 2.
pub fn std_fd(fd: RawFd) -> BorrowedFd<'static> {
    debug_assert!((0..=2).contains(&fd));
    // SAFETY: 0, 1 and 2 stay open for the life of the process (closing them is not ours to do).
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// Whether `fd` is a terminal.
pub fn is_tty(fd: RawFd) -> bool {
    // TCGETS itself rather than isatty: glibc 2.42's isatty asks with TCGETS2, which qemu-user
    // 7.2 does not translate for aarch64, and a terminal taken for none would reach the program
    // without the relay.
    let mut t = std::mem::MaybeUninit::<libc::termios>::uninit();
    // SAFETY: TCGETS writes one termios into the buffer we pass, and nothing else.
    unsafe { libc::ioctl(fd, libc::TCGETS, t.as_mut_ptr()) == 0 }
}

/// Whether this process has a controlling terminal (which it could open as /dev/tty even with
/// none of 0, 1, 2 on it).
pub fn has_controlling_terminal() -> bool {
    nix::fcntl::open(
        "/dev/tty",
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .is_ok()
}

/// Whether this process is in a terminal session: a terminal on 0, 1 or 2, or a controlling
/// terminal.
pub fn in_terminal_session() -> bool {
    (0..=2).any(is_tty) || has_controlling_terminal()
}

fn window(fd: BorrowedFd) -> Option<libc::winsize> {
    let mut ws = std::mem::MaybeUninit::<libc::winsize>::zeroed();
    // SAFETY: TIOCGWINSZ writes one winsize into the buffer we pass.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, ws.as_mut_ptr()) };
    // SAFETY: initialised by the kernel on success (and zeroed anyway).
    (rc == 0).then(|| unsafe { ws.assume_init() })
}

/// Gives `to` the window size of `from` (the pty then signals SIGWINCH to its foreground).
pub fn copy_window(from: BorrowedFd, to: BorrowedFd) {
    if let Some(ws) = window(from) {
        // SAFETY: TIOCSWINSZ reads one winsize from the pointer we pass.
        unsafe { libc::ioctl(to.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
}

/// A new pty whose slave starts with the modes and window size of the terminal `like`.
pub fn open_like(like: BorrowedFd) -> Result<(OwnedFd, OwnedFd), Errno> {
    let modes = termios::tcgetattr(like).ok();
    let size = window(like).map(|ws| nix::pty::Winsize {
        ws_row: ws.ws_row,
        ws_col: ws.ws_col,
        ws_xpixel: ws.ws_xpixel,
        ws_ypixel: ws.ws_ypixel,
    });
    let pty = nix::pty::openpty(size.as_ref(), modes.as_ref())?;
    for fd in [&pty.master, &pty.slave] {
        nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )?;
    }
    Ok((pty.master, pty.slave))
}

/// In the child: a session of its own (leaving root's controlling terminal), with `slave` as
/// its controlling terminal and on each of `fds` (the ones that were terminals).
pub fn take_slave(slave: Option<BorrowedFd>, fds: &[RawFd]) -> Result<(), Errno> {
    nix::unistd::setsid()?;
    let Some(slave) = slave else {
        return Ok(());
    };
    // SAFETY: TIOCSCTTY with argument 0 on a pty slave we opened; we are a session leader.
    Errno::result(unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) })?;
    for fd in fds {
        // SAFETY: dup2 onto one of the standard descriptors, which we own.
        Errno::result(unsafe { libc::dup2(slave.as_raw_fd(), *fd) })?;
    }
    Ok(())
}

/// Root's terminal in raw mode for as long as this lives (every key goes to the program's pty,
/// whose own line discipline turns Ctrl-C into SIGINT); the modes come back when dropped.
pub struct Raw {
    fd: RawFd,
    saved: Termios,
}

impl Raw {
    pub fn set(fd: BorrowedFd) -> Result<Raw, Errno> {
        let saved = termios::tcgetattr(fd)?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSADRAIN, &raw)?;
        Ok(Raw {
            fd: fd.as_raw_fd(),
            saved,
        })
    }

    /// Puts the saved modes back now (before stopping, say); [`Raw::again`] undoes it.
    pub fn restore(&self) {
        // SAFETY: `fd` is a standard descriptor that outlives this guard.
        let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
        let _ = termios::tcsetattr(fd, SetArg::TCSADRAIN, &self.saved);
    }

    pub fn again(&self) {
        // SAFETY: as in `restore`.
        let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
        let mut raw = self.saved.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(fd, SetArg::TCSADRAIN, &raw);
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        self.restore();
    }
}

/// The signals the relay handles itself, blocked and read from a signalfd.
pub const RELAYED: [Signal; 12] = [
    Signal::SIGCHLD,
    Signal::SIGWINCH,
    Signal::SIGCONT,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTSTP,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGALRM,
    Signal::SIGPIPE,
];

/// Blocks [`RELAYED`] and returns a descriptor that reads them.
pub fn signal_fd() -> Result<SignalFd, Errno> {
    let mut set = SigSet::empty();
    for s in RELAYED {
        set.add(s);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
}

/// Which of `fds` are ready to read (or hung up), waiting up to `timeout_ms` (-1: forever).
pub fn ready(fds: &[BorrowedFd], timeout_ms: i32) -> Result<Vec<bool>, Errno> {
    let mut polls: Vec<PollFd> = fds
        .iter()
        .map(|fd| PollFd::new(*fd, PollFlags::POLLIN))
        .collect();
    let timeout = PollTimeout::try_from(timeout_ms).unwrap_or(PollTimeout::NONE);
    loop {
        match nix::poll::poll(&mut polls, timeout) {
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
            Ok(_) => break,
        }
    }
    Ok(polls
        .iter()
        .map(|p| p.revents().is_some_and(|r| !r.is_empty()))
        .collect())
}

/// read(2), retrying on EINTR.
pub fn read(fd: BorrowedFd, buf: &mut [u8]) -> Result<usize, Errno> {
    loop {
        match nix::unistd::read(fd, buf) {
            Err(Errno::EINTR) => {}
            other => return other,
        }
    }
}

/// Writes all of `buf`, retrying on EINTR and short writes.
pub fn write_all(fd: BorrowedFd, mut buf: &[u8]) -> Result<(), Errno> {
    while !buf.is_empty() {
        match nix::unistd::write(fd, buf) {
            Ok(0) => return Err(Errno::EIO),
            Ok(n) => buf = &buf[n..],
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                ready(&[fd], 100)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// How a waited-for child is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildState {
    Running,
    Stopped,
    Exited(u8),
    Killed(c_int),
}

/// waitpid(child, WNOHANG | WUNTRACED).
pub fn child_state(child: libc::pid_t) -> ChildState {
    let mut status: c_int = 0;
    // SAFETY: waitpid writes only the status we pass.
    let pid = unsafe { libc::waitpid(child, &raw mut status, libc::WNOHANG | libc::WUNTRACED) };
    if pid != child {
        return ChildState::Running;
    }
    if libc::WIFSTOPPED(status) {
        ChildState::Stopped
    } else if libc::WIFSIGNALED(status) {
        ChildState::Killed(libc::WTERMSIG(status))
    } else {
        ChildState::Exited(super::process::exit_status(status))
    }
}

/// Stops this process (SIGSTOP cannot be blocked) until someone continues it.
pub fn stop_self() {
    // SAFETY: raise(2) on this process.
    unsafe { libc::raise(libc::SIGSTOP) };
}

/// Sets `O_NONBLOCK` on `fd`.
pub fn nonblocking(fd: impl AsFd) -> Result<(), Errno> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let fd = fd.as_fd();
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map(drop)
}

/// In the program's child: a process group of its own, made the terminal's foreground (SIGTTOU
/// is blocked here, so a background group may do that).
pub fn lead_foreground(tty: Option<RawFd>) {
    // SAFETY: setpgid on this process.
    unsafe { libc::setpgid(0, 0) };
    // SAFETY: getpid has no preconditions.
    give_foreground(tty, unsafe { libc::getpid() });
}

/// Makes the process group `pgrp` the foreground of the terminal on `tty`.
pub fn give_foreground(tty: Option<RawFd>, pgrp: libc::pid_t) {
    if let Some(fd) = tty {
        // SAFETY: tcsetpgrp on a standard descriptor; a failure leaves things as they were.
        unsafe { libc::tcsetpgrp(fd, pgrp) };
    }
}
