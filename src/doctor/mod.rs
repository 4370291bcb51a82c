//! The `doctor` applet: one read-only checklist an operator (or a support thread) runs in the
//! container: root-owned entries under `$HERMES_HOME`, this start's repair, the remap, the
//! hermes user's ids and groups, what the kernel offers, the image flavour. It exits 0 when
//! nothing needs fixing and 1 when something does, each such line with the action to take.
//!
//! It never changes anything: every fact comes from the functions the other applets decide
//! with (the start record, the remap's and the socket's plans, the sweep's own preparation in
//! a dry run, the kernel probes), and the only walk is a read-only one ([`scan`]). It runs as
//! root or as any user; as another user it sees less, and says so.

mod check;
mod scan;

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::Serialize;

use crate::boot::{remap, socket};
use crate::escape::shown;
use crate::exec;
use crate::exit::Exit;
use crate::fix::{self, Previous, Request, Rule, Writer};
use crate::record;
use crate::settings::Settings;
use crate::sys::{self, fs, guard};
use crate::users::{self, GROUP, LowGids, PASSWD, UserSpec};

use check::{Check, HomeStat, Status};

/// The `--json` report.
#[derive(Serialize)]
struct Report<'a> {
    version: String,
    /// The uid the doctor ran as: what it could see depends on it.
    uid: u32,
    healthy: bool,
    checks: &'a [Check],
}

/// Runs the applet.
pub fn run(json: bool, settings: &Settings) -> Exit {
    let checks = checks(settings);
    let fixes = checks.iter().filter(|c| c.status == Status::Fix).count();
    let uid = sys::caller_ids().1;
    let out = if json {
        let report = Report {
            version: crate::cli::version(),
            uid,
            healthy: fixes == 0,
            checks: &checks,
        };
        let mut line = serde_json::to_string(&report).expect("a report of strings and numbers");
        line.push('\n');
        line
    } else {
        checklist(&checks, uid, fixes)
    };
    let _ = std::io::stdout().write_all(out.as_bytes());
    if fixes == 0 { Exit::Ok } else { Exit::Partial }
}

/// The checklist as text: one line per check, an indented `do:` line under each FIX line, and
/// one last line with the verdict.
fn checklist(checks: &[Check], uid: u32, fixes: usize) -> String {
    let mut out = format!(
        "hermes-shim doctor {} as uid {uid}\n",
        crate::cli::version()
    );
    for c in checks {
        let _ = writeln!(out, "  {:<4} {:<16} {}", c.status.label(), c.name, c.detail);
        if let Some(a) = &c.action {
            let _ = writeln!(out, "       {:<16} do: {a}", "");
        }
    }
    let _ = match fixes {
        0 => writeln!(out, "hermes-shim doctor: all is well"),
        1 => writeln!(
            out,
            "hermes-shim doctor: 1 thing needs fixing (the FIX line says how)"
        ),
        n => writeln!(
            out,
            "hermes-shim doctor: {n} things need fixing (each FIX line says how)"
        ),
    };
    out
}

/// Every check, in the checklist's order.
fn checks(settings: &Settings) -> Vec<Check> {
    let (_, euid, _, _) = sys::caller_ids();
    let as_root = euid == 0;
    let low = LowGids::of_container(Some(&settings.home));
    let mut out = Vec::new();
    let target = match exec::target(settings, &low) {
        Ok(t) => t,
        Err(e) => {
            let action = match e {
                users::UserError::RootGroup(_) | users::UserError::SystemGroup { .. } => {
                    "give the user a gid of 100 or above (HERMES_GID/PGID, or the gid in HERMES_SHIM_USER), or take it out of that group in /etc/group, then restart the container"
                }
                _ => "set HERMES_SHIM_USER to a user this container has (default hermes)",
            };
            out.push(Check::fix("user", e.to_string(), action));
            out.push(check::repair(record::this_start()));
            out.extend(kernel(settings));
            out.push(flavour());
            return out;
        }
    };
    let name = target
        .name
        .clone()
        .unwrap_or_else(|| target.uid.to_string());
    let (user_check, kept) = user(&target, &name, as_root, &low);
    out.push(user_check);
    let mut groups = target.groups.clone();
    groups.extend(kept);
    let writer = Writer {
        uid: target.uid,
        groups,
    };
    let home_st = std::fs::symlink_metadata(&settings.home)
        .ok()
        .map(|m| HomeStat {
            is_dir: m.is_dir(),
            is_symlink: m.file_type().is_symlink(),
            uid: m.uid(),
            gid: m.gid(),
            mode: m.mode() & 0o7777,
        });
    out.push(check::home(
        &settings.home,
        home_st.as_ref(),
        &writer,
        &name,
    ));
    let previous = remap::recorded(settings).unwrap_or_default();
    if home_st.as_ref().is_some_and(|s| s.is_dir && !s.is_symlink) {
        out.push(scope(settings, previous, as_root));
        let rule = Rule {
            target: (target.uid, target.gid),
            previous,
        };
        let excludes = settings.excludes.clone().unwrap_or_default();
        out.push(match scan::scan(&settings.home, &rule, &excludes) {
            Ok(f) => check::ownership(&settings.home, &f, as_root),
            Err(e) => Check::fix(
                "ownership",
                format!("cannot look at {}: {e}", shown(&settings.home)),
                "run the doctor as root",
            ),
        });
    }
    out.push(check::repair(record::this_start()));
    out.push(check::remap(
        &remap_state(settings, &low, (target.uid, target.gid)),
        (previous != Previous::default())
            .then(|| previous.spec())
            .as_deref(),
    ));
    if let Ok(UserSpec::Name(user)) = &settings.user {
        out.push(check::socket(&socket_state(user, &low), user));
    }
    out.extend(kernel(settings));
    out.push(flavour());
    out
}

/// The user's ids and groups, with the container's groups (`group_add`) that the drop keeps
/// (seen only by a root caller: they are root's supplementary groups).
fn user(t: &users::Target, name: &str, as_root: bool, low: &LowGids) -> (Check, Vec<u32>) {
    low.owned_by(t.uid);
    let list = |g: &[u32]| g.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    let mut detail = format!(
        "{name}: uid {}, gid {}, groups {}",
        t.uid,
        t.gid,
        list(&t.groups)
    );
    if !as_root {
        detail.push_str("; the container's own groups (group_add) are seen only as root");
        return (Check::ok("user", detail), Vec::new());
    }
    let held = sys::supplementary_groups().unwrap_or_default();
    let gids = sys::gids().unwrap_or((0, 0, 0));
    let cg = users::container_groups(0, gids, &held, low);
    if !cg.kept.is_empty() {
        let _ = write!(
            detail,
            "; group_add kept through the drop: {}",
            list(&cg.kept)
        );
    }
    if cg.refused.is_empty() {
        return (Check::ok("user", detail), cg.kept);
    }
    let _ = write!(
        detail,
        "; group_add NOT kept (system groups): {}",
        list(&cg.refused)
    );
    let c = Check::fix(
        "user",
        detail,
        "leave those gids out of --group-add (compose group_add, Kubernetes supplementalGroups)",
    );
    (c, cg.kept)
}

/// Whether the repair accepts `$HERMES_HOME`: the sweep's own preparation, in a dry run (it
/// opens and checks, and changes nothing). Only root can sweep, so only root can ask.
fn scope(settings: &Settings, previous: Previous, as_root: bool) -> Check {
    if !as_root {
        return Check::note(
            "repair scope",
            "whether the repair accepts HERMES_HOME is checked only as root",
        );
    }
    let req = Request {
        dry_run: true,
        ..Request::start_up(settings, previous)
    };
    match fix::Sweep::prepare(req, &fix::protected(settings)) {
        Ok(_) => Check::ok(
            "repair scope",
            format!("the repair accepts {}", shown(&settings.home)),
        ),
        Err(r) => Check::fix(
            "repair scope",
            format!("the repair REFUSES HERMES_HOME: {r}"),
            "do what that line says; until then no start repairs root-owned files there",
        ),
    }
}

fn remap_state(settings: &Settings, low: &LowGids, now: (u32, u32)) -> check::Remap {
    let req = match &settings.remap {
        Err(e) => return check::Remap::Refused(e.to_string()),
        Ok(None) => return check::Remap::NotAsked,
        Ok(Some(req)) => *req,
    };
    let Ok(UserSpec::Name(user)) = &settings.user else {
        return check::Remap::Refused(format!(
            "HERMES_SHIM_USER={} is numeric; a uid remap needs a user name",
            settings.user_raw.as_deref().unwrap_or("")
        ));
    };
    let planned = std::fs::read_to_string(PASSWD)
        .and_then(|p| Ok((p, std::fs::read_to_string(GROUP)?)))
        .map_err(|e| format!("cannot read the accounts: {e}"))
        .and_then(|(p, g)| remap::plan(&p, &g, user, req, low).map_err(|e| e.to_string()));
    match planned {
        Ok(None) => check::Remap::InEffect(now.0, now.1),
        Ok(Some(plan)) => match plan.refused_gid {
            Some(e) => check::Remap::Refused(e.to_string()),
            None => check::Remap::Pending {
                now: plan.old,
                asked: plan.new,
            },
        },
        Err(e) => check::Remap::Refused(e),
    }
}

fn socket_state(user: &str, low: &LowGids) -> check::Socket {
    let Some(gid) = socket::socket_gid() else {
        return check::Socket::None;
    };
    let planned = std::fs::read_to_string(PASSWD)
        .and_then(|p| Ok((p, std::fs::read_to_string(GROUP)?)))
        .map_err(|e| e.to_string())
        .and_then(|(p, g)| socket::plan(&p, &g, user, gid, low).map_err(|e| e.to_string()));
    match planned {
        Ok(socket::Plan::Nothing) => check::Socket::Member(gid),
        Ok(socket::Plan::Join { .. }) | Err(_) => check::Socket::Missing(gid),
        Ok(socket::Plan::RootGroup) => check::Socket::Never {
            gid,
            remedy: "give the socket a non-root group on the host (e.g. chgrp docker /var/run/docker.sock) and restart the container",
        },
        Ok(socket::Plan::SystemGroup(_)) => check::Socket::Never {
            gid,
            remedy: "give the socket the host's docker group (gid 100 or above) and restart the container",
        },
    }
}

/// What the kernel (and the engine's seccomp profile) offers the repair and the drop.
fn kernel(settings: &Settings) -> Vec<Check> {
    let mut out = Vec::new();
    let home = fs::open_root(&settings.home);
    match home.as_ref().map(|fd| fs::mount_id_of(fd.as_fd())) {
        Ok(Ok((_, fs::MountIds::Statx))) => {
            out.push(Check::ok("mount ids", "from statx"));
        }
        Ok(Ok((_, src))) => out.push(Check::note(
            "mount ids",
            format!("from {} (statx gives none on this kernel)", src.as_str()),
        )),
        Ok(Err(e)) => out.push(Check::fix(
            "mount ids",
            format!("none to be had ({e}): the repair refuses rather than enter bind mounts"),
            "mount /proc in the container",
        )),
        Err(_) => {}
    }
    if let Ok(fd) = &home {
        out.push(match fs::probe_openat2(fd.as_fd()) {
            Ok(()) => Check::ok("openat2", "yes: the repair walks with RESOLVE_BENEATH"),
            Err(e) => Check::note(
                "openat2",
                format!("no ({e}): the repair uses its fallback walk, which checks every mount id itself"),
            ),
        });
    }
    out.push(match guard::close_range_works() {
        Ok(()) => Check::ok("close_range", "yes"),
        Err(e) => Check::note(
            "close_range",
            format!("no ({e}): the drop closes descriptors one by one"),
        ),
    });
    let mode = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| Some(l.strip_prefix("Seccomp:")?.trim().to_string()))
        });
    out.push(match mode.as_deref() {
        Some("2") => Check::ok("seccomp", "in force: a filter (mode 2), as engines install"),
        Some(m) => Check::note("seccomp", format!("mode {m}: no filter on this process")),
        None => Check::note("seccomp", "unknown: /proc/self/status has no Seccomp line"),
    });
    out.push(match guard::probe(&guard::HOST) {
        Ok(_) => Check::ok("terminal filter", "can be in force (TIOCSTI refused)"),
        Err(why) => Check::note(
            "terminal filter",
            format!(
                "cannot be in force ({why}); the relay still keeps root's terminal from the program"
            ),
        ),
    });
    out
}

/// The image flavour: s6-overlay's `/init` or the entrypoint applet as PID 1.
fn flavour() -> Check {
    let pid1 = std::fs::read_to_string("/proc/1/comm")
        .map_or_else(|_| "unknown".to_string(), |s| s.trim().to_string());
    let s6 = Path::new("/package/admin/s6-overlay").exists();
    Check::ok(
        "image",
        format!(
            "{} (PID 1: {})",
            if s6 {
                "s6-overlay"
            } else {
                "without s6-overlay"
            },
            shown(Path::new(&pid1))
        ),
    )
}
