//! Reading what fix-ownership reports: the `--json` object (checked against the contract), the
//! summary line, the `--verbose` lines, and the one-line refusal.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
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

/// Any JSON document in which no object has a key twice: `serde_json::Value` would silently
/// keep the last of two, and a report must not say two things.
struct NoDuplicateKeys;

impl<'de> Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoDuplicateKeys)
    }
}

impl<'de> Visitor<'de> for NoDuplicateKeys {
    type Value = NoDuplicateKeys;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(self)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        let mut seen = BTreeSet::new();
        while let Some(k) = map.next_key::<String>()? {
            map.next_value::<NoDuplicateKeys>()?;
            if !seen.insert(k.clone()) {
                return Err(de::Error::custom(format!("duplicate key {k:?}")));
            }
        }
        Ok(self)
    }
}

/// Stdout of `out` as exactly one JSON object, with no key twice.
pub fn json_object(out: &Out) -> Map<String, Value> {
    let text = out.stdout.trim();
    let parsed = serde_json::from_str::<NoDuplicateKeys>(text)
        .and_then(|_| serde_json::from_str::<Value>(text));
    match parsed {
        Ok(Value::Object(obj)) => obj,
        Ok(_) => panic!("stdout JSON is not an object\n{out}"),
        Err(e) => panic!("stdout is not one JSON object ({e})\n{out}"),
    }
}

fn json_u64(obj: &Map<String, Value>, key: &str, ctx: &Out) -> u64 {
    obj.get(key)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("JSON key {key:?} is not a count: {:?}\n{ctx}", obj.get(key)))
}

/// Validates the JSON on stdout against the contract (every documented key, root, `dry_run`, walk,
/// uid, gid) and the summary line on stderr, checks both agree, and returns the counts.
pub fn report(out: &Out, root: &Path, walk: Option<&str>, dry: bool, target: (u32, u32)) -> Counts {
    let obj = json_object(out);
    for k in [
        "root",
        "dry_run",
        "walk",
        "mount_ids",
        "uid",
        "gid",
        "scanned",
        "changed",
        "skipped",
        "errors",
        "elapsed_ms",
    ] {
        assert!(obj.contains_key(k), "JSON lacks key {k:?}\n{out}");
    }
    assert_eq!(
        obj["root"],
        Value::from(root.to_str().unwrap()),
        "JSON root\n{out}"
    );
    assert_eq!(obj["dry_run"], Value::Bool(dry), "JSON dry_run\n{out}");
    match (walk, &obj["walk"]) {
        (Some(w), j) => assert_eq!(j, &Value::from(w), "JSON walk\n{out}"),
        (None, Value::String(s)) if WALKS.contains(&s.as_str()) => {}
        (None, j) => panic!("JSON walk is {j:?}, not one of {WALKS:?}\n{out}"),
    }
    let ids = ["statx", "name_to_handle_at", "fdinfo"];
    assert!(
        matches!(&obj["mount_ids"], Value::String(s) if ids.contains(&s.as_str())),
        "JSON mount_ids is {:?}, not one of {ids:?}\n{out}",
        obj["mount_ids"]
    );
    assert_eq!(
        json_u64(&obj, "uid", out),
        u64::from(target.0),
        "JSON uid\n{out}"
    );
    assert_eq!(
        json_u64(&obj, "gid", out),
        u64::from(target.1),
        "JSON gid\n{out}"
    );
    json_u64(&obj, "elapsed_ms", out);
    let Some(Value::Object(sk)) = obj.get("skipped") else {
        panic!("JSON skipped is not an object\n{out}")
    };
    for k in ["other_owner", "device", "hardlink", "mount", "excluded"] {
        assert!(sk.contains_key(k), "JSON skipped lacks key {k:?}\n{out}");
    }
    let counts = Counts {
        scanned: json_u64(&obj, "scanned", out),
        changed: json_u64(&obj, "changed", out),
        hardlink: json_u64(sk, "hardlink", out),
        device: json_u64(sk, "device", out),
        mount: json_u64(sk, "mount", out),
        excluded: json_u64(sk, "excluded", out),
        other_owner: json_u64(sk, "other_owner", out),
        errors: json_u64(&obj, "errors", out),
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
