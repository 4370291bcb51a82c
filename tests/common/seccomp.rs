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
