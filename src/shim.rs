//! The shim applet: run a venv console script as the hermes user when `docker exec` made us root.
//!
//! Threat model: the caller is root inside the container (the `docker exec` default) and means
//! well; the danger is leaving root-owned files in `$HERMES_HOME` or, worse, running on as root
//! after a drop that silently failed, or handing the program what root's session holds (its
//! descriptors, its terminal). So every failure refuses (exit 126) instead of continuing, the
//! drop is verified before exec, inherited descriptors are closed, a terminal session gets the
//! relay ([`crate::relay`]), and the shim itself is never a setuid program: with real and
//! effective ids apart it refuses, so it cannot become a privilege-escalation helper. All of that
//! is the library's ([`crate::exec`]), which the entrypoint uses too; here is only the choice.

use std::ffi::{OsStr, OsString};
use std::fs::Metadata;

use crate::escape::shown;
use crate::exec::{Caller, Launch, Prepared, check_program, real_program, run_as_target};
use crate::exit::Exit;
use crate::settings::Settings;
use crate::sys;

/// The shim applet: runs the real program for `name` with `args`, dropping root first.
pub fn run(name: &OsStr, args: &[OsString], me: Option<&Metadata>, settings: &Settings) -> Exit {
    let path = match real_program(&settings.real_dir, name)
        .and_then(|p| check_program(&p, me).map(|()| p))
    {
        Ok(p) => p,
        Err(e) => {
            say!("hermes-shim: {e}");
            return e.exit();
        }
    };
    if sys::real_uid() != 0 {
        return Prepared::new(&path, args, None).exec();
    }
    if settings.opt_out {
        say!(
            "hermes-shim: WARNING: HERMES_DOCKER_EXEC_AS_ROOT is set: running {} as root, with the config and plugins under HERMES_HOME that the agent can write",
            shown(&path)
        );
        return Prepared::new(&path, args, None).exec();
    }
    // From a terminal session, the program gets a terminal of its own (see crate::relay).
    let how = Launch::for_exec_here();
    run_as_target(&path, args, how, Caller::Shim, settings)
}
