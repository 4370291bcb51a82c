//! Old kernels and old seccomp profiles, simulated for one command: a filter, installed in the
//! child just before exec, that answers chosen system calls with an errno (ENOSYS as a kernel
//! without the call does, EPERM as a profile that predates it does) and lets everything else
//! through. Every process the command starts inherits it.

use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::libc;

/// `SECCOMP_RET_ERRNO` | errno, and `SECCOMP_RET_ALLOW`.
const RET_ERRNO: u32 = 0x0005_0000;
const RET_ALLOW: u32 = 0x7fff_0000;

#[cfg(target_arch = "x86_64")]
const NATIVE: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
const NATIVE: u32 = 0xc000_00b7;

#[allow(clippy::cast_possible_truncation)] // the BPF codes are below 0x100
fn insn(code: u32, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// Makes `cmd` run with the system calls of `answers` failing with their errno.
#[allow(dead_code)] // not every test binary simulates an old kernel
pub fn answer<'c>(cmd: &'c mut Command, answers: &[(libc::c_long, i32)]) -> &'c mut Command {
    let all: Vec<Answer> = answers.iter().map(|&(nr, e)| (nr, None, e)).collect();
    answer_if(cmd, &all)
}

/// One call answered with an errno: its number, the value the low 32 bits of one argument
/// (by index) must have for the answer to apply, if any, and the errno.
pub type Answer = (libc::c_long, Option<(u32, u32)>, i32);

/// Makes `cmd` run with the calls of `answers` failing with their errno when their argument
/// matches; the same call with other arguments goes through.
#[allow(dead_code)] // not every test binary answers by argument
pub fn answer_if<'c>(cmd: &'c mut Command, answers: &[Answer]) -> &'c mut Command {
    let ld = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let jeq = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let ret = libc::BPF_RET | libc::BPF_K;
    // seccomp_data: nr at 0, arch at 4, the six u64 arguments from 16 (the low word first on
    // both architectures, which are little-endian). Another architecture's calls are let
    // through: this simulates a kernel, it guards nothing.
    const { assert!(cfg!(target_endian = "little")) };
    let mut f = vec![
        insn(ld, 0, 0, 4),
        insn(jeq, 1, 0, NATIVE),
        insn(ret, 0, 0, RET_ALLOW),
        insn(ld, 0, 0, 0),
    ];
    for &(nr, arg, errno) in answers {
        let nr = u32::try_from(nr).expect("a syscall number");
        let errno = u32::try_from(errno).expect("an errno");
        match arg {
            None => {
                f.push(insn(jeq, 0, 1, nr));
                f.push(insn(ret, 0, 0, RET_ERRNO | errno));
            }
            // Not this call: past the four that follow. Not this value: reload the number.
            Some((index, value)) => {
                f.push(insn(jeq, 0, 4, nr));
                f.push(insn(ld, 0, 0, 16 + 8 * index));
                f.push(insn(jeq, 0, 1, value));
                f.push(insn(ret, 0, 0, RET_ERRNO | errno));
                f.push(insn(ld, 0, 0, 0));
            }
        }
    }
    f.push(insn(ret, 0, 0, RET_ALLOW));
    // SAFETY: between fork and exec the child only makes two prctl calls on memory it owns (the
    // filter, moved into the closure); nothing allocates or takes a lock.
    unsafe {
        cmd.pre_exec(move || {
            let prog = libc::sock_fprog {
                len: u16::try_from(f.len()).expect("a short filter"),
                filter: f.as_ptr().cast_mut(),
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &raw const prog,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// A call stopped before the kernel runs it: the process that made it, and the path it names.
pub struct Paused {
    pub pid: u32,
    pub path: Vec<u8>,
}

/// What becomes of a held call.
#[allow(dead_code)] // not every test binary pauses calls
pub enum Then {
    /// Not the call looked for: it runs.
    Pass,
    /// Acted on (the tree changed meanwhile): it runs now.
    Run,
    /// Acted on: it fails with this errno, and the kernel never runs it.
    Fail(i32),
}

/// `_IOWR('!', 0, struct seccomp_notif)` and `_IOWR('!', 1, struct seccomp_notif_resp)`: the
/// same numbers on x86_64 and aarch64.
const NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const NOTIF_SEND: libc::c_ulong = 0xc018_2101;

/// Makes every `openat` with exactly `flags` that `cmd` (or anything it starts) makes stop until
/// `on` has seen it, then go on as `on` answers: a race won at that instant, every time, or one
/// call failed among many alike. The returned thread ends when no process of the command is
/// left and gives how many calls `on` acted on. The kernel must have seccomp user notification with
/// `SECCOMP_USER_NOTIF_FLAG_CONTINUE` and the hang-up when unused (Linux 5.8).
#[allow(dead_code)] // not every test binary pauses calls
pub fn pause_openat(
    cmd: &mut Command,
    flags: libc::c_int,
    mut on: impl FnMut(&Paused) -> Then + Send + 'static,
) -> std::thread::JoinHandle<usize> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let (mine, theirs) = pair();
    let ld = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let jeq = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let ret = libc::BPF_RET | libc::BPF_K;
    let openat = u32::try_from(libc::SYS_openat).expect("a syscall number");
    let flags = u32::try_from(flags).expect("open flags");
    // seccomp_data: nr at 0, arch at 4, the third argument's low word at 32.
    let f = [
        insn(ld, 0, 0, 4),
        insn(jeq, 0, 5, NATIVE),
        insn(ld, 0, 0, 0),
        insn(jeq, 0, 3, openat),
        insn(ld, 0, 0, 32),
        insn(jeq, 0, 1, flags),
        insn(ret, 0, 0, libc::SECCOMP_RET_USER_NOTIF),
        insn(ret, 0, 0, RET_ALLOW),
    ];
    let sock = theirs.as_raw_fd();
    // SAFETY: between fork and exec the child makes plain calls on memory it owns (the filter
    // and a buffer on its stack); nothing allocates or takes a lock.
    unsafe {
        cmd.pre_exec(move || {
            let _keep = &theirs;
            let prog = libc::sock_fprog {
                len: u16::try_from(f.len()).expect("a short filter"),
                filter: f.as_ptr().cast_mut(),
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let listener = libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
                &raw const prog,
            );
            let Ok(listener) = libc::c_int::try_from(listener) else {
                return Err(std::io::Error::last_os_error());
            };
            if listener < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let sent = send_fd(sock, listener);
            libc::close(listener);
            sent
        });
    }
    std::thread::spawn(move || {
        // The child's end closes with the command: no listener then, and nothing to serve.
        let Some(listener) = receive_fd(mine.as_raw_fd()) else {
            return 0;
        };
        // SAFETY: a descriptor just received, owned by nothing else.
        let listener = unsafe { OwnedFd::from_raw_fd(listener) };
        serve(listener.as_raw_fd(), &mut on)
    })
}

fn pair() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: socketpair writes the two descriptors it creates into the array.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    assert_eq!(rc, 0, "socketpair: {}", std::io::Error::last_os_error());
    // SAFETY: both are new descriptors, each owned once.
    unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    }
}

/// Room for one descriptor's control message (`CMSG_SPACE(4)` is 24 on 64-bit targets).
#[repr(C, align(8))]
struct Control([u8; 32]);

/// A message of the one byte `iov` points at and `control`, of which `len` bytes are in use.
fn one_byte_msg(iov: &mut libc::iovec, control: &mut Control, len: usize) -> libc::msghdr {
    // SAFETY: msghdr is plain data, for which all zeroes is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = len as _;
    msg
}

/// Sends `fd` over `sock` (SCM_RIGHTS). Async-signal-safe: no allocation.
unsafe fn send_fd(sock: libc::c_int, fd: libc::c_int) -> std::io::Result<()> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut control = Control([0; 32]);
    // SAFETY: every pointer in the message outlives the call; the control message fits.
    unsafe {
        let msg = one_byte_msg(&mut iov, &mut control, libc::CMSG_SPACE(4) as usize);
        let c = libc::CMSG_FIRSTHDR(&raw const msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(4) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>(), fd);
        if libc::sendmsg(sock, &raw const msg, 0) != 1 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The descriptor sent over `sock`, or None once the other end is closed without one.
fn receive_fd(sock: libc::c_int) -> Option<libc::c_int> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut control = Control([0; 32]);
    let mut msg = one_byte_msg(&mut iov, &mut control, std::mem::size_of::<Control>());
    // SAFETY: recvmsg writes only into the buffers given, which outlive the call.
    unsafe {
        if libc::recvmsg(sock, &raw mut msg, libc::MSG_CMSG_CLOEXEC) != 1 {
            return None;
        }
        let c = libc::CMSG_FIRSTHDR(&raw const msg);
        if c.is_null() || (*c).cmsg_type != libc::SCM_RIGHTS {
            return None;
        }
        Some(std::ptr::read_unaligned(
            libc::CMSG_DATA(c).cast::<libc::c_int>(),
        ))
    }
}

/// Answers every notification on `listener` until no process uses the filter, as `on` says.
/// Returns how many `on` acted on.
fn serve(listener: libc::c_int, on: &mut impl FnMut(&Paused) -> Then) -> usize {
    let mut acted = 0;
    loop {
        let mut p = libc::pollfd {
            fd: listener,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd, ours.
        let n = unsafe { libc::poll(&raw mut p, 1, -1) };
        if n < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            panic!("poll on the listener: {}", std::io::Error::last_os_error());
        }
        if p.revents & libc::POLLIN == 0 {
            return acted; // POLLHUP: the command and all it started have ended
        }
        // SAFETY: the kernel wants a zeroed struct and writes only into it.
        let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        if unsafe { libc::ioctl(listener, NOTIF_RECV as _, &raw mut req) } != 0 {
            continue; // the caller was killed while it waited
        }
        let paused = Paused {
            pid: req.pid,
            path: read_path(req.pid, req.data.args[1]),
        };
        let then = on(&paused);
        if !matches!(then, Then::Pass) {
            acted += 1;
        }
        let (error, flags) = match then {
            Then::Fail(errno) => (-errno, 0),
            Then::Pass | Then::Run => (
                0,
                u32::try_from(libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE).unwrap(),
            ),
        };
        let resp = libc::seccomp_notif_resp {
            id: req.id,
            val: 0,
            error,
            flags,
        };
        // SAFETY: the kernel reads only the struct given. An id no longer valid (the caller
        // was killed meanwhile) is answered ENOENT, which changes nothing here.
        unsafe { libc::ioctl(listener, NOTIF_SEND as _, &raw const resp) };
    }
}

/// The NUL-terminated path at `addr` in process `pid` (at most 4096 bytes), read as root can.
fn read_path(pid: u32, addr: u64) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let Ok(mem) = std::fs::File::open(format!("/proc/{pid}/mem")) else {
        return Vec::new();
    };
    let mut path = Vec::new();
    let mut at = addr;
    // A page at a time: the next one may not be mapped.
    while path.len() < 4096 {
        let mut page = vec![0u8; usize::try_from(4096 - at % 4096).unwrap()];
        let Ok(n) = mem.read_at(&mut page, at) else {
            break;
        };
        if let Some(end) = page[..n].iter().position(|&b| b == 0) {
            path.extend_from_slice(&page[..end]);
            break;
        }
        path.extend_from_slice(&page[..n]);
        if n == 0 {
            break;
        }
        at += n as u64;
    }
    path
}
