//! The sweep's rule, pure and tested as a table: what happens to one entry (changed, kept or
//! skipped and why), whose ids move (root's, and after a remap the user's previous ids), and
//! whether an id can be given at all in this user namespace.

use std::fmt;

use crate::sys::fs::Kind;

/// Why an entry is left as it is, and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Owned by a uid that is neither root nor the target (a host user's file in a bind mount).
    OtherOwner,
    /// A block or character device.
    Device,
    /// A non-directory with more than one hard link: the other name may be outside the tree.
    Hardlink,
    /// On another mount than the sweep's root (not entered).
    Mount,
    /// Listed with `--exclude` (not entered).
    Excluded,
}

impl Skip {
    pub fn reason(self) -> &'static str {
        match self {
            Skip::OtherOwner => "other owner",
            Skip::Device => "device",
            Skip::Hardlink => "hardlinked",
            Skip::Mount => "mount",
            Skip::Excluded => "excluded",
        }
    }
}

/// What the sweep does with one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Already right, or not ours to judge (uid is the target and gid is not root).
    Keep,
    /// Change owner and/or group; `None` leaves that id as it is.
    Change {
        uid: Option<u32>,
        gid: Option<u32>,
    },
    Skip(Skip),
}

/// The hermes user's ids before a boot-time remap: entries they own are the user's own files
/// under its old ids, and move with it (`--also-from`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Previous {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

impl Previous {
    /// Parses `UID:GID`, `UID:` or `:GID`; ids 0 and 4294967295 are refused.
    pub fn parse(spec: &str) -> Result<Previous, PreviousError> {
        let bad = || PreviousError(spec.to_string());
        let id = |s: &str| -> Result<Option<u32>, PreviousError> {
            if s.is_empty() {
                return Ok(None);
            }
            match s.parse::<u32>() {
                Ok(n) if n != 0 && n != u32::MAX && s.bytes().all(|b| b.is_ascii_digit()) => {
                    Ok(Some(n))
                }
                _ => Err(bad()),
            }
        };
        let (u, g) = spec.split_once(':').ok_or_else(bad)?;
        let p = Previous {
            uid: id(u)?,
            gid: id(g)?,
        };
        if p == Previous::default() {
            return Err(bad());
        }
        Ok(p)
    }

    /// The `--also-from` spelling of these ids.
    pub fn spec(&self) -> String {
        let f = |v: Option<u32>| v.map(|n| n.to_string()).unwrap_or_default();
        format!("{}:{}", f(self.uid), f(self.gid))
    }
}

/// An `--also-from` value that is not the user's previous ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousError(pub String);

impl fmt::Display for PreviousError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "--also-from {:?}: give the user's previous ids as UID:GID, UID: or :GID, none of them 0",
            self.0
        )
    }
}

/// Whose entries move, and to whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// The hermes user's uid and gid.
    pub target: (u32, u32),
    /// Its ids before a remap, if any.
    pub previous: Previous,
}

#[cfg(test)]
impl Rule {
    /// The plain rule: only root's ownership moves.
    pub fn to(target: (u32, u32)) -> Rule {
        Rule {
            target,
            previous: Previous::default(),
        }
    }
}

/// The ownership rule, for an entry already known to be on the sweep's mount and not excluded.
///
/// Only root's ownership (and, after a remap, the user's previous ids) moves to the target, uid
/// and gid independently (`root:staff` becomes `hermes:staff`). An entry of any other uid is
/// left whole, even with gid 0: it belongs to someone else. Directories may have any link count;
/// other types with more than one link are skipped, because a hard link can pull an inode from
/// outside the tree into it.
// A uid and a gid of each kind (current, target, old, new): the names differ in that letter.
#[allow(clippy::similar_names)]
pub fn decide(kind: Kind, uid: u32, gid: u32, nlink: u32, rule: &Rule) -> Action {
    let (target_uid, target_gid) = rule.target;
    let (old_uid, old_gid) = (rule.previous.uid, rule.previous.gid);
    if matches!(kind, Kind::BlockDevice | Kind::CharDevice) {
        return Action::Skip(Skip::Device);
    }
    let moving_uid = uid == 0 || Some(uid) == old_uid;
    if !moving_uid && uid != target_uid {
        return Action::Skip(Skip::OtherOwner);
    }
    let new_uid = (moving_uid && uid != target_uid).then_some(target_uid);
    let new_gid = ((gid == 0 || Some(gid) == old_gid) && gid != target_gid).then_some(target_gid);
    if new_uid.is_none() && new_gid.is_none() {
        return Action::Keep;
    }
    if kind != Kind::Dir && nlink > 1 {
        return Action::Skip(Skip::Hardlink);
    }
    Action::Change {
        uid: new_uid,
        gid: new_gid,
    }
}

/// Whether `id` has a mapping in a `/proc/PID/uid_map` or `gid_map` text (lines of `INSIDE OUTSIDE
/// COUNT`): an id outside every range cannot be given to a file from this user namespace.
pub fn id_mapped(map: &str, id: u32) -> bool {
    map.lines().any(|line| {
        let mut f = line.split_whitespace().map(str::parse::<u64>);
        match (f.next(), f.next(), f.next()) {
            (Some(Ok(inside)), Some(Ok(_)), Some(Ok(count))) => {
                (inside..inside + count).contains(&u64::from(id))
            }
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: (u32, u32) = (10000, 10001);

    #[test]
    fn ownership_rule() {
        use Action::*;
        let c = |uid, gid| Change { uid, gid };
        let table = [
            (Kind::File, 0, 0, 1, c(Some(10000), Some(10001))),
            (Kind::File, 0, 50, 1, c(Some(10000), None)),
            (Kind::File, 10000, 0, 1, c(None, Some(10001))),
            (Kind::File, 10000, 10001, 1, Keep),
            (Kind::File, 10000, 50, 1, Keep),
            (Kind::File, 1000, 0, 1, Skip(super::Skip::OtherOwner)),
            (Kind::File, 1000, 1000, 1, Skip(super::Skip::OtherOwner)),
            (Kind::File, 0, 0, 2, Skip(super::Skip::Hardlink)),
            (Kind::File, 10000, 10001, 2, Keep),
            (Kind::Symlink, 0, 0, 2, Skip(super::Skip::Hardlink)),
            (Kind::Dir, 0, 0, 7, c(Some(10000), Some(10001))),
            (Kind::Symlink, 0, 0, 1, c(Some(10000), Some(10001))),
            (Kind::Other, 0, 0, 1, c(Some(10000), Some(10001))),
            (Kind::Other, 0, 10001, 1, c(Some(10000), None)),
            (Kind::CharDevice, 0, 0, 1, Skip(super::Skip::Device)),
            (
                Kind::BlockDevice,
                10000,
                10001,
                1,
                Skip(super::Skip::Device),
            ),
        ];
        for (kind, uid, gid, nlink, want) in table {
            assert_eq!(
                decide(kind, uid, gid, nlink, &Rule::to(T)),
                want,
                "{kind:?} {uid}:{gid} nlink {nlink}"
            );
        }
    }

    #[test]
    fn after_a_remap_the_previous_ids_move_too() {
        use Action::*;
        let rule = Rule {
            target: (1000, 1001),
            previous: Previous::parse("10000:10000").unwrap(),
        };
        let c = |uid, gid| Change { uid, gid };
        let table = [
            (10000, 10000, 1, c(Some(1000), Some(1001))),
            (10000, 50, 1, c(Some(1000), None)),
            (0, 10000, 1, c(Some(1000), Some(1001))),
            (1000, 10000, 1, c(None, Some(1001))),
            (1000, 1001, 1, Keep),
            (10001, 10000, 1, Skip(super::Skip::OtherOwner)),
            (10000, 10000, 2, Skip(super::Skip::Hardlink)),
        ];
        for (uid, gid, nlink, want) in table {
            assert_eq!(
                decide(Kind::File, uid, gid, nlink, &rule),
                want,
                "{uid}:{gid} nlink {nlink}"
            );
        }
        // Without a remap, the old uid is just another owner.
        assert_eq!(
            decide(Kind::File, 10000, 10000, 1, &Rule::to((1000, 1001))),
            Skip(super::Skip::OtherOwner)
        );
    }

    #[test]
    fn also_from_spellings() {
        let p = |uid, gid| Ok(Previous { uid, gid });
        assert_eq!(Previous::parse("10000:10001"), p(Some(10000), Some(10001)));
        assert_eq!(Previous::parse("10000:"), p(Some(10000), None));
        assert_eq!(Previous::parse(":10001"), p(None, Some(10001)));
        for bad in [
            ":",
            "",
            "10000",
            "0:5",
            "5:0",
            "4294967295:",
            "a:b",
            "+5:",
            "1:2:3",
        ] {
            let e = Previous::parse(bad).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "--also-from {bad:?}: give the user's previous ids as UID:GID, UID: or :GID, \
                     none of them 0"
                ),
                "the refusal names the value and the remedy"
            );
        }
        for spec in ["10000:10001", "10000:", ":10001"] {
            assert_eq!(Previous::parse(spec).unwrap().spec(), spec);
        }
        // Only the gid moves when only the gid was remapped.
        let rule = Rule {
            target: (10000, 2000),
            previous: Previous::parse(":10000").unwrap(),
        };
        assert_eq!(
            decide(Kind::File, 10000, 10000, 1, &rule),
            Action::Change {
                uid: None,
                gid: Some(2000)
            }
        );
        assert_eq!(
            decide(Kind::File, 4242, 10000, 1, &rule),
            Action::Skip(Skip::OtherOwner)
        );
    }

    // One table of both sides, on purpose.
    #[allow(clippy::too_many_lines)]
    #[test]
    fn id_maps() {
        let init = "         0          0 4294967295\n";
        assert!(id_mapped(init, 0) && id_mapped(init, 10000) && id_mapped(init, 4_294_967_294));
        let root_only = "         0       1000          1\n";
        assert!(id_mapped(root_only, 0));
        assert!(!id_mapped(root_only, 1) && !id_mapped(root_only, 10000));
        let rootless = "0 1000 1\n1 100000 65536\n";
        assert!(id_mapped(rootless, 10000) && id_mapped(rootless, 65536));
        assert!(!id_mapped(rootless, 65537));
        assert!(!id_mapped("", 0), "no mapping at all maps nothing");
        assert!(!id_mapped("garbage\n", 0));
    }
}
