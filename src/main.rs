//! hermes-shim: one multi-call binary for the Hermes Agent image.
//!
//! Called as `hermes-shim`, it is a command with applets (`exec`, `fix-ownership`, `boot`,
//! `install`, `entrypoint`, `tini`, `doctor`); called as `tini`, it is the `tini` applet (tini's
//! options, for guides written for upstream's /usr/bin/tini); called under any other name (a symlink such as
//! /opt/hermes/bin/hermes), it is the shim for the venv console script of that name. The
//! environment is read once, into [`settings::Settings`], and handed to the applet.
#![deny(unsafe_code)]
// The process starts at `sys::start::main`, not through Rust's runtime start-up: see there.
#![cfg_attr(not(test), no_main)]

/// One line on stderr. Unlike `eprintln!` it never panics: a closed stderr (`… 2>&1 | head`)
/// must not turn a sweep or a refusal into an abort.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        // One write per line, so that lines from processes sharing the stream never interleave.
        let mut line = format!($($arg)*);
        line.push('\n');
        let _ = std::io::stderr().write_all(line.as_bytes());
    }};
}

mod boot;
mod cli;
mod doctor;
mod entrypoint;
mod escape;
mod etcfile;
mod exit;
mod fix;
mod init;
mod install;
mod policy;
mod record;
mod relay;
mod settings;
mod shim;
#[allow(unsafe_code)]
mod sys;
#[cfg(test)]
mod testing;
mod tini;
mod users;

use exit::Exit;
use settings::Settings;
use std::ffi::{OsStr, OsString};
use std::path::Path;

/// The name this binary answers to as a command rather than as a shim.
const SELF_NAME: &str = "hermes-shim";
/// The name under which it is the `tini` applet.
const TINI_NAME: &str = "tini";

/// What argv[0] asks for: the applet command, or the shim for a console script.
#[derive(Debug, PartialEq, Eq)]
enum Dispatch<'a> {
    Command,
    Tini,
    Shim(&'a OsStr),
}

fn dispatch(argv0: &OsStr) -> Dispatch<'_> {
    match Path::new(argv0).file_name() {
        Some(name) if name == TINI_NAME => Dispatch::Tini,
        Some(name) if name != SELF_NAME => Dispatch::Shim(name),
        _ => Dispatch::Command,
    }
}

/// `hermes-shim exec NAME …` with a NAME (not an option such as `--help`, left to clap).
fn is_exec(args: &[OsString]) -> bool {
    args.get(1).is_some_and(|a| a == "exec")
        && args
            .get(2)
            .is_some_and(|n| !n.as_encoded_bytes().starts_with(b"-"))
}

/// The program, called from the entry point in `sys::start`; returns its exit code.
#[cfg_attr(test, allow(dead_code))]
fn run() -> Exit {
    let args: Vec<OsString> = std::env::args_os().collect();
    let argv0 = args.first().cloned().unwrap_or_else(|| SELF_NAME.into());
    // No applet runs setuid or setgid: installed that way, any user could chown as root.
    let me = shim::self_exe();
    if let Some(exit) = shim::refuse_setuid(me.as_ref()) {
        return exit;
    }
    let me = me.as_ref();
    let settings = Settings::from_env();
    match dispatch(&argv0) {
        Dispatch::Shim(name) => shim::run(name, &args[1..], me, &settings),
        Dispatch::Tini => tini::run(&args[1..]),
        // tini's options are its own, parsed by hand like `exec`'s arguments.
        Dispatch::Command if args.get(1).is_some_and(|a| a == TINI_NAME) => tini::run(&args[2..]),
        // `exec NAME ARGS…` is parsed by hand: clap would claim `--help`, `-h` or a first `--`
        // among ARGS, and the shim promises the program its arguments untouched.
        Dispatch::Command if is_exec(&args) => shim::run(&args[2], &args[3..], me, &settings),
        Dispatch::Command => match cli::parse(&args).command {
            cli::Command::Exec { name, args } => shim::run(&name, &args, me, &settings),
            cli::Command::FixOwnership(opts) => fix::run(&opts, &settings),
            cli::Command::Boot => boot::run(&settings),
            cli::Command::Install {
                venv,
                distribution,
                dry_run,
            } => install::run(venv, &distribution, dry_run, &settings),
            cli::Command::Entrypoint { args } => entrypoint::run(&args, me, &settings),
            cli::Command::Tini { args } => tini::run(&args),
            cli::Command::Doctor { json } => doctor::run(json, &settings),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv0_dispatch() {
        let shim = |s: &'static str| Dispatch::Shim(OsStr::new(s));
        let table = [
            ("hermes-shim", Dispatch::Command),
            ("/opt/hermes/bin/hermes-shim", Dispatch::Command),
            ("./target/debug/hermes-shim", Dispatch::Command),
            ("", Dispatch::Command),
            ("/", Dispatch::Command),
            ("hermes", shim("hermes")),
            ("/opt/hermes/bin/hermes", shim("hermes")),
            ("/opt/hermes/bin/hermes-agent", shim("hermes-agent")),
            ("hermes-acp", shim("hermes-acp")),
            ("tini", Dispatch::Tini),
            ("/usr/bin/tini", Dispatch::Tini),
            ("tini-static", shim("tini-static")),
            ("/x/hermes-shim.old", shim("hermes-shim.old")),
        ];
        for (argv0, want) in table {
            assert_eq!(dispatch(OsStr::new(argv0)), want, "{argv0:?}");
        }
    }

    #[test]
    fn exec_is_parsed_by_hand_only_with_a_name() {
        let v = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(is_exec(&v(&["hermes-shim", "exec", "hermes", "--help"])));
        assert!(is_exec(&v(&["hermes-shim", "exec", "hermes", "--", "-x"])));
        assert!(!is_exec(&v(&["hermes-shim", "exec", "--help"])));
        assert!(!is_exec(&v(&["hermes-shim", "exec"])));
        assert!(!is_exec(&v(&["hermes-shim", "fix-ownership", "exec"])));
    }
}
