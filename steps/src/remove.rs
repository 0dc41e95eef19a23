//! The `remove` step: deletes a file, a symlink or a directory, like `rm` / `rm -r` / `rm -f`
//! ([`RemoveStep`]).
//!
//! - Symlinks are never followed: a symlink is removed itself, a symlink inside a tree is removed
//!   as an entry, and a trailing `/` on the path does not make it follow one either.
//! - A directory needs `recursive: true` unless it is empty; otherwise the step fails with
//!   [`FileStepError::DirectoryNotEmpty`], which says so.
//! - A missing path is [`FileStepError::NotFound`] unless `ignoreMissing: true`.
//! - A recursive removal that is refused because a directory inside is read-only (a tree copied
//!   from the store keeps its `0555` modes) makes the directories of the tree writable and tries
//!   once more; `rm -rf` would fail there.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use kiln_schema::RemoveStep;

use crate::{fsx, FileStepError};

/// Runs a `remove` step; a relative path resolves against `cwd`.
pub(crate) fn run(step: &RemoveStep, cwd: &Path) -> Result<(), FileStepError> {
    // Rebuilding from components drops a trailing `/`, which would make the kernel follow a
    // symlink to a directory (path_resolution(7)).
    let path: PathBuf = cwd.join(&step.path).components().collect();
    let metadata = match fs::symlink_metadata(&path) {
        Ok(metadata) => metadata,
        Err(source) if source.kind() == io::ErrorKind::NotFound => {
            return if step.ignore_missing {
                Ok(())
            } else {
                Err(FileStepError::NotFound { path })
            };
        }
        Err(source) => return Err(FileStepError::Metadata { path, source }),
    };
    if !metadata.is_dir() {
        return fs::remove_file(&path).map_err(|source| FileStepError::Remove { path, source });
    }
    if !step.recursive {
        return fs::remove_dir(&path).map_err(|source| {
            if source.kind() == io::ErrorKind::DirectoryNotEmpty {
                FileStepError::DirectoryNotEmpty { path: path.clone() }
            } else {
                FileStepError::Remove {
                    path: path.clone(),
                    source,
                }
            }
        });
    }
    // `remove_dir_all` does not follow symlinks, also not when one is swapped in during the walk
    // (CVE-2022-21658, fixed in Rust 1.58.1).
    match fs::remove_dir_all(&path) {
        Err(source) if source.kind() == io::ErrorKind::PermissionDenied => {
            make_directories_writable(&path)?;
            fs::remove_dir_all(&path).map_err(|source| FileStepError::Remove { path, source })
        }
        result => result.map_err(|source| FileStepError::Remove { path, source }),
    }
}

/// Gives the owner `rwx` on `dir` and every directory below it (what is left of it after a
/// partial removal), not following symlinks.
fn make_directories_writable(dir: &Path) -> Result<(), FileStepError> {
    let metadata = fs::symlink_metadata(dir).map_err(|source| FileStepError::Metadata {
        path: dir.to_owned(),
        source,
    })?;
    if !metadata.is_dir() {
        return Ok(());
    }
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o700 != 0o700 {
        fsx::set_mode(dir, mode | 0o700)?;
    }
    for name in fsx::read_dir_sorted(dir)? {
        make_directories_writable(&dir.join(name))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn remove(path: &str, recursive: bool, ignore_missing: bool) -> RemoveStep {
        RemoveStep {
            path: path.to_owned(),
            recursive,
            ignore_missing,
        }
    }

    fn exists(path: &Path) -> bool {
        fs::symlink_metadata(path).is_ok()
    }

    #[test]
    fn removes_a_file_and_an_empty_directory() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("f"), "").unwrap();
        fs::create_dir(dir.path().join("empty")).unwrap();
        run(&remove("f", false, false), dir.path()).unwrap();
        run(&remove("empty", false, false), dir.path()).unwrap();
        assert!(!exists(&dir.path().join("f")));
        assert!(!exists(&dir.path().join("empty")));
    }

    #[test]
    fn removes_a_symlink_not_its_target() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("real")).unwrap();
        fs::write(dir.path().join("real/keep"), "keep").unwrap();
        symlink("real", dir.path().join("link")).unwrap();
        symlink("real", dir.path().join("link2")).unwrap();

        run(&remove("link", true, false), dir.path()).unwrap();
        run(&remove("link2/", true, false), dir.path()).unwrap();

        assert!(!exists(&dir.path().join("link")));
        assert!(!exists(&dir.path().join("link2")));
        assert_eq!(
            fs::read_to_string(dir.path().join("real/keep")).unwrap(),
            "keep"
        );
    }

    #[test]
    fn a_non_empty_directory_needs_recursive() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("d")).unwrap();
        fs::write(dir.path().join("d/f"), "").unwrap();

        let error = run(&remove("d", false, false), dir.path()).unwrap_err();
        assert!(
            matches!(&error, FileStepError::DirectoryNotEmpty { path } if *path == dir.path().join("d")),
            "{error:?}"
        );
        assert!(
            error.to_string().contains("set `recursive: true`"),
            "{error}"
        );
        assert!(exists(&dir.path().join("d/f")));
    }

    #[test]
    fn recursive_removes_a_tree_without_following_symlinks_inside() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("outside")).unwrap();
        fs::write(dir.path().join("outside/keep"), "keep").unwrap();
        fs::create_dir_all(dir.path().join("tree/a/b")).unwrap();
        fs::write(dir.path().join("tree/a/b/f"), "").unwrap();
        symlink("../../outside", dir.path().join("tree/a/out")).unwrap();
        fs::set_permissions(
            dir.path().join("tree/a/b"),
            fs::Permissions::from_mode(0o555),
        )
        .unwrap();

        run(&remove("tree", true, false), dir.path()).unwrap();

        assert!(!exists(&dir.path().join("tree")));
        assert_eq!(
            fs::read_to_string(dir.path().join("outside/keep")).unwrap(),
            "keep"
        );
    }

    #[test]
    fn make_directories_writable_adds_owner_bits_to_directories_only() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        fs::create_dir_all(tree.join("sub")).unwrap();
        fs::write(tree.join("sub/file"), "").unwrap();
        fs::create_dir(dir.path().join("outside")).unwrap();
        symlink("../outside", tree.join("link")).unwrap();
        for (path, mode) in [("sub/file", 0o444), ("sub", 0o555), ("", 0o500)] {
            fs::set_permissions(tree.join(path), fs::Permissions::from_mode(mode)).unwrap();
        }
        fs::set_permissions(
            dir.path().join("outside"),
            fs::Permissions::from_mode(0o500),
        )
        .unwrap();

        make_directories_writable(&tree).unwrap();

        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&tree), 0o700);
        assert_eq!(mode(&tree.join("sub")), 0o755);
        assert_eq!(mode(&tree.join("sub/file")), 0o444);
        assert_eq!(mode(&dir.path().join("outside")), 0o500);
    }

    #[test]
    fn a_missing_path_is_an_error_unless_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let error = run(&remove("missing", true, false), dir.path()).unwrap_err();
        assert!(
            matches!(&error, FileStepError::NotFound { path } if *path == dir.path().join("missing")),
            "{error:?}"
        );
        run(&remove("missing", false, true), dir.path()).unwrap();
        run(&remove("missing/deeper", true, true), dir.path()).unwrap();
    }
}
