//! The `entrypoint` applet: the container's main program.
//!
//! As root it repairs `$HERMES_HOME` once per container start (unless a start-up repair already
//! ran in this start, which it knows from the record that repair left, see [`crate::record`]),
//! then runs the chosen program as the hermes user through the same verified drop as the shim.
//! Under an init (s6-overlay's `/init`, `docker run --init`) the program replaces this process;
//! as PID 1 without one, this process stays a minimal init for it ([`crate::init`]). Either way
//! the program's exit code is the container's.

use std::ffi::{OsStr, OsString};
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use crate::exec::{self, Caller, Launch, Prepared};
use crate::exit::Exit;
use crate::settings::Settings;
use crate::sys::process;
use crate::{record, sys};

/// What the container runs, from its arguments.
#[derive(Debug, PartialEq, Eq)]
pub enum Program<'a> {
    /// `hermes` with these arguments (none, or arguments such as `chat --help`).
    Hermes(&'a [OsString]),
    /// A program found on PATH (or given by path), with the rest of the arguments.
    Other(PathBuf, &'a [OsString]),
}

/// Chooses the program: no arguments → hermes; a first argument that is a program on `path`
/// (or an executable path) → that program; anything else → hermes with all the arguments.
pub fn choose<'a>(
    args: &'a [OsString],
    path: Option<&OsStr>,
    is_exe: impl Fn(&Path) -> bool,
) -> Program<'a> {
    let Some(first) = args.first() else {
        return Program::Hermes(args);
    };
    if first.is_empty() || first.as_bytes().starts_with(b"-") {
        return Program::Hermes(args);
    }
    let found = if first.as_bytes().contains(&b'/') {
        Some(PathBuf::from(first)).filter(|p| is_exe(p))
    } else {
        path.into_iter()
            .flat_map(std::env::split_paths)
            .filter(|d| d.is_absolute())
            .map(|d| d.join(first))
            .find(|p| is_exe(p))
    };
    match found {
        Some(p) => Program::Other(p, &args[1..]),
        None => Program::Hermes(args),
    }
}

fn executable_file(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs the applet; returns only when the program could not be started, or (as PID 1) with its
/// exit status.
pub fn run(args: &[OsString], me: Option<&Metadata>, settings: &Settings) -> Exit {
    // A program found on PATH may well be the shim itself (/opt/hermes/bin/hermes): run as the
    // hermes user it passes straight through, so only `hermes-shim entrypoint` again, which
    // would exec itself forever, is refused as a loop.
    let found = match choose(args, settings.path.as_deref(), executable_file) {
        Program::Other(p, rest) => {
            let again = rest.first().is_some_and(|a| a == "entrypoint");
            Ok((p, rest, me.filter(|_| again)))
        }
        Program::Hermes(rest) => {
            exec::real_program(&settings.real_dir, OsStr::new("hermes")).map(|p| (p, rest, me))
        }
    };
    let checked = found
        .and_then(|(p, rest, loop_check)| exec::check_program(&p, loop_check).map(|()| (p, rest)));
    let (program, rest) = match checked {
        Ok(found) => found,
        Err(e) => {
            say!("hermes-shim: {e}");
            return e.exit();
        }
    };
    let pid1 = process::is_pid1();
    let (ruid, ..) = sys::caller_ids();
    if ruid != 0 {
        // No drop, so nothing of root's to keep from the program: no relay.
        let how = Launch::for_main(pid1, false);
        let low = crate::users::LowGids::of_container(Some(&settings.home));
        let hermes = exec::target(settings, &low).ok().map(|t| t.uid);
        if let Some(why) = unusable_home(ruid, hermes, &settings.home) {
            say!("{why}");
            return Exit::NotRun;
        }
        return how.start(&Prepared::new(&program, rest, None));
    }
    if let Some(code) = record::this_start() {
        say!(
            "hermes-shim entrypoint: the start-up repair already ran in this container start (exit {code}); not repairing again"
        );
    } else {
        say!(
            "hermes-shim entrypoint: no start-up repair has run in this container start; repairing now"
        );
        if let Some(why) = repair_verdict(&repair_once()) {
            say!("{why}");
        }
    }
    // Run by hand from a root prompt (`docker exec -it c sh`, then the entrypoint), the
    // program must not get root's terminal any more than through the shim.
    let how = Launch::for_main_here(pid1);
    exec::run_as_target(&program, rest, how, Caller::Entrypoint, settings)
}

/// Why a container started as `ruid` (neither root nor the hermes user `hermes`, e.g. `docker
/// run --user 1234`) cannot work: its `HERMES_HOME` is not writable by it, so hermes would fail
/// at its first write. `None` when it can: the hermes user itself, or a home made writable for
/// that uid (a pre-chowned bind mount, Kubernetes `fsGroup`).
fn unusable_home(ruid: u32, hermes: Option<u32>, home: &Path) -> Option<String> {
    if hermes == Some(ruid) {
        return None;
    }
    let e = sys::fs::writable(home).err()?;
    Some(format!(
        "hermes-shim entrypoint: uid {ruid} cannot write HERMES_HOME {} ({e}) — start the container as root with HERMES_UID={ruid} HERMES_GID=<gid> (or PUID/PGID), so the image remaps the hermes user to those ids and its files follow; or give uid {ruid} a writable HERMES_HOME (a volume chowned to it, or Kubernetes fsGroup)",
        crate::escape::shown(home),
    ))
}

/// What to say of how the start-up repair ended: nothing for 0 or 2 (`boot` says itself what it
/// did, and WARNS on a refusal), a WARNING for anything else (a crash, a signal, no start).
fn repair_verdict(status: &std::io::Result<std::process::ExitStatus>) -> Option<String> {
    match status.as_ref().map(std::process::ExitStatus::code) {
        Ok(Some(c)) if c == i32::from(Exit::Ok.code()) || c == i32::from(Exit::Refused.code()) => {
            None
        }
        _ => Some(format!(
            "hermes-shim entrypoint: WARNING: ownership repair failed ({status:?}); starting anyway"
        )),
    }
}

/// The start-up repair (`boot`: remap, then sweep) for containers without s6-overlay, run as a
/// child process of this very binary: whatever happens to it (a refusal, a crash), this process
/// goes on to start the program, because a gateway that can read most of its files beats a
/// container that will not start. The repair reports its own findings on the shared stderr.
fn repair_once() -> std::io::Result<std::process::ExitStatus> {
    // argv[0] picks the applet in a multi-call binary: "exe" would be the shim for "exe".
    std::process::Command::new("/proc/self/exe")
        .arg0(crate::cli::SELF_NAME)
        .arg("boot")
        .stdin(std::process::Stdio::null())
        .status()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn program_table() {
        let on_path = |p: &Path| {
            matches!(
                p.to_str(),
                Some("/usr/bin/sleep" | "/bin/bash" | "/opt/x/tool")
            )
        };
        let path = Some(OsStr::new("/usr/local/bin:relative:/usr/bin:/bin"));
        let none = args(&[]);
        assert_eq!(choose(&none, path, on_path), Program::Hermes(&none));
        let a = args(&["sleep", "infinity"]);
        assert_eq!(
            choose(&a, path, on_path),
            Program::Other("/usr/bin/sleep".into(), &a[1..])
        );
        let a = args(&["bash", "-c", "exit 42"]);
        assert_eq!(
            choose(&a, path, on_path),
            Program::Other("/bin/bash".into(), &a[1..])
        );
        let a = args(&["chat", "--help"]);
        assert_eq!(choose(&a, path, on_path), Program::Hermes(&a));
        let a = args(&["--version"]);
        assert_eq!(choose(&a, path, on_path), Program::Hermes(&a));
        let a = args(&["/opt/x/tool", "y"]);
        assert_eq!(
            choose(&a, path, on_path),
            Program::Other("/opt/x/tool".into(), &a[1..])
        );
        let a = args(&["/opt/x/missing"]);
        assert_eq!(choose(&a, path, on_path), Program::Hermes(&a));
        let a = args(&["tool"]);
        assert_eq!(
            choose(&a, Some(OsStr::new("opt/x")), on_path),
            Program::Hermes(&a),
            "relative PATH entries are ignored"
        );
        assert_eq!(
            choose(&args(&["sleep"]), None, on_path),
            Program::Hermes(&args(&["sleep"])[..])
        );
        // Options and an empty word are hermes's even where PATH has a program of that name.
        let anything = |_: &Path| true;
        for a in [args(&["--version"]), args(&["-h", "x"]), args(&[""])] {
            assert_eq!(choose(&a, path, anything), Program::Hermes(&a), "{a:?}");
        }
        let a = args(&["chat"]);
        assert_eq!(
            choose(&a, path, anything),
            Program::Other("/usr/local/bin/chat".into(), &a[1..]),
            "the first absolute PATH entry wins"
        );
    }

    #[test]
    fn only_regular_files_with_an_execute_bit_count_as_programs() {
        assert!(executable_file(Path::new("/bin/sh")), "a program");
        assert!(
            !executable_file(Path::new("/etc/passwd")),
            "a file no one may run"
        );
        assert!(
            !executable_file(Path::new("/")),
            "a directory, searchable but no program"
        );
        assert!(
            !executable_file(Path::new("/nonexistent/hermes")),
            "nothing there"
        );
    }

    #[test]
    fn a_repair_that_ended_0_or_2_speaks_for_itself_anything_else_is_a_warning() {
        use std::os::unix::process::ExitStatusExt;
        use std::process::ExitStatus;
        // Wait statuses as the kernel reports them: an exit code in the high byte, else a signal.
        let exited = |code: i32| Ok(ExitStatus::from_raw(code << 8));
        assert_eq!(repair_verdict(&exited(0)), None, "repaired");
        assert_eq!(
            repair_verdict(&exited(2)),
            None,
            "refused: boot WARNS itself"
        );
        for (status, what) in [
            (exited(1), "some entries could not be fixed"),
            (exited(3), "an exit code boot never uses"),
            (Ok(ExitStatus::from_raw(9)), "killed by SIGKILL"),
            (Err(std::io::Error::from_raw_os_error(2)), "never started"),
        ] {
            let said = repair_verdict(&status).unwrap_or_else(|| panic!("{what}: no warning"));
            assert!(
                said.contains("WARNING") && said.contains("starting anyway"),
                "{what}: {said}"
            );
        }
    }

    #[test]
    fn a_home_the_caller_cannot_write_is_named_with_its_remedy() {
        let nowhere = Path::new("/nonexistent/opt/data");
        assert_eq!(
            unusable_home(10000, Some(10000), nowhere),
            None,
            "the hermes user itself"
        );
        let said = unusable_home(1234, Some(10000), nowhere).expect("a home that is not there");
        for needle in [
            "uid 1234",
            "/nonexistent/opt/data",
            "HERMES_UID=1234",
            "fsGroup",
        ] {
            assert!(said.contains(needle), "{needle:?} missing from {said:?}");
        }
        // The home this test can write (whoever runs it: the real uid decides) is usable.
        let own = std::env::temp_dir();
        assert_eq!(unusable_home(u32::MAX - 1, None, &own), None);
    }
}
