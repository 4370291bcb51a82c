//! Race tests of fix-ownership, once per walk backend: a uid-10000 attacker with write access to
//! PATH swaps directories for symlinks to a root-owned tree outside it while sweeps run, and no
//! outside inode may change owner; and an agent's churn of directories that vanish mid-sweep is
//! not an error.
//!
//! The attacker's choices come from a seed, printed first (`race seed: N`) and taken from
//! `HERMES_SHIM_RACE_SEED` when set, so a failure can be replayed: the same seed makes the same
//! choices, though how they interleave with the sweeps is still up to the scheduler.

mod common;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{Mode, mkdirat};

use common::fix::{T, clean_cmd, fo, per_walk};
use common::fixture::{Fx, assert_same_snapshot, lstat, open_dir_at, owner, snapshot};
use common::report::report;
use common::seccomp::Then;
use common::{TempDir, require};

/// The attacker, run as uid 10000. It keeps: swapping directories for symlinks to the outside
/// tree and back, renaming entries around, planting hardlinks (its own files in and out of PATH,
/// and root's outside files, which `fs.protected_hardlinks` normally refuses), planting symlinks to
/// the outside tree, and pruning. Every 64 rounds it writes its tally to STATUS. Its random
/// choices follow SEED.
const ATTACKER: &str = include_str!("py/race_attacker.py");

/// Kills the attacker however the test ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sweeps per backend: `HERMES_SHIM_RACE_RUNS` when set, else 100.
fn race_runs() -> usize {
    std::env::var("HERMES_SHIM_RACE_RUNS").map_or(100, |s| {
        s.trim()
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .unwrap_or_else(|| panic!("HERMES_SHIM_RACE_RUNS={s:?} is not a positive number"))
    })
}

/// The attacker's seed: `HERMES_SHIM_RACE_SEED` when set, else a fresh one from the clock and
/// the pid.
fn race_seed() -> u64 {
    if let Ok(s) = std::env::var("HERMES_SHIM_RACE_SEED") {
        s.trim()
            .parse()
            .unwrap_or_else(|_| panic!("HERMES_SHIM_RACE_SEED={s:?} is not a number"))
    } else {
        let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        t.as_secs() ^ (u64::from(t.subsec_nanos()) << 20) ^ (u64::from(std::process::id()) << 40)
    }
}

/// `SCRIPT ARGS…` run by /usr/bin/python3 as uid and gid 10000 with no supplementary groups:
/// the agent.
fn as_agent(script: &str) -> Command {
    let mut cmd = clean_cmd("setpriv");
    cmd.args([
        "--reuid=10000",
        "--regid=10000",
        "--clear-groups",
        "/usr/bin/python3",
        "-c",
        script,
    ])
    .stdin(Stdio::null());
    cmd
}

/// Adds fresh root-owned entries inside PATH (dirs, files, and root-owned symlinks pointing at
/// the outside tree), created relative to fds so the attacker cannot redirect the test itself.
fn add_root_entries(home: &OwnedFd, i: usize, out: &Path) {
    let name = format!("g{i}");
    if mkdirat(home, name.as_str(), Mode::from_bits_truncate(0o755)).is_err() {
        return;
    }
    let Ok(g) = open_dir_at(home, &name) else {
        return;
    };
    let _ = mkdirat(&g, "s", Mode::from_bits_truncate(0o755));
    let create =
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let _ = openat(&g, "f", create, Mode::from_bits_truncate(0o644));
    let _ = nix::unistd::symlinkat(out, &g, "to-out");
    if let Ok(s) = open_dir_at(&g, "s") {
        let _ = openat(&s, "f", create, Mode::from_bits_truncate(0o600));
        let _ = nix::unistd::symlinkat(&out.join("f"), &s, "to-out-f");
        let _ = mkdirat(&s, "t", Mode::from_bits_truncate(0o700));
    }
}

fn race_attacker_swapping_symlinks_never_redirects_a_chown(walk: &str) {
    require!(root, tools: ["setpriv"]);
    require!(
        Path::new("/usr/bin/python3").is_file(),
        "needs /usr/bin/python3"
    );
    let seed = race_seed();
    eprintln!(
        "race seed: {seed} (replay: HERMES_SHIM_RACE_SEED={seed} cargo test --test fix_race -- {})",
        common::test_name()
    );
    let base = TempDir::new("fo-race");
    let home = base.path().join("home");
    Fx::make_dir(&home, 0o755, T, T);
    // The outside tree: root-owned, readable, the target of every attacker symlink.
    let outside = TempDir::new("fo-race-out");
    let out = outside.path().to_path_buf();
    Fx::make_dir(&out.join("a"), 0o755, 0, 0);
    Fx::make_dir(&out.join("a/b"), 0o755, 0, 0);
    for f in ["f", "a/g", "a/b/h"] {
        Fx::make_file(&out.join(f), 0o644, 0, 0);
    }
    let outside_before = snapshot(&out);
    // The attacker's own files outside PATH, to hardlink into PATH.
    let own = TempDir::new("fo-race-own");
    Fx::set(own.path(), None, T, T);
    for f in ["mine0", "mine1"] {
        Fx::make_file(&own.path().join(f), 0o644, T, T);
    }
    let status = own.path().join("status");

    let home_fd: OwnedFd = File::open(&home).unwrap().into();
    for i in 0..20 {
        add_root_entries(&home_fd, 100_000 + i, &out);
    }
    let mut cmd = as_agent(ATTACKER);
    cmd.arg(&home)
        .arg(&out)
        .arg(own.path())
        .arg(&status)
        .arg(seed.to_string())
        .stdout(Stdio::null());
    let attacker = KillOnDrop(cmd.spawn().expect("start the attacker"));
    // Let it get going before the first sweep.
    let t0 = Instant::now();
    while !status.exists() && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }

    // 100 runs per backend: the 200 over both that the README promises. Fewer only when asked
    // (`HERMES_SHIM_RACE_RUNS`, for tests/mutants.sh, which runs the suite once per mutant).
    let runs = race_runs();
    let mut changed_runs = 0;
    let mut failed_runs = Vec::new();
    let started = Instant::now();
    for i in 0..runs {
        add_root_entries(&home_fd, i, &out);
        let out_run = fo(&home, walk, &["--json"]);
        match out_run.code {
            Some(0 | 1) => {}
            _ => panic!("run {i} ({walk}): exit must be 0 or 1 under a race\n{out_run}"),
        }
        if out_run.code == Some(1) {
            failed_runs.push(format!("run {i} ({walk})"));
        }
        let c = report(&out_run, &home, Some(walk), false, (T, T));
        if c.changed > 0 {
            changed_runs += 1;
        }
        // The one thing that must never happen, checked after every run so a failure points
        // at the run that caused it.
        let now = snapshot(&out);
        if now != outside_before {
            assert_same_snapshot(
                &outside_before,
                &now,
                &format!("outside tree after run {i} ({walk})"),
            );
        }
    }
    let elapsed = started.elapsed();
    drop(attacker);
    let tally = fs::read_to_string(&status).unwrap_or_default();
    eprintln!(
        "race ({walk}, seed {seed}): {runs} runs in {elapsed:?}, {changed_runs} changed something, {} exited 1; attacker: {tally}",
        failed_runs.len()
    );
    assert_same_snapshot(&outside_before, &snapshot(&out), "outside tree");
    assert_same_snapshot(
        &BTreeMap::from_iter(["mine0", "mine1"].map(|f| own.path().join(f)).map(|p| {
            let m = lstat(&p);
            (p, (m.ino(), T, T, 0o100_644))
        })),
        &BTreeMap::from_iter(["mine0", "mine1"].map(|f| own.path().join(f)).map(|p| {
            let m = lstat(&p);
            (p, (m.ino(), m.uid(), m.gid(), m.mode()))
        })),
        "attacker's own outside files",
    );
    // The race must actually have happened: sweeps with work to do, and an attacker that swapped.
    assert!(
        changed_runs >= runs / 2,
        "only {changed_runs} runs had anything to change"
    );
    let swaps: u64 = tally
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("swap="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(swaps >= 100, "attacker barely ran: {tally:?}");

    // With the attacker gone, one more sweep heals everything inside PATH.
    let last = fo(&home, "openat2", &["--json"]);
    assert_eq!(last.code, Some(0), "final sweep\n{last}");
    let c = report(&last, &home, Some("openat2"), false, (T, T));
    assert_eq!(c.errors, 0, "{last}");
    let wrong: Vec<String> = walkdir::WalkDir::new(&home)
        .into_iter()
        .filter_map(|e| {
            let e = e.ok()?;
            let m = e.metadata().ok()?;
            ((m.uid(), m.gid()) != (T, T))
                .then(|| format!("{} {}:{}", e.path().display(), m.uid(), m.gid()))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "left unfixed after the final sweep:\n{}\n{last}",
        wrong.join("\n")
    );
    assert!(
        elapsed < Duration::from_secs(90),
        "race test took {elapsed:?}; keep it under a minute"
    );
}
per_walk!(race_attacker_swapping_symlinks_never_redirects_a_chown);

/// A uid-10000 process that keeps creating and deleting its own directory trees, as an agent's
/// caches and sessions do.
const CHURN: &str = include_str!("py/race_churn.py");

fn directories_that_vanish_mid_sweep_are_not_errors(walk: &str) {
    require!(root, tools: ["setpriv"]);
    let base = TempDir::new("fo-churn");
    let home = base.path().join("home");
    Fx::make_dir(&home, 0o755, T, T);
    let own = base.path().join("own");
    Fx::make_dir(&own, 0o755, T, T);
    let status = own.join("status");
    fs::write(home.join("rootfile"), "x").unwrap();
    let mut cmd = as_agent(CHURN);
    cmd.arg(&home).arg(&status);
    let churn = KillOnDrop(cmd.spawn().expect("start the churning process"));
    let t0 = Instant::now();
    while !status.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the churning process never got going"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // 30 runs per backend (the 60 one test once alternated over both), or fewer when asked.
    let runs = race_runs().min(30);
    let mut failed = Vec::new();
    for i in 0..runs {
        let out = fo(&home, walk, &[]);
        if out.code != Some(0) || out.stderr.contains("error:") {
            failed.push(format!("run {i} ({walk}):\n{out}"));
        }
    }
    drop(churn);
    assert!(
        failed.is_empty(),
        "{} of {runs} runs failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
    assert_eq!(owner(&home.join("rootfile")), (T, T));
}
per_walk!(directories_that_vanish_mid_sweep_are_not_errors);

/// `fix-ownership --walk fallback` of `fx` as `10000:10000`, to run with a seccomp filter.
fn fallback_sweep(fx: &Fx) -> Command {
    let mut cmd = clean_cmd(common::bin());
    cmd.args([
        "fix-ownership",
        "--walk",
        "fallback",
        "--user",
        "10000:10000",
    ])
    .arg(fx.path());
    cmd
}

/// The one race a sweep cannot be made to lose on purpose: a name that vanishes between its
/// statx and the open of the handle that changes it. The fallback walk's open of that handle
/// (`openat` with exactly these flags) is answered with an errno by a seccomp filter.
fn sweep_with_the_handle_open_answered(tag: &str, errno: i32) -> (Fx, common::fix::Out) {
    let mut fx = Fx::new(tag);
    fx.file("a", 0o644, 0, 0).file("b", 0o644, 0, 0);
    let flags = nix::libc::O_PATH | nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC;
    let mut cmd = fallback_sweep(&fx);
    common::seccomp::answer_if(
        &mut cmd,
        &[(
            nix::libc::SYS_openat,
            Some((2, u32::try_from(flags).unwrap())),
            errno,
        )],
    );
    let out = common::fix::run_cmd(cmd, 30);
    (fx, out)
}

#[test]
fn a_name_gone_between_its_statx_and_its_open_is_no_error() {
    require!(root);
    let (fx, out) = sweep_with_the_handle_open_answered("fo-gone", nix::libc::ENOENT);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(!out.stderr.contains("error:"), "{out}");
    let r = common::report::summary(&out, fx.path(), false);
    assert_eq!(
        (r.scanned, r.changed, r.errors),
        (1, 1, 0),
        "only the root (root's, so changed) is counted: a and b are no longer there\n{out}"
    );
    assert_eq!(owner(&fx.abs("a")), (0, 0), "{out}");
    // Any other failure of that open is an error, named.
    let (fx, out) = sweep_with_the_handle_open_answered("fo-gone-eio", nix::libc::EIO);
    assert_eq!(out.code, Some(1), "{out}");
    let r = common::report::summary(&out, fx.path(), false);
    assert_eq!((r.scanned, r.changed, r.errors), (3, 1, 2), "{out}");
    for name in ["a", "b"] {
        assert!(
            out.stderr
                .contains(&format!("{}: open: EIO", fx.abs(name).display())),
            "{name}\n{out}"
        );
    }
}

#[test]
fn a_directory_of_the_sweeps_own_mount_that_will_not_open_is_an_error_not_a_mount() {
    require!(root);
    // The fallback walk takes a directory that refuses its open for a mount point only when
    // its stat shows another mount (a FUSE mount without allow_other). On the sweep's own
    // mount, the refusal is an error, named, and the sweep goes on.
    let mut fx = Fx::new("fo-dir-eacces");
    fx.dir("d", 0o755, 0, 0)
        .file("d/f", 0o644, 0, 0)
        .file("a", 0o644, 0, 0);
    let flags =
        nix::libc::O_RDONLY | nix::libc::O_DIRECTORY | nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC;
    let mut cmd = fallback_sweep(&fx);
    let refused = common::seccomp::pause_openat(&mut cmd, flags, |p| {
        if p.path == b"d" {
            Then::Fail(nix::libc::EACCES)
        } else {
            Then::Pass
        }
    });
    let out = common::fix::run_cmd(cmd, 30);
    assert_eq!(refused.join().expect("the pausing thread"), 1, "{out}");
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr
            .contains(&format!("{}: open: EACCES", fx.abs("d").display())),
        "{out}"
    );
    let r = common::report::summary(&out, fx.path(), false);
    assert_eq!((r.mount, r.errors), (0, 1), "{out}");
    assert_eq!(owner(&fx.abs("a")), (T, T), "the sweep went on\n{out}");
    assert_eq!(owner(&fx.abs("d/f")), (0, 0), "{out}");
}
