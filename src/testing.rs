//! What the tests share: fresh temporary directories and the rule for tests that need root. The
//! one temporary-directory helper of the crate: the integration tests include this file too
//! (tests/common/mod.rs).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A fresh directory under `$TMPDIR` (the sealed tmpfs when run by cargo, see tests/sealed.sh),
/// mode 0755 so that other uids can traverse it, removed with everything in it when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("hermes-shim-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // A mount a root test left behind is taken away first (lazily, and never followed into),
        // so that the removal cannot cross into it; remove_dir_all removes symlinks, never what
        // they point to.
        if nix::unistd::geteuid().is_root() {
            let _ = std::process::Command::new("umount")
                .arg("-R")
                .arg("-l")
                .arg(&self.0)
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// True as root; otherwise says why `test` skips, or fails it under CI (which runs as root).
pub fn root_or_skip(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: needs root, and CI runs as root"
    );
    eprintln!("SKIP {test}: needs root");
    false
}
