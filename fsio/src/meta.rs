//! Exact metadata: permission bits set with `chmod(2)` (which ignores the umask), times set on
//! a path itself rather than on what a symlink there points to, and the process umask.

use std::fs::{self, Metadata, Permissions};
use std::io;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;
use std::time::{Duration, SystemTime};

use nix::sys::stat::{utimensat, UtimensatFlags};
use nix::sys::time::TimeSpec;

/// The permission bits of `metadata` (the file type bits masked off).
pub fn permission_bits(metadata: &Metadata) -> u32 {
    metadata.mode() & 0o7777
}

/// Sets the permission bits of `path` (following a symlink) to exactly `mode`.
///
/// `chmod(2)` is not subject to the umask, so the result is `mode` itself.
pub fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    fs::set_permissions(path, Permissions::from_mode(mode))
}

/// Gives `path` the access and modification times recorded in `metadata`, to the nanosecond.
///
/// Uses `utimensat(2)` with `AT_SYMLINK_NOFOLLOW` so a symlink gets its own times and its target
/// is left alone (<https://man7.org/linux/man-pages/man2/utimensat.2.html>); `std` can only set
/// the times of what a symlink points to.
pub fn copy_times_nofollow(path: &Path, metadata: &Metadata) -> io::Result<()> {
    let atime = TimeSpec::new(metadata.atime(), metadata.atime_nsec());
    let mtime = TimeSpec::new(metadata.mtime(), metadata.mtime_nsec());
    utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &atime,
        &mtime,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(io::Error::from)
}

/// Sets the mtime of `path` itself, not of what it points to if it is a symlink; the atime is
/// left alone. Nanoseconds above 999,999,999 are taken as that.
pub fn set_mtime_nofollow(path: &Path, seconds: i64, nanos: u32) -> io::Result<()> {
    let mtime = TimeSpec::new(seconds, i64::from(nanos.min(999_999_999)));
    utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &TimeSpec::UTIME_OMIT,
        &mtime,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(io::Error::from)
}

/// Converts seconds since the epoch (possibly negative) and nanoseconds to a [`SystemTime`].
pub fn system_time(seconds: i64, nanos: u32) -> SystemTime {
    let nanos = Duration::from_nanos(u64::from(nanos.min(999_999_999)));
    if seconds >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds.unsigned_abs()) + nanos
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(seconds.unsigned_abs()) + nanos
    }
}

/// The process umask, read from `/proc/self/status` (Linux ≥ 4.7) because `umask(2)` can only
/// be read by setting it, which races with other threads. `None` where the kernel does not say.
pub fn process_umask() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let value = line.strip_prefix("Umask:")?.trim();
        u32::from_str_radix(value, 8).ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn umask_is_read() {
        // The test harness runs with some umask; it must at least parse as permission bits.
        assert_eq!(process_umask().map(|umask| umask & !0o777), Some(0));
    }

    #[test]
    fn negative_times() {
        assert_eq!(
            system_time(-1, 0),
            SystemTime::UNIX_EPOCH - Duration::from_secs(1)
        );
    }

    #[test]
    fn mtime_of_a_dangling_symlink_itself() {
        // Following the link would fail: its target is missing.
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("missing", &link).unwrap();
        set_mtime_nofollow(&link, 1_000_000_000, 5).unwrap();
        let metadata = fs::symlink_metadata(&link).unwrap();
        assert_eq!(
            (metadata.mtime(), metadata.mtime_nsec()),
            (1_000_000_000, 5)
        );
    }
}
