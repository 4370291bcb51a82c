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
//! compile and a deferred free, about 0.1 ms, which an exec with no terminal (`docker exec c
//! hermes …` without `-t`, every scripted call) need not pay. `PR_SET_NO_NEW_PRIVS`, which the
//! filter needs, is set for every drop: setuid programs then cannot raise the agent.

use nix::errno::Errno;
use nix::libc;

/// One classic BPF instruction (`struct sock_filter`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

// libc gives the BPF codes as u32; each fits the instruction's u16 (they are below 0x100).
#[allow(clippy::cast_possible_truncation)]
const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
#[allow(clippy::cast_possible_truncation)]
const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
#[allow(clippy::cast_possible_truncation)]
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// Offsets in `struct seccomp_data`: nr, arch, then the instruction pointer and six u64 args.
const NR: u32 = 0;
const ARCH: u32 = 4;
/// ioctl's request is an `unsigned int`: the kernel reads only the low 32 bits of the argument,
/// so the filter must compare exactly those (the high half is whatever the caller left there;
/// comparing all 64 bits is how such filters have been bypassed).
#[cfg(target_endian = "little")]
const ARG1_LOW: u32 = 16 + 8;
#[cfg(target_endian = "big")]
const ARG1_LOW: u32 = 16 + 8 + 4;

/// The native architecture and its ioctl; the 32-bit compat one and its ioctl; and x32, which
/// reaches the kernel as the native architecture with bit 30 set in the syscall number.
#[cfg(target_arch = "x86_64")]
mod arch {
    pub const NATIVE: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
    pub const IOCTL: u32 = 16;
    pub const IOCTL_X32: u32 = 0x4000_0000 | 0x202; // __X32_SYSCALL_BIT | 514
    pub const COMPAT: u32 = 0x4000_0003; // AUDIT_ARCH_I386
    pub const IOCTL_COMPAT: u32 = 54;
}
#[cfg(target_arch = "aarch64")]
mod arch {
    pub const NATIVE: u32 = 0xc000_00b7; // AUDIT_ARCH_AARCH64
    pub const IOCTL: u32 = 29;
    pub const IOCTL_X32: u32 = IOCTL; // no such ABI: the same check twice
    pub const COMPAT: u32 = 0x4000_0028; // AUDIT_ARCH_ARM
    pub const IOCTL_COMPAT: u32 = 54;
}

pub const ALLOW: u32 = 0x7fff_0000; // SECCOMP_RET_ALLOW
pub const KILL_PROCESS: u32 = 0x8000_0000; // SECCOMP_RET_KILL_PROCESS
pub const DENY: u32 = 0x0005_0000 | libc::EPERM as u32; // SECCOMP_RET_ERRNO | EPERM

const fn ld(k: u32) -> Insn {
    Insn {
        code: LD_W_ABS,
        jt: 0,
        jf: 0,
        k,
    }
}
const fn jeq(k: u32, jt: u8, jf: u8) -> Insn {
    Insn {
        code: JEQ_K,
        jt,
        jf,
        k,
    }
}
const fn ret(k: u32) -> Insn {
    Insn {
        code: RET_K,
        jt: 0,
        jf: 0,
        k,
    }
}

/// The requests denied: pushing input into a terminal (TIOCSTI), and TIOCLINUX, whose
/// selection paste does the same on a virtual console.
// The request numbers fit in 32 bits (and the kernel reads only 32 of the argument).
#[allow(clippy::cast_possible_truncation)]
const DENIED: [u32; 2] = [libc::TIOCSTI as u32, libc::TIOCLINUX as u32];

/// The filter. Jumps are relative to the next instruction; the comments give the targets, with
/// `n` denied requests.
pub fn filter() -> Vec<Insn> {
    let denied = &DENIED;
    let n = denied.len();
    // Both fit: the lists above are a few entries long.
    let n8 = u8::try_from(n).expect("a short list");
    let mut f = vec![
        /* 0 */ ld(ARCH),
        /* 1 */ jeq(arch::NATIVE, 0, 4), // 2 | 6
        /* 2 */ ld(NR),
        /* 3 */ jeq(arch::IOCTL, 6, 0), // 10 | 4
        /* 4 */ jeq(arch::IOCTL_X32, 5, 0), // 10 | 5
        /* 5 */ ret(ALLOW),
        /* 6 */ jeq(arch::COMPAT, 0, n8 + 5), // 7 | 12 + n
        /* 7 */ ld(NR),
        /* 8 */ jeq(arch::IOCTL_COMPAT, 1, 0), // 10 | 9
        /* 9 */ ret(ALLOW),
        /* 10 */ ld(ARG1_LOW),
    ];
    for (i, req) in denied.iter().enumerate() {
        let i8 = u8::try_from(i).expect("a short list");
        /* 11 + i */
        f.push(jeq(*req, n8 - i8 + 1, 0)); // 13 + n | next
    }
    f.extend([
        /* 11 + n */ ret(ALLOW),
        // No other architecture can reach this kernel through this binary's syscalls; should one
        // appear, nothing it asks is judged, so nothing runs.
        /* 12 + n */
        ret(KILL_PROCESS),
        /* 13 + n */ ret(DENY),
    ]);
    debug_assert_eq!(f.len(), 14 + n);
    f
}

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

/// Sets `PR_SET_NO_NEW_PRIVS` and installs the filter, for this process and all it will start.
pub fn deny_terminal_injection() -> Result<(), Errno> {
    let program = filter();
    no_new_privs()?;
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

/// Closes every descriptor above 2: `close_range`(2) (Linux 5.9), else one by one as
/// /proc/self/fd lists them.
pub fn close_above_stderr() -> Result<(), Errno> {
    // SAFETY: close_range only closes descriptors; none above 2 is in use by this process.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    match Errno::result(rc) {
        Ok(_) => return Ok(()),
        Err(Errno::ENOSYS | Errno::EINVAL) => {}
        Err(e) => return Err(e),
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

#[cfg(test)]
// libc's ioctl request type is u64 with glibc and i32 with musl: the casts are not the same
// type everywhere.
#[allow(clippy::unnecessary_cast)]
mod tests {
    use super::*;

    /// Runs `filter` the way the kernel would over one `seccomp_data`.
    fn verdict(filter: &[Insn], arch: u32, nr: u32, arg1: u64) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_ne_bytes());
        data[4..8].copy_from_slice(&arch.to_ne_bytes());
        data[24..32].copy_from_slice(&arg1.to_ne_bytes());
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let i = filter[pc];
            pc += 1;
            match i.code {
                LD_W_ABS => {
                    let k = i.k as usize;
                    acc = u32::from_ne_bytes(data[k..k + 4].try_into().unwrap());
                }
                JEQ_K => pc += usize::from(if acc == i.k { i.jt } else { i.jf }),
                RET_K => return i.k,
                other => panic!("instruction {other:#x} not expected"),
            }
        }
    }

    const STI: u64 = libc::TIOCSTI as u64;
    const LINUX: u64 = libc::TIOCLINUX as u64;
    const SPGRP: u64 = libc::TIOCSPGRP as u64;
    const IOCTLS: [(u32, u32); 3] = [
        (arch::NATIVE, arch::IOCTL),
        (arch::NATIVE, arch::IOCTL_X32),
        (arch::COMPAT, arch::IOCTL_COMPAT),
    ];

    #[test]
    fn terminal_injection_is_denied_on_every_abi() {
        {
            let f = filter();
            for (arch, nr) in IOCTLS {
                for req in [STI, LINUX] {
                    assert_eq!(verdict(&f, arch, nr, req), DENY, "{arch:#x}/{nr} {req:#x}");
                    // Garbage in the high half must not hide the request (the kernel ignores it).
                    assert_eq!(verdict(&f, arch, nr, req | 0xdead_0000_0000_0000), DENY);
                }
            }
        }
    }

    #[test]
    fn everything_else_is_allowed() {
        let tcgets = libc::TCGETS as u64;
        let winsz = libc::TIOCGWINSZ as u64;
        let gpgrp = libc::TIOCGPGRP as u64;
        {
            let f = filter();
            for (arch, nr) in IOCTLS {
                for req in [tcgets, winsz, gpgrp, SPGRP, 0, STI + 1] {
                    assert_eq!(verdict(&f, arch, nr, req), ALLOW, "{arch:#x}/{nr} {req:#x}");
                }
            }
            // TIOCSTI's number as the argument of another call means nothing.
            assert_eq!(verdict(&f, arch::NATIVE, 0, STI), ALLOW, "read");
            assert_eq!(verdict(&f, arch::NATIVE, 1, STI), ALLOW, "write");
            assert_eq!(verdict(&f, arch::COMPAT, 4, STI), ALLOW, "compat write");
            assert_eq!(
                verdict(&f, 0x1234, arch::IOCTL, 0),
                KILL_PROCESS,
                "unknown arch"
            );
        }
    }
}
