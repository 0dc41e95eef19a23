//! Replacing and moving without a half-done state: [`replace_file`] and [`replace_symlink`]
//! write next to the path and `rename(2)` over it (atomic within a file system), and
//! [`rename_noreplace`] moves without ever replacing what is already there.

use std::fs::{self, Permissions};
use std::io::{self, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use crate::dir::parent_or_dot;

/// Replaces `path` with a regular file holding `content` and exactly the permission bits `mode`.
///
/// The content goes to a temporary file in the same directory, which is then renamed over `path`
/// (`rename(2)` is atomic within a file system): readers see the old file or the new one, never a
/// half-written one, and a failure leaves `path` as it was. An existing symlink at `path` is
/// replaced itself, not written through, and a read-only file is replaced like any other.
pub fn replace_file(path: &Path, content: &[u8], mode: u32) -> io::Result<()> {
    let mut temp = tempfile::Builder::new()
        .prefix(".kiln-")
        .tempfile_in(parent_or_dot(path))?;
    temp.write_all(content)?;
    // fchmod(2) on the open file: exact bits, whatever the umask.
    temp.as_file()
        .set_permissions(Permissions::from_mode(mode))?;
    temp.persist(path).map_err(|error| error.error)?;
    Ok(())
}

/// Creates (or atomically replaces) the symlink `path` -> `target`, like `ln -sfn`: the link is
/// made as `path.kiln-tmp-link` and renamed over `path`.
pub fn replace_symlink(target: &Path, path: &Path) -> io::Result<()> {
    let mut temp = path.as_os_str().to_owned();
    temp.push(".kiln-tmp-link");
    let temp = PathBuf::from(temp);
    let _ = fs::remove_file(&temp);
    std::os::unix::fs::symlink(target, &temp)?;
    fs::rename(&temp, path).inspect_err(|_| {
        let _ = fs::remove_file(&temp);
    })
}

/// Renames `from` to `to`, failing with `AlreadyExists` if `to` exists
/// (<https://man7.org/linux/man-pages/man2/rename.2.html>, `RENAME_NOREPLACE`). File systems
/// without the flag get a plain `rename(2)`; the caller checks beforehand that `to` is free.
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use nix::errno::Errno;
        use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
        match renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE) {
            Ok(()) => return Ok(()),
            Err(Errno::EINVAL) => {}
            Err(errno) => return Err(errno.into()),
        }
    }
    fs::rename(from, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_symlink_replaces_what_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link");
        fs::write(&link, "a file").unwrap();
        replace_symlink(Path::new("elsewhere"), &link).unwrap();
        assert_eq!(fs::read_link(&link).unwrap(), Path::new("elsewhere"));
        replace_symlink(Path::new("again"), &link).unwrap();
        assert_eq!(fs::read_link(&link).unwrap(), Path::new("again"));
        assert_eq!(crate::read_dir_sorted(dir.path()).unwrap(), ["link"]);
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
        assert_eq!(crate::permission_bits(&metadata), 0o600);
        // No temporary file is left behind.
        assert_eq!(
            crate::read_dir_sorted(dir.path()).unwrap(),
            ["link", "target"]
        );
    }

    #[test]
    fn rename_does_not_replace() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs::write(&a, "a").unwrap();
        fs::write(&b, "b").unwrap();
        let error = rename_noreplace(&a, &b).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read_to_string(&b).unwrap(), "b");
        fs::remove_file(&b).unwrap();
        rename_noreplace(&a, &b).unwrap();
        assert_eq!(fs::read_to_string(&b).unwrap(), "a");
    }
}
