//! Every call that changes ids, execs, opens by file descriptor, stats or chowns.
//!
//! The rest of the crate forbids `unsafe`; the few raw calls that nix does not wrap
//! (`statx`, `getdents64`, resetting a signal disposition) live here, each with its reason.
//! Id changes sit behind [`Privileges`] so the drop sequence can be tested with a recording
//! double while root integration tests prove the real calls.

pub mod envdir;
pub mod fs;
pub mod gidscan;
pub mod guard;
pub mod process;
pub mod pty;

use std::ffi::{CStr, CString};

use nix::errno::Errno;
use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal};
use nix::unistd::{self, Gid, Uid};

/// The process's ids as the kernel reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    pub ruid: u32,
    pub euid: u32,
    pub suid: u32,
    pub rgid: u32,
    pub egid: u32,
    pub sgid: u32,
    /// Supplementary groups, sorted (the kernel keeps them sorted; we sort again to be sure).
    pub groups: Vec<u32>,
}

/// The id-changing calls of a privilege drop.
pub trait Privileges {
    /// setgroups(2).
    fn set_groups(&mut self, groups: &[u32]) -> Result<(), Errno>;
    /// setresgid(gid, gid, gid).
    fn set_gid(&mut self, gid: u32) -> Result<(), Errno>;
    /// setresuid(uid, uid, uid).
    fn set_uid(&mut self, uid: u32) -> Result<(), Errno>;
    /// getresuid, getresgid and getgroups.
    fn current(&self) -> Result<Ids, Errno>;
    /// setuid(0); succeeding here means the drop did not hold.
    fn regain_root(&mut self) -> Result<(), Errno>;
    /// Effective and permitted capability sets, or-ed together (capget); 0 after a real drop.
    fn capabilities(&self) -> Result<u64, Errno>;
    /// Closes every descriptor above 2, so nothing root opened reaches the program.
    fn close_fds(&mut self) -> Result<(), Errno>;
    /// `PR_SET_NO_NEW_PRIVS`: nothing the program starts can gain privileges.
    fn no_new_privs(&mut self) -> Result<(), Errno>;
    /// The seccomp filter that keeps the program (and everything it starts) from pushing input
    /// into a terminal ([`guard`]), once shown in force here.
    type Filter;
    /// Tries that filter in a throwaway child ([`guard::probe`]).
    fn probe_terminal(&mut self) -> Result<Self::Filter, guard::NotInForce>;
    /// `PR_SET_NO_NEW_PRIVS` and `filter`, for this process and all it will start.
    fn guard_terminal(&mut self, filter: &Self::Filter) -> Result<(), Errno>;
}

/// The real calls.
pub struct Linux;

impl Privileges for Linux {
    fn set_groups(&mut self, groups: &[u32]) -> Result<(), Errno> {
        let gids: Vec<Gid> = groups.iter().map(|g| Gid::from_raw(*g)).collect();
        unistd::setgroups(&gids)
    }
    fn set_gid(&mut self, gid: u32) -> Result<(), Errno> {
        let g = Gid::from_raw(gid);
        unistd::setresgid(g, g, g)
    }
    fn set_uid(&mut self, uid: u32) -> Result<(), Errno> {
        let u = Uid::from_raw(uid);
        unistd::setresuid(u, u, u)
    }
    fn current(&self) -> Result<Ids, Errno> {
        let u = unistd::getresuid()?;
        let g = unistd::getresgid()?;
        let mut groups = groups()?;
        groups.sort_unstable();
        groups.dedup();
        Ok(Ids {
            ruid: u.real.as_raw(),
            euid: u.effective.as_raw(),
            suid: u.saved.as_raw(),
            rgid: g.real.as_raw(),
            egid: g.effective.as_raw(),
            sgid: g.saved.as_raw(),
            groups,
        })
    }
    fn regain_root(&mut self) -> Result<(), Errno> {
        unistd::setuid(Uid::from_raw(0))
    }
    fn capabilities(&self) -> Result<u64, Errno> {
        // struct __user_cap_header_struct / __user_cap_data_struct (linux/capability.h), version 3:
        // two data records, low and high 32 bits of each set.
        #[repr(C)]
        struct Header {
            version: u32,
            pid: i32,
        }
        #[repr(C)]
        #[derive(Clone, Copy, Default)]
        struct Data {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        const VERSION_3: u32 = 0x2008_0522;
        let mut header = Header {
            version: VERSION_3,
            pid: 0,
        };
        let mut data = [Data::default(); 2];
        // SAFETY: header and two data records are valid, writable and laid out as the kernel's.
        let rc =
            unsafe { nix::libc::syscall(nix::libc::SYS_capget, &mut header, data.as_mut_ptr()) };
        // A seccomp profile may answer for capget with any errno; the kernel reports the same
        // sets in /proc, which the check then reads instead. With neither, the drop refuses.
        if let Err(e) = Errno::result(rc) {
            return capabilities_in_proc().ok_or(e);
        }
        let set = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
        Ok(set(data[0].effective, data[1].effective) | set(data[0].permitted, data[1].permitted))
    }
    fn close_fds(&mut self) -> Result<(), Errno> {
        guard::close_above_stderr()
    }
    fn no_new_privs(&mut self) -> Result<(), Errno> {
        guard::no_new_privs()
    }
    type Filter = guard::Proven;
    fn probe_terminal(&mut self) -> Result<guard::Proven, guard::NotInForce> {
        guard::probe(&guard::HOST)
    }
    fn guard_terminal(&mut self, filter: &guard::Proven) -> Result<(), Errno> {
        guard::deny_terminal_injection(filter)
    }
}

/// The effective and permitted sets, or-ed together, as /proc reports them for this thread.
fn capabilities_in_proc() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/thread-self/status").ok()?;
    let set = |key: &str| {
        let hex = status
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))?;
        u64::from_str_radix(hex.trim(), 16).ok()
    };
    Some(set("CapEff")? | set("CapPrm")?)
}

/// Real and effective uid and gid of this process.
pub fn caller_ids() -> (u32, u32, u32, u32) {
    // getresuid and getresgid cannot fail for the calling process.
    let u = unistd::getresuid().expect("getresuid");
    let g = unistd::getresgid().expect("getresgid");
    (
        u.real.as_raw(),
        u.effective.as_raw(),
        g.real.as_raw(),
        g.effective.as_raw(),
    )
}

/// The real uid.
pub fn real_uid() -> u32 {
    unistd::getuid().as_raw()
}

/// The real, effective and saved gid of this process (getresgid).
pub fn gids() -> Result<(u32, u32, u32), Errno> {
    let g = unistd::getresgid()?;
    Ok((g.real.as_raw(), g.effective.as_raw(), g.saved.as_raw()))
}

/// The supplementary groups this process holds, in the kernel's order.
pub fn supplementary_groups() -> Result<Vec<u32>, Errno> {
    groups()
}

/// The supplementary groups. (nix's getgroups first reads `/proc/sys/kernel/ngroups_max`
/// through sysconf, three more syscalls on the shim's path; the count from the kernel will do.)
fn groups() -> Result<Vec<u32>, Errno> {
    // SAFETY: a size of 0 only asks for the count and writes nothing.
    let n = Errno::result(unsafe { nix::libc::getgroups(0, std::ptr::null_mut()) })?;
    let mut gids = vec![0; usize::try_from(n).unwrap_or_default()];
    // SAFETY: `gids` has room for n gids. Only another thread's setgroups could grow the list
    // between the two calls, and the kernel would then refuse with EINVAL: the shim drops and
    // verifies with no other thread.
    let m = Errno::result(unsafe { nix::libc::getgroups(n, gids.as_mut_ptr()) })?;
    gids.truncate(usize::try_from(m).unwrap_or_default());
    Ok(gids)
}

/// Gives the program we exec the signal state a shell would: SIGPIPE at its default (the Rust
/// runtime ignores it, and an ignored disposition survives exec) and nothing blocked.
pub fn reset_signals() -> Result<(), Errno> {
    // SAFETY: installing SIG_DFL runs no handler code; we are single-threaded at this point.
    unsafe { nix::sys::signal::signal(Signal::SIGPIPE, SigHandler::SigDfl) }?;
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
}

/// execve(2); returns only on failure.
pub fn exec<E: AsRef<CStr>>(path: &CStr, argv: &[CString], env: &[E]) -> Errno {
    match unistd::execve(path, argv, env) {
        Err(e) => e,
        Ok(never) => match never {},
    }
}

/// The environment this process was started with, borrowed from libc's `environ`: every entry,
/// in order, nothing copied (std's `vars_os` copies each variable and drops entries without
/// `=`). Valid while nothing changes the environment; nothing in this crate does (`set_var` is
/// unsafe, and unsafe code lives only in this module).
pub fn environ() -> Vec<&'static CStr> {
    unsafe extern "C" {
        static environ: *const *const std::ffi::c_char;
    }
    let mut vars = Vec::new();
    // SAFETY: libc keeps `environ` a NULL-terminated array of NUL-terminated strings, and we
    // only read it, single-threaded, before exec.
    unsafe {
        let mut p = environ;
        while !p.is_null() && !(*p).is_null() {
            vars.push(CStr::from_ptr(*p));
            p = p.add(1);
        }
    }
    vars
}

/// The errno an `io::Error` from a failed call carries (EIO if it carries none).
pub fn errno_of(e: &std::io::Error) -> Errno {
    e.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
}

/// For tests elsewhere in the crate: the calling thread keeps its permitted capabilities but
/// loses its effective ones, so root meets permission bits as any user does.
#[cfg(test)]
pub fn lose_effective_capabilities() -> Result<(), Errno> {
    tests::try_set_caps(
        0,
        tests::thread_caps("CapPrm"),
        tests::thread_caps("CapInh"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ids_and_groups_are_the_kernels() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let field = |key: &str| -> Vec<u32> {
            let line = status.lines().find_map(|l| l.strip_prefix(key)).unwrap();
            line.split_whitespace()
                .map(|n| n.parse().unwrap())
                .collect()
        };
        let (uid, gid) = (field("Uid:"), field("Gid:"));
        assert_eq!(caller_ids(), (uid[0], uid[1], gid[0], gid[1]));
        assert_eq!(real_uid(), uid[0]);
        let mut want = field("Groups:");
        let mut got = groups().unwrap();
        want.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, want);
    }

    /// A capability set of this thread, from `/proc/thread-self/status`.
    pub(super) fn thread_caps(key: &str) -> u64 {
        let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        let hex = status
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .unwrap();
        u64::from_str_radix(hex.trim(), 16).unwrap()
    }

    /// capset(2) for this thread: the effective, permitted and inheritable sets.
    fn set_caps(effective: u64, permitted: u64, inheritable: u64) {
        try_set_caps(effective, permitted, inheritable).expect("capset");
    }

    pub(super) fn try_set_caps(
        effective: u64,
        permitted: u64,
        inheritable: u64,
    ) -> Result<(), Errno> {
        #[repr(C)]
        struct Header {
            version: u32,
            pid: i32,
        }
        let mut header = Header {
            version: 0x2008_0522,
            pid: 0,
        };
        let half = |set: u64, i: u32| u32::try_from((set >> (32 * i)) & 0xffff_ffff).unwrap();
        let data: [[u32; 3]; 2] =
            [0, 1].map(|i| [half(effective, i), half(permitted, i), half(inheritable, i)]);
        // SAFETY: a version-3 header and two records of three u32 each, as capset(2) reads them.
        let rc =
            unsafe { nix::libc::syscall(nix::libc::SYS_capset, &raw mut header, data.as_ptr()) };
        Errno::result(rc).map(drop)
    }

    #[test]
    fn capabilities_are_the_effective_and_permitted_sets_of_this_thread() {
        if !crate::testing::root_or_skip(
            "capabilities_are_the_effective_and_permitted_sets_of_this_thread",
        ) {
            return;
        }
        // A thread of its own: capset changes the calling thread only, and this one then ends.
        std::thread::spawn(|| {
            let (effective, permitted) = (thread_caps("CapEff"), thread_caps("CapPrm"));
            assert_ne!(permitted, 0, "root holds no capability here");
            assert_eq!(Linux.capabilities(), Ok(effective | permitted));
            // A capability only permitted still counts: the program could make it effective.
            set_caps(0, permitted, thread_caps("CapInh"));
            assert_eq!(thread_caps("CapEff"), 0);
            assert_eq!(Linux.capabilities(), Ok(permitted));
            // The high half (capabilities 32 and up: CAP_MAC_ADMIN … CAP_CHECKPOINT_RESTORE)
            // must come through too; root holds some unless a container withheld them.
            let high = permitted & !0xffff_ffff;
            if high != 0 {
                set_caps(0, high, 0);
                assert_eq!(Linux.capabilities(), Ok(high));
            }
        })
        .join()
        .unwrap();
    }

    #[test]
    fn capabilities_are_read_from_proc_when_capget_is_refused() {
        if !crate::testing::root_or_skip("capabilities_are_read_from_proc_when_capget_is_refused") {
            return;
        }
        // A forked child: the seccomp filter stays with it. A rule as a profile would install
        // it: EPERM for capget, everything else allowed.
        let nr = u32::try_from(nix::libc::SYS_capget).unwrap();
        let rule = guard::tests_support::answer(nr, 0x0005_0000 | 1);
        match process::fork().unwrap() {
            process::Forked::Child => {
                let installed =
                    guard::no_new_privs().is_ok() && guard::tests_support::install(&rule).is_ok();
                let mut header = [0x2008_0522u32, 0];
                let mut data = [0u32; 6];
                // SAFETY: a version-3 header and two records of three u32 each.
                let refused = unsafe {
                    nix::libc::syscall(
                        nix::libc::SYS_capget,
                        header.as_mut_ptr(),
                        data.as_mut_ptr(),
                    )
                } == -1;
                // Only permitted, not effective: /proc's two sets differ, and both count.
                let lowered = lose_effective_capabilities().is_ok();
                let code = match Linux.capabilities() {
                    _ if !installed || !refused || !lowered => 10,
                    Ok(caps)
                        if caps == thread_caps("CapPrm")
                            && thread_caps("CapEff") == 0
                            && caps != 0 =>
                    {
                        0
                    }
                    _ => 11,
                };
                process::exit_now(code);
            }
            process::Forked::Parent(pid) => {
                let mut status = 0;
                // SAFETY: waitpid writes only the status we pass.
                assert_eq!(unsafe { nix::libc::waitpid(pid, &raw mut status, 0) }, pid);
                assert!(nix::libc::WIFEXITED(status), "{status:#x}");
                assert_eq!(nix::libc::WEXITSTATUS(status), 0);
            }
        }
    }
}
