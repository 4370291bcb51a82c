//! The parsers of outside input, for the fuzz targets in `fuzz/` (built with the `fuzzing`
//! feature; not an API): /etc/passwd and /etc/group text and their editor, the user spec and
//! `--also-from`, the environment the settings table reads, `entry_points.txt`, getdents64
//! records, and how names are printed.

pub use crate::escape::shown;
pub use crate::fix::Previous;
pub use crate::install::{Found, console_scripts, plan};
pub use crate::settings::{MAX_REMAP_ID, Settings, WalkChoice, exclude_path, opt_out};
pub use crate::sys::fs::{Entry as DirEntry, record as getdents_record};
pub use crate::users::{
    Evidence, LowGids, Target, UserError, UserSpec, group_entries, passwd_entries, resolve_in,
    with_field, with_line,
};
