//! Helpers shared by the integration tests: the binary under test, what a test needs to run
//! (`require!`: skip with a reason by hand, fail under `CI`), temporary trees, and, in the
//! submodules, running fix-ownership (`fix`), reading what it reports (`report`) and fixtures
//! whose expected outcome is computed from the contract (`fixture`).
#![allow(dead_code)]

pub mod fix;
pub mod fixture;
pub mod report;
pub mod sandbox;
pub mod seccomp;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The built `hermes-shim` binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hermes-shim"))
}

/// The running test's name: libtest names the thread that runs a test after the test's path.
pub fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("(unnamed test)")
        .to_string()
}

/// Says why `what` cannot run (`SKIP what: why`) and returns false; under `CI`, where every
/// test must run, panics instead.
fn skip_as(what: &str, why: &str) -> bool {
    assert!(
        std::env::var_os("CI").is_none(),
        "{what}: cannot run under CI: {why}"
    );
    eprintln!("SKIP {what}: {why}");
    false
}

/// Skips the running test for `why` (false), or fails it under `CI`.
pub fn skip(why: &str) -> bool {
    skip_as(&test_name(), why)
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

fn needs_tool(tool: &str) -> String {
    format!("needs `{tool}` on PATH (tests/setup-host.sh installs it)")
}

/// True when the running test may go on: as root if `root` asks for it, with every tool in
/// `tools` on PATH. Otherwise it skips (see [`skip`]) for the first thing missing.
pub fn requirements_met(root: bool, tools: &[&str]) -> bool {
    (!root || nix::unistd::geteuid().is_root() || skip("needs root (run the suite as root)"))
        && tools.iter().all(|t| on_path(t) || skip(&needs_tool(t)))
}

/// True when `tool` is on PATH for `part` of the running test, which may be left out alone:
/// otherwise says that part skips (and fails under `CI`).
pub fn part_has_tool(part: &str, tool: &str) -> bool {
    on_path(tool) || skip_as(&format!("{} ({part})", test_name()), &needs_tool(tool))
}

/// Returns from the calling test, after `SKIP test::name: why` on stderr, unless it can run
/// here; under `CI` it fails instead. The name is the running test's own.
///
/// `require!(root)`, `require!(root, tools: ["unshare", "mount"])`, `require!(tools: [..])`,
/// or `require!(condition, "why {}", args)` for anything else the test needs.
#[allow(unused_macros)] // not every test file uses it
macro_rules! require {
    (root $(, tools: [$($tool:expr),+ $(,)?])? $(,)?) => {
        if !$crate::common::requirements_met(true, &[$($($tool),+)?]) {
            return;
        }
    };
    (tools: [$($tool:expr),+ $(,)?] $(,)?) => {
        if !$crate::common::requirements_met(false, &[$($tool),+]) {
            return;
        }
    };
    ($holds:expr, $($why:tt)+) => {
        if !($holds || $crate::common::skip(&format!($($why)+))) {
            return;
        }
    };
}
#[allow(unused_imports)]
pub(crate) use require;

/// The crate's one temporary-directory helper (and its rule for root tests), shared with the
/// unit tests.
#[path = "../../src/testing.rs"]
mod testing;
pub use testing::TempDir;

/// Runs `cmd` and returns its output, panicking only if it could not be started.
pub fn run<S: AsRef<OsStr>>(cmd: &mut Command, what: S) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", what.as_ref().to_string_lossy()))
}

/// A hexadecimal field of `/proc/PID/status` (`CapEff`, `SigBlk`, …), as a number.
#[allow(dead_code)] // not every test binary reads one
pub fn proc_status_hex(pid: &str, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let value = status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"));
    u64::from_str_radix(value.trim(), 16).unwrap()
}

/// Writes an executable file without this process ever holding it open for writing.
///
/// Tests run in threads; a thread that forks while another holds a freshly written program open
/// (until its exec closes the CLOEXEC fd) makes exec of that program fail with ETXTBSY. A child
/// `sh` writes the file instead, so no fork in this process can inherit it.
pub fn write_program(path: &Path, text: &str, mode: u32) {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let mut child = Command::new("/bin/sh")
        .args(["-c", "cat > \"$1\"", "sh"])
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("start /bin/sh to write a program");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    assert!(
        child.wait().unwrap().success(),
        "writing {}",
        path.display()
    );
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Copies the binary under test to `to` (then mode `mode`) by a child `cp`, for the reason
/// [`write_program`] gives: a copy this process wrote could still be open in a thread's fork
/// when the test execs it (ETXTBSY).
#[track_caller]
pub fn copy_bin(to: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let st = Command::new("cp")
        .arg("--")
        .arg(bin())
        .arg(to)
        .status()
        .expect("start cp to copy the binary");
    assert!(st.success(), "copying the binary to {}", to.display());
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Waits for `child`, killing it and panicking after `secs` seconds: a hung binary must fail
/// its test, not stall the suite.
pub fn wait_timeout(
    child: &mut std::process::Child,
    secs: u64,
    what: &str,
) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(st) = child.try_wait().expect("waitpid") {
            return st;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {secs} s, killed");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
