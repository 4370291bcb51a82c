//! The launch: the program's argv and environment built up front ([`Prepared`]), how it is
//! started ([`Launch`]: in place, supervised as PID 1, or behind the relay), chosen and run here
//! for the shim and the entrypoint alike, after the verified drop ([`super::privdrop`]).

use std::borrow::Cow;
use std::ffi::{CStr, CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::escape::shown;
use crate::exit::Exit;
use crate::relay;
use crate::settings::Settings;
use crate::sys;
use crate::users::{self, Target, UserError};

use super::privdrop::{Caller, Terminal, drop_then, refuse, user_label};
use super::recorded;

fn cstring(s: &[u8]) -> CString {
    // Arguments and environment strings come from the kernel NUL-terminated, so none holds a NUL.
    CString::new(s).expect("no NUL inside an argument")
}

/// A program ready to exec: argv and environment built up front, so that a forked child does
/// little more than exec (see [`Launch::Supervise`]).
///
/// Kept by hand rather than `CommandExt::exec`: that copies every variable of the environment
/// into a map as soon as one is changed (HOME, USER, LOGNAME here), and this runs in front of
/// every `docker exec … hermes`; the inherited variables are passed by reference instead.
pub struct Prepared {
    path: PathBuf,
    prog: CString,
    argv: Vec<CString>,
    envp: Vec<Cow<'static, CStr>>,
}

impl Prepared {
    /// `path` with `args` (argv[0] is `path`), in this process's environment; with `as_user`,
    /// HOME, USER and LOGNAME describe that user.
    // `argv` and `args`, `envp` and `env`: exec's own names for what it is given.
    #[allow(clippy::similar_names)]
    pub fn new(path: &Path, args: &[OsString], as_user: Option<&Target>) -> Prepared {
        let replaced = |kv: &CStr| {
            let kv = kv.to_bytes();
            [&b"HOME="[..], b"USER=", b"LOGNAME="]
                .iter()
                .any(|k| kv.starts_with(k))
        };
        let mut envp: Vec<Cow<'static, CStr>> = sys::environ()
            .into_iter()
            .filter(|kv| as_user.is_none() || !replaced(kv))
            .map(Cow::Borrowed)
            .collect();
        let var = |k: &str, v: &[u8]| Cow::Owned(cstring(&[k.as_bytes(), b"=", v].concat()));
        if let Some(t) = as_user {
            envp.push(var("HOME", t.home.as_os_str().as_bytes()));
            if let Some(n) = &t.name {
                envp.push(var("USER", n.as_bytes()));
                envp.push(var("LOGNAME", n.as_bytes()));
            }
        }
        let prog = cstring(path.as_os_str().as_bytes());
        let argv = std::iter::once(prog.clone())
            .chain(args.iter().map(|a| cstring(a.as_bytes())))
            .collect();
        Prepared {
            path: path.to_path_buf(),
            prog,
            argv,
            envp,
        }
    }

    /// Adds the variables s6-overlay recorded at start-up that this environment lacks (see
    /// [`recorded`]).
    fn with_recorded(mut self, listing: &sys::envdir::Listing) -> Prepared {
        let add = recorded::missing(&sys::environ(), &listing.files);
        self.envp.extend(add.into_iter().map(Cow::Owned));
        self
    }

    /// Execs the program as the current user; returns only when exec failed.
    pub fn exec(&self) -> Exit {
        if let Err(e) = sys::reset_signals() {
            say!("hermes-shim: cannot reset signal state: {e} — report this as a bug");
            return Exit::NotRun;
        }
        let e = sys::exec(&self.prog, &self.argv, &self.envp);
        say!(
            "hermes-shim: cannot execute {}: {e} — check the file and its interpreter",
            shown(&self.path)
        );
        Exit::NotFound
    }
}

/// How the program is started once this process is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launch {
    /// Exec it in this process (same PID, its own exit code and signals).
    Exec,
    /// Stay as PID 1 and run it in a child (see [`crate::init`]).
    Supervise,
    /// Run it on a terminal of its own in a child, relayed by this process (see
    /// [`crate::relay`]); the child execs.
    Relay,
}

impl Launch {
    /// How the shim starts a program: behind the relay from a terminal session (any terminal on
    /// 0, 1 or 2, or a controlling terminal), else in place.
    pub fn for_exec(terminal_session: bool) -> Launch {
        if terminal_session {
            Launch::Relay
        } else {
            Launch::Exec
        }
    }

    /// How the entrypoint starts the container's main program: as PID 1 it stays the
    /// program's init, and the terminal it has is the container's console, the program's own;
    /// otherwise (under an init, or typed at a root prompt of `docker exec -it`) as the shim.
    pub fn for_main(pid1: bool, terminal_session: bool) -> Launch {
        if pid1 {
            Launch::Supervise
        } else {
            Launch::for_exec(terminal_session)
        }
    }

    /// [`Launch::for_exec`] in this process's session.
    pub fn for_exec_here() -> Launch {
        Launch::for_exec(relay::needed())
    }

    /// [`Launch::for_main`] in this process's session (asked only when not PID 1).
    pub fn for_main_here(pid1: bool) -> Launch {
        Launch::for_main(pid1, !pid1 && relay::needed())
    }

    /// The terminal a program started this way will have, judged in this process's session: a
    /// terminal on 0, 1 or 2, or a controlling terminal that /dev/tty would open even with all
    /// three redirected. [`Launch::Exec`] is chosen only outside a terminal session, so it
    /// costs no call on the shim's common path.
    pub fn terminal(self) -> Terminal {
        match self {
            Launch::Exec => Terminal::None,
            _ if !sys::pty::in_terminal_session() => Terminal::None,
            Launch::Relay => Terminal::Relayed,
            Launch::Supervise => Terminal::Inherited,
        }
    }

    /// Starts `p` this way; returns only with an exit code.
    pub fn start(self, p: &Prepared) -> Exit {
        match self {
            Launch::Exec | Launch::Relay => p.exec(),
            Launch::Supervise => crate::init::supervise(|| p.exec()),
        }
    }
}

/// The target user of `settings`, resolved in this container's /etc/passwd and /etc/group,
/// gids below 100 judged by `low`.
pub fn target(settings: &Settings, low: &users::LowGids) -> Result<Target, UserError> {
    users::resolve_with(settings.user.as_ref().map_err(Clone::clone)?, low)
}

/// Resolves the target user, drops to it and starts `path`; every failure refuses with 126.
pub fn run_as_target(
    path: &Path,
    args: &[OsString],
    how: Launch,
    caller: Caller,
    settings: &Settings,
) -> Exit {
    // One look at the container for the user's gids and for --group-add's.
    let low = users::LowGids::of_container(Some(&settings.home));
    let mut target = match target(settings, &low) {
        Ok(t) => t,
        Err(e) => {
            let spec = settings.user.as_ref().map_or_else(
                |_| settings.user_raw.clone().unwrap_or_default(),
                ToString::to_string,
            );
            return refuse(&spec, &e, caller);
        }
    };
    keep_container_groups(&mut target, &low);
    // Read while still root: the directory need not be readable by the user.
    let started_with = recorded::read(Path::new(recorded::DIR));
    let exec = || {
        leave_unreachable_cwd(&target);
        how.start(&Prepared::new(path, args, Some(&target)).with_recorded(&started_with))
    };
    // The relay forks first: the parent stays root to relay, the child drops and becomes the
    // monitor of the program in the new session, where which terminal it has is judged.
    if how == Launch::Relay {
        relay::run(|| {
            let terminal = how.terminal();
            drop_then(&mut sys::Linux, &target, terminal, caller, || {
                relay::monitor(exec)
            })
        })
    } else {
        drop_then(&mut sys::Linux, &target, how.terminal(), caller, exec)
    }
}

/// Adds the container's supplementary groups (`--group-add`, see
/// [`users::container_groups`]) to the target's, read while this process is still root. A
/// refused one is left behind with one line. When the ids cannot be read, none are added: the
/// drop's own verification reads them again and refuses if the kernel will not answer.
fn keep_container_groups(t: &mut Target, low: &users::LowGids) {
    low.owned_by(t.uid);
    let Ok(gids) = sys::gids() else {
        return;
    };
    let Ok(held) = sys::supplementary_groups() else {
        return;
    };
    let found = users::container_groups(sys::real_uid(), gids, &held, low);
    for g in &found.refused {
        say!(
            "hermes-shim: the container's supplementary {} is not kept for user '{}': it grants far more than the user's own files — leave it out of --group-add (group_add, supplementalGroups)",
            users::system_gid_name_here(*g, low),
            user_label(t)
        );
    }
    t.add_groups(&found.kept);
}

/// After the drop: a working directory the user could not reach by its path (root in
/// `/root/secret`) is left for the user's home (else `/`), so the program cannot read through
/// the directory handle root's session lent it.
fn leave_unreachable_cwd(t: &Target) {
    let Ok(cwd) = std::env::current_dir() else {
        return;
    };
    if sys::fs::reachable(&cwd).is_ok() {
        return;
    }
    let to = [t.home.as_path(), Path::new("/")]
        .into_iter()
        .find(|d| sys::fs::reachable(d).is_ok() && std::env::set_current_dir(d).is_ok());
    if let Some(to) = to {
        say!(
            "hermes-shim: the working directory {} is not reachable by user '{}'; starting in {}",
            shown(&cwd),
            user_label(t),
            shown(to)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relay_for_every_terminal_session_but_pid_1s() {
        assert_eq!(Launch::for_exec(true), Launch::Relay);
        assert_eq!(Launch::for_exec(false), Launch::Exec);
        assert_eq!(Launch::for_main(true, true), Launch::Supervise);
        assert_eq!(Launch::for_main(true, false), Launch::Supervise);
        assert_eq!(Launch::for_main(false, true), Launch::Relay);
        assert_eq!(Launch::for_main(false, false), Launch::Exec);
        // A program started in place has no terminal: it is chosen only outside a session.
        assert_eq!(Launch::Exec.terminal(), Terminal::None);
    }
}
