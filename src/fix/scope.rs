//! What the sweep's scope may rest on: only what the agent cannot rename.
//!
//! A name is the agent's to move wherever the directory holding it is writable by the target
//! user. So a root whose parent (or any ancestor) the target can write could be a different
//! directory at the next start (the agent renames a root-only sibling in under that name), and
//! an excluded name in a directory the target can write is only excluded until the agent
//! renames it. Mount points are the one thing inside a tree the agent cannot rename, so they
//! are what keeps root's data out of a sweep; excludes are a speed tool. Pure: permission bits
//! against a user's ids (ACLs aside, which this image does not use).

/// The target user, as the kernel checks it against a directory's permission bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Writer {
    pub uid: u32,
    /// The primary gid and every supplementary group.
    pub groups: Vec<u32>,
}

impl Writer {
    /// Whether this user can add, remove or rename entries of a directory owned by `uid`:`gid`
    /// with permission bits `mode`. Its owner always can: it may chmod the directory first.
    /// The sticky bit does not count: in a sticky directory the owner of an entry may still
    /// rename it away, and anyone may create a new name.
    pub fn can_write(&self, uid: u32, gid: u32, mode: u32) -> bool {
        const WX: u32 = 0o3;
        if uid == self.uid {
            return true;
        }
        // The kernel uses the first class that matches: a group that matches with fewer bits
        // than "other" grants no more.
        let bits = if self.groups.contains(&gid) {
            mode >> 3
        } else {
            mode
        };
        bits & WX == WX
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_can_rename_in_a_directory() {
        let w = Writer {
            uid: 10000,
            groups: vec![10000, 44],
        };
        let table = [
            // (owner, group, mode, writable)
            ((0, 0, 0o755), false),
            ((0, 0, 0o1777), true),
            ((0, 0, 0o777), true),
            ((0, 0, 0o773), true),
            ((0, 0, 0o771), false),
            ((0, 0, 0o772), false),
            ((10000, 0, 0o500), true),
            ((10000, 10000, 0o000), true),
            ((0, 10000, 0o775), true),
            ((0, 44, 0o770), true),
            ((0, 44, 0o750), false),
            ((0, 44, 0o757), false),
            ((0, 10000, 0o730), true),
            ((0, 10000, 0o720), false),
            ((0, 45, 0o770), false),
            ((1, 45, 0o705), false),
            ((1, 45, 0o703), true),
        ];
        for ((uid, gid, mode), want) in table {
            assert_eq!(w.can_write(uid, gid, mode), want, "{uid}:{gid} {mode:o}");
        }
    }
}
