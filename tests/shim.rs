//! Root integration tests of the shim applet, driving the built binary as a black box.
//!
//! Every run happens in a private mount namespace, entered in the spawned child, where test-owned
//! passwd and group files are bind-mounted over /etc/passwd and /etc/group, so the machine's /etc
//! is never touched and each test sees exactly the users it declares. The real programs are tiny
//! /bin/sh scripts that report what they saw (their /proc status, environment, argv, PID) into a
//! world-writable output directory; the assertions compare those reports with what the contract
//! promises.

mod common;

use std::ffi::{CString, OsString};
use std::fs::{self, File};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use common::{TempDir, require};

/// The unprivileged account every test drops to by default, as in the upstream image.
const HERMES_UID: u32 = 10000;
const DOCKER_GID: u32 = 990;
const AUDIO_GID: u32 = 991;
/// A second account, to show the target really is looked up by name.
const ALICE_UID: u32 = 10001;
/// Not Debian's staff (50): the drop never gives a system gid (`users::gid_use`).
const STAFF_GID: u32 = 150;

const REMEDY_USER: &str = "docker exec --user hermes";
const REMEDY_NAME: &str = "set HERMES_SHIM_USER to a user this container has";

/// Reports everything the tests look at. `cat /proc/$$/status` shows the script process itself,
/// i.e. the process the shim exec'd, not the `cat` child. `ran` is written last: its presence
/// proves the program ran to the end.
const PROBE: &str = r#"cat "/proc/$$/status" > "$out/status"
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
struct Sandbox {
    dir: TempDir,
}

/// How one run ended.
struct Outcome {
    status: ExitStatus,
    pid: u32,
    stdout: Vec<u8>,
    stderr: String,
}

impl Sandbox {
    fn new(tag: &str) -> Sandbox {
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

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn real_dir(&self) -> PathBuf {
        self.path("real")
    }
    fn out(&self) -> PathBuf {
        self.path("out")
    }
    fn home(&self) -> PathBuf {
        self.path("home")
    }

    fn set_passwd(&self, text: &str) {
        fs::write(self.path("passwd"), text).unwrap();
    }
    fn set_group(&self, text: &str) {
        fs::write(self.path("group"), text).unwrap();
    }

    /// Empties the output directory (mode 0777 so the dropped program can write there).
    fn reset_out(&self) {
        let out = self.out();
        let _ = fs::remove_dir_all(&out);
        fs::create_dir(&out).unwrap();
        fs::set_permissions(&out, fs::Permissions::from_mode(0o777)).unwrap();
    }

    /// Writes the real program `name` in `dir`: a /bin/sh script with `$out` preset.
    fn program_in(&self, dir: &Path, name: &str, body: &str, mode: u32) -> PathBuf {
        let p = dir.join(name);
        let text = format!("#!/bin/sh\nout='{}'\n{body}", self.out().display());
        common::write_program(&p, &text, mode);
        p
    }
    fn program(&self, name: &str, body: &str) -> PathBuf {
        self.program_in(&self.real_dir(), name, body, 0o755)
    }
    fn probe(&self, name: &str) -> PathBuf {
        self.program(name, PROBE)
    }

    /// A symlink `links/NAME` -> the shim binary: the multi-call entry under that name.
    fn link(&self, name: &str) -> PathBuf {
        let p = self.path("links").join(name);
        if fs::symlink_metadata(&p).is_err() {
            symlink(common::bin(), &p).unwrap();
        }
        p
    }

    /// `argv` run inside a private mount namespace with this sandbox's passwd and group, under
    /// a clean, known environment (so nothing from the test runner, such as an opt-out
    /// variable, leaks in).
    fn command(&self, argv: &[OsString]) -> Command {
        self.command_with_mounts(&[], argv)
    }

    fn command_with_mounts(&self, mounts: &[(PathBuf, &str)], argv: &[OsString]) -> Command {
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
    fn via_link(&self, name: &str, args: &[OsString]) -> Command {
        let mut argv = vec![self.link(name).into_os_string()];
        argv.extend(args.iter().cloned());
        self.command(&argv)
    }

    /// The shim entered as `hermes-shim exec NAME ARGS…`.
    fn via_exec(&self, name: &str, args: &[OsString]) -> Command {
        let mut argv = vec![common::bin().into_os_string(), "exec".into(), name.into()];
        argv.extend(args.iter().cloned());
        self.command(&argv)
    }

    /// Runs `cmd` with fresh output, stdout/stderr captured to files, and a deadline so a hung
    /// shim fails the test instead of hanging the suite.
    fn run(&self, mut cmd: Command) -> Outcome {
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
        let status = common::wait_timeout(&mut child, 60, &what);
        Outcome {
            status,
            pid,
            stdout: fs::read(&so).unwrap(),
            stderr: String::from_utf8_lossy(&fs::read(&se).unwrap()).into_owned(),
        }
    }

    fn ran(&self) -> bool {
        self.out().join("ran").exists()
    }

    fn read_out(&self, name: &str) -> String {
        fs::read_to_string(self.out().join(name))
            .unwrap_or_else(|e| panic!("program wrote no {name}: {e}"))
    }

    /// The probe's /proc status, after checking that the run succeeded.
    fn report(&self, o: &Outcome, what: &str) -> Report {
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
struct Report {
    status: String,
    env: String,
}

impl Report {
    fn field(&self, key: &str) -> &str {
        let prefix = format!("{key}:");
        self.status
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {key} line in status:\n{}", self.status))
            .trim()
    }
    fn numbers(&self, key: &str) -> Vec<u32> {
        self.field(key)
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect()
    }
    /// Uid (or Gid) line: real, effective, saved, filesystem.
    fn ids(&self, key: &str) -> [u32; 4] {
        self.numbers(key)
            .try_into()
            .unwrap_or_else(|v| panic!("{key} has not 4 fields: {v:?}"))
    }
    /// All four uid fields are `uid` and all four gid fields `gid`.
    #[track_caller]
    fn assert_ids(&self, uid: u32, gid: u32, what: &str) {
        assert_eq!(self.ids("Uid"), [uid; 4], "{what}: Uid");
        assert_eq!(self.ids("Gid"), [gid; 4], "{what}: Gid");
    }
    fn groups(&self) -> Vec<u32> {
        let mut g = self.numbers("Groups");
        g.sort_unstable();
        g
    }
    fn mask(&self, key: &str) -> u64 {
        u64::from_str_radix(self.field(key), 16).unwrap()
    }
    fn env(&self, key: &str) -> Option<&str> {
        let prefix = format!("{key}=");
        self.env.lines().find_map(|l| l.strip_prefix(&prefix))
    }
}

fn os(s: &str) -> OsString {
    OsString::from(s)
}

fn sorted(mut v: Vec<u32>) -> Vec<u32> {
    v.sort_unstable();
    v
}

/// In the child between fork and exec: a new mount namespace whose mounts do not propagate back
/// to the host, with each `(source, target)` bind-mounted. Done here rather than through
/// `unshare … sh -c 'mount …; exec …'` because a shell in the chain would clear the signal mask
/// the SIGPIPE test sets up, and would be one more process image between the test and the shim.
fn enter_private_mntns(binds: &[(CString, CString)]) -> std::io::Result<()> {
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
fn assert_dropped_to_hermes(r: &Report, what: &str) {
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
fn assert_refused(sb: &Sandbox, o: &Outcome, needles: &[&str], what: &str) {
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
fn assert_refusal_line(sb: &Sandbox, o: &Outcome, needles: &[&str], what: &str) {
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
fn assert_not_runnable(sb: &Sandbox, o: &Outcome, path: &Path, what: &str) {
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

#[test]
fn write_through_the_shim_lands_as_target_uid_gid() {
    require!(root);
    let sb = Sandbox::new("write");
    sb.probe("hermes");
    for (how, cmd) in [
        ("via symlink", sb.via_link("hermes", &[])),
        ("via exec", sb.via_exec("hermes", &[])),
    ] {
        let o = sb.run(cmd);
        sb.report(&o, how);
        for name in ["file", "dir"] {
            let m = fs::metadata(sb.out().join(name)).unwrap();
            assert_eq!(
                (m.uid(), m.gid()),
                (HERMES_UID, HERMES_UID),
                "{how}: owner of {name}"
            );
        }
    }
}

#[test]
fn symlink_name_selects_the_real_program() {
    require!(root);
    let sb = Sandbox::new("names");
    sb.program("hermes", "echo hermes > \"$out/which\"\n");
    sb.program("hermes-agent", "echo hermes-agent > \"$out/which\"\n");
    sb.program("hermes-acp", "echo hermes-acp > \"$out/which\"\n");
    for name in ["hermes-agent", "hermes-acp", "hermes"] {
        let o = sb.run(sb.via_link(name, &[]));
        assert_eq!(o.status.code(), Some(0), "{name}: {}", o.stderr);
        assert_eq!(sb.read_out("which").trim(), name, "symlink {name}");
        let o = sb.run(sb.via_exec(name, &[]));
        assert_eq!(o.status.code(), Some(0), "exec {name}: {}", o.stderr);
        assert_eq!(sb.read_out("which").trim(), name, "exec {name}");
    }
}

#[test]
fn dropped_program_has_exact_ids_groups_and_no_capabilities() {
    require!(root);
    let sb = Sandbox::new("ids");
    sb.probe("hermes");
    let r = sb.report(&sb.run(sb.via_link("hermes", &[])), "via symlink");
    assert_dropped_to_hermes(&r, "via symlink");
    let r = sb.report(&sb.run(sb.via_exec("hermes", &[])), "via exec");
    assert_dropped_to_hermes(&r, "via exec");
}

#[test]
fn home_user_logname_come_from_passwd() {
    require!(root);
    let sb = Sandbox::new("env");
    sb.probe("hermes");
    let r = sb.report(&sb.run(sb.via_link("hermes", &[])), "via symlink");
    let home = sb.home();
    assert_eq!(r.env("HOME"), Some(&*home.to_string_lossy()), "HOME");
    assert_eq!(r.env("USER"), Some("hermes"), "USER");
    assert_eq!(r.env("LOGNAME"), Some("hermes"), "LOGNAME");
    // Everything else reaches the program as the caller set it; hermes needs HERMES_HOME.
    assert_eq!(r.env("HERMES_HOME"), Some("/opt/data-from-caller"));
}

#[test]
fn shim_user_selects_another_account_by_name() {
    require!(root);
    let sb = Sandbox::new("alice");
    sb.probe("hermes");
    let mut cmd = sb.via_link("hermes", &[]);
    cmd.env("HERMES_SHIM_USER", "alice");
    let r = sb.report(&sb.run(cmd), "HERMES_SHIM_USER=alice");
    r.assert_ids(ALICE_UID, ALICE_UID, "HERMES_SHIM_USER=alice");
    assert_eq!(
        r.groups(),
        sorted(vec![STAFF_GID, AUDIO_GID, ALICE_UID]),
        "Groups"
    );
    assert_eq!(r.mask("CapEff"), 0, "CapEff");
    assert_eq!(r.env("HOME"), Some("/home/alice"));
    assert_eq!(r.env("USER"), Some("alice"));
    assert_eq!(r.env("LOGNAME"), Some("alice"));
}

#[test]
fn shim_user_numeric_uid_and_gid() {
    require!(root);
    let sb = Sandbox::new("numeric");
    sb.probe("hermes");
    let mut cmd = sb.via_exec("hermes", &[]);
    cmd.env("HERMES_SHIM_USER", format!("{ALICE_UID}:{DOCKER_GID}"));
    let r = sb.report(&sb.run(cmd), "HERMES_SHIM_USER=UID:GID");
    r.assert_ids(ALICE_UID, DOCKER_GID, "HERMES_SHIM_USER=UID:GID");
    assert_eq!(r.mask("CapEff"), 0, "CapEff");
    assert!(r.groups().contains(&DOCKER_GID), "Groups lack the gid");
    assert!(
        !r.groups().contains(&0),
        "root's group survived: {:?}",
        r.groups()
    );
}

#[test]
fn non_root_caller_runs_unchanged() {
    require!(root, tools: ["setpriv"]);
    let sb = Sandbox::new("nonroot");
    sb.probe("hermes");
    let setpriv = [
        "setpriv",
        "--reuid=10000",
        "--regid=10000",
        "--clear-groups",
    ];
    // Neither an unknown target nor the opt-out matters to a caller that is not root.
    let extra: [&[(&str, &str)]; 3] = [
        &[],
        &[("HERMES_SHIM_USER", "nosuch")],
        &[("HERMES_DOCKER_EXEC_AS_ROOT", "1")],
    ];
    for env in extra {
        for exec_applet in [false, true] {
            let what = format!("setpriv uid 10000, exec applet {exec_applet}, env {env:?}");
            let mut argv: Vec<OsString> = setpriv.iter().map(|s| os(s)).collect();
            argv.push("--".into());
            if exec_applet {
                argv.extend([common::bin().into_os_string(), os("exec"), os("hermes")]);
            } else {
                argv.push(sb.link("hermes").into_os_string());
            }
            argv.extend([os("a"), os("")]);
            let mut cmd = sb.command(&argv);
            cmd.envs(env.iter().copied());
            let r = sb.report(&sb.run(cmd), &what);
            r.assert_ids(HERMES_UID, HERMES_UID, &what);
            assert_eq!(r.groups(), Vec::<u32>::new(), "{what}: Groups");
            assert_eq!(r.env("HOME"), Some("/root"), "{what}: HOME changed");
            assert_eq!(r.env("USER"), Some("root"), "{what}: USER changed");
            assert_eq!(r.env("LOGNAME"), Some("root"), "{what}: LOGNAME changed");
            assert_eq!(fs::read(sb.out().join("argv")).unwrap(), b"a\0\0", "{what}");
        }
    }
}

#[test]
fn opt_out_truthy_values_run_as_root() {
    require!(root);
    let sb = Sandbox::new("optout-yes");
    sb.probe("hermes");
    for v in ["1", "true", "TRUE", "True", "tRuE", "yes", "Yes", "YES"] {
        let what = format!("HERMES_DOCKER_EXEC_AS_ROOT={v:?}");
        let mut cmd = sb.via_link("hermes", &[]);
        cmd.env("HERMES_DOCKER_EXEC_AS_ROOT", v);
        let o = sb.run(cmd);
        let r = sb.report(&o, &what);
        r.assert_ids(0, 0, &what);
        let m = fs::metadata(sb.out().join("file")).unwrap();
        assert_eq!((m.uid(), m.gid()), (0, 0), "{what}: owner of the write");
        // Root then runs what the agent can shape (config, plugins): every run says so.
        assert!(
            o.stderr
                .trim_end()
                .starts_with("hermes-shim: WARNING: HERMES_DOCKER_EXEC_AS_ROOT is set")
                && o.stderr.trim_end().lines().count() == 1,
            "{what}: one warning line, got {:?}",
            o.stderr
        );
    }
}

#[test]
fn opt_out_other_values_still_drop() {
    require!(root);
    let sb = Sandbox::new("optout-no");
    sb.probe("hermes");
    let values = [
        None,
        Some("0"),
        Some("false"),
        Some("no"),
        Some(""),
        Some("garbage"),
        Some("2"),
        Some(" 1"),
        Some("1 "),
        Some("yes\n"),
        Some("on"),
    ];
    for v in values {
        let what = format!("HERMES_DOCKER_EXEC_AS_ROOT={v:?}");
        let mut cmd = sb.via_exec("hermes", &[]);
        if let Some(v) = v {
            cmd.env("HERMES_DOCKER_EXEC_AS_ROOT", v);
        }
        let r = sb.report(&sb.run(cmd), &what);
        assert_dropped_to_hermes(&r, &what);
    }
}

#[test]
fn unknown_user_is_refused() {
    require!(root);
    let sb = Sandbox::new("nosuch");
    sb.probe("hermes");
    let mut cmd = sb.via_link("hermes", &[]);
    cmd.env("HERMES_SHIM_USER", "nosuch");
    assert_refused(&sb, &sb.run(cmd), &["nosuch"], "HERMES_SHIM_USER=nosuch");
    let mut cmd = sb.via_exec("hermes", &[]);
    cmd.env("HERMES_SHIM_USER", "nosuch");
    assert_refused(
        &sb,
        &sb.run(cmd),
        &["nosuch"],
        "exec, HERMES_SHIM_USER=nosuch",
    );
}

#[test]
fn default_user_missing_from_passwd_is_refused() {
    require!(root);
    let sb = Sandbox::new("nohermes");
    sb.probe("hermes");
    sb.set_passwd("root:x:0:0:root:/root:/bin/sh\nalice:x:10001:10001::/home/alice:/bin/sh\n");
    let o = sb.run(sb.via_link("hermes", &[]));
    assert_refused(&sb, &o, &[], "no hermes in passwd");
    // The user must be named beyond the remedy text, which mentions hermes anyway.
    assert!(
        o.stderr.replace(REMEDY_USER, "").contains("hermes"),
        "the missing user is not named: {:?}",
        o.stderr
    );
}

#[test]
fn target_uid_zero_is_refused() {
    require!(root);
    let sb = Sandbox::new("uid0");
    sb.probe("hermes");
    for user in ["root", "0", "0:0", "toor"] {
        let mut cmd = sb.via_link("hermes", &[]);
        cmd.env("HERMES_SHIM_USER", user);
        let what = format!("HERMES_SHIM_USER={user}");
        assert_refused(&sb, &sb.run(cmd), &["uid 0"], &what);
    }
    // The default user remapped to uid 0 is refused as well.
    sb.set_passwd("root:x:0:0:root:/root:/bin/sh\nhermes:x:0:0::/opt/data:/bin/sh\n");
    let o = sb.run(sb.via_exec("hermes", &[]));
    assert_refused(&sb, &o, &["uid 0"], "hermes remapped to uid 0");
}

#[test]
fn real_program_that_is_the_shim_is_refused() {
    require!(root, tools: ["setpriv"]);
    let sb = Sandbox::new("self");
    // real/hermes -> the shim directly; real/hermes-agent -> links/hermes-agent -> the shim.
    symlink(common::bin(), sb.real_dir().join("hermes")).unwrap();
    symlink(sb.link("hermes-agent"), sb.real_dir().join("hermes-agent")).unwrap();
    for name in ["hermes", "hermes-agent"] {
        let real = sb.real_dir().join(name);
        let real = real.to_string_lossy();
        let o = sb.run(sb.via_link(name, &[]));
        assert_refusal_line(
            &sb,
            &o,
            &[&real],
            &format!("symlink {name}, real is the shim"),
        );
        let o = sb.run(sb.via_exec(name, &[]));
        assert_refusal_line(&sb, &o, &[&real], &format!("exec {name}, real is the shim"));
    }
    // The paths that exec without a drop would otherwise exec the shim again, forever.
    let mut optout = sb.via_link("hermes", &[]);
    optout.env("HERMES_DOCKER_EXEC_AS_ROOT", "1");
    let non_root = sb.command(&[
        os("setpriv"),
        os("--reuid=10000"),
        os("--regid=10000"),
        os("--clear-groups"),
        os("--"),
        sb.link("hermes").into(),
    ]);
    for (what, cmd) in [("opt-out", optout), ("non-root caller", non_root)] {
        let o = sb.run(cmd);
        assert_refusal_line(&sb, &o, &[], &format!("{what}, real is the shim"));
    }
}

#[test]
fn real_uid_not_effective_uid_is_refused() {
    require!(root, tools: ["setpriv"]);
    let sb = Sandbox::new("ruid");
    sb.probe("hermes");
    // ruid 10000 with euid 0, and ruid 0 with euid 10000: what a setuid install would look like.
    for ids in ["--ruid=10000", "--euid=10000"] {
        let argv = [os("setpriv"), os(ids), os("--"), sb.link("hermes").into()];
        let o = sb.run(sb.command(&argv));
        assert_refusal_line(&sb, &o, &["setuid"], &format!("setpriv {ids}"));
    }
}

#[test]
fn a_capability_left_after_the_drop_is_refused() {
    require!(root, tools: ["setpriv"]);
    let sb = Sandbox::new("keepcaps");
    sb.probe("hermes");
    // With SECBIT_NO_SETUID_FIXUP (inherited across exec) setresuid keeps every capability, so
    // the drop changes all six ids and still leaves the process as powerful as root. The mask
    // named must be exactly what this process holds: the effective and permitted sets.
    let held = ["CapEff", "CapPrm"]
        .map(|k| common::proc_status_hex("self", k))
        .into_iter()
        .fold(0, |a, b| a | b);
    assert_ne!(
        held, 0,
        "root here holds no capability: nothing to leave behind"
    );
    let argv = [
        os("setpriv"),
        os("--securebits=+no_setuid_fixup"),
        os("--"),
        sb.link("hermes").into(),
    ];
    let o = sb.run(sb.command(&argv));
    assert_refused(
        &sb,
        &o,
        &[&format!("capabilities left: {held:#x}")],
        "setpriv --securebits=+no_setuid_fixup",
    );
}

#[test]
fn setuid_or_setgid_installed_binary_is_refused() {
    require!(root);
    let sb = Sandbox::new("suid");
    sb.probe("hermes");
    for (tag, mode) in [("setuid", 0o4755), ("setgid", 0o2755)] {
        let copy = sb.path(&format!("hermes-shim-{tag}"));
        common::copy_bin(&copy, mode);
        let o = sb.run(sb.command(&[copy.into(), os("exec"), os("hermes")]));
        assert_refusal_line(&sb, &o, &["setuid"], &format!("binary installed {tag}"));
    }
}

/// Exit 127 naming `path` however `hermes` is entered: through its symlink, through `exec`, and
/// as `optout`, a command with the opt-out set.
#[track_caller]
fn assert_not_runnable_every_way(sb: &Sandbox, path: &Path, what: &str, optout: Command) {
    let o = sb.run(sb.via_link("hermes", &[]));
    assert_not_runnable(sb, &o, path, &format!("{what}, via symlink"));
    let o = sb.run(sb.via_exec("hermes", &[]));
    assert_not_runnable(sb, &o, path, &format!("{what}, via exec"));
    assert_not_runnable(sb, &sb.run(optout), path, &format!("{what}, opt-out"));
}

#[test]
fn missing_real_program_exits_127_naming_the_path() {
    require!(root);
    let sb = Sandbox::new("missing");
    let path = sb.real_dir().join("hermes");
    let mut optout = sb.via_link("hermes", &[]);
    optout.env("HERMES_DOCKER_EXEC_AS_ROOT", "yes");
    assert_not_runnable_every_way(&sb, &path, "missing", optout);
}

#[test]
fn non_executable_real_program_exits_127_naming_the_path() {
    require!(root);
    let sb = Sandbox::new("noexec");
    let path = sb.program_in(&sb.real_dir(), "hermes", PROBE, 0o644);
    let mut optout = sb.via_exec("hermes", &[]);
    optout.env("HERMES_DOCKER_EXEC_AS_ROOT", "true");
    assert_not_runnable_every_way(&sb, &path, "0644", optout);
}

#[test]
fn default_real_dir_is_opt_hermes_venv_bin() {
    require!(root);
    let sb = Sandbox::new("defaultdir");
    // A fake /opt, bind-mounted over the real one inside the namespace only.
    let fake_opt = sb.path("opt");
    let bin_dir = fake_opt.join("hermes/.venv/bin");
    fs::create_dir_all(&bin_dir).unwrap();
    for d in [
        fake_opt.clone(),
        fake_opt.join("hermes"),
        fake_opt.join("hermes/.venv"),
        bin_dir.clone(),
    ] {
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
    }
    sb.program_in(&bin_dir, "hermes", PROBE, 0o755);
    let mut cmd = sb.command_with_mounts(&[(fake_opt, "/opt")], &[sb.link("hermes").into()]);
    cmd.env_remove("HERMES_SHIM_REAL_DIR");
    let r = sb.report(&sb.run(cmd), "default HERMES_SHIM_REAL_DIR");
    assert_dropped_to_hermes(&r, "default HERMES_SHIM_REAL_DIR");
}

#[test]
fn arguments_pass_through_byte_exact() {
    require!(root);
    let sb = Sandbox::new("argv");
    sb.probe("hermes");
    let all: Vec<OsString> = vec![
        os("plain"),
        os(""),
        OsString::from_vec(b"non-utf8 \xff\xfe\x80".to_vec()),
        os(""),
        os("with space"),
        os("line\nbreak"),
        os("$HOME *"),
        os("-x"),
        os("--help"),
        os("--"),
        os("--version"),
        os(""),
    ];
    // Options of the shim's own CLI must reach the program too, whatever their position.
    let cases: Vec<Vec<OsString>> = vec![
        all,
        vec![],
        vec![os("")],
        vec![os("--help")],
        vec![os("--version")],
        vec![os("-h"), os("x")],
        vec![os("--"), os("-x")],
        vec![os("a"), os("--"), os("--")],
        vec![os("exec"), os("hermes")],
    ];
    // Every case on both entries, collecting all mismatches so one run shows the whole picture.
    let mut failures = Vec::new();
    for args in &cases {
        let expected: Vec<u8> = args
            .iter()
            .flat_map(|a| a.as_bytes().iter().copied().chain([0]))
            .collect();
        for (what, cmd) in [
            ("symlink", sb.via_link("hermes", args)),
            ("exec", sb.via_exec("hermes", args)),
        ] {
            let o = sb.run(cmd);
            if o.status.code() != Some(0) || !sb.ran() {
                failures.push(format!(
                    "{what} {args:?}: program did not run ({:?}); stdout {:?}",
                    o.status,
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .next()
                        .unwrap_or("")
                ));
                continue;
            }
            let got = fs::read(sb.out().join("argv")).unwrap();
            if got != expected {
                let got: Vec<OsString> = got
                    .split(|b| *b == 0)
                    .map(|a| OsString::from_vec(a.to_vec()))
                    .collect();
                failures.push(format!(
                    "{what} {args:?}: program got {:?}",
                    &got[..got.len() - 1]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "argv not passed through:\n{}",
        failures.join("\n")
    );
}

#[test]
fn exit_code_passes_through() {
    require!(root);
    let sb = Sandbox::new("exit42");
    sb.program("hermes", "echo ran > \"$out/ran\"\nexit 42\n");
    let mut optout = sb.via_link("hermes", &[]);
    optout.env("HERMES_DOCKER_EXEC_AS_ROOT", "1");
    for (what, cmd) in [
        ("symlink", sb.via_link("hermes", &[])),
        ("exec", sb.via_exec("hermes", &[])),
        ("opt-out", optout),
    ] {
        let o = sb.run(cmd);
        assert!(sb.ran(), "{what}: program did not run: {}", o.stderr);
        assert_eq!(o.status.code(), Some(42), "{what}: {}", o.stderr);
    }
}

#[test]
fn signal_death_passes_through() {
    require!(root);
    let sb = Sandbox::new("sigterm");
    sb.program(
        "hermes",
        "echo ran > \"$out/ran\"\nkill -TERM $$\nsleep 5\nexit 3\n",
    );
    for (what, cmd) in [
        ("symlink", sb.via_link("hermes", &[])),
        ("exec", sb.via_exec("hermes", &[])),
    ] {
        let o = sb.run(cmd);
        assert!(sb.ran(), "{what}: program did not run: {}", o.stderr);
        assert_eq!(o.status.signal(), Some(15), "{what}: {:?}", o.status);
        assert_eq!(o.status.code(), None, "{what}");
    }
}

#[test]
fn same_pid_before_and_after_exec() {
    require!(root);
    let sb = Sandbox::new("pid");
    sb.probe("hermes");
    let mut optout = sb.via_exec("hermes", &[]);
    optout.env("HERMES_DOCKER_EXEC_AS_ROOT", "yes");
    for (what, cmd) in [
        ("symlink", sb.via_link("hermes", &[])),
        ("exec", sb.via_exec("hermes", &[])),
        ("opt-out", optout),
    ] {
        let o = sb.run(cmd);
        sb.report(&o, what);
        let pid: u32 = sb.read_out("pid").trim().parse().unwrap();
        assert_eq!(pid, o.pid, "{what}: the program runs in another process");
    }
}

#[test]
fn sigpipe_default_and_empty_mask_in_child() {
    use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, signal, sigprocmask};
    require!(root);
    let sb = Sandbox::new("sigpipe");
    // Not a shell: dash empties the signal mask at startup and would hide what the shim left.
    // The kernel runs `cat /proc/self/status SCRIPT`, so the report is the status of the very
    // process the shim exec'd, on stdout.
    let program = sb.real_dir().join("hermes");
    common::write_program(&program, "#!/bin/cat /proc/self/status\n", 0o755);
    let hostile = |mut cmd: Command| {
        // SAFETY: runs in the forked child before exec; signal(2) and sigprocmask(2) are
        // async-signal-safe and the closure touches no memory shared with the parent.
        unsafe {
            cmd.pre_exec(|| {
                signal(Signal::SIGPIPE, SigHandler::SigIgn)?;
                let mut set = SigSet::empty();
                set.add(Signal::SIGUSR1);
                set.add(Signal::SIGPIPE);
                set.add(Signal::SIGTERM);
                sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
                Ok(())
            });
        }
        cmd
    };
    let status_of = |o: &Outcome, what: &str| {
        assert_eq!(o.status.code(), Some(0), "{what}: {}", o.stderr);
        Report {
            status: String::from_utf8_lossy(&o.stdout).into_owned(),
            env: String::new(),
        }
    };
    let sigpipe_bit = 1u64 << (Signal::SIGPIPE as i32 - 1);
    // Control: run straight, the program inherits the ignored SIGPIPE and the mask, so the
    // assertions below can tell the shim's reset from no change at all.
    let r = status_of(&sb.run(hostile(sb.command(&[program.into()]))), "control");
    assert_ne!(
        r.mask("SigIgn") & sigpipe_bit,
        0,
        "control: SIGPIPE not ignored"
    );
    assert_ne!(r.mask("SigBlk"), 0, "control: mask empty");
    for (what, cmd) in [
        ("symlink", sb.via_link("hermes", &[])),
        ("exec", sb.via_exec("hermes", &[])),
    ] {
        let r = status_of(&sb.run(hostile(cmd)), what);
        assert_eq!(r.ids("Uid"), [HERMES_UID; 4], "{what}: Uid");
        assert_eq!(
            r.mask("SigIgn") & sigpipe_bit,
            0,
            "{what}: SIGPIPE still ignored"
        );
        assert_eq!(r.mask("SigBlk"), 0, "{what}: signal mask not empty");
    }
}

// ---------------------------------------------------------------------------------------------
// What root's session must not hand the dropped program: descriptors, and root's terminal
// ---------------------------------------------------------------------------------------------

/// Reports the probe's open descriptors (one `ls` with no pipeline, whose pipes would show),
/// and whether fd 3 can be read.
const FD_PROBE: &str = r#"ls "/proc/$$/fd" > "$out/fds"
env > "$out/env"
if cat <&3 > "$out/fd3" 2>/dev/null; then echo readable > "$out/fd3-read"; fi
cat "/proc/$$/status" > "$out/status"
echo ran > "$out/ran"
"#;

/// `sh -c 'exec 3<SECRET 7<SECRET; exec SHIM'`: root's shell hands the shim two open files.
fn with_open_secret(sb: &Sandbox, secret: &Path, shim: &Path, env: &[(&str, &str)]) -> Outcome {
    let argv = [
        os("/bin/sh"),
        os("-c"),
        os(r#"exec 3<"$1" 7<"$1"; exec "$2""#),
        os("sh"),
        secret.as_os_str().to_owned(),
        shim.as_os_str().to_owned(),
    ];
    let mut cmd = sb.command(&argv);
    cmd.envs(env.iter().copied());
    sb.run(cmd)
}

#[test]
fn descriptors_above_2_are_closed_after_the_drop_and_only_then() {
    require!(root);
    let sb = Sandbox::new("fds");
    sb.program("hermes", FD_PROBE);
    let secret = sb.path("shadow");
    fs::write(&secret, "root:$6$secret:19000:0:99999:7:::\n").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();

    let o = with_open_secret(&sb, &secret, &sb.link("hermes"), &[]);
    let r = sb.report(&o, "dropped");
    assert_dropped_to_hermes(&r, "dropped");
    // What the shell itself opens (dash keeps its script on fd 10) may be listed too; the two
    // files root's shell handed over must not.
    let has = |fds: &str, fd: &str| fds.lines().any(|f| f == fd);
    let fds = sb.read_out("fds");
    assert!(!has(&fds, "3") && !has(&fds, "7"), "dropped: fds {fds:?}");
    assert!(
        !sb.out().join("fd3-read").exists(),
        "dropped: the program read root's file through fd 3"
    );
    assert_eq!(r.field("NoNewPrivs"), "1", "dropped: NoNewPrivs");
    // No terminal, so no terminal filter: TIOCSTI needs a controlling terminal.
    assert_eq!(
        r.field("Seccomp"),
        "0",
        "dropped without a terminal: Seccomp"
    );

    // The opt-out is a plain exec: what root passes on is root's business.
    let o = with_open_secret(
        &sb,
        &secret,
        &sb.link("hermes"),
        &[("HERMES_DOCKER_EXEC_AS_ROOT", "1")],
    );
    let r = sb.report(&o, "opt-out");
    let fds = sb.read_out("fds");
    assert!(has(&fds, "3") && has(&fds, "7"), "opt-out: fds {fds:?}");
    assert_eq!(sb.read_out("fd3"), fs::read_to_string(&secret).unwrap());
    assert_eq!(r.field("NoNewPrivs"), "0", "opt-out: NoNewPrivs");
    assert_eq!(r.field("Seccomp"), "0", "opt-out: Seccomp");
}

/// Drives an interactive root `sh -i` on a fresh pty, as `docker exec -it c sh` gives one:
/// each step types a line, waits (reading the terminal meanwhile), resizes the window or sends
/// Ctrl-C or Ctrl-Z. Writes the whole terminal transcript to argv[1].
const PTY_DRIVER: &str = r#"import fcntl, os, pty, select, struct, sys, termios, time
pid, fd = pty.fork()
if pid == 0:
    os.execv("/bin/sh", ["sh", "-i"])
seen = bytearray()
def drain(secs):
    end = time.time() + secs
    while True:
        left = end - time.time()
        if left <= 0:
            return
        if select.select([fd], [], [], left)[0]:
            try:
                data = os.read(fd, 4096)
            except OSError:
                return
            if not data:
                return
            seen.extend(data)
for step in sys.argv[2:]:
    kind, _, arg = step.partition(":")
    if kind == "type":
        os.write(fd, arg.encode() + b"\n")
    elif kind == "wait":
        drain(float(arg))
    elif kind == "winsize":
        rows, cols = (int(n) for n in arg.split("x"))
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    elif kind == "intr":
        os.write(fd, b"\x03")
    elif kind == "susp":
        os.write(fd, b"\x1a")
os.write(fd, b"exit\n")
drain(1.0)
try:
    os.kill(pid, 9)
except ProcessLookupError:
    pass
os.waitpid(pid, 0)
with open(sys.argv[1], "wb") as f:
    f.write(seen)
"#;

/// The attacker, run as the program: it pushes a command into the terminal with TIOCSTI, and
/// leaves a child that tries again a second after the program has exited, when root's shell is
/// back at its prompt, and then reads what root types next. Each attempt records what it got.
const INJECTOR: &str = r#"#!/usr/bin/python3
import errno, fcntl, os, select, signal, sys, termios, time
out = sys.argv[1]
def record(tag, result):
    with open("%s/%s" % (out, tag), "w") as f:
        f.write(result)
def inject(tag):
    try:
        for b in ("id -u > %s/pwned-%s\n" % (out, tag)).encode():
            fcntl.ioctl(0, termios.TIOCSTI, bytes([b]))
        record(tag, "injected")
    except OSError as e:
        record(tag, errno.errorcode.get(e.errno, str(e.errno)))
# An attacker's child ignores the hangup its terminal gets when the program exits (set before
# the fork, so the child has it from its first instruction).
signal.signal(signal.SIGHUP, signal.SIG_IGN)
if os.fork() == 0:
    time.sleep(1.0)
    inject("after")
    # Wait until root's shell has started its next command, then leave the session (so job
    # control no longer stops its reads) and read what root types meanwhile.
    time.sleep(1.2)
    try:
        os.setsid()
    except OSError:
        pass
    got = b""
    end = time.time() + 3
    while time.time() < end:
        try:
            if select.select([0], [], [], 0.2)[0]:
                data = os.read(0, 4096)
                if not data:
                    break
                got += data
        except OSError:
            break
    if got:
        record("stolen", got.decode(errors="replace"))
    os._exit(0)
inject("during")
"#;

/// Runs the pty driver as root in the sandbox's namespace; returns the transcript.
fn drive_pty(sb: &Sandbox, steps: &[String]) -> String {
    drive_pty_with(sb, &[], steps)
}

/// [`drive_pty`] with more bind mounts in the namespace.
fn drive_pty_with(sb: &Sandbox, mounts: &[(PathBuf, &str)], steps: &[String]) -> String {
    let driver = sb.path("driver.py");
    fs::write(&driver, PTY_DRIVER).unwrap();
    let transcript = sb.path("transcript");
    let mut argv = vec![
        os("/usr/bin/python3"),
        driver.into_os_string(),
        transcript.clone().into_os_string(),
    ];
    argv.extend(steps.iter().map(OsString::from));
    let o = sb.run(sb.command_with_mounts(mounts, &argv));
    assert_eq!(o.status.code(), Some(0), "pty driver: {}", o.stderr);
    String::from_utf8_lossy(&fs::read(&transcript).unwrap()).into_owned()
}

fn legacy_tiocsti() -> bool {
    fs::read_to_string("/proc/sys/dev/tty/legacy_tiocsti").map_or(true, |v| v.trim() == "1")
}

/// Types `line` (which starts the injector) at root's prompt on a fresh pty, then a command of
/// root's while the injector's child lingers; reports what each attempt got.
fn attack_roots_terminal(sb: &Sandbox, mounts: &[(PathBuf, &str)], line: &str) -> Attempt {
    let out = sb.out();
    sb.reset_out();
    let typed = format!("echo typed-by-root > {}/root-typed", out.display());
    let t = drive_pty_with(
        sb,
        mounts,
        &[
            format!("type:{line}"),
            "wait:2".into(),
            // Root's next command reads nothing, so what root types meanwhile waits in the
            // terminal's queue: whoever reads that terminal now gets it first.
            "type:sleep 2".into(),
            "wait:0.3".into(),
            format!("type:{typed}"),
            "wait:3.5".into(),
        ],
    );
    let read = |name: &str| fs::read_to_string(out.join(name)).ok();
    Attempt {
        during: read("during"),
        after: read("after"),
        stolen: read("stolen"),
        pwned: [read("pwned-during"), read("pwned-after")],
        root_typed: read("root-typed"),
        transcript: t,
    }
}

/// The program, its child and anything they start neither typed into root's terminal nor read
/// what root typed there, and root's own command still ran.
fn assert_roots_terminal_kept(a: &Attempt, what: &str) {
    let t = &a.transcript;
    assert_eq!(
        a.during.as_deref(),
        Some("EPERM"),
        "{what}: during the run\n{t}"
    );
    assert_eq!(
        a.after.as_deref(),
        Some("EPERM"),
        "{what}: lingering child\n{t}"
    );
    assert_eq!(
        a.pwned,
        [None, None],
        "{what}: root ran the program's command\n{t}"
    );
    // The program had a terminal of its own (the relay's pty), closed when it exited: whatever
    // the child does with it, root's typing never reaches it.
    assert!(
        !a.stolen.as_deref().unwrap_or("").contains("typed-by-root"),
        "{what}: the child read root's typing\n{t}"
    );
    assert_eq!(
        a.root_typed.as_deref(),
        Some("typed-by-root\n"),
        "{what}: root's own command still reached root's shell\n{t}"
    );
}

#[test]
fn the_dropped_program_cannot_type_into_or_read_roots_terminal() {
    require!(root, tools: ["python3"]);
    let sb = Sandbox::new("tiocsti");
    common::write_program(&sb.real_dir().join("inject"), INJECTOR, 0o755);
    let out = sb.out();

    // The attack is real here: the same program run as uid 10000 by setpriv, with no guard,
    // gets root's shell to run its command (whenever the kernel still allows TIOCSTI at all)
    // and reads what root types next.
    if legacy_tiocsti() && common::part_has_tool("the unguarded control run", "setpriv") {
        let control = attack_roots_terminal(
            &sb,
            &[],
            &format!(
                "setpriv --reuid=10000 --regid=10000 --clear-groups {} {}",
                sb.real_dir().join("inject").display(),
                out.display()
            ),
        );
        let t = &control.transcript;
        assert_eq!(control.during.as_deref(), Some("injected"), "control: {t}");
        assert_eq!(
            control.pwned[0].as_deref().map(str::trim),
            Some("0"),
            "control: root's shell did not run the injected command; the test would prove nothing\n{t}"
        );
        assert!(
            control
                .stolen
                .as_deref()
                .is_some_and(|s| s.contains("typed-by-root")),
            "control: the child did not read root's typing; the test would prove nothing\n{t}"
        );
    }

    let line = format!("{} {}", sb.link("inject").display(), out.display());
    assert_roots_terminal_kept(&attack_roots_terminal(&sb, &[], &line), "the shim");
}

/// The entrypoint as root runs the start-up repair first: over the sandbox's home, with a /run
/// of the test's own (for its record, and with no Docker socket of the host's in it).
fn entrypoint_line(sb: &Sandbox, program: &str) -> String {
    format!(
        "env HERMES_HOME={} {} entrypoint {program}",
        sb.home().display(),
        common::bin().display()
    )
}

fn own_run(sb: &Sandbox) -> Vec<(PathBuf, &'static str)> {
    let run = sb.path("run");
    let _ = fs::create_dir(&run);
    vec![(run, "/run")]
}

#[test]
fn the_entrypoint_typed_at_a_root_prompt_keeps_roots_terminal_from_the_program() {
    require!(root, tools: ["python3"]);
    // `docker exec -it c sh`, then `/opt/hermes/entrypoint.sh …` by hand: not PID 1, so the
    // program gets a terminal of its own behind the relay, as through the shim.
    let sb = Sandbox::new("entry-tiocsti");
    let inject = sb.real_dir().join("inject");
    common::write_program(&inject, INJECTOR, 0o755);
    let line = entrypoint_line(&sb, &format!("{} {}", inject.display(), sb.out().display()));
    let a = attack_roots_terminal(&sb, &own_run(&sb), &line);
    assert_roots_terminal_kept(&a, "the entrypoint by hand");
}

/// Writes 5000 numbered lines in one go and exits at once: the last of them are still in the
/// pty when the relay learns that the program ended.
const FLOOD: &str = r#"#!/usr/bin/python3
import os
os.write(1, "".join("line %05d\n" % i for i in range(5000)).encode())
"#;

#[test]
fn the_programs_last_output_reaches_root_after_it_ends() {
    require!(root, tools: ["python3"]);
    let sb = Sandbox::new("pty-flood");
    common::write_program(&sb.real_dir().join("flood"), FLOOD, 0o755);
    let t = drive_pty(
        &sb,
        &[
            format!("type:{}; echo done=$?", sb.link("flood").display()),
            "wait:3".into(),
        ],
    );
    let missing: Vec<String> = (0..5000)
        .map(|i| format!("line {i:05}"))
        .filter(|l| t.matches(l.as_str()).count() != 1)
        .collect();
    assert!(missing.is_empty(), "not there exactly once: {missing:?}");
    assert!(t.contains("done=0"), "{t}");
}

/// Opens its controlling terminal, as a program whose 0, 1 and 2 are not terminals could still
/// do to reach root's; records "opened" or the errno's name.
const CTTY_PROBE: &str = r#"#!/usr/bin/python3
import errno, os, sys
try:
    os.close(os.open("/dev/tty", os.O_RDWR))
    result = "opened"
except OSError as e:
    result = errno.errorcode.get(e.errno, str(e.errno))
with open(sys.argv[1] + "/ctty", "w") as f:
    f.write(result)
"#;

#[test]
fn redirected_from_a_root_prompt_the_program_has_no_controlling_terminal() {
    require!(root, tools: ["python3"]);
    let sb = Sandbox::new("ctty");
    common::write_program(&sb.real_dir().join("ctty"), CTTY_PROBE, 0o755);
    let out = sb.out();
    // `hermes </dev/null >log 2>&1` typed at root's prompt: no terminal on 0, 1 or 2, yet the
    // session's controlling terminal is root's, open to anyone in the session by /dev/tty.
    let run = |program: String| {
        sb.reset_out();
        let t = drive_pty(
            &sb,
            &[
                format!(
                    "type:{program} {} </dev/null >/dev/null 2>&1",
                    out.display()
                ),
                "wait:2".into(),
            ],
        );
        (fs::read_to_string(out.join("ctty")).ok(), t)
    };
    if common::part_has_tool("the unguarded control run", "setpriv") {
        let (got, t) = run(format!(
            "setpriv --reuid=10000 --regid=10000 --clear-groups {}",
            sb.real_dir().join("ctty").display()
        ));
        assert_eq!(
            got.as_deref(),
            Some("opened"),
            "control: the test would prove nothing\n{t}"
        );
    }
    let (got, t) = run(sb.link("ctty").display().to_string());
    assert_eq!(
        got.as_deref(),
        Some("ENXIO"),
        "a session of its own, no terminal\n{t}"
    );
}

#[test]
fn redirected_from_a_root_prompt_the_entrypoints_program_has_no_controlling_terminal() {
    require!(root, tools: ["python3"]);
    let sb = Sandbox::new("entry-ctty");
    let probe = sb.real_dir().join("ctty");
    common::write_program(&probe, CTTY_PROBE, 0o755);
    let line = entrypoint_line(&sb, &format!("{} {}", probe.display(), sb.out().display()));
    let t = drive_pty_with(
        &sb,
        &own_run(&sb),
        &[
            format!("type:{line} </dev/null >/dev/null 2>&1"),
            "wait:3".into(),
        ],
    );
    assert_eq!(
        fs::read_to_string(sb.out().join("ctty")).ok().as_deref(),
        Some("ENXIO"),
        "a session of its own, no terminal\n{t}"
    );
}

/// Pushes a command into its controlling terminal through /dev/tty (0, 1 and 2 are not
/// terminals), and records the filter state and what TIOCSTI answered.
const TTY_INJECTOR: &str = r#"#!/usr/bin/python3
import errno, fcntl, os, sys, termios
out = sys.argv[1]
with open(out + "/seccomp", "w") as f:
    f.write([l for l in open("/proc/self/status") if l.startswith("Seccomp:")][0].split()[1])
try:
    fd = os.open("/dev/tty", os.O_RDWR)
    for b in ("id -u > %s/pwned\n" % out).encode():
        fcntl.ioctl(fd, termios.TIOCSTI, bytes([b]))
    result = "injected"
except OSError as e:
    result = errno.errorcode.get(e.errno, str(e.errno))
with open(out + "/tiocsti", "w") as f:
    f.write(result)
"#;

#[test]
fn as_pid_1_a_controlling_terminal_alone_brings_the_filter() {
    require!(root, tools: ["python3", "unshare"]);
    // PID 1 of a PID namespace that kept root's session (unshare forks no new session): the
    // entrypoint stays the program's init and the terminal is the program's, yet with 0, 1 and
    // 2 redirected the controlling terminal is still reachable by /dev/tty, so the filter must
    // go in all the same.
    let sb = Sandbox::new("entry-pid1");
    let probe = sb.real_dir().join("tty-inject");
    common::write_program(&probe, TTY_INJECTOR, 0o755);
    let out = sb.out();
    let line = format!(
        "unshare --pid --fork --mount-proc {} </dev/null >/dev/null 2>&1; echo pid1-done=$?",
        entrypoint_line(&sb, &format!("{} {}", probe.display(), out.display()))
    );
    let t = drive_pty_with(
        &sb,
        &own_run(&sb),
        &[format!("type:{line}"), "wait:3".into()],
    );
    let read = |name: &str| fs::read_to_string(out.join(name)).ok();
    assert!(t.contains("pid1-done=0"), "{t}");
    assert_eq!(
        read("seccomp").as_deref(),
        Some("2"),
        "the filter is in\n{t}"
    );
    assert_eq!(read("tiocsti").as_deref(), Some("EPERM"), "{t}");
    assert_eq!(
        read("pwned"),
        None,
        "root's shell ran the program's command\n{t}"
    );
}

/// What one pty run of the injector left behind.
struct Attempt {
    during: Option<String>,
    after: Option<String>,
    stolen: Option<String>,
    pwned: [Option<String>; 2],
    root_typed: Option<String>,
    transcript: String,
}

/// A program that uses the terminal as `hermes chat` does: reads a line, follows the window
/// size, and is interrupted by Ctrl-C.
const INTERACTIVE: &str = r#"#!/usr/bin/python3
import fcntl, signal, struct, sys, termios, time
out = sys.argv[1]
def size():
    rows, cols = struct.unpack("HHHH", fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8))[:2]
    return "%dx%d" % (rows, cols)
def winch(*_):
    with open(out + "/winsize", "w") as f:
        f.write(size())
signal.signal(signal.SIGWINCH, winch)
signal.signal(signal.SIGINT, signal.SIG_DFL)
with open(out + "/seccomp", "w") as f:
    f.write([l for l in open("/proc/self/status") if l.startswith("Seccomp:")][0])
print("READY", flush=True)
line = sys.stdin.readline()
with open(out + "/read", "w") as f:
    f.write(line)
print("WAITING", flush=True)
time.sleep(30)
with open(out + "/not-interrupted", "w") as f:
    f.write("1")
"#;

#[test]
fn interactive_use_still_works_after_the_drop() {
    require!(root, tools: ["python3"]);
    let sb = Sandbox::new("pty");
    common::write_program(&sb.real_dir().join("chat"), INTERACTIVE, 0o755);
    let t = drive_pty(
        &sb,
        &[
            format!("type:{} {}", sb.link("chat").display(), sb.out().display()),
            "wait:1.5".into(),
            "type:hello from root".into(),
            "wait:0.5".into(),
            "winsize:40x100".into(),
            "wait:0.5".into(),
            "intr".into(),
            "wait:0.5".into(),
            "type:echo status=$?".into(),
            "wait:0.5".into(),
        ],
    );
    let read = |name: &str| fs::read_to_string(sb.out().join(name)).ok();
    assert!(
        t.contains("READY") && t.contains("WAITING"),
        "the program's output reaches root's terminal\n{t}"
    );
    assert_eq!(read("read").as_deref(), Some("hello from root\n"), "{t}");
    assert_eq!(read("winsize").as_deref(), Some("40x100"), "{t}");
    assert_eq!(read("not-interrupted"), None, "Ctrl-C did not stop it\n{t}");
    assert!(t.contains("status=130"), "not ended by SIGINT\n{t}");
    assert_eq!(
        read("seccomp")
            .as_deref()
            .map(|l| l.split_whitespace().nth(1)),
        Some(Some("2")),
        "with a terminal, the terminal filter is on\n{t}"
    );
}

/// A program that reads two lines and exits 42.
const TWO_LINES: &str = r#"#!/usr/bin/python3
import sys
out = sys.argv[1]
for name in ("first", "second"):
    line = sys.stdin.readline()
    with open(out + "/" + name, "w") as f:
        f.write(line)
sys.exit(42)
"#;

#[test]
fn job_control_and_the_exit_status_go_through_the_relay() {
    require!(root, tools: ["python3"]);
    let sb = Sandbox::new("pty-jobs");
    common::write_program(&sb.real_dir().join("two"), TWO_LINES, 0o755);
    let out = sb.out();
    let t = drive_pty(
        &sb,
        &[
            format!("type:{} {}", sb.link("two").display(), out.display()),
            "wait:1.5".into(),
            "type:one".into(),
            "wait:0.5".into(),
            // Ctrl-Z stops the program, and with it the relay: root's shell has the terminal.
            "susp".into(),
            "wait:0.5".into(),
            format!("type:echo root-while-stopped > {}/stopped", out.display()),
            "wait:0.5".into(),
            "type:fg".into(),
            "wait:1".into(),
            "type:two".into(),
            "wait:1".into(),
            format!("type:echo status=$? > {}/status", out.display()),
            "wait:0.5".into(),
        ],
    );
    let read = |name: &str| fs::read_to_string(out.join(name)).ok();
    assert_eq!(read("first").as_deref(), Some("one\n"), "{t}");
    assert_eq!(
        read("stopped").as_deref(),
        Some("root-while-stopped\n"),
        "root's shell ran a command while the program was stopped\n{t}"
    );
    assert_eq!(
        read("second").as_deref(),
        Some("two\n"),
        "fg continued it\n{t}"
    );
    assert_eq!(read("status").as_deref(), Some("status=42\n"), "{t}");
}

#[test]
fn a_working_directory_the_user_cannot_reach_is_left_after_the_drop() {
    require!(root);
    let sb = Sandbox::new("cwd");
    sb.program(
        "hermes",
        "pwd > \"$out/pwd\"\nif cat ./key > \"$out/read\" 2>/dev/null; then echo leaked > \"$out/leaked\"; fi\necho ran > \"$out/ran\"\n",
    );
    // A readable directory inside root's own, which only root may enter (as /root/secret in
    // /root): by path the user cannot get there, through the inherited handle it could.
    let private = sb.path("private");
    let secret = private.join("secret");
    fs::create_dir_all(&secret).unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o700)).unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(secret.join("key"), "TOPSECRET\n").unwrap();
    fs::set_permissions(secret.join("key"), fs::Permissions::from_mode(0o644)).unwrap();
    let mut cmd = sb.via_link("hermes", &[]);
    cmd.current_dir(&secret);
    let o = sb.run(cmd);
    assert_eq!(o.status.code(), Some(0), "{}", o.stderr);
    assert!(
        !sb.out().join("leaked").exists(),
        "the program read ./key through root's working directory"
    );
    assert_eq!(sb.read_out("pwd").trim(), sb.home().to_str().unwrap());
    assert!(
        o.stderr
            .contains("is not reachable by user 'hermes'; starting in"),
        "one line says so: {}",
        o.stderr
    );

    // A directory the user can reach is kept.
    let open = sb.path("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = sb.via_link("hermes", &[]);
    cmd.current_dir(&open);
    let o = sb.run(cmd);
    assert_eq!(o.status.code(), Some(0), "{}", o.stderr);
    assert_eq!(sb.read_out("pwd").trim(), open.to_str().unwrap());
    assert!(o.stderr.is_empty(), "{}", o.stderr);
}

/// The binary starts without Rust's runtime start-up (src/start.rs), so it opens /dev/null
/// on a closed standard stream itself, as that start-up would: the program it runs finds
/// /dev/null there, not a closed descriptor (or a file the shim happened to open).
#[test]
fn a_closed_stdout_reaches_the_program_as_dev_null() {
    require!(root, tools: ["setpriv", "sh", "python3"]);
    // Not root, the shim runs the program straight away; a copy any uid can execute.
    let dir = TempDir::new("closed-stdout");
    let bin = dir.path().join("hermes-shim");
    common::copy_bin(&bin, 0o755);
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
        ])
        .arg(r#"exec "$0" exec python3 -c "$1" >&-"#)
        .arg(&bin)
        .arg(r#"import os, sys; sys.stderr.write(os.readlink("/proc/self/fd/1"))"#)
        .env("HERMES_SHIM_REAL_DIR", "/usr/bin")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "/dev/null");
}
