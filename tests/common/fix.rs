//! Running `hermes-shim fix-ownership` (and other commands) to completion under a deadline, with a
//! clean environment, once per walk backend.

use std::ffi::OsStr;
use std::fmt;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

/// The target user of almost every test: numeric, so no passwd entry is needed.
pub const T: u32 = 10000;
pub const USER: &str = "10000:10000";
pub const PREFIX: &str = "hermes-shim fix-ownership: ";
pub const WALKS: [&str; 2] = ["openat2", "fallback"];

/// Turns `fn NAME(walk: &str)`, defined just above, into one test per walk backend,
/// `NAME::walk_openat2` and `NAME::walk_fallback`, so each backend can be run alone
/// (`cargo test -- _fallback`) and a failure names its backend.
#[allow(unused_macros)] // not every test file uses it
macro_rules! per_walk {
    ($name:ident) => {
        mod $name {
            #[test]
            fn walk_openat2() {
                super::$name("openat2");
            }

            #[test]
            fn walk_fallback() {
                super::$name("fallback");
            }
        }
    };
}
#[allow(unused_imports)]
pub(crate) use per_walk;

/// What a finished process left behind.
pub struct Out {
    pub what: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// The lines on stderr that contain `needle`.
    pub fn stderr_lines_with(&self, needle: &str) -> Vec<&str> {
        self.stderr.lines().filter(|l| l.contains(needle)).collect()
    }
}

impl fmt::Display for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "command: {}\nexit: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what,
            self.code,
            truncate(&self.stdout),
            truncate(&self.stderr)
        )
    }
}

fn truncate(s: &str) -> String {
    const MAX: usize = 6000;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut cut = MAX;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… ({} bytes more)", &s[..cut], s.len() - cut)
}

/// Runs `cmd` to completion, killing it (and failing the test) after `secs` seconds, so a hung
/// binary fails one test instead of hanging the suite.
pub fn run_cmd(mut cmd: Command, secs: u64) -> Out {
    let what = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let to = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let te = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let status = super::wait_timeout(&mut child, secs, &what);
    Out {
        what,
        code: status.code(),
        stdout: String::from_utf8_lossy(&to.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&te.join().unwrap()).into_owned(),
    }
}

/// Removes every variable the binary reads, so tests do not leak the caller's settings.
pub fn clean_env(cmd: &mut Command) -> &mut Command {
    for v in [
        "HERMES_HOME",
        "HERMES_SHIM_USER",
        "HERMES_SHIM_REAL_DIR",
        "HERMES_DOCKER_EXEC_AS_ROOT",
        "HERMES_SHIM_EXCLUDE",
        "HERMES_SHIM_WALK",
    ] {
        cmd.env_remove(v);
    }
    cmd
}

/// `PROGRAM` with a clean environment.
pub fn clean_cmd<S: AsRef<OsStr>>(program: S) -> Command {
    let mut c = Command::new(program);
    clean_env(&mut c);
    c
}

/// `sh -c SCRIPT` in a private mount namespace of its own (`unshare -m --propagation private`, so
/// its mounts vanish with it and never reach the host), with a clean environment and `$0` the
/// binary under test; add the script's `$1…` as arguments.
pub fn in_private_mntns(script: &str) -> Command {
    let mut c = clean_cmd("unshare");
    c.args(["-m", "--propagation", "private", "sh", "-c", script])
        .arg(super::bin());
    c
}

/// `hermes-shim fix-ownership ARGS…` with a clean environment.
pub fn fo_cmd<S: AsRef<OsStr>>(args: &[S]) -> Command {
    let mut c = clean_cmd(super::bin());
    c.arg("fix-ownership").args(args);
    c
}

/// `hermes-shim fix-ownership PATH --user 10000:10000 --walk WALK EXTRA…`.
pub fn fo(path: &Path, walk: &str, extra: &[&str]) -> Out {
    let mut args: Vec<&OsStr> = vec![path.as_os_str()];
    args.extend(["--user", USER, "--walk", walk].map(OsStr::new));
    args.extend(extra.iter().map(OsStr::new));
    run_cmd(fo_cmd(&args), 60)
}
