//! The `mkdir` step: makes sure a directory exists, like `mkdir -p` ([`MkdirStep`]).
//!
//! - The directory and any missing parents are created with mode `0777` less the umask, as
//!   `mkdir -p` does; use a `chmod` step for exact bits.
//! - An existing directory, or a symlink to one, is fine and left as it is.
//! - Anything else at the path (a file, a dangling symlink) is [`FileStepError::NotADirectory`].

use std::fs;
use std::path::Path;

use kiln_schema::MkdirStep;

use crate::FileStepError;

/// Runs a `mkdir` step; relative paths resolve against `cwd`.
pub(crate) fn run(step: &MkdirStep, cwd: &Path) -> Result<(), FileStepError> {
    let path = cwd.join(&step.path);
    fs::create_dir_all(&path).map_err(|source| {
        // `create_dir_all` reports "already exists" for a non-directory in the way; say what it is.
        if fs::symlink_metadata(&path).is_ok() && !path.is_dir() {
            FileStepError::NotADirectory { path: path.clone() }
        } else {
            FileStepError::CreateDir {
                path: path.clone(),
                source,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{symlink, PermissionsExt as _};

    use super::*;

    fn mkdir(path: &str) -> MkdirStep {
        MkdirStep {
            path: path.to_owned(),
        }
    }

    #[test]
    fn creates_the_directory_and_its_parents() {
        let dir = tempfile::tempdir().unwrap();
        run(&mkdir("a/b/c"), dir.path()).unwrap();
        for path in ["a", "a/b", "a/b/c"] {
            assert!(
                fs::symlink_metadata(dir.path().join(path))
                    .unwrap()
                    .is_dir(),
                "{path}"
            );
        }
    }

    #[test]
    fn an_existing_directory_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d");
        fs::create_dir(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o700)).unwrap();
        fs::write(path.join("keep"), "kept").unwrap();
        run(&mkdir("d"), dir.path()).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
            0o700
        );
        assert_eq!(fs::read_to_string(path.join("keep")).unwrap(), "kept");
    }

    #[test]
    fn a_symlink_to_a_directory_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("real")).unwrap();
        symlink("real", dir.path().join("link")).unwrap();
        run(&mkdir("link"), dir.path()).unwrap();
        run(&mkdir("link/sub"), dir.path()).unwrap();
        assert!(fs::symlink_metadata(dir.path().join("link"))
            .unwrap()
            .is_symlink());
        assert!(dir.path().join("real/sub").is_dir());
    }

    #[test]
    fn an_existing_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("f"), "file").unwrap();
        let error = run(&mkdir("f"), dir.path()).unwrap_err();
        assert!(
            matches!(&error, FileStepError::NotADirectory { path } if *path == dir.path().join("f")),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            format!(
                "`{}` exists and is not a directory",
                dir.path().join("f").display()
            )
        );
        assert_eq!(fs::read_to_string(dir.path().join("f")).unwrap(), "file");
    }

    #[test]
    fn a_dangling_symlink_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        symlink("nowhere", dir.path().join("dangling")).unwrap();
        let error = run(&mkdir("dangling"), dir.path()).unwrap_err();
        assert!(
            matches!(error, FileStepError::NotADirectory { .. }),
            "{error:?}"
        );
        assert!(!dir.path().join("nowhere").exists());
    }

    #[test]
    fn a_file_in_the_way_of_a_parent_is_a_create_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("f"), "").unwrap();
        let error = run(&mkdir("f/sub"), dir.path()).unwrap_err();
        assert!(
            matches!(&error, FileStepError::CreateDir { path, .. } if *path == dir.path().join("f/sub")),
            "{error:?}"
        );
    }
}
