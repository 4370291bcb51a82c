//! The `fix-ownership` applet: give root-owned entries under `$HERMES_HOME` to the hermes user.
//!
//! Threat model: we run as root over a tree that an AI agent running as the hermes uid can
//! write to while we walk it. The agent can rename, replace directories with symlinks, plant
//! hard links, FIFOs and sockets, at any moment. What must never happen: changing the owner
//! of any inode outside the tree (through a symlink, a hard link, a bind mount or a directory
//! moved mid-walk), opening a device, or running out of fds or memory on a hostile shape. So
//! the walk never resolves a path below the root: children are opened relative to their
//! parent's fd without following symlinks, re-checked on the handle, and changed through it.
//!
//! A sweep is asked for with a [`Request`] (by the applet from its options, by `boot` from the
//! settings) and runs only once [`Sweep::prepare`] has turned it into a checked configuration;
//! every refusal ([`refusal::Refusal`]) happens there, before anything changes.

mod config;
mod frames;
mod judge;
mod prepare;
mod queue;
mod refusal;
mod roots;
mod rule;
mod scope;
mod verdict;
mod walk;

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use crate::cli::FixOptions;
use crate::escape::shown;
use crate::exit::Exit;
use crate::settings::Settings;

use judge::Counts;
use prepare::PREFIX;
pub use prepare::{Request, Sweep};
pub use roots::{protected, refuse_root};
pub use rule::{Action, Previous, PreviousError, Rule, Skip, decide};
pub use scope::Writer;

/// The directory above `root` that `writer` could write, if any: a sweep refuses such a root
/// (the agent could swap another directory in under its name), so boot does not create it.
pub fn writable_ancestor(root: &std::path::Path, writer: &Writer) -> Option<PathBuf> {
    prepare::writable_ancestor(root, writer)
}

/// Runs the applet.
pub fn run(opts: &FixOptions, settings: &Settings) -> Exit {
    sweep(Request::from_options(opts, settings), settings, opts.json)
}

/// Prepares and runs a sweep, printing its summary (and the JSON report with `json`).
pub fn sweep(req: Request, settings: &Settings, json: bool) -> Exit {
    let start = Instant::now();
    let sweep = match Sweep::prepare(req, &protected(settings)) {
        Ok(sweep) => sweep,
        Err(e) => {
            say!("{PREFIX}: {e}");
            return Exit::Refused;
        }
    };
    let (cfg, out) = sweep.run();
    let counts = out.counts;
    if out.chown_impossible {
        say!(
            "{PREFIX}: cannot change owners under {}: chown is not permitted here (the first {} attempts were all denied, and the target ids are not mapped here or even a no-op chown of the root is denied) — in a user namespace (rootless Podman) chown works only between the ids it maps, and some NAS mounts refuse it even to container root; fix ownership from the host, or map those ids",
            shown(&cfg.root),
            counts.errors
        );
    }
    let elapsed_ms = start.elapsed().as_millis();
    report(&cfg, &counts, elapsed_ms, json);
    if counts.errors > 0 {
        Exit::Partial
    } else {
        Exit::Ok
    }
}

/// The `--json` report.
#[derive(Serialize)]
struct Report {
    /// The root as the logs show it (see `crate::escape`).
    root: String,
    dry_run: bool,
    walk: &'static str,
    /// Where mount ids came from: `statx`, `name_to_handle_at` or `fdinfo`.
    mount_ids: &'static str,
    uid: u32,
    gid: u32,
    scanned: u64,
    changed: u64,
    skipped: Skipped,
    errors: u64,
    elapsed_ms: u128,
}

#[derive(Serialize)]
struct Skipped {
    other_owner: u64,
    device: u64,
    hardlink: u64,
    mount: u64,
    excluded: u64,
}

fn report(cfg: &config::Config, c: &Counts, elapsed_ms: u128, json: bool) {
    say!(
        "{PREFIX}: {}: {} {} of {} entries; skipped {} hardlinked, {} devices, {} mounts, {} excluded, {} other owners; {} errors; {elapsed_ms} ms",
        shown(&cfg.root),
        cfg.verb(),
        c.changed,
        c.scanned,
        c.hardlink,
        c.device,
        c.mount,
        c.excluded,
        c.other_owner,
        c.errors
    );
    if json {
        use std::io::Write as _;
        let report = Report {
            root: shown(&cfg.root),
            dry_run: cfg.dry_run,
            walk: cfg.walk.as_str(),
            mount_ids: cfg.mount_ids.as_str(),
            uid: cfg.rule.target.0,
            gid: cfg.rule.target.1,
            scanned: c.scanned,
            changed: c.changed,
            skipped: Skipped {
                other_owner: c.other_owner,
                device: c.device,
                hardlink: c.hardlink,
                mount: c.mount,
                excluded: c.excluded,
            },
            errors: c.errors,
            elapsed_ms,
        };
        let line = serde_json::to_string(&report).expect("a report of numbers and strings");
        let _ = writeln!(std::io::stdout(), "{line}");
    }
}
