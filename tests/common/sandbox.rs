//! The shim's sandbox (tests/shim_*.rs): a private world per test, with its own passwd and group
//! files bind-mounted over /etc in a private mount namespace entered by the spawned child, real
//! programs that report what they saw (their /proc status, environment, argv, PID) into a
//! world-writable output directory, and the assertions that compare those reports with the
//! contract. The machine's /etc is never touched.

use std::ffi::{CString, OsString};
use std::fs::{self, File};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use super::TempDir;

/// The unprivileged account every test drops to by default, as in the upstream image.
pub const HERMES_UID: u32 = 10000;
pub const DOCKER_GID: u32 = 990;
pub const AUDIO_GID: u32 = 991;
/// A second account, to show the target really is looked up by name.
pub const ALICE_UID: u32 = 10001;
/// Not Debian's staff (50): the drop never gives a system gid (`users::gid_use`).
pub const STAFF_GID: u32 = 150;

pub const REMEDY_USER: &str = "docker exec --user hermes";
pub const REMEDY_NAME: &str = "set HERMES_SHIM_USER to a user this container has";

/// Reports everything the tests look at. `cat /proc/$$/status` shows the script process itself,
/// i.e. the process the shim exec'd, not the `cat` child. `ran` is written last: its presence
/// proves the program ran to the end.
pub const PROBE: &str = r#"cat "/proc/$$/status" > "$out/status"
env > "$out/env"
: > "$out/argv"
for a in "$@"; do printf '%s\0' "$a" >> "$out/argv"; done
echo "$$" > "$out/pid"
echo written > "$out/file"
mkdir "$out/dir"
echo ran > "$out/ran"
"#;

/// A private world for one test: passwd/group files, a home for `hermes`, a directory of real
/// programs, a directory of symlinks to the shim and an output directory any uid can write.
pub struct Sandbox {
    pub dir: TempDir,
}

/// How one run ended.
pub struct Outcome {
    pub status: ExitStatus,
    pub pid: u32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Sandbox {
    pub fn new(tag: &str) -> Sandbox {
        let sb = Sandbox {
            dir: TempDir::new(&format!("shim-{tag}")),
        };
        for d in ["real", "links", "home"] {
            fs::create_dir(sb.path(d)).unwrap();
            fs::set_permissions(sb.path(d), fs::Permissions::from_mode(0o755)).unwrap();
        }
        nix::unistd::chown(
            &sb.path("home"),
            Some(nix::unistd::Uid::from_raw(HERMES_UID)),
            Some(nix::unistd::Gid::from_raw(HERMES_UID)),
        )
        .unwrap();
        sb.reset_out();
        let home = sb.home();
        sb.set_passwd(&format!(
            "root:x:0:0:root:/root:/bin/sh\n\
             # a comment line, and a uid-0 alias further down\n\
             hermes:x:{HERMES_UID}:{HERMES_UID}:Hermes Agent:{}:/bin/sh\n\
             alice:x:{ALICE_UID}:{ALICE_UID}::/home/alice:/bin/sh\n\
             toor:x:0:0::/root:/bin/sh\n",
            home.display()
        ));
        // hermes: primary 10000, member of docker and (in the middle of a list) audio; NOT of
        // staff, nor of hermesx whose member names merely start with "hermes".
        sb.set_group(&format!(
            "root:x:0:\n\
             staff:x:{STAFF_GID}:alice\n\
             docker:x:{DOCKER_GID}:hermes\n\
             audio:x:{AUDIO_GID}:alice,hermes,bob\n\
             hermesx:x:992:hermesx,hermes2\n\
             hermes:x:{HERMES_UID}:\n\
             alice:x:{ALICE_UID}:\n"
        ));
        sb
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    pub fn real_dir(&self) -> PathBuf {
        self.path("real")
    }
    pub fn out(&self) -> PathBuf {
        self.path("out")
    }
    pub fn home(&self) -> PathBuf {
        self.path("home")
    }

    pub fn set_passwd(&self, text: &str) {
        fs::write(self.path("passwd"), text).unwrap();
    }
    pub fn set_group(&self, text: &str) {
        fs::write(self.path("group"), text).unwrap();
    }

    /// Empties the output directory (mode 0777 so the dropped program can write there).
    pub fn reset_out(&self) {
        let out = self.out();
        let _ = fs::remove_dir_all(&out);
        fs::create_dir(&out).unwrap();
        fs::set_permissions(&out, fs::Permissions::from_mode(0o777)).unwrap();
    }

    /// Writes the real program `name` in `dir`: a /bin/sh script with `$out` preset.
    pub fn program_in(&self, dir: &Path, name: &str, body: &str, mode: u32) -> PathBuf {
        let p = dir.join(name);
        let text = format!("#!/bin/sh\nout='{}'\n{body}", self.out().display());
        super::write_program(&p, &text, mode);
        p
    }
    pub fn program(&self, name: &str, body: &str) -> PathBuf {
        self.program_in(&self.real_dir(), name, body, 0o755)
    }
    pub fn probe(&self, name: &str) -> PathBuf {
        self.program(name, PROBE)
    }

    /// A symlink `links/NAME` -> the shim binary: the multi-call entry under that name.
    pub fn link(&self, name: &str) -> PathBuf {
        let p = self.path("links").join(name);
        if fs::symlink_metadata(&p).is_err() {
            symlink(super::bin(), &p).unwrap();
        }
        p
    }

    /// `argv` run inside a private mount namespace with this sandbox's passwd and group, under
    /// a clean, known environment (so nothing from the test runner, such as an opt-out
    /// variable, leaks in).
    pub fn command(&self, argv: &[OsString]) -> Command {
        self.command_with_mounts(&[], argv)
    }

    pub fn command_with_mounts(&self, mounts: &[(PathBuf, &str)], argv: &[OsString]) -> Command {
        let mut binds = vec![
            (self.path("passwd"), "/etc/passwd"),
            (self.path("group"), "/etc/group"),
        ];
        binds.extend(mounts.iter().cloned());
        let binds: Vec<(CString, CString)> = binds
            .into_iter()
            .map(|(src, dst)| {
                (
                    CString::new(src.into_os_string().into_vec()).unwrap(),
                    CString::new(dst).unwrap(),
                )
            })
            .collect();
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]);
        c.env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("HOME", "/root")
            .env("USER", "root")
            .env("LOGNAME", "root")
            .env("HERMES_HOME", "/opt/data-from-caller")
            .env("HERMES_SHIM_REAL_DIR", self.real_dir());
        // SAFETY: runs in the forked child before exec and only makes raw syscalls on strings
        // prepared above (no allocation, no locks), which is async-signal-safe.
        unsafe {
            c.pre_exec(move || enter_private_mntns(&binds));
        }
        c
    }

    /// The shim entered through a symlink named `name`.
    pub fn via_link(&self, name: &str, args: &[OsString]) -> Command {
        let mut argv = vec![self.link(name).into_os_string()];
        argv.extend(args.iter().cloned());
        self.command(&argv)
    }

    /// The shim entered as `hermes-shim exec NAME ARGS…`.
    pub fn via_exec(&self, name: &str, args: &[OsString]) -> Command {
        let mut argv = vec![super::bin().into_os_string(), "exec".into(), name.into()];
        argv.extend(args.iter().cloned());
        self.command(&argv)
    }

    /// Runs `cmd` with fresh output, stdout/stderr captured to files, and a deadline so a hung
    /// shim fails the test instead of hanging the suite.
    pub fn run(&self, mut cmd: Command) -> Outcome {
        self.reset_out();
        let what = format!("{cmd:?}");
        let (so, se) = (self.path("stdout"), self.path("stderr"));
        cmd.stdin(Stdio::null())
            .stdout(File::create(&so).unwrap())
            .stderr(File::create(&se).unwrap());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let pid = child.id();
        let status = super::wait_timeout(&mut child, 60, &what);
        Outcome {
            status,
            pid,
            stdout: fs::read(&so).unwrap(),
            stderr: String::from_utf8_lossy(&fs::read(&se).unwrap()).into_owned(),
        }
    }

    pub fn ran(&self) -> bool {
        self.out().join("ran").exists()
    }

    pub fn read_out(&self, name: &str) -> String {
        fs::read_to_string(self.out().join(name))
            .unwrap_or_else(|e| panic!("program wrote no {name}: {e}"))
    }

    /// The probe's /proc status, after checking that the run succeeded.
    pub fn report(&self, o: &Outcome, what: &str) -> Report {
        assert_eq!(
            o.status.code(),
            Some(0),
            "{what}: exit {:?}, stderr: {}",
            o.status,
            o.stderr
        );
        assert!(self.ran(), "{what}: the real program did not run");
        Report {
            status: self.read_out("status"),
            env: self.read_out("env"),
        }
    }
}

/// What the probe saw.
pub struct Report {
    pub status: String,
    pub env: String,
}

impl Report {
    pub fn field(&self, key: &str) -> &str {
        let prefix = format!("{key}:");
        self.status
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {key} line in status:\n{}", self.status))
            .trim()
    }
    pub fn numbers(&self, key: &str) -> Vec<u32> {
        self.field(key)
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect()
    }
    /// Uid (or Gid) line: real, effective, saved, filesystem.
    pub fn ids(&self, key: &str) -> [u32; 4] {
        self.numbers(key)
            .try_into()
            .unwrap_or_else(|v| panic!("{key} has not 4 fields: {v:?}"))
    }
    /// All four uid fields are `uid` and all four gid fields `gid`.
    #[track_caller]
    pub fn assert_ids(&self, uid: u32, gid: u32, what: &str) {
        assert_eq!(self.ids("Uid"), [uid; 4], "{what}: Uid");
        assert_eq!(self.ids("Gid"), [gid; 4], "{what}: Gid");
    }
    pub fn groups(&self) -> Vec<u32> {
        let mut g = self.numbers("Groups");
        g.sort_unstable();
        g
    }
    pub fn mask(&self, key: &str) -> u64 {
        u64::from_str_radix(self.field(key), 16).unwrap()
    }
    pub fn env(&self, key: &str) -> Option<&str> {
        let prefix = format!("{key}=");
        self.env.lines().find_map(|l| l.strip_prefix(&prefix))
    }
}

pub fn os(s: &str) -> OsString {
    OsString::from(s)
}

pub fn sorted(mut v: Vec<u32>) -> Vec<u32> {
    v.sort_unstable();
    v
}

/// In the child between fork and exec: a new mount namespace whose mounts do not propagate back
/// to the host, with each `(source, target)` bind-mounted. Done here rather than through
/// `unshare … sh -c 'mount …; exec …'` because a shell in the chain would clear the signal mask
/// the SIGPIPE test sets up, and would be one more process image between the test and the shim.
pub fn enter_private_mntns(binds: &[(CString, CString)]) -> std::io::Result<()> {
    use nix::libc;
    let check = |rc: libc::c_int| {
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    // SAFETY: plain syscalls on valid NUL-terminated strings owned by the caller.
    unsafe {
        check(libc::unshare(libc::CLONE_NEWNS))?;
        check(libc::mount(
            c"none".as_ptr(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ))?;
        for (src, dst) in binds {
            check(libc::mount(
                src.as_ptr(),
                dst.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            ))?;
        }
    }
    Ok(())
}

/// Asserts the hermes drop: all four uid and gid fields, the exact group list, no capabilities.
/// execve copies the effective ids into the saved ones, so a saved uid or gid left at 0 before
/// exec cannot show here; only the shim's own pre-exec verification (unit-tested) can catch it.
pub fn assert_dropped_to_hermes(r: &Report, what: &str) {
    r.assert_ids(HERMES_UID, HERMES_UID, what);
    assert_eq!(
        r.groups(),
        sorted(vec![DOCKER_GID, AUDIO_GID, HERMES_UID]),
        "{what}: Groups"
    );
    assert_eq!(r.mask("CapEff"), 0, "{what}: CapEff");
    assert_eq!(r.mask("CapPrm"), 0, "{what}: CapPrm");
    assert_eq!(r.mask("CapAmb"), 0, "{what}: CapAmb");
}

/// Asserts a refusal of the drop: exit 126, one stderr line naming `needles` and both remedies,
/// and the real program never ran.
pub fn assert_refused(sb: &Sandbox, o: &Outcome, needles: &[&str], what: &str) {
    let remedies = [REMEDY_USER, REMEDY_NAME];
    assert_refusal_line(sb, o, &[&remedies[..], needles].concat(), what);
    assert!(
        !o.stderr.contains("HERMES_DOCKER_EXEC_AS_ROOT"),
        "{what}: the opt-out is no remedy (it runs the agent's config and plugins as root)"
    );
}

/// Asserts exit 126 with one stderr line from the shim naming `needles`, and that the real
/// program never ran. For refusals that are not about the drop (a setuid install, a real
/// program that is the shim) the issue asks for 126 only: the two drop remedies would not help.
pub fn assert_refusal_line(sb: &Sandbox, o: &Outcome, needles: &[&str], what: &str) {
    assert_eq!(
        o.status.code(),
        Some(126),
        "{what}: exit {:?}, stderr: {}",
        o.status,
        o.stderr
    );
    assert!(
        !sb.ran(),
        "{what}: the real program ran despite the refusal"
    );
    let msg = o.stderr.trim_end();
    assert_eq!(msg.lines().count(), 1, "{what}: not one line: {msg:?}");
    assert!(msg.starts_with("hermes-shim"), "{what}: prefix: {msg:?}");
    for n in needles {
        assert!(msg.contains(n), "{what}: {n:?} missing from {msg:?}");
    }
}

/// Asserts exit 127 naming the full path of the real program, which never ran.
pub fn assert_not_runnable(sb: &Sandbox, o: &Outcome, path: &Path, what: &str) {
    assert_eq!(
        o.status.code(),
        Some(127),
        "{what}: exit {:?}, stderr: {}",
        o.status,
        o.stderr
    );
    assert!(!sb.ran(), "{what}: the real program ran");
    assert!(
        o.stderr.starts_with("hermes-shim"),
        "{what}: not the shim's message: {:?}",
        o.stderr
    );
    assert!(
        o.stderr.contains(&*path.to_string_lossy()),
        "{what}: {} missing from {:?}",
        path.display(),
        o.stderr
    );
}
