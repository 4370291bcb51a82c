//! The remap's plan, pure and unit-tested: the new passwd and group text for the ids asked
//! for, and the part of a recorded remap that still describes the past.

use crate::fix::Previous;
use crate::settings::Request;
use crate::users::{self, GidUse, LowGids};

use super::error::RemapError;

/// A remap to carry out: the new file contents (`None`: unchanged) and the ids the user's files
/// move from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub old: (u32, u32),
    pub new: (u32, u32),
    pub passwd: Option<String>,
    pub group: Option<String>,
    pub previous: Previous,
    /// The gid asked for, refused: the uid is remapped alone, the user keeps its gid.
    pub refused_gid: Option<RemapError>,
}

/// Plans the remap of `user`; `None` when its ids already are the ones asked for.
///
/// The gid works as `usermod -g` and `groupmod -g` would together: a gid some group already
/// has makes the user a member of that group by primary gid; a free gid renumbers the user's
/// primary group when that group is private to it (useradd's own group), else only the user's
/// line changes. Files move from the old gid only when the old group was private: a shared
/// group's files are not the user's alone.
pub fn plan(
    passwd: &str,
    group: &str,
    user: &str,
    req: Request,
    low: &LowGids,
) -> Result<Option<Plan>, RemapError> {
    let me = users::passwd_entries(passwd)
        .find(|u| u.name == user)
        .ok_or_else(|| RemapError::UnknownUser(user.to_string()))?;
    if me.uid == 0 || me.gid == 0 {
        return Err(RemapError::RootAccount {
            user: user.to_string(),
            uid: me.uid,
            gid: me.gid,
        });
    }
    let old = (me.uid, me.gid);
    let mut new = (req.uid.unwrap_or(me.uid), req.gid.unwrap_or(me.gid));
    // Gid 0 never gets here: the settings take ids from 1. A refused gid does not throw away a
    // valid uid (PUID=501 PGID=20 from a Mac, where 20 grants something here): the uid is
    // remapped alone and the user keeps its gid; only a request for the gid alone is refused.
    let mut refused_gid = None;
    // Files the user made before, or makes after, are its own whichever uid it has.
    low.owned_by(old.0);
    low.owned_by(new.0);
    if new.1 != old.1 && users::gid_use(new.1, low) == GidUse::System {
        let refused = RemapError::SystemGid {
            gid: new.1,
            name: users::system_gid_name(new.1, group, low),
        };
        if new.0 == old.0 {
            return Err(refused);
        }
        refused_gid = Some(refused);
        new.1 = old.1;
    }
    if new == old {
        return Ok(None);
    }
    if let Some(other) = users::passwd_entries(passwd).find(|u| u.uid == new.0 && u.name != user) {
        return Err(RemapError::UidTaken {
            uid: new.0,
            owner: other.name.to_string(),
        });
    }
    let shared = users::passwd_entries(passwd).any(|u| u.gid == old.1 && u.name != user);
    let private_group = users::group_entries(group)
        .find(|g| g.gid == old.1)
        .filter(|g| !shared && g.members().all(|m| m == user));
    let gid_taken = users::group_entries(group).any(|g| g.gid == new.1);
    let mut fields = Vec::new();
    if new.0 != old.0 {
        fields.push((2, new.0));
    }
    let mut group_text = None;
    if new.1 != old.1 {
        fields.push((3, new.1));
        if let Some(g) = private_group.as_ref().filter(|_| !gid_taken) {
            group_text = Some(users::with_field(group, &g.span, 2, &new.1.to_string()));
        }
    }
    // Both fields in one edit: the line's span is the original text's, and a uid with fewer
    // digits than the old one would leave it pointing past the edited line.
    let values: Vec<(usize, String)> = fields.iter().map(|(i, id)| (*i, id.to_string())).collect();
    let passwd_text = users::with_fields(passwd, &me.span, &values);
    Ok(Some(Plan {
        old,
        new,
        passwd: Some(passwd_text),
        group: group_text,
        previous: Previous {
            uid: (new.0 != old.0).then_some(old.0),
            gid: (new.1 != old.1 && private_group.is_some()).then_some(old.1),
        },
        refused_gid,
    }))
}

/// The part of a recorded remap that still describes the past: a uid nobody holds now, a gid
/// the user has left or no group holds any more (a start cut short between renumbering the
/// group and the user). What a failed or undone remap recorded (the user still has those ids,
/// its group still that gid) is dropped, so it can never block a later start.
pub fn still_pending(recorded: Previous, passwd: &str, group: &str, user: &str) -> Previous {
    let current_gid = users::passwd_entries(passwd)
        .find(|u| u.name == user)
        .map(|u| u.gid);
    Previous {
        uid: recorded
            .uid
            .filter(|uid| !users::passwd_entries(passwd).any(|u| u.uid == *uid)),
        gid: recorded.gid.filter(|gid| {
            current_gid != Some(*gid) || !users::group_entries(group).any(|g| g.gid == *gid)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan with the unit tests' evidence ([`users::test_low`]).
    fn plan(
        passwd: &str,
        group: &str,
        user: &str,
        req: Request,
    ) -> Result<Option<Plan>, RemapError> {
        super::plan(passwd, group, user, req, &users::test_low())
    }

    const PASSWD_TEXT: &str = "root:x:0:0:root:/root:/bin/bash\n# hermes:x:1:1::/:/bin/sh\nhermes:x:bad:1::/:/bin/sh\nhermes:x:10000:10000::/opt/data:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n";
    const GROUP_TEXT: &str = "root:x:0:\nhermes:x:10000:\nalice:x:1000:\ndocker:x:990:hermes\n";

    fn req(uid: Option<u32>, gid: Option<u32>) -> Request {
        Request { uid, gid }
    }

    #[test]
    fn plans_touch_only_the_users_lines() {
        let p = plan(
            PASSWD_TEXT,
            GROUP_TEXT,
            "hermes",
            req(Some(2000), Some(2001)),
        )
        .unwrap()
        .unwrap();
        assert_eq!((p.old, p.new), ((10000, 10000), (2000, 2001)));
        assert_eq!(
            p.passwd.unwrap(),
            PASSWD_TEXT.replace("hermes:x:10000:10000:", "hermes:x:2000:2001:")
        );
        assert_eq!(
            p.group.unwrap(),
            GROUP_TEXT.replace("hermes:x:10000:", "hermes:x:2001:")
        );
        assert_eq!(
            p.previous,
            Previous {
                uid: Some(10000),
                gid: Some(10000)
            }
        );
        let uid_only = plan(PASSWD_TEXT, GROUP_TEXT, "hermes", req(Some(2000), None))
            .unwrap()
            .unwrap();
        assert_eq!(uid_only.new, (2000, 10000));
        assert_eq!(uid_only.group, None);
        assert_eq!(
            uid_only.previous,
            Previous {
                uid: Some(10000),
                gid: None
            }
        );
    }

    #[test]
    fn a_gid_some_group_has_is_joined_not_renumbered() {
        // PGID=100 on a NAS: the user joins `users` by primary gid; its private group stays.
        let group = format!("{GROUP_TEXT}users:x:100:\n");
        let p = plan(PASSWD_TEXT, &group, "hermes", req(None, Some(100)))
            .unwrap()
            .unwrap();
        assert_eq!(
            p.passwd.unwrap(),
            PASSWD_TEXT.replace("hermes:x:10000:10000:", "hermes:x:10000:100:")
        );
        assert_eq!(p.group, None);
        assert_eq!(
            p.previous,
            Previous {
                uid: None,
                gid: Some(10000)
            },
            "the private group's files move"
        );
    }

    #[test]
    fn a_shared_primary_group_keeps_its_gid_and_its_files() {
        let passwd = "bob:x:3000:100::/home/bob:/bin/sh\ncarol:x:3002:100::/home/carol:/bin/sh\n";
        let group = "users:x:100:\n";
        let p = plan(passwd, group, "bob", req(None, Some(3001)))
            .unwrap()
            .unwrap();
        assert_eq!(
            p.passwd.unwrap(),
            passwd.replace("bob:x:3000:100:", "bob:x:3000:3001:")
        );
        assert_eq!(p.group, None);
        assert_eq!(
            p.previous,
            Previous::default(),
            "a shared group's files are not bob's alone"
        );
        let members = "users:x:100:bob,dave\n";
        let alone = "bob:x:3000:100::/home/bob:/bin/sh\n";
        let p = plan(alone, members, "bob", req(None, Some(3001)))
            .unwrap()
            .unwrap();
        assert_eq!(p.group, None, "a group with other members is shared too");
        let itself = "users:x:100:bob\n";
        let p = plan(alone, itself, "bob", req(None, Some(3001)))
            .unwrap()
            .unwrap();
        assert_eq!(
            p.group.as_deref(),
            Some("users:x:3001:bob\n"),
            "a group listing only its own user is still private"
        );
    }

    #[test]
    fn nothing_to_do_and_refusals() {
        let p = |uid, gid| plan(PASSWD_TEXT, GROUP_TEXT, "hermes", req(uid, gid));
        assert_eq!(p(Some(10000), Some(10000)), Ok(None));
        assert_eq!(
            p(Some(1000), None),
            Err(RemapError::UidTaken {
                uid: 1000,
                owner: "alice".into()
            }),
            "uid taken"
        );
        assert!(plan(PASSWD_TEXT, GROUP_TEXT, "nosuch", req(Some(5), None)).is_err());
        // PGID=5 would make hermes's own group tty (writing root's terminals), 42 shadow.
        let tty = format!("{GROUP_TEXT}tty:x:5:\n");
        let refused = plan(PASSWD_TEXT, &tty, "hermes", req(None, Some(5)));
        assert_eq!(
            refused,
            Err(RemapError::SystemGid {
                gid: 5,
                name: "gid 5, the system group 'tty' (the group of every terminal in /dev/pts)"
                    .into()
            })
        );
        assert_eq!(
            refused.unwrap_err().to_string(),
            "gid 5 is the system group 'tty' (the group of every terminal in /dev/pts), which grants far more than the user's own files — pick a gid of 100 or above, or one that owns nothing outside HERMES_HOME"
        );
        assert_eq!(
            p(None, Some(42)),
            Err(RemapError::SystemGid {
                gid: 42,
                name: "gid 42, a system gid (owner of /etc/shadow with group access)".into()
            }),
            "refused whether or not the image names the gid"
        );
        assert!(p(None, Some(100)).is_ok(), "100 (users) is no system group");
        assert!(p(None, Some(99)).is_err());
        // A gid below 100 that grants nothing here is given (a Mac's staff, 20).
        assert_eq!(p(None, Some(20)).unwrap().unwrap().new, (10000, 20));
    }

    #[test]
    fn a_shorter_uid_and_a_new_gid_on_the_last_line() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nhermes:x:10000:10000::/opt/data:/bin/sh\n";
        let p = plan(passwd, GROUP_TEXT, "hermes", req(Some(501), Some(20)))
            .unwrap()
            .unwrap();
        assert_eq!(
            p.passwd.unwrap(),
            "root:x:0:0:root:/root:/bin/sh\nhermes:x:501:20::/opt/data:/bin/sh\n"
        );
    }

    #[test]
    fn a_refused_gid_keeps_the_uid_remap_with_the_users_old_gid() {
        let p = plan(PASSWD_TEXT, GROUP_TEXT, "hermes", req(Some(501), Some(42)))
            .unwrap()
            .unwrap();
        assert_eq!((p.old, p.new), ((10000, 10000), (501, 10000)));
        assert_eq!(
            p.passwd.unwrap(),
            PASSWD_TEXT.replace("hermes:x:10000:10000:", "hermes:x:501:10000:")
        );
        assert_eq!(p.group, None, "the group is left as it is");
        assert_eq!(
            p.previous,
            Previous {
                uid: Some(10000),
                gid: None
            }
        );
        assert!(matches!(
            p.refused_gid,
            Some(RemapError::SystemGid { gid: 42, .. })
        ));
        let granted = plan(PASSWD_TEXT, GROUP_TEXT, "hermes", req(Some(501), Some(20)))
            .unwrap()
            .unwrap();
        assert_eq!((granted.new, granted.refused_gid), ((501, 20), None));
    }

    #[test]
    fn an_account_of_roots_is_never_remapped() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nhalf:x:3000:0::/:/bin/sh\n";
        let group = "root:x:0:\n";
        for user in ["root", "half"] {
            let err = plan(passwd, group, user, req(Some(2000), Some(2001))).unwrap_err();
            assert!(
                matches!(err, RemapError::RootAccount { .. }),
                "{user}: {err}"
            );
            assert!(err.to_string().contains("never remapped"), "{user}: {err}");
        }
    }

    #[test]
    fn a_record_of_ids_the_user_still_has_is_not_pending() {
        let recorded = Previous {
            uid: Some(10000),
            gid: Some(10000),
        };
        let (p, g) = (PASSWD_TEXT, GROUP_TEXT);
        // The remap failed or was undone: the user still has the old ids.
        assert_eq!(still_pending(recorded, p, g, "hermes"), Previous::default());
        // It happened: nobody holds the old uid, and the user has another gid.
        let after = p.replace("hermes:x:10000:10000:", "hermes:x:2000:2001:");
        let renumbered = g.replace("hermes:x:10000:", "hermes:x:2001:");
        assert_eq!(
            still_pending(recorded, &after, &renumbered, "hermes"),
            recorded
        );
        // Only the gid moved (PGID joined `users`): the old uid is still the user's.
        let gid_only = p.replace("hermes:x:10000:10000:", "hermes:x:10000:100:");
        assert_eq!(
            still_pending(recorded, &gid_only, g, "hermes"),
            Previous {
                uid: None,
                gid: Some(10000)
            }
        );
        // Cut short after the group was renumbered, before the user: the old gid is no group's.
        assert_eq!(
            still_pending(recorded, p, &renumbered, "hermes"),
            Previous {
                uid: None,
                gid: Some(10000)
            }
        );
        // Someone else took the old uid meanwhile: its files are that user's now.
        let taken = format!("{after}bob:x:10000:10000::/:/bin/sh\n");
        assert_eq!(still_pending(recorded, &taken, g, "hermes").uid, None);
    }

    #[test]
    fn line_endings_and_other_lines_are_kept() {
        let passwd = "root:x:0:0::/root:/bin/sh\r\nhermes:x:10000:10000::/opt/data:/bin/sh";
        let p = plan(passwd, "hermes:x:10000:", "hermes", req(Some(7), None))
            .unwrap()
            .unwrap();
        assert_eq!(
            p.passwd.unwrap(),
            "root:x:0:0::/root:/bin/sh\r\nhermes:x:7:10000::/opt/data:/bin/sh"
        );
    }
}
