//! The `boot` applet: the start-up repair, in this order: what a start killed halfway through
//! a change to /etc left there ([`remap::clear_leftovers`]), the uid/gid remap the upstream image
//! offers (`HERMES_UID`/`PUID`, `HERMES_GID`/`PGID`, see [`remap`]), the Docker socket's group
//! ([`socket`]), a missing `$HERMES_HOME` ([`home`]), then the ownership sweep, which after a
//! remap also moves the user's files from its old ids to the new ones. It records the start it
//! ran in ([`crate::record`]) and exits 0 unless a step was refused: a start-up step must not
//! stop a container over a few files.

mod home;
pub(crate) mod remap;
pub(crate) mod socket;

use std::path::PathBuf;

use crate::escape::shown;
use crate::exec;
use crate::exit::Exit;
use crate::fix::{self, Request};
use crate::record;
use crate::settings::Settings;
use crate::users::{self, UserSpec};

const PREFIX: &str = "hermes-shim boot";

/// Runs the applet.
pub fn run(settings: &Settings) -> Exit {
    remap::clear_leftovers(PREFIX);
    let (previous, remap_refused) = match remap::remap(settings) {
        Ok(previous) => (previous, false),
        Err(e) => {
            say!("{PREFIX}: {e}; repairing root-owned files only");
            (remap::recorded(settings).unwrap_or_default(), true)
        }
    };
    if let Ok(UserSpec::Name(user)) = &settings.user {
        socket::grant(
            PREFIX,
            user,
            &users::LowGids::of_container(Some(&settings.home)),
        );
    }
    create_home(settings);
    let swept = fix::sweep(Request::start_up(settings, previous), settings, false);
    if swept == Exit::Ok && !remap_refused {
        remap::forget(PREFIX);
    }
    let exit = verdict(swept, remap_refused, settings);
    if let Err(e) = record::write(exit.code()) {
        say!(
            "{PREFIX}: cannot record this repair in /run/hermes-shim ({e}); the entrypoint will repair again"
        );
    }
    exit
}

/// The applet's exit for the sweep's `swept`, with the one line that says what it means.
fn verdict(swept: Exit, remap_refused: bool, settings: &Settings) -> Exit {
    let home = shown(&settings.home);
    match (swept, remap_refused) {
        (Exit::Refused, _) => {
            say!(
                "{PREFIX}: WARNING: ownership repair of {home} was REFUSED and nothing was changed (see above); files root wrote there may stay unreadable to the hermes user"
            );
            Exit::Refused
        }
        (_, true) => {
            say!(
                "{PREFIX}: WARNING: the uid/gid remap was REFUSED (see above); root-owned files in {home} were still repaired"
            );
            Exit::Refused
        }
        (Exit::Partial, false) => {
            say!(
                "{PREFIX}: some entries in {home} could not be repaired (see above); the start goes on"
            );
            Exit::Ok
        }
        (_, false) => Exit::Ok,
    }
}

/// Creates `$HERMES_HOME` when it does not exist and the sweep would accept it (see [`home`]):
/// not a refused root, and no directory above it writable by the user. A path the sweep refuses
/// is left to the sweep to refuse.
fn create_home(settings: &Settings) {
    let root: PathBuf = settings.home.components().collect();
    let missing = matches!(
        std::fs::symlink_metadata(&root),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound
    );
    if !missing || fix::refuse_root(&root, &fix::protected(settings)).is_some() {
        return;
    }
    let Ok(target) = exec::target(
        settings,
        &users::LowGids::of_container(Some(&settings.home)),
    ) else {
        return;
    };
    let writer = fix::Writer {
        uid: target.uid,
        groups: target.groups.clone(),
    };
    // Below a directory the user can write, the agent could rename something else in under the
    // new home's name while it is made; the sweep refuses such a home, and it is not made.
    if fix::writable_ancestor(&root, &writer).is_some() {
        return;
    }
    match home::create(&root, target.uid, target.gid) {
        Ok(true) => say!(
            "{PREFIX}: created {} (owner {}:{}, mode 0700; missing parents root's, 0755)",
            shown(&root),
            target.uid,
            target.gid
        ),
        Ok(false) => {}
        Err(e) => say!("{PREFIX}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_goes_on_unless_something_was_refused() {
        let s = Settings::from_vars(|_| None);
        assert_eq!(verdict(Exit::Ok, false, &s), Exit::Ok);
        assert_eq!(verdict(Exit::Partial, false, &s), Exit::Ok);
        assert_eq!(verdict(Exit::Refused, false, &s), Exit::Refused);
        assert_eq!(verdict(Exit::Ok, true, &s), Exit::Refused);
        assert_eq!(verdict(Exit::Partial, true, &s), Exit::Refused);
    }
}
