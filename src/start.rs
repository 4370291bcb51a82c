//! The process entry point, in place of Rust's runtime start-up.
//!
//! The shim runs in front of every `docker exec … hermes`, and Rust's start-up costs it more
//! than all its own work: to install a stack-overflow handler for the main thread, glibc reads
//! and parses `/proc/self/maps`, then an alternate signal stack is mapped and two handlers set
//! (about 6% of an exec-only program's cost here, measured by `tests/bench/shim.sh`). So the
//! binary is `no_main` and starts here, doing only what the program relies on: descriptors 0, 1
//! and 2 open (a file opened later must never land on them), SIGPIPE ignored (so a closed pipe
//! is an error to handle, as the applets expect; the shim gives the program the default back),
//! and stdout flushed at the end. The arguments are still there: on glibc, std takes them from
//! the C runtime's `init_array`. What is given up: the message naming a main-thread stack
//! overflow (the process still dies of SIGSEGV; nothing here recurses).

use nix::libc;

// std takes the arguments from glibc's `init_array`; elsewhere they would silently be empty.
#[cfg(not(target_env = "gnu"))]
compile_error!("hermes-shim starts without Rust's runtime (src/start.rs), which needs glibc");

/// The C entry point: the C runtime calls it as it would a C program's `main`. (Test builds
/// keep libtest's own `main` and leave this module out.)
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    open_stdio();
    // SAFETY: ignoring a signal runs no handler code; no other thread exists yet.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let exit = hermes_shim::run();
    let _ = std::io::Write::flush(&mut std::io::stdout());
    libc::c_int::from(exit.code())
}

/// Opens /dev/null on whichever of 0, 1 and 2 is closed, as Rust's start-up would. (std
/// asks with one poll and falls back to fcntl where poll cannot answer, with fewer than three
/// descriptors allowed; three fcntl calls answer everywhere.)
fn open_stdio() {
    for fd in 0..3 {
        // SAFETY: F_GETFD only asks whether the descriptor is open.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            // SAFETY: a NUL-terminated path; open returns the lowest free descriptor, which is
            // this closed one (the lower ones are open or were just opened).
            if unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) } != fd {
                // SAFETY: aborting is always allowed; without its standard streams the program
                // cannot say anything anyway.
                unsafe { libc::abort() };
            }
        }
    }
}
