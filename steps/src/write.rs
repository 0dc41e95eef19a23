//! The `write` step: puts a file with exact content and mode at a path ([`WriteStep`]).
//!
//! - Missing parent directories are created (mode `0777` less the umask, like `mkdir -p`).
//! - An existing file is replaced, even a read-only one; an existing symlink is replaced itself,
//!   never written through; an existing directory is an error.
//! - The mode defaults to `0644` and is applied exactly, whatever the umask.
//! - The file appears atomically: it is written under a temporary name in the same directory and
//!   renamed into place, so a failure leaves the old file (or no file) behind.

use std::path::Path;

use kiln_schema::WriteStep;

use crate::{fsx, FileStepError};

/// The mode of a written file when the step gives none.
const DEFAULT_MODE: u32 = 0o644;

/// Runs a `write` step; relative paths resolve against `cwd`.
pub(crate) fn run(step: &WriteStep, cwd: &Path) -> Result<(), FileStepError> {
    let path = cwd.join(&step.path);
    let mode = step.mode.map_or(DEFAULT_MODE, |mode| mode.0);
    fsx::create_parents(&path)?;
    fsx::replace_file(&path, step.content.as_bytes(), mode)
        .map_err(|source| FileStepError::Write { path, source })
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{symlink, PermissionsExt as _};

    use kiln_schema::Mode;

    use super::*;

    fn write(path: &str, content: &str, mode: Option<u32>) -> WriteStep {
        WriteStep {
            path: path.to_owned(),
            content: content.to_owned(),
            mode: mode.map(Mode),
        }
    }

    fn mode_of(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn writes_content_with_the_default_mode_and_creates_parents() {
        let dir = tempfile::tempdir().unwrap();
        run(
            &write("share/doc/hello/README", "hello\nworld\n", None),
            dir.path(),
        )
        .unwrap();
        let path = dir.path().join("share/doc/hello/README");
        assert_eq!(fs::read_to_string(&path).unwrap(), "hello\nworld\n");
        assert_eq!(mode_of(&path), 0o644);
    }

    #[test]
    fn applies_the_exact_mode_regardless_of_umask() {
        let dir = tempfile::tempdir().unwrap();
        // 0777 and 0600 differ from what any usual umask would leave of 0666.
        run(&write("a", "", Some(0o777)), dir.path()).unwrap();
        run(&write("b", "", Some(0o600)), dir.path()).unwrap();
        run(&write("c", "x", Some(0o4755)), dir.path()).unwrap();
        assert_eq!(mode_of(&dir.path().join("a")), 0o777);
        assert_eq!(mode_of(&dir.path().join("b")), 0o600);
        assert_eq!(mode_of(&dir.path().join("c")), 0o4755);
    }

    #[test]
    fn absolute_paths_ignore_cwd() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abs");
        run(
            &write(path.to_str().unwrap(), "abs", None),
            Path::new("/nonexistent"),
        )
        .unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "abs");
    }

    #[test]
    fn replaces_an_existing_read_only_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, "old content that is longer").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o444)).unwrap();
        run(&write("f", "new", Some(0o755)), dir.path()).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(mode_of(&path), 0o755);
    }

    #[test]
    fn replaces_a_symlink_without_touching_its_target() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("target"), "target").unwrap();
        symlink("target", dir.path().join("link")).unwrap();
        run(&write("link", "mine", None), dir.path()).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("target")).unwrap(),
            "target"
        );
        let link = dir.path().join("link");
        assert!(fs::symlink_metadata(&link).unwrap().is_file());
        assert_eq!(fs::read_to_string(&link).unwrap(), "mine");
    }

    #[test]
    fn an_existing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("d")).unwrap();
        let error = run(&write("d", "x", None), dir.path()).unwrap_err();
        assert!(
            matches!(&error, FileStepError::Write { path, .. } if *path == dir.path().join("d")),
            "{error:?}"
        );
        assert!(dir.path().join("d").is_dir());
        // The temporary file is cleaned up.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_file_in_the_way_of_a_parent_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("file"), "").unwrap();
        let error = run(&write("file/sub/x", "x", None), dir.path()).unwrap_err();
        assert!(
            matches!(&error, FileStepError::CreateDir { path, .. } if *path == dir.path().join("file/sub")),
            "{error:?}"
        );
    }
}
