//! What the dropped program must not inherit from root's session: open descriptors, the
//! power to raise its privileges again, and (as a second wall) the ability to push input into
//! a terminal.
//!
//! The first wall against root's terminal is the relay (see `crate::relay`): the program never
//! gets root's terminal, and without a controlling terminal the kernel refuses TIOCSTI anyway.
//! Where the program does get a terminal (its own pty, or the container's console for the main
//! program), a seccomp filter inherited by every descendant also denies `ioctl` TIOCSTI and
//! TIOCLINUX (the selection paste of a virtual console) with EPERM, in case a terminal of
//! someone else's ever reaches it. It is installed only there: it costs the kernel a JIT
//! compile and a deferred free, about 0.1 ms, and its probe a fork, which an exec with no
//! terminal (`docker exec c hermes …` without `-t`, every scripted call) need not pay.
//! `PR_SET_NO_NEW_PRIVS`, which the filter needs, is set for every drop: setuid programs then
//! cannot raise the agent.
//!
//! A filter that cannot judge the calls it sees must never reach the program: this binary's
//! architecture under a translator that passes prctl through to a kernel of another one
//! (Rosetta- or FEX-style) would be killed at its first call, and qemu-user answers success
//! and installs nothing. So the filter is first tried in a throwaway child ([`probe`], still
//! root's, before the drop), and only a filter shown in force there ([`Proven`]) can be
//! installed.

use nix::errno::Errno;
use nix::libc;

mod bpf;

pub use bpf::{Arch, HOST, Insn, filter};

/// `struct sock_fprog`.
#[repr(C)]
struct Prog {
    len: u16,
    filter: *const Insn,
}

/// `PR_SET_NO_NEW_PRIVS`: no setuid or setcap program started from here on gains anything.
pub fn no_new_privs() -> Result<(), Errno> {
    // SAFETY: prctl with integer arguments only.
    Errno::result(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }).map(drop)
}

/// Installs `program` for this process and all it will start (`no_new_privs` must be set).
fn install(program: &[Insn]) -> Result<(), Errno> {
    let prog = Prog {
        len: u16::try_from(program.len()).map_err(|_| Errno::E2BIG)?,
        filter: program.as_ptr(),
    };
    // SAFETY: `prog` points at `program`, `len` instructions laid out as the kernel's struct
    // sock_filter, alive until this call returns; the kernel copies it before returning.
    Errno::result(unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &raw const prog,
            0,
            0,
        )
    })
    .map(drop)
}

/// Why the terminal filter cannot be in force here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotInForce {
    /// Installing it failed (a seccomp profile or a kernel without seccomp filters).
    Refused(Errno),
    /// Installed, it killed the probe at its first call: it cannot judge the calls of this
    /// system (this binary under a translator, on a kernel of another architecture).
    Kills(i32),
    /// Installing it "succeeded" but nothing judges the calls (qemu-user ignores
    /// `PR_SET_SECCOMP`; or another layer answered for prctl).
    Ignored,
    /// The probe itself could not be run or ended in a way it never does.
    Unknown(Errno),
}

impl std::fmt::Display for NotInForce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotInForce::Refused(e) => write!(f, "installing it failed: {e}"),
            NotInForce::Kills(sig) => write!(
                f,
                "it killed a test process (signal {sig}): this system's calls are not {}'s",
                std::env::consts::ARCH
            ),
            NotInForce::Ignored => {
                f.write_str("the kernel reported it installed, yet it judges nothing")
            }
            NotInForce::Unknown(e) => write!(f, "it could not be tried: {e}"),
        }
    }
}

/// The terminal filter for one architecture, shown in force here by [`probe`]: the only form
/// in which it can be installed, so that a filter that would kill the program never is.
pub struct Proven(Vec<Insn>);

/// How the probe's child reports back: its exit code (a signal speaks for itself).
const HELD: i32 = 0;
const IGNORED: i32 = 1;
/// Installing failed with errno `REFUSED + errno` (errno values stay below 155).
const REFUSED: i32 = 100;

/// Tries the filter for `arch` in a throwaway child: sets `no_new_privs` there, installs the
/// filter, makes two harmless calls it judges (`ioctl` on no descriptor at all, with an allowed
/// request and with TIOCSTI), and checks that the kernel reports a filter (`Seccomp: 2`) and
/// that TIOCSTI was answered by the filter (EPERM) rather than by the kernel (EBADF). Called
/// before the drop, so that the child is root's: the target user can neither signal it (a
/// killed probe would leave the filter out) nor trace it.
pub fn probe(arch: &Arch) -> Result<Proven, NotInForce> {
    let program = filter(arch);
    // An ignored SIGCHLD (it survives exec) would have the kernel reap the child unasked, and
    // the wait below fail with ECHILD: the default disposition for the probe's life.
    let sigchld = ChildSignal::default_for_now();
    let child = match super::process::fork().map_err(NotInForce::Unknown)? {
        super::process::Forked::Child => super::process::exit_now(probe_child(&program)),
        super::process::Forked::Parent(pid) => pid,
    };
    let status = loop {
        let mut status: libc::c_int = 0;
        // SAFETY: waitpid writes only the status we pass, for the child we forked.
        match Errno::result(unsafe { libc::waitpid(child, &raw mut status, 0) }) {
            Ok(_) => break status,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(NotInForce::Unknown(e)),
        }
    };
    drop(sigchld);
    if libc::WIFSIGNALED(status) {
        return Err(NotInForce::Kills(libc::WTERMSIG(status)));
    }
    match libc::WEXITSTATUS(status) {
        HELD => Ok(Proven(program)),
        IGNORED => Err(NotInForce::Ignored),
        e if e > REFUSED => Err(NotInForce::Refused(Errno::from_raw(e - REFUSED))),
        _ => Err(NotInForce::Unknown(Errno::UnknownErrno)),
    }
}

/// SIGCHLD's disposition, set to the default until dropped, then put back.
struct ChildSignal(Option<libc::sigaction>);

impl ChildSignal {
    fn default_for_now() -> ChildSignal {
        // SAFETY: sigaction reads and writes only the structs we pass; SIG_DFL runs no code.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGCHLD, std::ptr::null(), &raw mut old) != 0
                || old.sa_sigaction != libc::SIG_IGN
            {
                return ChildSignal(None);
            }
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(libc::SIGCHLD, &raw const dfl, std::ptr::null_mut());
            ChildSignal(Some(old))
        }
    }
}

impl Drop for ChildSignal {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            // SAFETY: puts back the disposition read above.
            unsafe { libc::sigaction(libc::SIGCHLD, old, std::ptr::null_mut()) };
        }
    }
}

/// The probe's child: the exit code that says how the filter did.
fn probe_child(program: &[Insn]) -> u8 {
    // A killed probe must leave no core file behind (in a working directory the user may
    // share with root, or for a core handler to pick up).
    // SAFETY: prctl and setrlimit with plain values; they only lower this process's limits.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
        let none = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &raw const none);
    }
    let code = match no_new_privs().and_then(|()| install(program)) {
        Err(e) => REFUSED + (e as i32).min(155),
        Ok(()) if in_force() => HELD,
        Ok(()) => IGNORED,
    };
    u8::try_from(code).unwrap_or(u8::MAX)
}

/// Whether the terminal filter judges this process's calls (see [`probe`]).
fn in_force() -> bool {
    // SAFETY: ioctl on descriptor -1 touches no memory: the kernel answers EBADF unless a
    // filter answers first. TCGETS is allowed (the kernel answers); TIOCSTI is the filter's.
    let allowed =
        unsafe { libc::ioctl(-1, libc::TCGETS, 0) } == -1 && Errno::last() == Errno::EBADF;
    // SAFETY: as above.
    let denied =
        unsafe { libc::ioctl(-1, libc::TIOCSTI, 0) } == -1 && Errno::last() == Errno::EPERM;
    let reported = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.split_whitespace().eq(["Seccomp:", "2"]))
    });
    allowed && denied && reported
}

/// Sets `PR_SET_NO_NEW_PRIVS` and installs the proven terminal filter, for this process and
/// all it will start.
pub fn deny_terminal_injection(filter: &Proven) -> Result<(), Errno> {
    no_new_privs()?;
    install(&filter.0)
}

/// Closes every descriptor above 2: `close_range`(2), else one by one as /proc/self/fd lists
/// them.
pub fn close_above_stderr() -> Result<(), Errno> {
    // SAFETY: close_range only closes descriptors; none above 2 is in use by this process.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    // Any failure falls back, whatever its errno: ENOSYS before Linux 5.9, EPERM from Docker
    // 20.10.0–20.10.4's default seccomp profile and the containers-common profiles of early
    // 2021, and whatever errno another profile was written to answer (EACCES, ENOSYS, …). The
    // loop below needs only open, getdents and close, which every profile allows.
    if Errno::result(rc).is_ok() {
        return Ok(());
    }
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: closing a descriptor number; the directory stream that listed it is gone,
        // and EBADF (that stream's own fd) is harmless.
        unsafe { libc::close(fd) };
    }
    Ok(())
}

/// Whether `close_range`(2) works here, asked without closing anything (for `doctor`).
pub fn close_range_works() -> Result<(), Errno> {
    // SAFETY: the range is the one descriptor number no descriptor table reaches: nothing is
    // closed, and the kernel (or a seccomp profile) still answers as it would for a real range.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, u32::MAX, u32::MAX, 0u32) };
    Errno::result(rc).map(drop)
}

/// Seccomp rules for other modules' tests, as an engine's profile would install them.
#[cfg(test)]
pub mod tests_support {
    use super::Insn;
    use super::bpf::{ALLOW, NR, jeq, ld, ret};

    /// `ret` for syscall `nr`, everything else allowed.
    pub fn answer(nr: u32, verdict: u32) -> Vec<Insn> {
        vec![ld(NR), jeq(nr, 0, 1), ret(verdict), ret(ALLOW)]
    }

    pub fn install(program: &[Insn]) -> Result<(), nix::errno::Errno> {
        super::install(program)
    }
}

#[cfg(test)]
// libc's ioctl request type is u64 with glibc and i32 with musl: the casts are not the same
// type everywhere.
#[allow(clippy::unnecessary_cast)]
mod tests {
    use super::bpf::{ALLOW, NR, jeq, ld, ret};
    use super::*;

    /// The other architecture's constants: what this binary would meet under a translator.
    #[cfg(target_arch = "x86_64")]
    const FOREIGN: Arch = super::bpf::AARCH64;
    #[cfg(target_arch = "aarch64")]
    const FOREIGN: Arch = super::bpf::X86_64;

    /// How a forked child ended: its exit code, or the signal that killed it (negated).
    fn in_child(f: impl FnOnce() -> u8) -> i32 {
        match super::super::process::fork().expect("fork") {
            super::super::process::Forked::Child => super::super::process::exit_now(f()),
            super::super::process::Forked::Parent(pid) => {
                let mut status = 0;
                // SAFETY: waitpid writes only the status we pass, for the child we forked.
                assert_eq!(unsafe { libc::waitpid(pid, &raw mut status, 0) }, pid);
                if libc::WIFSIGNALED(status) {
                    -libc::WTERMSIG(status)
                } else {
                    libc::WEXITSTATUS(status)
                }
            }
        }
    }

    /// A seccomp profile's rule, as an engine would install one: `ret` for syscall `nr` (with
    /// first argument `arg0`, if given), everything else allowed.
    fn profile(nr: libc::c_long, arg0: Option<u32>, ret: u32) -> Vec<Insn> {
        let nr = u32::try_from(nr).unwrap();
        let mut f = vec![ld(NR)];
        match arg0 {
            None => f.extend([jeq(nr, 0, 1), ret_k(ret)]),
            Some(a) => f.extend([jeq(nr, 0, 3), ld(16), jeq(a, 0, 1), ret_k(ret)]),
        }
        f.push(ret_k(ALLOW));
        f
    }

    fn ret_k(k: u32) -> Insn {
        ret(k)
    }

    fn errno_ret(e: Errno) -> u32 {
        0x0005_0000 | u32::try_from(e as i32).unwrap()
    }

    fn is_open(fd: i32) -> bool {
        // SAFETY: F_GETFD only asks whether the descriptor is open.
        unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
    }

    #[test]
    fn descriptors_above_2_are_closed_whatever_errno_close_range_answers() {
        // What kernels and seccomp profiles answer for close_range: ENOSYS before 5.9, EPERM in
        // Docker 20.10.0-20.10.4's default profile, and what other profiles chose.
        for e in [
            Errno::EPERM,
            Errno::ENOSYS,
            Errno::EACCES,
            Errno::EINVAL,
            Errno::EFAULT,
        ] {
            let code = in_child(|| {
                // SAFETY: dup2 onto descriptor numbers this child owns from now on.
                let planted = [5, 9, 200].map(|fd| unsafe { libc::dup2(0, fd) });
                if planted != [5, 9, 200] {
                    return 10;
                }
                let ok = no_new_privs().is_ok()
                    && install(&profile(libc::SYS_close_range, None, errno_ret(e))).is_ok();
                if !ok {
                    return 11;
                }
                // SAFETY: close_range only closes descriptors; 1000 and 1001 were never opened
                // here: only the answer counts.
                let answered = Errno::result(unsafe {
                    libc::syscall(libc::SYS_close_range, 1000u32, 1001u32, 0u32)
                });
                if answered != Err(e) {
                    return 12;
                }
                match close_above_stderr() {
                    Err(_) => 13,
                    Ok(()) if [5, 9, 200].iter().any(|fd| is_open(*fd)) => 14,
                    Ok(()) if !(0..=2).all(is_open) => 15,
                    Ok(()) => 0,
                }
            });
            assert_eq!(code, 0, "close_range answered {e}");
        }
    }

    #[test]
    fn the_probe_passes_the_hosts_filter_and_it_is_installed() {
        let code = in_child(|| {
            let Ok(proven) = probe(&HOST) else {
                return 10;
            };
            // The probe installed nothing here.
            if in_force() {
                return 11;
            }
            match deny_terminal_injection(&proven) {
                Ok(()) if in_force() => 0,
                _ => 12,
            }
        });
        assert_eq!(code, 0);
    }

    #[test]
    fn the_probe_works_with_sigchld_ignored_and_leaves_it_so() {
        let code = in_child(|| {
            // SAFETY: ignoring a signal runs no code.
            unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
            let held = probe(&HOST).is_ok();
            // SAFETY: reading the disposition (and setting the same again).
            let now = unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
            match (held, now == libc::SIG_IGN) {
                (true, true) => 0,
                (true, false) => 10,
                (false, _) => 11,
            }
        });
        assert_eq!(code, 0);
    }

    #[test]
    fn a_filter_for_another_architecture_is_refused_and_the_program_still_runs() {
        // The same filter, installed as it is, kills at the first call: the test would prove
        // nothing otherwise.
        let killed = in_child(|| {
            let _ = no_new_privs();
            let _ = install(&filter(&FOREIGN));
            0
        });
        assert_eq!(
            killed,
            -libc::SIGSYS,
            "control: the foreign filter does not kill"
        );
        let code = in_child(|| {
            match probe(&FOREIGN) {
                Err(NotInForce::Kills(libc::SIGSYS)) => {}
                Err(_) => return 10,
                Ok(_) => return 11,
            }
            // Still running, and able to exec: nothing was installed.
            let e = super::super::exec(c"/bin/true", &[c"true".to_owned()], &[c"PATH=/bin"]);
            u8::try_from(20 + (e as i32).min(200)).unwrap_or(u8::MAX)
        });
        assert_eq!(code, 0, "the program ran (20+errno: exec failed)");
    }

    #[test]
    fn a_prctl_that_answers_without_installing_is_found_out() {
        // qemu-user: PR_SET_SECCOMP answers 0 and installs nothing. A profile that answers errno
        // 0 for it does the same here.
        let set_seccomp = u32::try_from(libc::PR_SET_SECCOMP).unwrap();
        let code = in_child(|| {
            let _ = no_new_privs();
            if install(&profile(
                libc::SYS_prctl,
                Some(set_seccomp),
                errno_ret_zero(),
            ))
            .is_err()
            {
                return 10;
            }
            match probe(&HOST) {
                Err(NotInForce::Ignored) if !in_force() => 0,
                _ => 11,
            }
        });
        assert_eq!(code, 0);
        // A profile that refuses it: said, not fatal.
        let code = in_child(|| {
            let _ = no_new_privs();
            let refuse = profile(libc::SYS_prctl, Some(set_seccomp), errno_ret(Errno::EACCES));
            if install(&refuse).is_err() {
                return 10;
            }
            match probe(&HOST) {
                Err(NotInForce::Refused(Errno::EACCES)) => 0,
                _ => 11,
            }
        });
        assert_eq!(code, 0);
    }

    #[test]
    fn an_eperm_the_kernel_gives_for_a_real_descriptor_does_not_pass_for_the_filter() {
        // The probe's calls name no descriptor, so only a filter can answer them with anything
        // but EBADF. On a real one the kernel itself answers TIOCSTI with EPERM (a terminal that
        // is not the caller's, without CAP_SYS_ADMIN): a filter never installed would pass for
        // one in force. Here a rule stands for that kernel on 0, 1 and 2, and PR_SET_SECCOMP
        // answers 0 without installing, as under qemu-user.
        let ioctl = u32::try_from(libc::SYS_ioctl).unwrap();
        let tiocsti = u32::try_from(libc::TIOCSTI).unwrap();
        let kernel = vec![
            ld(NR),
            jeq(ioctl, 0, 7),
            ld(24),
            jeq(tiocsti, 0, 5),
            ld(16),
            jeq(0, 2, 0),
            jeq(1, 1, 0),
            jeq(2, 0, 1),
            ret(errno_ret(Errno::EPERM)),
            ret(ALLOW),
        ];
        let set_seccomp = u32::try_from(libc::PR_SET_SECCOMP).unwrap();
        let code = in_child(|| {
            let _ = no_new_privs();
            let fake = profile(libc::SYS_prctl, Some(set_seccomp), errno_ret_zero());
            if install(&kernel).is_err() || install(&fake).is_err() {
                return 10;
            }
            for fd in 0..3 {
                // SAFETY: the stand-in answers before the kernel would read the argument.
                let rc = unsafe { libc::ioctl(fd, libc::TIOCSTI, 0) };
                if rc != -1 || Errno::last() != Errno::EPERM {
                    return 12; // control: the stand-in does not answer as that kernel would
                }
            }
            match probe(&HOST) {
                Err(NotInForce::Ignored) => 0,
                _ => 11,
            }
        });
        assert_eq!(
            code, 0,
            "12: control failed; 11: the probe took the kernel's EPERM"
        );
    }

    fn errno_ret_zero() -> u32 {
        0x0005_0000
    }
}
