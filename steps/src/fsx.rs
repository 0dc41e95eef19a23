//! The file steps' use of `kiln-fsio`: sorted directory listings, exact modes, timestamps
//! without following symlinks and atomic file replacement, each failure wrapped in the
//! [`FileStepError`] variant that names the path; and parent creation.
//!
//! These call `std::fs` and `kiln_fsio` directly rather than `fs_err`: every failure is wrapped
//! in a typed [`FileStepError`] variant that already names the path, and `fs_err` would repeat
//! it in the `caused by:` line.

use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::path::Path;

use kiln_schema::Mode;

use crate::FileStepError;

pub(crate) use kiln_fsio::{permission_bits, replace_file};

/// The names in `dir`, sorted bytewise so that every walk visits entries in the same order.
pub(crate) fn read_dir_sorted(dir: &Path) -> Result<Vec<OsString>, FileStepError> {
    kiln_fsio::read_dir_sorted(dir).map_err(|source| FileStepError::ReadDir {
        path: dir.to_owned(),
        source,
    })
}

/// Sets the permission bits of `path` (following a symlink) to exactly `mode`.
pub(crate) fn set_mode(path: &Path, mode: u32) -> Result<(), FileStepError> {
    kiln_fsio::set_mode(path, mode).map_err(|source| FileStepError::SetMode {
        path: path.to_owned(),
        mode: Mode(mode),
        source,
    })
}

/// Gives `path` (a symlink itself, not its target) the access and modification times recorded
/// in `metadata`, to the nanosecond.
pub(crate) fn copy_times(path: &Path, metadata: &Metadata) -> Result<(), FileStepError> {
    kiln_fsio::copy_times_nofollow(path, metadata).map_err(|source| FileStepError::SetTimes {
        path: path.to_owned(),
        source,
    })
}

/// Creates the missing parent directories of `path` (like `mkdir -p "$(dirname path)"`).
pub(crate) fn create_parents(path: &Path) -> Result<(), FileStepError> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => {
            fs::create_dir_all(parent).map_err(|source| FileStepError::CreateDir {
                path: parent.to_owned(),
                source,
            })
        }
        _ => Ok(()),
    }
}
