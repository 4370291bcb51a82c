//! The seal the root tests run under (tests/sealed.sh, cargo's runner): every file of the host
//! read-only, the tests' trees on a fresh tmpfs.

mod common;

use std::path::Path;

use common::require;
use nix::errno::Errno;

#[test]
fn root_tests_see_the_host_read_only_and_work_on_a_fresh_tmpfs() {
    require!(root);
    assert_eq!(
        std::env::var("HERMES_SHIM_SEALED").as_deref(),
        Ok("1"),
        "the test binaries must run through tests/sealed.sh (.cargo/config.toml)"
    );
    let tmp = std::env::temp_dir();
    let fs = nix::sys::statfs::statfs(&tmp).unwrap();
    assert_eq!(
        fs.filesystem_type(),
        nix::sys::statfs::TMPFS_MAGIC,
        "{}",
        tmp.display()
    );
    std::fs::write(tmp.join("sealed-probe"), "x").expect("the tmpfs is writable");
    // The crate's own directory is a host file like any other: no test may change it.
    let host = Path::new(env!("CARGO_MANIFEST_DIR")).join("sealed-probe");
    let err = std::fs::write(&host, "x").expect_err("the host's files are read-only");
    assert_eq!(
        Errno::from_raw(err.raw_os_error().unwrap()),
        Errno::EROFS,
        "{}",
        host.display()
    );
    let err = nix::unistd::chown("/", Some(nix::unistd::Uid::from_raw(0)), None).unwrap_err();
    assert_eq!(
        err,
        Errno::EROFS,
        "a chown of / (to its own owner) is refused"
    );
}
