//! Reading what fix-ownership reports: the `--json` object (checked against the contract), the
//! summary line, the `--verbose` lines, and the one-line refusal.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use super::fix::{Out, PREFIX, WALKS};

/// The counts a run reports, from its JSON or from its summary line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub scanned: u64,
    pub changed: u64,
    pub hardlink: u64,
    pub device: u64,
    pub mount: u64,
    pub excluded: u64,
    pub other_owner: u64,
    pub errors: u64,
}

/// The `--json` report as the contract defines it: every key, each once, and no other (serde's
/// derive refuses a key given twice, where `serde_json::Value` would silently keep the last, and
/// `deny_unknown_fields` refuses a key the contract does not name).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Contract {
    root: String,
    dry_run: bool,
    walk: String,
    mount_ids: String,
    uid: u32,
    gid: u32,
    scanned: u64,
    changed: u64,
    skipped: Skipped,
    errors: u64,
    elapsed_ms: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Skipped {
    other_owner: u64,
    device: u64,
    hardlink: u64,
    mount: u64,
    excluded: u64,
}

fn contract(out: &Out) -> Contract {
    serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("stdout is not one JSON report as documented ({e})\n{out}"))
}

/// Stdout of `out` as exactly one JSON object, the report as documented.
pub fn json_object(out: &Out) -> Map<String, Value> {
    contract(out);
    match serde_json::from_str::<Value>(out.stdout.trim()) {
        Ok(Value::Object(obj)) => obj,
        Ok(_) => panic!("stdout JSON is not an object\n{out}"),
        Err(e) => panic!("stdout is not one JSON object ({e})\n{out}"),
    }
}

/// Validates the JSON on stdout against the contract (every documented key, root, `dry_run`, walk,
/// uid, gid) and the summary line on stderr, checks both agree, and returns the counts.
pub fn report(out: &Out, root: &Path, walk: Option<&str>, dry: bool, target: (u32, u32)) -> Counts {
    let r = contract(out);
    assert_eq!(r.root, root.to_str().unwrap(), "JSON root\n{out}");
    assert_eq!(r.dry_run, dry, "JSON dry_run\n{out}");
    match walk {
        Some(w) => assert_eq!(r.walk, w, "JSON walk\n{out}"),
        None => assert!(
            WALKS.contains(&r.walk.as_str()),
            "JSON walk is {:?}, not one of {WALKS:?}\n{out}",
            r.walk
        ),
    }
    let ids = ["statx", "name_to_handle_at", "fdinfo"];
    assert!(
        ids.contains(&r.mount_ids.as_str()),
        "JSON mount_ids is {:?}, not one of {ids:?}\n{out}",
        r.mount_ids
    );
    assert_eq!((r.uid, r.gid), target, "JSON uid and gid\n{out}");
    let counts = Counts {
        scanned: r.scanned,
        changed: r.changed,
        hardlink: r.skipped.hardlink,
        device: r.skipped.device,
        mount: r.skipped.mount,
        excluded: r.skipped.excluded,
        other_owner: r.skipped.other_owner,
        errors: r.errors,
    };
    let summary = summary(out, root, dry);
    assert_eq!(summary, counts, "summary line and JSON disagree\n{out}");
    counts
}

/// Parses the one summary line on stderr:
/// `hermes-shim fix-ownership: ROOT: changed 12 of 48210 entries; skipped 1 hardlinked, 0 devices,
/// 2 mounts, 0 excluded, 3 other owners; 0 errors; 41 ms`.
pub fn summary(out: &Out, root: &Path, dry: bool) -> Counts {
    let head = format!("{PREFIX}{}: ", root.display());
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with(&head))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "want exactly one summary line starting {head:?}\n{out}"
    );
    let rest = &lines[0][head.len()..];
    let verb = if dry { "would change" } else { "changed" };
    let nums: Vec<u64> = rest
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(
        nums.len(),
        9,
        "summary line has {} numbers\n{out}",
        nums.len()
    );
    let want = format!(
        "{verb} {} of {} entries; skipped {} hardlinked, {} devices, {} mounts, {} excluded, {} other owners; {} errors; {} ms",
        nums[0], nums[1], nums[2], nums[3], nums[4], nums[5], nums[6], nums[7], nums[8]
    );
    // Singular forms for a count of 1 are accepted; the rest of the wording is the contract's.
    let got = format!("{rest};")
        .replace(" 1 entry;", " 1 entries;")
        .replace(" 1 device,", " 1 devices,")
        .replace(" 1 mount,", " 1 mounts,")
        .replace(" 1 other owner;", " 1 other owners;")
        .replace(" 1 error;", " 1 errors;");
    assert_eq!(
        got.strip_suffix(';').unwrap(),
        want,
        "summary line wording\n{out}"
    );
    Counts {
        changed: nums[0],
        scanned: nums[1],
        hardlink: nums[2],
        device: nums[3],
        mount: nums[4],
        excluded: nums[5],
        other_owner: nums[6],
        errors: nums[7],
    }
}

/// The per-entry `--verbose` lines: (changed, would change, skipped with reason).
pub struct Verbose {
    pub changed: BTreeSet<PathBuf>,
    pub would: BTreeSet<PathBuf>,
    pub skipped: BTreeMap<PathBuf, String>,
}

impl Verbose {
    /// The reason `--verbose` gave for skipping `p`, if it did.
    pub fn skip_reason(&self, p: &Path) -> Option<&str> {
        self.skipped.get(p).map(String::as_str)
    }
}

/// The `--verbose` lines on stderr; a path reported twice fails.
pub fn verbose(out: &Out) -> Verbose {
    let mut v = Verbose {
        changed: BTreeSet::new(),
        would: BTreeSet::new(),
        skipped: BTreeMap::new(),
    };
    for l in out.stderr.lines() {
        let Some(rest) = l.strip_prefix(PREFIX) else {
            continue;
        };
        if let Some(p) = rest.strip_prefix("changed ") {
            assert!(v.changed.insert(p.into()), "{p} reported twice\n{out}");
        } else if let Some(p) = rest.strip_prefix("would change ") {
            assert!(v.would.insert(p.into()), "{p} reported twice\n{out}");
        } else if let Some(s) = rest.strip_prefix("skipped ") {
            let (p, why) = s
                .strip_suffix(')')
                .and_then(|s| s.rsplit_once(" ("))
                .unwrap_or_else(|| panic!("malformed skip line {l:?}\n{out}"));
            assert!(
                v.skipped.insert(p.into(), why.into()).is_none(),
                "{p} skipped twice\n{out}"
            );
        }
    }
    v
}

/// Exit 2 and exactly one stderr line starting with the prefix; returns that line.
pub fn assert_refused(out: &Out) -> String {
    assert_eq!(out.code, Some(2), "expected a refusal (exit 2)\n{out}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "refusal must be one stderr line\n{out}");
    assert!(
        lines[0].starts_with(PREFIX),
        "refusal line must start with {PREFIX:?}\n{out}"
    );
    lines[0].to_string()
}
