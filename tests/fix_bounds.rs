//! Root integration tests of fix-ownership's bounds: a 10,000-level tree under a 256-fd limit
//! (with both walk backends), and a chain deeper than the documented cap, cut and reported.

mod common;

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::Command;

use nix::sys::stat::{Mode, fstat, mkdirat};

use common::fix::{T, USER, clean_cmd, fo, per_walk, run_cmd};
use common::fixture::open_dir_at;
use common::report::{Counts, report};
use common::{TempDir, require};

const DEEP: usize = 10_000;

/// Builds root/d/d/…/d, `levels` deep, relative to the parent's fd (the paths exceed `PATH_MAX`,
/// and chdir would disturb the tests running in parallel threads).
fn build_deep(root: &Path, levels: usize) {
    let mut fd: OwnedFd = File::open(root).unwrap().into();
    for i in 0..levels {
        mkdirat(&fd, "d", Mode::from_bits_truncate(0o755))
            .unwrap_or_else(|e| panic!("mkdirat level {i}: {e}"));
        fd = open_dir_at(&fd, "d").unwrap_or_else(|e| panic!("openat level {i}: {e}"));
    }
}

/// Removes a deep tree here: rm copes with any depth, whatever the drop path does.
#[track_caller]
fn remove_deep(dir: &TempDir) {
    let rm = Command::new("rm")
        .args(["-rf", "--one-file-system", "--"])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(rm.success(), "rm -rf of the deep tree failed");
}

/// Owners of root and every level below it, read by fd.
fn deep_owners(root: &Path) -> Vec<(u32, u32)> {
    let mut fd: OwnedFd = File::open(root).unwrap().into();
    let mut v = Vec::with_capacity(DEEP + 1);
    loop {
        let st = fstat(&fd).unwrap();
        v.push((st.st_uid, st.st_gid));
        match open_dir_at(&fd, "d") {
            Ok(next) => fd = next,
            Err(nix::errno::Errno::ENOENT) => return v,
            Err(e) => panic!("openat at level {}: {e}", v.len()),
        }
    }
}

fn deep_tree(walk: &str) {
    require!(root, tools: ["prlimit", "rm"]);
    let dir = TempDir::new(&format!("fo-deep-{walk}"));
    build_deep(dir.path(), DEEP);
    let before = deep_owners(dir.path());
    assert_eq!(before.len(), DEEP + 1);
    assert!(
        before.iter().all(|&o| o == (0, 0)),
        "fixture not root-owned"
    );
    let mut cmd = clean_cmd("prlimit");
    cmd.arg("--nofile=256:256")
        .arg(common::bin())
        .arg("fix-ownership")
        .arg(dir.path())
        .args(["--user", USER, "--walk", walk, "--json"]);
    let out = run_cmd(cmd, 300);
    let after = deep_owners(dir.path());
    remove_deep(&dir);
    assert_eq!(out.code, Some(0), "exit code\n{out}");
    let c = report(&out, dir.path(), Some(walk), false, (T, T));
    let want = Counts {
        scanned: DEEP as u64 + 1,
        changed: DEEP as u64 + 1,
        ..Counts::default()
    };
    assert_eq!(c, want, "{out}");
    let wrong = after.iter().filter(|&&o| o != (T, T)).count();
    assert_eq!(wrong, 0, "{wrong} levels not changed to {USER}\n{out}");
}

per_walk!(deep_tree);

/// The documented depth cap (README: "Below 16,384 levels nothing is entered"), written as the
/// number the README states and never derived from the crate's constant, so the binary's real
/// cut is what this checks: memory per worker grows with depth, so a hostile chain is cut
/// there, reported, and everything above the cut is still fixed.
const MAX_DEPTH: usize = 16_384;

#[test]
fn a_chain_deeper_than_the_cap_is_cut_and_reported() {
    require!(root, tools: ["rm"]);
    let dir = TempDir::new("fo-deeper");
    build_deep(dir.path(), MAX_DEPTH + 5);
    let out = fo(dir.path(), "openat2", &[]);
    let after = deep_owners(dir.path());
    remove_deep(&dir);
    assert_eq!(out.code, Some(1), "the cut is an error\n{out}");
    assert!(
        out.stderr
            .contains(&format!("deeper than {MAX_DEPTH} levels")),
        "{out}"
    );
    // Levels 0..=MAX_DEPTH+1 are judged (the last of them is changed but not entered).
    let fixed = MAX_DEPTH + 2;
    assert_eq!(after.len(), MAX_DEPTH + 6);
    assert!(
        after[..fixed].iter().all(|&o| o == (T, T)),
        "above the cut: fixed\n{out}"
    );
    assert!(
        after[fixed..].iter().all(|&o| o == (0, 0)),
        "below the cut: untouched\n{out}"
    );
}
