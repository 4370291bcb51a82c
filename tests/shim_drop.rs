//! Root integration tests of the shim's drop, driving the built binary as a black box: the ids,
//! groups and capabilities the program gets, the target user, the opt-out, every refusal and the
//! real program that cannot be run.
//!
//! Every run happens in the sandbox of tests/common/sandbox.rs: a private mount namespace with
//! the test's own passwd and group, and real programs that report what they saw.

mod common;

use std::ffi::OsString;
use std::fs::{self};
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

use common::require;
use common::sandbox::*;

#[test]
fn write_through_the_shim_lands_as_target_uid_gid() {
    require!(root);
    let sb = Sandbox::new("write");
    sb.probe("hermes");
    for (how, cmd) in [
        ("via symlink", sb.via_link("hermes", &[])),
        ("via exec", sb.via_exec("hermes", &[])),
    ] {
        let o = sb.run(cmd);
        sb.report(&o, how);
        for name in ["file", "dir"] {
            let m = fs::metadata(sb.out().join(name)).unwrap();
            assert_eq!(
                (m.uid(), m.gid()),
                (HERMES_UID, HERMES_UID),
                "{how}: owner of {name}"
            );
        }
    }
}

#[test]
fn symlink_name_selects_the_real_program() {
    require!(root);
    let sb = Sandbox::new("names");
    sb.program("hermes", "echo hermes > \"$out/which\"\n");
    sb.program("hermes-agent", "echo hermes-agent > \"$out/which\"\n");
    sb.program("hermes-acp", "echo hermes-acp > \"$out/which\"\n");
    for name in ["hermes-agent", "hermes-acp", "hermes"] {
        let o = sb.run(sb.via_link(name, &[]));
        assert_eq!(o.status.code(), Some(0), "{name}: {}", o.stderr);
        assert_eq!(sb.read_out("which").trim(), name, "symlink {name}");
        let o = sb.run(sb.via_exec(name, &[]));
        assert_eq!(o.status.code(), Some(0), "exec {name}: {}", o.stderr);
        assert_eq!(sb.read_out("which").trim(), name, "exec {name}");
    }
}

#[test]
fn dropped_program_has_exact_ids_groups_and_no_capabilities() {
    require!(root);
    let sb = Sandbox::new("ids");
    sb.probe("hermes");
    let r = sb.report(&sb.run(sb.via_link("hermes", &[])), "via symlink");
    assert_dropped_to_hermes(&r, "via symlink");
    let r = sb.report(&sb.run(sb.via_exec("hermes", &[])), "via exec");
    assert_dropped_to_hermes(&r, "via exec");
}

#[test]
fn home_user_logname_come_from_passwd() {
    require!(root);
    let sb = Sandbox::new("env");
    sb.probe("hermes");
    let r = sb.report(&sb.run(sb.via_link("hermes", &[])), "via symlink");
    let home = sb.home();
    assert_eq!(r.env("HOME"), Some(&*home.to_string_lossy()), "HOME");
    assert_eq!(r.env("USER"), Some("hermes"), "USER");
    assert_eq!(r.env("LOGNAME"), Some("hermes"), "LOGNAME");
    // Everything else reaches the program as the caller set it; hermes needs HERMES_HOME.
    assert_eq!(r.env("HERMES_HOME"), Some("/opt/data-from-caller"));
}

#[test]
fn shim_user_selects_another_account_by_name() {
    require!(root);
    let sb = Sandbox::new("alice");
    sb.probe("hermes");
    let mut cmd = sb.via_link("hermes", &[]);
    cmd.env("HERMES_SHIM_USER", "alice");
    let r = sb.report(&sb.run(cmd), "HERMES_SHIM_USER=alice");
    r.assert_ids(ALICE_UID, ALICE_UID, "HERMES_SHIM_USER=alice");
    assert_eq!(
        r.groups(),
        sorted(vec![STAFF_GID, AUDIO_GID, ALICE_UID]),
        "Groups"
    );
    assert_eq!(r.mask("CapEff"), 0, "CapEff");
    assert_eq!(r.env("HOME"), Some("/home/alice"));
    assert_eq!(r.env("USER"), Some("alice"));
    assert_eq!(r.env("LOGNAME"), Some("alice"));
}

#[test]
fn shim_user_numeric_uid_and_gid() {
    require!(root);
    let sb = Sandbox::new("numeric");
    sb.probe("hermes");
    let mut cmd = sb.via_exec("hermes", &[]);
    cmd.env("HERMES_SHIM_USER", format!("{ALICE_UID}:{DOCKER_GID}"));
    let r = sb.report(&sb.run(cmd), "HERMES_SHIM_USER=UID:GID");
    r.assert_ids(ALICE_UID, DOCKER_GID, "HERMES_SHIM_USER=UID:GID");
    assert_eq!(r.mask("CapEff"), 0, "CapEff");
    assert!(r.groups().contains(&DOCKER_GID), "Groups lack the gid");
    assert!(
        !r.groups().contains(&0),
        "root's group survived: {:?}",
        r.groups()
    );
}

#[test]
fn non_root_caller_runs_unchanged() {
    require!(root, tools: ["setpriv"]);
    let sb = Sandbox::new("nonroot");
    sb.probe("hermes");
    let setpriv = [
        "setpriv",
        "--reuid=10000",
        "--regid=10000",
        "--clear-groups",
    ];
    // Neither an unknown target nor the opt-out matters to a caller that is not root.
    let extra: [&[(&str, &str)]; 3] = [
        &[],
        &[("HERMES_SHIM_USER", "nosuch")],
        &[("HERMES_DOCKER_EXEC_AS_ROOT", "1")],
    ];
    for env in extra {
        for exec_applet in [false, true] {
            let what = format!("setpriv uid 10000, exec applet {exec_applet}, env {env:?}");
            let mut argv: Vec<OsString> = setpriv.iter().map(|s| os(s)).collect();
            argv.push("--".into());
            if exec_applet {
                argv.extend([common::bin().into_os_string(), os("exec"), os("hermes")]);
            } else {
                argv.push(sb.link("hermes").into_os_string());
            }
            argv.extend([os("a"), os("")]);
            let mut cmd = sb.command(&argv);
            cmd.envs(env.iter().copied());
            let r = sb.report(&sb.run(cmd), &what);
            r.assert_ids(HERMES_UID, HERMES_UID, &what);
            assert_eq!(r.groups(), Vec::<u32>::new(), "{what}: Groups");
            assert_eq!(r.env("HOME"), Some("/root"), "{what}: HOME changed");
            assert_eq!(r.env("USER"), Some("root"), "{what}: USER changed");
            assert_eq!(r.env("LOGNAME"), Some("root"), "{what}: LOGNAME changed");
            assert_eq!(fs::read(sb.out().join("argv")).unwrap(), b"a\0\0", "{what}");
        }
    }
}

#[test]
fn opt_out_truthy_values_run_as_root() {
    require!(root);
    let sb = Sandbox::new("optout-yes");
    sb.probe("hermes");
    for v in ["1", "true", "TRUE", "True", "tRuE", "yes", "Yes", "YES"] {
        let what = format!("HERMES_DOCKER_EXEC_AS_ROOT={v:?}");
        let mut cmd = sb.via_link("hermes", &[]);
        cmd.env("HERMES_DOCKER_EXEC_AS_ROOT", v);
        let o = sb.run(cmd);
        let r = sb.report(&o, &what);
        r.assert_ids(0, 0, &what);
        let m = fs::metadata(sb.out().join("file")).unwrap();
        assert_eq!((m.uid(), m.gid()), (0, 0), "{what}: owner of the write");
        // Root then runs what the agent can shape (config, plugins): every run says so.
        assert!(
            o.stderr
                .trim_end()
                .starts_with("hermes-shim: WARNING: HERMES_DOCKER_EXEC_AS_ROOT is set")
                && o.stderr.trim_end().lines().count() == 1,
            "{what}: one warning line, got {:?}",
            o.stderr
        );
    }
}

#[test]
fn opt_out_other_values_still_drop() {
    require!(root);
    let sb = Sandbox::new("optout-no");
    sb.probe("hermes");
    let values = [
        None,
        Some("0"),
        Some("false"),
        Some("no"),
        Some(""),
        Some("garbage"),
        Some("2"),
        Some(" 1"),
        Some("1 "),
        Some("yes\n"),
        Some("on"),
    ];
    for v in values {
        let what = format!("HERMES_DOCKER_EXEC_AS_ROOT={v:?}");
        let mut cmd = sb.via_exec("hermes", &[]);
        if let Some(v) = v {
            cmd.env("HERMES_DOCKER_EXEC_AS_ROOT", v);
        }
        let r = sb.report(&sb.run(cmd), &what);
        assert_dropped_to_hermes(&r, &what);
    }
}

#[test]
fn unknown_user_is_refused() {
    require!(root);
    let sb = Sandbox::new("nosuch");
    sb.probe("hermes");
    let mut cmd = sb.via_link("hermes", &[]);
    cmd.env("HERMES_SHIM_USER", "nosuch");
    assert_refused(&sb, &sb.run(cmd), &["nosuch"], "HERMES_SHIM_USER=nosuch");
    let mut cmd = sb.via_exec("hermes", &[]);
    cmd.env("HERMES_SHIM_USER", "nosuch");
    assert_refused(
        &sb,
        &sb.run(cmd),
        &["nosuch"],
        "exec, HERMES_SHIM_USER=nosuch",
    );
}

#[test]
fn default_user_missing_from_passwd_is_refused() {
    require!(root);
    let sb = Sandbox::new("nohermes");
    sb.probe("hermes");
    sb.set_passwd("root:x:0:0:root:/root:/bin/sh\nalice:x:10001:10001::/home/alice:/bin/sh\n");
    let o = sb.run(sb.via_link("hermes", &[]));
    assert_refused(&sb, &o, &[], "no hermes in passwd");
    // The user must be named beyond the remedy text, which mentions hermes anyway.
    assert!(
        o.stderr.replace(REMEDY_USER, "").contains("hermes"),
        "the missing user is not named: {:?}",
        o.stderr
    );
}

#[test]
fn target_uid_zero_is_refused() {
    require!(root);
    let sb = Sandbox::new("uid0");
    sb.probe("hermes");
    for user in ["root", "0", "0:0", "toor"] {
        let mut cmd = sb.via_link("hermes", &[]);
        cmd.env("HERMES_SHIM_USER", user);
        let what = format!("HERMES_SHIM_USER={user}");
        assert_refused(&sb, &sb.run(cmd), &["uid 0"], &what);
    }
    // The default user remapped to uid 0 is refused as well.
    sb.set_passwd("root:x:0:0:root:/root:/bin/sh\nhermes:x:0:0::/opt/data:/bin/sh\n");
    let o = sb.run(sb.via_exec("hermes", &[]));
    assert_refused(&sb, &o, &["uid 0"], "hermes remapped to uid 0");
}

#[test]
fn real_program_that_is_the_shim_is_refused() {
    require!(root, tools: ["setpriv"]);
    let sb = Sandbox::new("self");
    // real/hermes -> the shim directly; real/hermes-agent -> links/hermes-agent -> the shim.
    symlink(common::bin(), sb.real_dir().join("hermes")).unwrap();
    symlink(sb.link("hermes-agent"), sb.real_dir().join("hermes-agent")).unwrap();
    for name in ["hermes", "hermes-agent"] {
        let real = sb.real_dir().join(name);
        let real = real.to_string_lossy();
        let o = sb.run(sb.via_link(name, &[]));
        assert_refusal_line(
            &sb,
            &o,
            &[&real],
            &format!("symlink {name}, real is the shim"),
        );
        let o = sb.run(sb.via_exec(name, &[]));
        assert_refusal_line(&sb, &o, &[&real], &format!("exec {name}, real is the shim"));
    }
    // The paths that exec without a drop would otherwise exec the shim again, forever.
    let mut optout = sb.via_link("hermes", &[]);
    optout.env("HERMES_DOCKER_EXEC_AS_ROOT", "1");
    let non_root = sb.command(&[
        os("setpriv"),
        os("--reuid=10000"),
        os("--regid=10000"),
        os("--clear-groups"),
        os("--"),
        sb.link("hermes").into(),
    ]);
    for (what, cmd) in [("opt-out", optout), ("non-root caller", non_root)] {
        let o = sb.run(cmd);
        assert_refusal_line(&sb, &o, &[], &format!("{what}, real is the shim"));
    }
}

#[test]
fn real_uid_not_effective_uid_is_refused() {
    require!(root, tools: ["setpriv"]);
    let sb = Sandbox::new("ruid");
    sb.probe("hermes");
    // ruid 10000 with euid 0, and ruid 0 with euid 10000: what a setuid install would look like.
    for ids in ["--ruid=10000", "--euid=10000"] {
        let argv = [os("setpriv"), os(ids), os("--"), sb.link("hermes").into()];
        let o = sb.run(sb.command(&argv));
        assert_refusal_line(&sb, &o, &["setuid"], &format!("setpriv {ids}"));
    }
}

#[test]
fn a_capability_left_after_the_drop_is_refused() {
    require!(root, tools: ["setpriv"]);
    let sb = Sandbox::new("keepcaps");
    sb.probe("hermes");
    // With SECBIT_NO_SETUID_FIXUP (inherited across exec) setresuid keeps every capability, so
    // the drop changes all six ids and still leaves the process as powerful as root. The mask
    // named must be exactly what this process holds: the effective and permitted sets.
    let held = ["CapEff", "CapPrm"]
        .map(|k| common::proc_status_hex("self", k))
        .into_iter()
        .fold(0, |a, b| a | b);
    assert_ne!(
        held, 0,
        "root here holds no capability: nothing to leave behind"
    );
    let argv = [
        os("setpriv"),
        os("--securebits=+no_setuid_fixup"),
        os("--"),
        sb.link("hermes").into(),
    ];
    let o = sb.run(sb.command(&argv));
    assert_refused(
        &sb,
        &o,
        &[&format!("capabilities left: {held:#x}")],
        "setpriv --securebits=+no_setuid_fixup",
    );
}

#[test]
fn setuid_or_setgid_installed_binary_is_refused() {
    require!(root);
    let sb = Sandbox::new("suid");
    sb.probe("hermes");
    for (tag, mode) in [("setuid", 0o4755), ("setgid", 0o2755)] {
        let copy = sb.path(&format!("hermes-shim-{tag}"));
        common::copy_bin(&copy, mode);
        let o = sb.run(sb.command(&[copy.into(), os("exec"), os("hermes")]));
        assert_refusal_line(&sb, &o, &["setuid"], &format!("binary installed {tag}"));
    }
}

/// Exit 127 naming `path` however `hermes` is entered: through its symlink, through `exec`, and
/// as `optout`, a command with the opt-out set.
#[track_caller]
fn assert_not_runnable_every_way(sb: &Sandbox, path: &Path, what: &str, optout: Command) {
    let o = sb.run(sb.via_link("hermes", &[]));
    assert_not_runnable(sb, &o, path, &format!("{what}, via symlink"));
    let o = sb.run(sb.via_exec("hermes", &[]));
    assert_not_runnable(sb, &o, path, &format!("{what}, via exec"));
    assert_not_runnable(sb, &sb.run(optout), path, &format!("{what}, opt-out"));
}

#[test]
fn missing_real_program_exits_127_naming_the_path() {
    require!(root);
    let sb = Sandbox::new("missing");
    let path = sb.real_dir().join("hermes");
    let mut optout = sb.via_link("hermes", &[]);
    optout.env("HERMES_DOCKER_EXEC_AS_ROOT", "yes");
    assert_not_runnable_every_way(&sb, &path, "missing", optout);
}

#[test]
fn non_executable_real_program_exits_127_naming_the_path() {
    require!(root);
    let sb = Sandbox::new("noexec");
    let path = sb.program_in(&sb.real_dir(), "hermes", PROBE, 0o644);
    let mut optout = sb.via_exec("hermes", &[]);
    optout.env("HERMES_DOCKER_EXEC_AS_ROOT", "true");
    assert_not_runnable_every_way(&sb, &path, "0644", optout);
}

#[test]
fn default_real_dir_is_opt_hermes_venv_bin() {
    require!(root);
    let sb = Sandbox::new("defaultdir");
    // A fake /opt, bind-mounted over the real one inside the namespace only.
    let fake_opt = sb.path("opt");
    let bin_dir = fake_opt.join("hermes/.venv/bin");
    fs::create_dir_all(&bin_dir).unwrap();
    for d in [
        fake_opt.clone(),
        fake_opt.join("hermes"),
        fake_opt.join("hermes/.venv"),
        bin_dir.clone(),
    ] {
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
    }
    sb.program_in(&bin_dir, "hermes", PROBE, 0o755);
    let mut cmd = sb.command_with_mounts(&[(fake_opt, "/opt")], &[sb.link("hermes").into()]);
    cmd.env_remove("HERMES_SHIM_REAL_DIR");
    let r = sb.report(&sb.run(cmd), "default HERMES_SHIM_REAL_DIR");
    assert_dropped_to_hermes(&r, "default HERMES_SHIM_REAL_DIR");
}
