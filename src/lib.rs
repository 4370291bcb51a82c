//! hermes-shim: one multi-call binary for the Hermes Agent image, as a library under a thin
//! binary (`src/main.rs`, whose only work is the process entry point in `src/start.rs`).
//!
//! Called as `hermes-shim`, it is a command with applets (`exec`, `fix-ownership`, `boot`,
//! `install`, `entrypoint`, `tini`, `doctor`); called as `tini`, it is the `tini` applet (tini's
//! options, for guides written for upstream's /usr/bin/tini); called under any other name (a symlink such as
//! /opt/hermes/bin/hermes), it is the shim for the venv console script of that name. The
//! environment is read once, into [`settings::Settings`], and handed to the applet.
#![deny(unsafe_code)]

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
mod exec;
mod exit;
mod fix;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod init;
mod install;
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

pub use exit::Exit;
use settings::Settings;
use std::ffi::OsString;

/// The program, called from the binary's entry point (`src/start.rs`); returns its exit code.
#[must_use]
pub fn run() -> Exit {
    let args: Vec<OsString> = std::env::args_os().collect();
    let argv0 = args
        .first()
        .cloned()
        .unwrap_or_else(|| cli::SELF_NAME.into());
    // No applet runs setuid or setgid: installed that way, any user could chown as root.
    let me = exec::self_exe();
    if let Some(exit) = exec::refuse_setuid(me.as_ref()) {
        return exit;
    }
    let me = me.as_ref();
    let settings = Settings::from_env();
    match cli::dispatch(&argv0) {
        cli::Dispatch::Shim(name) => shim::run(name, &args[1..], me, &settings),
        cli::Dispatch::Tini => tini::run(&args[1..]),
        // tini's options are its own, parsed by hand like `exec`'s arguments.
        cli::Dispatch::Command if args.get(1).is_some_and(|a| a == cli::TINI_NAME) => {
            tini::run(&args[2..])
        }
        // `exec NAME ARGS…` is parsed by hand: clap would claim `--help`, `-h` or a first `--`
        // among ARGS, and the shim promises the program its arguments untouched.
        cli::Dispatch::Command if cli::is_exec(&args) => {
            shim::run(&args[2], &args[3..], me, &settings)
        }
        cli::Dispatch::Command => match cli::parse(&args).command {
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
