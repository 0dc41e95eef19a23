//! Small file-system helpers shared by the steps: sorted directory listings, exact modes,
//! timestamps without following symlinks, parent creation and atomic file replacement.
//!
//! These call `std::fs` directly rather than `fs_err`: every failure is wrapped in a typed
//! [`FileStepError`] variant that already names the path, and `fs_err` would repeat it in the
//! `caused by:` line.

use std::ffi::OsString;
use std::fs::{self, Metadata, Permissions};
use std::io::{self, Write as _};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;

use kiln_schema::Mode;
use nix::sys::stat::{utimensat, UtimensatFlags};
use nix::sys::time::TimeSpec;

use crate::FileStepError;

/// The names in `dir`, sorted bytewise so that every walk visits entries in the same order.
pub(crate) fn read_dir_sorted(dir: &Path) -> Result<Vec<OsString>, FileStepError> {
    let read_dir_error = |source| FileStepError::ReadDir {
        path: dir.to_owned(),
        source,
    };
    let mut names = fs::read_dir(dir)
        .map_err(read_dir_error)?
        .map(|entry| entry.map(|entry| entry.file_name()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_dir_error)?;
    names.sort();
    Ok(names)
}

/// Sets the permission bits of `path` (following a symlink) to exactly `mode`.
///
/// `chmod(2)` is not subject to the umask, so the result is `mode` itself.
pub(crate) fn set_mode(path: &Path, mode: u32) -> Result<(), FileStepError> {
    fs::set_permissions(path, Permissions::from_mode(mode)).map_err(|source| {
        FileStepError::SetMode {
            path: path.to_owned(),
            mode: Mode(mode),
            source,
        }
    })
}

/// The permission bits of `metadata` (the file type bits masked off).
pub(crate) fn permission_bits(metadata: &Metadata) -> u32 {
    metadata.mode() & 0o7777
}

/// Gives `path` the access and modification times recorded in `metadata`, to the nanosecond.
///
/// Uses `utimensat(2)` with `AT_SYMLINK_NOFOLLOW` so a symlink gets its own times and its target
/// is left alone (<https://man7.org/linux/man-pages/man2/utimensat.2.html>); `std` can only set
/// the times of what a symlink points to.
pub(crate) fn copy_times(path: &Path, metadata: &Metadata) -> Result<(), FileStepError> {
    let atime = TimeSpec::new(metadata.atime(), metadata.atime_nsec());
    let mtime = TimeSpec::new(metadata.mtime(), metadata.mtime_nsec());
    utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &atime,
        &mtime,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|errno| FileStepError::SetTimes {
        path: path.to_owned(),
        source: errno.into(),
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

/// Replaces `path` with a regular file holding `content` and exactly the permission bits `mode`.
///
/// The content goes to a temporary file in the same directory, which is then renamed over `path`
/// (`rename(2)` is atomic within a file system): readers see the old file or the new one, never a
/// half-written one, and a failure leaves `path` as it was. An existing symlink at `path` is
/// replaced itself, not written through, and a read-only file is replaced like any other.
pub(crate) fn replace_file(path: &Path, content: &[u8], mode: u32) -> io::Result<()> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut temp = tempfile::Builder::new().prefix(".kiln-").tempfile_in(dir)?;
    temp.write_all(content)?;
    // fchmod(2) on the open file: exact bits, whatever the umask.
    temp.as_file()
        .set_permissions(Permissions::from_mode(mode))?;
    temp.persist(path).map_err(|error| error.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_dir_sorted_orders_bytewise() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b", "a", "C", "a0"] {
            fs::write(dir.path().join(name), "").unwrap();
        }
        assert_eq!(read_dir_sorted(dir.path()).unwrap(), ["C", "a", "a0", "b"]);
    }

    #[test]
    fn replace_file_replaces_a_symlink_instead_of_writing_through_it() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        let link = dir.path().join("link");
        fs::write(&target, "target").unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();

        replace_file(&link, b"new", 0o600).unwrap();

        assert_eq!(fs::read(&target).unwrap(), b"target");
        assert_eq!(fs::read(&link).unwrap(), b"new");
        let metadata = fs::symlink_metadata(&link).unwrap();
        assert!(metadata.is_file());
        assert_eq!(permission_bits(&metadata), 0o600);
        // No temporary file is left behind.
        assert_eq!(read_dir_sorted(dir.path()).unwrap(), ["link", "target"]);
    }
}
