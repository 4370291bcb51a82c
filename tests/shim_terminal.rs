//! Root integration tests of what root's session must not hand the dropped program: its open
//! descriptors and its terminal (the relay on a real pty: typing, window size, Ctrl-Z and `fg`),
//! and the boundary itself: a control run proves each attack works, then the same attack through
//! the shim fails (TIOCSTI, reading root's terminal, descriptors above 2).
//!
//! Every run happens in the sandbox of tests/common/sandbox.rs: a private mount namespace with
//! the test's own passwd and group, and real programs that report what they saw.

mod common;

use std::ffi::OsString;
use std::fs::{self};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::require;
use common::sandbox::*;

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
/// each step types a line, resizes the window, sends Ctrl-C or Ctrl-Z, or reads the terminal
/// until something happens: the shell prints its prompt again, the terminal shows a marker, a
/// file is written. Writes the whole terminal transcript to argv[1].
const PTY_DRIVER: &str = include_str!("py/pty_driver.py");

/// The attacker, run as the program: it pushes a command into the terminal with TIOCSTI, and
/// leaves a child that tries again once root's shell is back at its prompt (`back` in the
/// output directory), and then, once root's shell runs a command that reads nothing (`busy`),
/// reads what root types next (`read-done` when it stops). Each attempt records what it got.
const INJECTOR: &str = include_str!("py/injector.py");

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
    // A wait that timed out: the test's own checks fail next, and this says where it stalled.
    if !o.stderr.is_empty() {
        eprint!("{}", o.stderr);
    }
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
    let o = out.display();
    let t = drive_pty_with(
        sb,
        mounts,
        &[
            format!("type:{line}; touch {o}/back"),
            // Whatever the child's second attempt pushed is in root's queue before root's next
            // line (and is not mixed with it).
            format!("file:{o}/after"),
            // Root's next command reads nothing until the child has tried to read, so what root
            // types meanwhile waits in the terminal's queue: whoever reads that terminal now gets
            // it first.
            format!("type:echo 1 > {o}/busy; until [ -e {o}/read-done ]; do sleep 0.05; done"),
            format!("file:{o}/busy"),
            format!("type:echo typed-by-root > {o}/root-typed"),
            format!("file:{o}/read-done"),
            // Root's shell reads its queue in order: by the time this prints, it has run root's
            // line unless the child took it, and any command pushed into the queue.
            "type:echo end-$((1+1))".into(),
            "until:end-2".into(),
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

/// A shell line that runs `program` (its file name and text; written to the sandbox and given
/// the output directory) under the entrypoint as PID 1 of a new PID namespace, which keeps
/// root's session (unshare forks no new one), with `redirect`; then prints `pid1-done=STATUS`.
fn entrypoint_as_pid_1(sb: &Sandbox, program: (&str, &str), redirect: &str) -> String {
    let path = sb.real_dir().join(program.0);
    common::write_program(&path, program.1, 0o755);
    format!(
        "unshare --pid --fork --mount-proc {} {redirect}; echo pid1-done=$?",
        entrypoint_line(sb, &format!("{} {}", path.display(), sb.out().display()))
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
const FLOOD: &str = include_str!("py/flood.py");

#[test]
fn the_programs_last_output_reaches_root_after_it_ends() {
    require!(root, tools: ["python3"]);
    let sb = Sandbox::new("pty-flood");
    common::write_program(&sb.real_dir().join("flood"), FLOOD, 0o755);
    let t = drive_pty(
        &sb,
        &[
            format!("type:{}; echo done=$?", sb.link("flood").display()),
            "prompt".into(),
        ],
    );
    let missing: Vec<String> = (0..5000)
        .map(|i| format!("line {i:05}"))
        .filter(|l| t.matches(l.as_str()).count() != 1)
        .collect();
    assert!(missing.is_empty(), "not there exactly once: {missing:?}");
    assert!(t.contains("done=0"), "{t}");
}

/// A shell line that runs the shim as `name` with the sandbox's output directory as its
/// argument, first writing its pid (the relay's, once it execs) to `pid` there.
fn shim_with_its_pid(sb: &Sandbox, name: &str) -> String {
    let o = sb.out();
    let o = o.display();
    format!(
        "sh -c 'echo $$ >{o}/pid; exec {} {o}'",
        sb.link(name).display()
    )
}

/// Says it started (and who its monitor is), waits until the relay has been stopped, writes its
/// last line and ends.
const LAST_WORDS: &str = "#!/bin/sh
echo $PPID >\"$1/monitor\"
touch \"$1/started\"
while [ ! -e \"$1/stopped\" ]; do sleep 0.05; done
echo last-words-of-the-program
touch \"$1/ending\"
";

#[test]
fn output_left_in_the_pty_when_the_program_ends_is_drained() {
    require!(root, tools: ["python3"]);
    // The relay stopped (SIGSTOP) while the program writes its last line and ends, and while the
    // monitor ends after it (a zombie: the stopped relay cannot reap it, so its SIGCHLD is
    // pending): when the relay runs again, its poll finds the program's end and that line at
    // once, and takes the end first. The line then reaches root only through the drain.
    let sb = Sandbox::new("pty-drain");
    sb.program("last", LAST_WORDS);
    let out = sb.out();
    let o = out.display();
    let line = format!(
        "(while [ ! -e {o}/started ]; do sleep 0.05; done; kill -STOP $(cat {o}/pid); \
         touch {o}/stopped; while [ ! -e {o}/ending ]; do sleep 0.05; done; \
         m=$(cat {o}/monitor); while [ -e /proc/$m ] && \
         ! grep -q '^State:.Z' /proc/$m/status 2>/dev/null; do sleep 0.05; done; \
         kill -CONT $(cat {o}/pid)) & {}; echo done=$?",
        shim_with_its_pid(&sb, "last")
    );
    // Without job control, the shell waits through the stop instead of taking the terminal back.
    let t = drive_pty(
        &sb,
        &[
            "type:set +m".into(),
            "prompt".into(),
            format!("type:{line}"),
            "prompt".into(),
        ],
    );
    assert!(out.join("ending").exists(), "the program never ended\n{t}");
    assert!(t.contains("done=0"), "{t}");
    assert!(
        t.contains("last-words-of-the-program"),
        "the program's last line was lost\n{t}"
    );
}

/// Leaves a child in its process group that ignores SIGHUP (the end of the session would not
/// end it) and records a SIGTERM; says so, and waits for it.
const FAMILY: &str = r#"#!/bin/sh
sh -c 'trap "" HUP; trap "echo TERM >$1/child-got; exit 0" TERM; echo $$ >$1/child
while :; do sleep 0.1; done' child "$1" &
while [ ! -e "$1/child" ]; do sleep 0.05; done
touch "$1/started"
wait
"#;

#[test]
fn a_signal_to_roots_shim_reaches_the_programs_whole_group() {
    require!(root, tools: ["python3"]);
    // `docker exec -it c hermes`, then SIGTERM to that exec: the relay passes it to the monitor,
    // and the monitor to the program's process group, a child the program left included.
    let sb = Sandbox::new("pty-group");
    sb.program("family", FAMILY);
    let out = sb.out();
    let o = out.display();
    let line = format!(
        "(while [ ! -e {o}/started ]; do sleep 0.05; done; kill -TERM $(cat {o}/pid)) & \
         {}; echo status=$?",
        shim_with_its_pid(&sb, "family")
    );
    // The child's trap writes what it got as the relay ends, not necessarily before it.
    let t = drive_pty(
        &sb,
        &[
            format!("type:{line}"),
            "prompt".into(),
            format!("file:{o}/child-got"),
        ],
    );
    let got = fs::read_to_string(out.join("child-got")).ok();
    if got.is_none()
        && let Ok(pid) = fs::read_to_string(out.join("child"))
        && let Ok(pid) = pid.trim().parse()
    {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    assert!(t.contains("status=143"), "{t}");
    assert_eq!(
        got.as_deref(),
        Some("TERM\n"),
        "the program's child never got the SIGTERM\n{t}"
    );
}

/// Opens its controlling terminal, as a program whose 0, 1 and 2 are not terminals could still
/// do to reach root's; records "opened" or the errno's name.
const CTTY_PROBE: &str = include_str!("py/ctty_probe.py");

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
                "prompt".into(),
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
            "prompt".into(),
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
const TTY_INJECTOR: &str = include_str!("py/tty_injector.py");

#[test]
fn as_pid_1_a_controlling_terminal_alone_brings_the_filter() {
    require!(root, tools: ["python3", "unshare"]);
    // PID 1 of a PID namespace that kept root's session (unshare forks no new session): the
    // entrypoint stays the program's init and the terminal is the program's, yet with 0, 1 and
    // 2 redirected the controlling terminal is still reachable by /dev/tty, so the filter must
    // go in all the same.
    let sb = Sandbox::new("entry-pid1");
    let out = sb.out();
    let line = entrypoint_as_pid_1(
        &sb,
        ("tty-inject", TTY_INJECTOR),
        "</dev/null >/dev/null 2>&1",
    );
    // What the program pushed into root's terminal would be read before root's next line: by
    // the time that line has run, so has any command of the program's.
    let t = drive_pty_with(
        &sb,
        &own_run(&sb),
        &[
            format!("type:{line}"),
            "prompt".into(),
            "type:echo end-$((1+1))".into(),
            "until:end-2".into(),
        ],
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

/// Records whether its stdin is a terminal and whether its process group is that terminal's
/// foreground.
const FOREGROUND: &str = include_str!("py/foreground.py");

#[test]
fn as_pid_1_on_a_terminal_the_program_leads_its_foreground() {
    require!(root, tools: ["python3", "unshare"]);
    // `docker run -it`: the entrypoint is PID 1 with the terminal on stdin. The program runs in
    // a process group of its own, which must be the terminal's foreground, so that Ctrl-C and
    // window-size changes reach the program and not the init.
    let sb = Sandbox::new("entry-pid1-fg");
    let line = entrypoint_as_pid_1(&sb, ("foreground", FOREGROUND), "");
    let t = drive_pty_with(
        &sb,
        &own_run(&sb),
        &[format!("type:{line}"), "prompt".into()],
    );
    assert!(t.contains("pid1-done=0"), "{t}");
    assert_eq!(
        fs::read_to_string(sb.out().join("fg")).ok().as_deref(),
        Some("tty=1 fg=1"),
        "the program on the terminal, in its foreground\n{t}"
    );
}

#[test]
fn as_pid_1_with_no_terminal_at_all_no_filter_is_added() {
    require!(root, tools: ["unshare", "setsid"]);
    // `docker run` without -t: a session of its own and no terminal anywhere, so the program
    // gets no filter beyond what its caller already had (the probe is paid only on the
    // terminal path).
    let sb = Sandbox::new("entry-pid1-quiet");
    sb.probe("hermes");
    let mut argv: Vec<OsString> = ["setsid", "unshare", "--pid", "--fork", "--mount-proc"]
        .into_iter()
        .map(os)
        .collect();
    argv.extend([common::bin().into_os_string(), os("entrypoint")]);
    let mut cmd = sb.command_with_mounts(&own_run(&sb), &argv);
    cmd.env("HERMES_HOME", sb.home());
    let o = sb.run(cmd);
    assert_eq!(o.status.code(), Some(0), "{}", o.stderr);
    let filters = |status: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Seccomp_filters:"))
            .map(|v| v.trim().to_string())
    };
    let mine = filters(&fs::read_to_string("/proc/self/status").unwrap());
    assert_eq!(
        filters(&sb.read_out("status")),
        mine,
        "the program's filters, against this test's own\n{}",
        o.stderr
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
const INTERACTIVE: &str = include_str!("py/interactive.py");

#[test]
fn interactive_use_still_works_after_the_drop() {
    require!(root, tools: ["python3"]);
    let sb = Sandbox::new("pty");
    common::write_program(&sb.real_dir().join("chat"), INTERACTIVE, 0o755);
    let t = drive_pty(
        &sb,
        &[
            format!("type:{} {}", sb.link("chat").display(), sb.out().display()),
            "until:READY".into(),
            "type:hello from root".into(),
            "until:WAITING".into(),
            "winsize:40x100".into(),
            format!("file:{}/winsize", sb.out().display()),
            "intr".into(),
            // Root's shell is back, so the relay has ended: a line typed before this would go
            // to the program's terminal.
            "prompt".into(),
            "type:echo status=$?".into(),
            "prompt".into(),
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

/// A program that asks for two lines (`want-first`, `want-second`), reads them and exits 42.
const TWO_LINES: &str = include_str!("py/two_lines.py");

#[test]
fn job_control_and_the_exit_status_go_through_the_relay() {
    require!(root, tools: ["python3"]);
    let sb = Sandbox::new("pty-jobs");
    // The reader is a child of the program, as a shell wrapper makes it: Ctrl-Z stops the whole
    // group, and fg must continue the whole group.
    let reader = sb.real_dir().join("two.py");
    common::write_program(&reader, TWO_LINES, 0o755);
    sb.program(
        "two",
        &format!("#!/bin/sh\n{} \"$@\"\nexit $?\n", reader.display()),
    );
    let out = sb.out();
    let t = drive_pty(
        &sb,
        &[
            format!("type:{} {}", sb.link("two").display(), out.display()),
            "until:want-first".into(),
            // The relay passes every key on as typed: root's terminal is raw.
            "raw".into(),
            "type:one".into(),
            "until:want-second".into(),
            // Ctrl-Z stops the program, and with it the relay: root's shell has the terminal
            // (and says so with its prompt), in the modes it had.
            "susp".into(),
            "prompt".into(),
            "cooked".into(),
            format!("type:echo root-while-stopped > {}/stopped", out.display()),
            "prompt".into(),
            // Root's shell reads only `fg`; the relay, continued, makes root's terminal raw
            // again, and the next line waits there until it reads it (taking the terminal
            // back does not flush it).
            "type:fg".into(),
            "raw".into(),
            "type:two".into(),
            "prompt".into(),
            // The program has ended: root's terminal is as it was.
            "cooked".into(),
            format!("type:echo status=$? > {}/status", out.display()),
            "prompt".into(),
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
