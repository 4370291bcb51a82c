//! The `tini` applet: the binary called as `tini` (the image's /usr/bin/tini), for compose files
//! and guides written for upstream's image, which start a program with `tini -- PROGRAM ARGS…`.
//!
//! It takes tini's options and, as PID 1 (or a subreaper, `-s`), does an init's duties for the
//! program with the entrypoint's supervisor ([`crate::init`]): the program in its own process
//! group, every signal passed on, orphans reaped, its exit status returned (128 + N when signal
//! N killed it). Like tini it changes no ids: run as root, the program runs as root. Only a
//! program that is itself the shim drops (`tini -- hermes …`, /opt/hermes/bin/hermes).
//!
//! Where it differs from tini 0.19 (read against its tini.c): a bad option or a missing program
//! exits 2 with one line (tini: usage text, 1), as every usage error of this binary does, and a
//! failed `-p` or `-s` set-up exits 126 (tini: 1); options end at the first argument that is not
//! one, so `tini sh -c …` works without `--` (glibc's getopt, which permutes, takes `-c` for
//! tini's own); `-p` also takes a name without `SIG`, and `-e` only plain digits; `-v` lines go
//! to stderr (tini prints its info lines on stdout, mixed into the program's); `-l` and
//! `--version` name hermes-shim and its licence, not tini's; the `TINI_*` environment variables
//! are not read, and `-R` (respawn, in tini's development tree, not in 0.19) is an unknown
//! option; SIGTTIN and SIGTTOU are passed on like any other signal, as the entrypoint's
//! supervisor does (tini ignores them).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;

use nix::errno::Errno;
use nix::sys::signal::Signal;

use crate::exit::Exit;
use crate::init::{self, Supervision};
use crate::sys::{self, process};

/// What the options ask for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// `-s`: register as the children's subreaper, so orphans come to us when not PID 1.
    pub subreaper: bool,
    /// `-g`: signals go to the program's process group, not the program alone.
    pub group: bool,
    /// 1 + the number of `-v`.
    pub verbosity: u8,
    /// `-w`: a line for each zombie reaped.
    pub warn_reap: bool,
    /// `-p SIG`: the signal we get when our parent dies.
    pub parent_death: Option<Signal>,
    /// `-e CODE` (repeatable): these exit codes of the program become 0.
    pub remap: Vec<u8>,
    /// The program and its arguments.
    pub program: Vec<OsString>,
}

/// The outcome of parsing.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Run(Options),
    /// `-h`.
    Help,
    /// `-l`.
    License,
    /// `--version`, alone.
    Version,
}

const USAGE: &str =
    "usage: tini [-h] [-s] [-p SIGNAL] [-v] [-w] [-g] [-e EXIT_CODE] [-l] [--] PROGRAM [ARGS...]";

/// `-h`: what each option does.
fn help() -> String {
    format!(
        "{USAGE}
hermes-shim's tini: runs PROGRAM as its init (when PID 1, or with -s), passing signals on and
reaping zombies; exits with PROGRAM's status (128 + N when signal N killed it). It changes no
ids: PROGRAM runs as the caller.

  --          the end of the options (optional: they also end at PROGRAM)
  -h          this help
  -s          register as the subreaper of every descendant (for when not PID 1)
  -p SIGNAL   get SIGNAL (SIGTERM, TERM, ...) when the parent process dies
  -v          more to say; repeat for more (-vv: each signal passed on)
  -w          a line for each zombie reaped
  -g          pass signals to PROGRAM's process group, not PROGRAM alone
  -e CODE     exit 0 when PROGRAM exits CODE (0-255); repeatable
  -l          the licence, then exit
Exit codes: PROGRAM's; 2 a bad option; 126 PROGRAM cannot be run; 127 PROGRAM not found."
    )
}

/// Parses tini's command line after its name. `Err` is the one line to say (exit 2).
pub fn parse(args: &[OsString]) -> Result<Parsed, String> {
    if args.len() == 1 && args[0] == "--version" {
        return Ok(Parsed::Version);
    }
    let mut o = Options {
        verbosity: 1,
        ..Options::default()
    };
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        let bytes = arg.as_encoded_bytes();
        if arg == "--" {
            i += 1;
            break;
        }
        if bytes.len() < 2 || bytes[0] != b'-' {
            break;
        }
        if bytes[1] == b'-' {
            return Err(format!("unknown option {}; {USAGE}", arg.to_string_lossy()));
        }
        i += 1;
        for (at, &c) in bytes.iter().enumerate().skip(1) {
            match c {
                b'h' => return Ok(Parsed::Help),
                b'l' => return Ok(Parsed::License),
                b's' => o.subreaper = true,
                b'g' => o.group = true,
                b'w' => o.warn_reap = true,
                b'v' => o.verbosity = o.verbosity.saturating_add(1),
                b'p' | b'e' => {
                    // The value is the rest of this argument (-e3) or the next one (-e 3).
                    let value = if at + 1 < bytes.len() {
                        String::from_utf8_lossy(&bytes[at + 1..]).into_owned()
                    } else {
                        let next = args.get(i).ok_or_else(|| {
                            format!("option -{} needs a value; {USAGE}", char::from(c))
                        })?;
                        i += 1;
                        next.to_string_lossy().into_owned()
                    };
                    if c == b'p' {
                        o.parent_death = Some(signal(&value)?);
                    } else {
                        o.remap.push(exit_code(&value)?);
                    }
                    break;
                }
                _ => {
                    return Err(format!(
                        "unknown option -{}; {USAGE}",
                        String::from_utf8_lossy(&[c])
                    ));
                }
            }
        }
    }
    o.program = args[i.min(args.len())..].to_vec();
    if o.program.is_empty() {
        return Err(format!("no program to run; {USAGE}"));
    }
    Ok(Parsed::Run(o))
}

/// `-p`'s value: SIGTERM or TERM (any signal name), case as written.
fn signal(value: &str) -> Result<Signal, String> {
    let name = if value.starts_with("SIG") {
        value.to_string()
    } else {
        format!("SIG{value}")
    };
    name.parse::<Signal>()
        .map_err(|_| format!("-p {value}: not a signal name (give one such as SIGTERM or SIGKILL)"))
}

/// `-e`'s value: a decimal exit code, 0 to 255.
fn exit_code(value: &str) -> Result<u8, String> {
    value
        .parse::<u8>()
        .map_err(|_| format!("-e {value}: not an exit code (give a number from 0 to 255)"))
}

/// The exit code the program's `code` becomes: 0 if `-e` named it.
pub fn remapped(code: u8, remap: &[u8]) -> u8 {
    if remap.contains(&code) { 0 } else { code }
}

/// Runs the applet on the arguments after its name.
pub fn run(args: &[OsString]) -> Exit {
    let o = match parse(args) {
        Ok(Parsed::Run(o)) => o,
        Ok(Parsed::Help) => {
            println!("{}", help());
            return Exit::Ok;
        }
        Ok(Parsed::License) => {
            println!(
                "The tini applet of hermes-shim {}: MIT licence (Cargo.toml). It is not tini.",
                crate::cli::version()
            );
            return Exit::Ok;
        }
        Ok(Parsed::Version) => {
            println!("tini (hermes-shim {})", crate::cli::version());
            return Exit::Ok;
        }
        Err(line) => {
            say!("hermes-shim tini: {line}");
            return Exit::Refused;
        }
    };
    if let Some(sig) = o.parent_death
        && let Err(e) = nix::sys::prctl::set_pdeathsig(sig)
    {
        say!(
            "hermes-shim tini: cannot set the parent-death signal {sig} (prctl: {e}); not running the program"
        );
        return Exit::NotRun;
    }
    let pid1 = process::is_pid1();
    if o.subreaper && !pid1 {
        if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
            say!(
                "hermes-shim tini: cannot become a subreaper (prctl: {e}); not running the program"
            );
            return Exit::NotRun;
        }
    } else if !pid1 && o.verbosity >= 1 {
        say!(
            "hermes-shim tini: WARNING: not PID 1 and not a subreaper (-s): orphans of the program will not be reaped here"
        );
    }
    let how = Supervision {
        who: "hermes-shim tini",
        group: o.group,
        warn_reap: o.warn_reap,
        verbosity: o.verbosity,
    };
    match init::supervise_with(&how, || exec(&o.program)) {
        Exit::Program(code) => Exit::Program(remapped(code, &o.remap)),
        other => other,
    }
}

/// Execs the program, found on PATH as a shell would; returns only on failure (127 not found,
/// 126 cannot be run, as tini and the shell).
fn exec(program: &[OsString]) -> Exit {
    if let Err(e) = sys::reset_signals() {
        say!("hermes-shim tini: cannot reset the signal mask ({e}); not running the program");
        return Exit::NotRun;
    }
    let e = std::process::Command::new(&program[0])
        .args(&program[1..])
        .exec();
    let errno = sys::errno_of(&e);
    say!(
        "hermes-shim tini: cannot run {}: {errno}",
        program[0].to_string_lossy()
    );
    if errno == Errno::ENOENT {
        Exit::NotFound
    } else {
        Exit::NotRun
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    fn run_opts(a: &[&str]) -> Options {
        match parse(&args(a)) {
            Ok(Parsed::Run(o)) => o,
            other => panic!("{a:?}: {other:?}"),
        }
    }

    #[test]
    fn the_program_follows_the_options_with_or_without_a_double_dash() {
        let o = run_opts(&["--", "sh", "-c", "exit 3"]);
        assert_eq!(o.program, args(&["sh", "-c", "exit 3"]));
        assert_eq!(o.verbosity, 1);
        assert!(!o.subreaper && !o.group && !o.warn_reap && o.remap.is_empty());
        assert_eq!(
            run_opts(&["sh", "-c", "x"]).program,
            args(&["sh", "-c", "x"])
        );
        // After `--`, and after the program's name, nothing is ours.
        assert_eq!(run_opts(&["--", "-s"]).program, args(&["-s"]));
        assert_eq!(
            run_opts(&["-s", "--", "--", "x"]).program,
            args(&["--", "x"])
        );
        assert_eq!(run_opts(&["prog", "-s"]).program, args(&["prog", "-s"]));
        assert!(!run_opts(&["prog", "-s"]).subreaper);
        // A lone `-` is an argument (a program named `-`), as getopt has it.
        assert_eq!(run_opts(&["-"]).program, args(&["-"]));
    }

    #[test]
    fn each_flag_sets_its_option() {
        let o = run_opts(&["-s", "-g", "-w", "-v", "-v", "--", "p"]);
        assert!(o.subreaper && o.group && o.warn_reap);
        assert_eq!(o.verbosity, 3);
        let o = run_opts(&["-sgwvvv", "p"]);
        assert!(o.subreaper && o.group && o.warn_reap);
        assert_eq!(o.verbosity, 4);
        assert_eq!(
            run_opts(&["-p", "SIGTERM", "p"]).parent_death,
            Some(Signal::SIGTERM)
        );
        assert_eq!(
            run_opts(&["-pKILL", "p"]).parent_death,
            Some(Signal::SIGKILL)
        );
        assert_eq!(run_opts(&["-e", "3", "-e143", "p"]).remap, vec![3, 143]);
        assert_eq!(run_opts(&["-se", "0", "p"]).remap, vec![0]);
        assert_eq!(run_opts(&["-e", "255", "p"]).remap, vec![255]);
    }

    #[test]
    fn help_licence_and_version_end_the_parse() {
        assert_eq!(parse(&args(&["-h"])), Ok(Parsed::Help));
        assert_eq!(parse(&args(&["-s", "-h", "-x"])), Ok(Parsed::Help));
        assert_eq!(parse(&args(&["-l"])), Ok(Parsed::License));
        assert_eq!(parse(&args(&["--version"])), Ok(Parsed::Version));
        assert!(help().contains("-e CODE"));
    }

    #[test]
    fn bad_input_is_one_line_naming_it() {
        let table: [(&[&str], &str); 10] = [
            (&["-x", "p"], "unknown option -x"),
            (&["-sx", "p"], "unknown option -x"),
            (&["--help"], "unknown option --help"),
            (&["--version", "p"], "unknown option --version"),
            (&["-e", "256", "p"], "-e 256: not an exit code"),
            (&["-e", "-1", "p"], "-e -1: not an exit code"),
            (&["-e"], "option -e needs a value"),
            (&["-p", "NOPE", "p"], "-p NOPE: not a signal name"),
            (&["-s"], "no program to run"),
            (&["--"], "no program to run"),
        ];
        for (a, want) in table {
            let err = parse(&args(a)).expect_err(want);
            assert!(err.starts_with(want), "{a:?}: {err}");
            assert!(!err.contains('\n'), "{a:?}: {err}");
        }
        assert_eq!(parse(&[]), Err(format!("no program to run; {USAGE}")));
    }

    #[test]
    fn remapped_codes_become_zero_and_no_others() {
        assert_eq!(remapped(3, &[3]), 0);
        assert_eq!(remapped(143, &[3, 143]), 0);
        assert_eq!(remapped(4, &[3]), 4);
        assert_eq!(remapped(0, &[]), 0);
        assert_eq!(remapped(143, &[]), 143);
    }
}
