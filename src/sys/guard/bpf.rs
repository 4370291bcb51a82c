//! The terminal filter as a classic BPF program: deny `ioctl` TIOCSTI and TIOCLINUX on every
//! ABI of this binary's architecture, allow everything else, and kill a caller of any other
//! architecture (which the filter cannot judge). Pure, and tested by running the program the
//! way the kernel would.

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
pub const NR: u32 = 0;
const ARCH: u32 = 4;
/// ioctl's request is an `unsigned int`: the kernel reads only the low 32 bits of the argument,
/// so the filter must compare exactly those (the high half is whatever the caller left there;
/// comparing all 64 bits is how such filters have been bypassed).
#[cfg(target_endian = "little")]
const ARG1_LOW: u32 = 16 + 8;
#[cfg(target_endian = "big")]
const ARG1_LOW: u32 = 16 + 8 + 4;

/// What a filter needs to know of an architecture: the native audit architecture and its
/// ioctl; the 32-bit compat one and its ioctl; and x32's ioctl, which reaches the kernel as the
/// native architecture with bit 30 set in the syscall number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arch {
    pub native: u32,
    pub ioctl: u32,
    pub ioctl_x32: u32,
    pub compat: u32,
    pub ioctl_compat: u32,
}

// Both are built on either architecture: the tests give the filter the one it is not.
#[allow(dead_code)]
pub const X86_64: Arch = Arch {
    native: 0xc000_003e, // AUDIT_ARCH_X86_64
    ioctl: 16,
    ioctl_x32: 0x4000_0000 | 0x202, // __X32_SYSCALL_BIT | 514
    compat: 0x4000_0003,            // AUDIT_ARCH_I386
    ioctl_compat: 54,
};

#[allow(dead_code)]
pub const AARCH64: Arch = Arch {
    native: 0xc000_00b7, // AUDIT_ARCH_AARCH64
    ioctl: 29,
    ioctl_x32: 29,       // no such ABI: the same check twice
    compat: 0x4000_0028, // AUDIT_ARCH_ARM
    ioctl_compat: 54,
};

/// The architecture this binary's system calls reach the kernel as (unless a translator is in
/// between, which the probe finds out).
#[cfg(target_arch = "x86_64")]
pub const HOST: Arch = X86_64;
#[cfg(target_arch = "aarch64")]
pub const HOST: Arch = AARCH64;

pub const ALLOW: u32 = 0x7fff_0000; // SECCOMP_RET_ALLOW
pub const KILL_PROCESS: u32 = 0x8000_0000; // SECCOMP_RET_KILL_PROCESS
pub const DENY: u32 = 0x0005_0000 | libc::EPERM as u32; // SECCOMP_RET_ERRNO | EPERM

pub const fn ld(k: u32) -> Insn {
    Insn {
        code: LD_W_ABS,
        jt: 0,
        jf: 0,
        k,
    }
}
pub const fn jeq(k: u32, jt: u8, jf: u8) -> Insn {
    Insn {
        code: JEQ_K,
        jt,
        jf,
        k,
    }
}
pub const fn ret(k: u32) -> Insn {
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

/// The filter for `arch`. Jumps are relative to the next instruction; the comments give the
/// targets, with `n` denied requests.
pub fn filter(arch: &Arch) -> Vec<Insn> {
    let denied = &DENIED;
    let n = denied.len();
    // Both fit: the lists above are a few entries long.
    let n8 = u8::try_from(n).expect("a short list");
    let mut f = vec![
        /* 0 */ ld(ARCH),
        /* 1 */ jeq(arch.native, 0, 4), // 2 | 6
        /* 2 */ ld(NR),
        /* 3 */ jeq(arch.ioctl, 6, 0), // 10 | 4
        /* 4 */ jeq(arch.ioctl_x32, 5, 0), // 10 | 5
        /* 5 */ ret(ALLOW),
        /* 6 */ jeq(arch.compat, 0, n8 + 5), // 7 | 12 + n
        /* 7 */ ld(NR),
        /* 8 */ jeq(arch.ioctl_compat, 1, 0), // 10 | 9
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
        // No other architecture reaches the kernel through this binary's calls once the probe has
        // passed; should one appear, nothing it asks is judged, so nothing runs.
        /* 12 + n */
        ret(KILL_PROCESS),
        /* 13 + n */ ret(DENY),
    ]);
    debug_assert_eq!(f.len(), 14 + n);
    f
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

    fn ioctls(a: &Arch) -> [(u32, u32); 3] {
        [
            (a.native, a.ioctl),
            (a.native, a.ioctl_x32),
            (a.compat, a.ioctl_compat),
        ]
    }

    #[test]
    fn terminal_injection_is_denied_on_every_abi() {
        for a in [X86_64, AARCH64] {
            let f = filter(&a);
            for (arch, nr) in ioctls(&a) {
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
        for a in [X86_64, AARCH64] {
            let f = filter(&a);
            for (arch, nr) in ioctls(&a) {
                for req in [tcgets, winsz, gpgrp, SPGRP, 0, STI + 1] {
                    assert_eq!(verdict(&f, arch, nr, req), ALLOW, "{arch:#x}/{nr} {req:#x}");
                }
            }
            // TIOCSTI's number as the argument of another call means nothing.
            assert_eq!(verdict(&f, a.native, 0, STI), ALLOW, "read");
            assert_eq!(verdict(&f, a.native, 1, STI), ALLOW, "write");
            assert_eq!(verdict(&f, a.compat, 4, STI), ALLOW, "compat write");
            assert_eq!(
                verdict(&f, 0x1234, a.ioctl, 0),
                KILL_PROCESS,
                "unknown arch"
            );
        }
    }
}
