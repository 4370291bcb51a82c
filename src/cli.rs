//! Command-line definitions for `hermes-shim` called by its own name.
//!
//! The doc comments here are the `--help` text, where markdown backticks would show as such.
#![allow(clippy::doc_markdown)]

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::settings::{self, WalkChoice};

/// The name this binary answers to as a command rather than as a shim.
pub const SELF_NAME: &str = "hermes-shim";
/// The name under which it is the `tini` applet.
pub const TINI_NAME: &str = "tini";

/// What argv[0] asks for: the applet command, or the shim for a console script.
#[derive(Debug, PartialEq, Eq)]
pub enum Dispatch<'a> {
    Command,
    Tini,
    Shim(&'a OsStr),
}

pub fn dispatch(argv0: &OsStr) -> Dispatch<'_> {
    match Path::new(argv0).file_name() {
        Some(name) if name == TINI_NAME => Dispatch::Tini,
        Some(name) if name != SELF_NAME => Dispatch::Shim(name),
        _ => Dispatch::Command,
    }
}

/// `hermes-shim exec NAME …` with a NAME (not an option such as `--help`, left to clap).
pub fn is_exec(args: &[OsString]) -> bool {
    args.get(1).is_some_and(|a| a == "exec")
        && args
            .get(2)
            .is_some_and(|n| !n.as_encoded_bytes().starts_with(b"-"))
}

/// What `--help` says after the applets: the shim, the environment (from the one list in
/// [`crate::settings`]) and the exit codes.
fn after_help() -> String {
    format!(
        "Called through a symlink under any other name (e.g. /opt/hermes/bin/hermes -> hermes-shim), it is the
shim for $HERMES_SHIM_REAL_DIR/<name> (default /opt/hermes/.venv/bin): run as root, it drops to the
hermes user, verifies the drop, and execs the real program; other callers go straight through.

{}
Exit codes:
  shim/exec/entrypoint  the program's own; 126 refused (drop impossible, setuid install);
                        127 real program missing or not executable
  fix-ownership         0 all fixed; 1 some entry could not be fixed; 2 refused, nothing changed
  boot                  0 repaired (entries that could not be fixed are reported); 2 refused
  install               0 links in place; 2 refused, nothing changed
  tini                  the program's own (128+N after signal N; 0 for a code given to -e);
                        2 a bad option; 126 cannot run the program; 127 program not found
  doctor                0 all is well; 1 something needs fixing (a FIX line says how)",
        settings::help_text()
    )
}

/// The source revision the binary was built from: `HERMES_SHIM_REVISION` at build time, which
/// docker/build-shim.sh and the Dockerfile's builder set from git; a plain `cargo build` has none.
const REVISION: Option<&str> = option_env!("HERMES_SHIM_REVISION");

/// `--version`: the crate's version and the source revision.
pub fn version() -> String {
    format!(
        "{} (revision {})",
        env!("CARGO_PKG_VERSION"),
        REVISION.filter(|r| !r.is_empty()).unwrap_or("unknown")
    )
}

/// Parses the command line `args` (argv[0] first); exits with clap's usage error, code 2,
/// when it is wrong.
pub fn parse(args: &[OsString]) -> Cli {
    use clap::FromArgMatches;
    let matches = command().get_matches_from(args);
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// The derived command line with what derive cannot give: the version with its revision and
/// the text after the applets.
fn command() -> clap::Command {
    use clap::CommandFactory;
    // clap takes 'static strings; this runs once per process.
    let version: &'static str = Box::leak(version().into_boxed_str());
    let after: &'static str = Box::leak(after_help().into_boxed_str());
    Cli::command().version(version).after_help(after)
}

/// Native docker-exec privilege drop and race-safe ownership repair for the Hermes Agent image.
#[derive(Debug, Parser)]
#[command(name = "hermes-shim", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the real program NAME as the shim would (same as calling the NAME symlink).
    Exec {
        /// Console script name in HERMES_SHIM_REAL_DIR, e.g. hermes.
        name: OsString,
        /// Arguments passed through untouched.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Give root-owned entries under PATH to the hermes user, safely against a live writer.
    FixOwnership(FixOptions),
    /// Start-up repair: the HERMES_UID/PUID, HERMES_GID/PGID remap if asked for, then fix-ownership.
    Boot,
    /// Create the shim's symlinks (next to hermes-shim) for every console script of hermes-agent.
    Install {
        /// The venv holding hermes-agent [default: the parent of $HERMES_SHIM_REAL_DIR].
        #[arg(long, value_name = "DIR")]
        venv: Option<PathBuf>,
        /// The distribution whose console scripts are shimmed.
        #[arg(long, value_name = "NAME", default_value = "hermes-agent")]
        distribution: String,
        /// Change nothing; say what would be created.
        #[arg(long)]
        dry_run: bool,
    },
    /// The container's main program: repair ownership once, then run hermes (or ARGS) as hermes.
    Entrypoint {
        /// Nothing: `hermes`; a program on PATH: that program; anything else: `hermes ARGS`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// tini's command line (also as /usr/bin/tini): `tini [-s -g -v -w -p SIG -e CODE -l] -- PROGRAM
    /// ARGS`; `tini -h` says what each option does. Runs PROGRAM as its init, as the caller.
    Tini {
        /// tini's options, then the program and its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Check this container, changing nothing: root-owned entries under HERMES_HOME, this start's
    /// repair, the remap, the user's groups, the kernel, the image. Exit 0 all is well, 1 something
    /// needs fixing (each FIX line names the action).
    Doctor {
        /// Print one JSON object on stdout instead of the checklist.
        #[arg(long)]
        json: bool,
    },
}

/// Options of `fix-ownership`.
#[derive(Debug, Args)]
pub struct FixOptions {
    /// Directory to sweep [default: $HERMES_HOME, else /opt/data].
    pub path: Option<PathBuf>,
    /// Target user, NAME or UID[:GID] [default: $HERMES_SHIM_USER, else hermes].
    #[arg(long, value_name = "SPEC")]
    pub user: Option<String>,
    /// Also move entries owned by the user's previous ids (after a boot-time uid remap).
    #[arg(long, value_name = "UID:GID")]
    pub also_from: Option<String>,
    /// Leave REL_PATH (relative to PATH) and everything under it alone; repeatable.
    #[arg(long, value_name = "REL_PATH")]
    pub exclude: Vec<String>,
    /// Change nothing; report exactly what a real run would change.
    #[arg(long)]
    pub dry_run: bool,
    /// One line per change or skip, with its reason.
    #[arg(long)]
    pub verbose: bool,
    /// Print one JSON object with the counts on stdout.
    #[arg(long)]
    pub json: bool,
    /// Walk backend [default: $HERMES_SHIM_WALK, else auto]; `fallback` forces the openat path
    /// even where openat2 works.
    #[arg(long, value_enum)]
    pub walk: Option<WalkChoice>,
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

    #[test]
    fn help_ends_with_the_shim_the_environment_and_the_exit_codes() {
        let help = command().render_long_help().to_string();
        for needle in [
            "Called through a symlink under any other name",
            "Environment:",
            "HERMES_SHIM_USER",
            "HERMES_DOCKER_EXEC_AS_ROOT",
            "Exit codes:",
            "127 real program missing or not executable",
        ] {
            assert!(help.contains(needle), "{needle:?} missing from --help");
        }
        let version = command().render_version().clone();
        assert!(version.contains(env!("CARGO_PKG_VERSION")), "{version}");
        assert!(version.contains("(revision "), "{version}");
    }
}
