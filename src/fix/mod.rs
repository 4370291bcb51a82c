//! The `fix-ownership` applet: give root-owned entries under `$HERMES_HOME` to the hermes user.
//!
//! Threat model: we run as root over a tree that an AI agent running as the hermes uid can
//! write to while we walk it. The agent can rename, replace directories with symlinks, plant
//! hard links, FIFOs and sockets, at any moment. What must never happen: changing the owner
//! of any inode outside the tree (through a symlink, a hard link, a bind mount or a directory
//! moved mid-walk), opening a device, or running out of fds or memory on a hostile shape. So
//! the walk never resolves a path below the root: children are opened relative to their
//! parent's fd without following symlinks, re-checked on the handle, and changed through it.

mod walk;

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use nix::errno::Errno;

use crate::cli::{FixOptions, WalkChoice};
use crate::policy;
use crate::sys::{self, fs};
use crate::{shim, users};

use walk::{Config, Counts, shown};

/// Exit codes of the applet.
pub const EXIT_OK: u8 = 0;
pub const EXIT_PARTIAL: u8 = 1;
pub const EXIT_REFUSED: u8 = 2;

const PREFIX: &str = "hermes-shim fix-ownership";

/// Runs the applet; returns its exit code.
pub fn run(opts: FixOptions) -> u8 {
    let start = Instant::now();
    let (cfg, root_fd, root_st) = match prepare(&opts) {
        Ok(prepared) => prepared,
        Err(e) => {
            say!("{PREFIX}: {e:#}");
            return EXIT_REFUSED;
        }
    };
    let out = walk::sweep(&cfg, root_fd, &root_st);
    let counts = out.counts;
    if out.chown_impossible {
        say!(
            "{PREFIX}: cannot change owners under {}: chown is not permitted here (the first {} attempts were all denied, and the target ids are not mapped here or even a no-op chown of the root is denied) — in a user namespace (rootless Podman) chown works only between the ids it maps, and some NAS mounts refuse it even to container root; fix ownership from the host, or map those ids",
            shown(&cfg.root),
            counts.errors
        );
    }
    let elapsed_ms = start.elapsed().as_millis();
    report(&cfg, &counts, elapsed_ms, opts.json);
    if counts.errors > 0 {
        EXIT_PARTIAL
    } else {
        EXIT_OK
    }
}

/// The sweep's root when none is given: `$HERMES_HOME`, else /opt/data.
pub fn default_root() -> PathBuf {
    std::env::var_os("HERMES_HOME")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("/opt/data"), PathBuf::from)
}

/// Every refusal, checked before anything changes. Each error is one line naming the problem
/// and the remedy.
fn prepare(opts: &FixOptions) -> anyhow::Result<(Config, OwnedFd, fs::Stat)> {
    let root = opts.path.clone().unwrap_or_else(default_root);
    // `/opt/data/` and `/opt/./data` name /opt/data; a trailing slash must not make the
    // symlink checks below follow a link.
    let root: PathBuf = root.components().collect();
    if let Some(why) = policy::refuse_root(&root, &protected()) {
        bail!(why);
    }
    let (_, euid, ..) = sys::caller_ids();
    if euid != 0 {
        bail!(
            "{}: must run as root to change owners (uid {euid} cannot chown; in a `--user` container run `docker exec -u 0 CONTAINER hermes-shim fix-ownership`)",
            shown(&root)
        );
    }
    let meta = std::fs::symlink_metadata(&root).with_context(|| {
        format!(
            "{}: cannot use it (give the Hermes data directory, e.g. /opt/data)",
            shown(&root)
        )
    })?;
    // A symlink, here or on the way, is refused when the root is opened below.
    if !meta.is_dir() && !meta.file_type().is_symlink() {
        bail!(
            "{}: not a directory — give the Hermes data directory",
            shown(&root)
        );
    }
    let spec = users::spec_from(opts.user.as_deref())
        .map_err(|e| anyhow!("{e} — pass --user NAME or UID:GID"))?;
    let target = users::resolve(&spec)
        .map_err(|e| anyhow!("{e} — pass --user NAME or UID:GID of the hermes user"))?;
    let previous = match opts.also_from.as_deref() {
        None => policy::Previous::default(),
        Some(spec) => policy::Previous::parse(spec).map_err(|e| anyhow!(e))?,
    };
    // Previous ids are a user's *former* ids; a uid someone still has is that someone's.
    if let Some(uid) = previous.uid
        && let Some(owner) = users::user_with_uid(uid).map_err(|e| anyhow!("{e}"))?
    {
        bail!(
            "--also-from: uid {uid} still belongs to user '{owner}'; its files are not the hermes user's to take"
        );
    }
    let mut excludes = Vec::new();
    let env = std::env::var("HERMES_SHIM_EXCLUDE").unwrap_or_default();
    for x in opts
        .exclude
        .iter()
        .map(String::as_str)
        .chain(env.split(':').filter(|s| !s.is_empty()))
    {
        excludes.push(policy::exclude_path(x).map_err(|e| anyhow!(e))?);
    }
    let fd = match fs::open_root(&root) {
        Ok(fd) => fd,
        // With O_DIRECTORY a symlinked component answers ENOTDIR rather than ELOOP.
        Err(Errno::ELOOP | Errno::ENOTDIR) => {
            let real = std::fs::canonicalize(&root)
                .map(|p| format!("run it on {} instead", shown(&p)))
                .unwrap_or_else(|_| "its target does not resolve".into());
            bail!(
                "{}: is or goes through a symlink; refusing to follow it — {real}",
                shown(&root)
            );
        }
        Err(e) => {
            return Err(e)
                .with_context(|| format!("{}: cannot open it as a directory", shown(&root)));
        }
    };
    let st = fs::stat_fd(fd.as_fd()).with_context(|| format!("{}: statx", shown(&root)))?;
    let walk = match (opts.walk, fs::probe_openat2(fd.as_fd())) {
        (WalkChoice::Fallback, _) => fs::Walk::Fallback,
        (_, Ok(())) => fs::Walk::Openat2,
        (WalkChoice::Auto, Err(Errno::ENOSYS | Errno::EPERM | Errno::EINVAL)) => fs::Walk::Fallback,
        (_, Err(e)) => {
            bail!(
                "openat2 is unavailable here ({}) — use --walk auto or --walk fallback",
                e.desc()
            );
        }
    };
    let cfg = Config {
        root,
        walk,
        rule: policy::Rule {
            target: (target.uid, target.gid),
            previous,
        },
        dry_run: opts.dry_run,
        verbose: opts.verbose,
        excludes,
        root_dev: st.dev,
        root_mnt: st.mnt_id,
    };
    Ok((cfg, fd, st))
}

/// The directories whose programs root runs, as this process finds them: its own directory,
/// the real programs' directory and the venv around it, and PATH. Each is taken as written and
/// as resolved, since PATH may name a directory through a symlink (`/bin` -> `/usr/bin`).
pub fn protected() -> policy::Protected {
    let both = |p: PathBuf| {
        let real = std::fs::canonicalize(&p).ok();
        std::iter::once(p).chain(real)
    };
    let mut trees = Vec::new();
    if let Some(dir) = std::fs::read_link("/proc/self/exe")
        .ok()
        .and_then(|exe| exe.parent().map(PathBuf::from))
    {
        trees.extend(both(dir));
    }
    let real_dir = shim::real_dir();
    if let Some(venv) = real_dir.parent().filter(|v| v.join("pyvenv.cfg").is_file()) {
        trees.extend(both(venv.to_path_buf()));
    }
    let mut dirs: Vec<PathBuf> = both(real_dir).collect();
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(
            std::env::split_paths(&path)
                .filter(|d| d.is_absolute())
                .flat_map(both),
        );
    }
    let normal = |v: Vec<PathBuf>| -> Vec<PathBuf> {
        v.into_iter()
            .filter(|p| p.is_absolute())
            .map(|p| p.components().collect())
            .collect()
    };
    policy::Protected {
        dirs: normal(dirs),
        trees: normal(trees),
    }
}

fn report(cfg: &Config, c: &Counts, elapsed_ms: u128, json: bool) {
    let verb = cfg.verb();
    say!(
        "{PREFIX}: {}: {verb} {} of {} entries; skipped {} hardlinked, {} devices, {} mounts, {} excluded, {} other owners; {} errors; {elapsed_ms} ms",
        shown(&cfg.root),
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
        let _ = writeln!(std::io::stdout(), "{}", to_json(cfg, c, elapsed_ms));
    }
}

fn to_json(cfg: &Config, c: &Counts, elapsed_ms: u128) -> String {
    format!(
        concat!(
            r#"{{"root":{},"dry_run":{},"walk":"{}","uid":{},"gid":{},"scanned":{},"changed":{},"#,
            r#""skipped":{{"other_owner":{},"device":{},"hardlink":{},"mount":{},"excluded":{}}},"#,
            r#""errors":{},"elapsed_ms":{}}}"#
        ),
        json_string(&shown(&cfg.root)),
        cfg.dry_run,
        cfg.walk.as_str(),
        cfg.rule.target.0,
        cfg.rule.target.1,
        c.scanned,
        c.changed,
        c.other_owner,
        c.device,
        c.hardlink,
        c.mount,
        c.excluded,
        c.errors,
        elapsed_ms
    )
}

/// A JSON string literal for `s`.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("/opt/data"), r#""/opt/data""#);
        assert_eq!(json_string("a\"b\\c\nd"), r#""a\"b\\c\u000ad""#);
    }
}
