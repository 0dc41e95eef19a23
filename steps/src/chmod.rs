//! The `chmod` step: sets exact permission bits, optionally on a whole tree ([`ChmodStep`]).
//!
//! - The mode is set exactly (`chmod 0755`, not `chmod +x`); the umask plays no part.
//! - `path` itself is followed when it is a symlink, as `chmod` does: the target's mode changes
//!   (a symlink's own mode means nothing on Linux).
//! - With `recursive`, every file and directory below `path` gets the same mode too. Symlinks
//!   inside the tree are skipped, neither changed nor followed, so the step never reaches outside
//!   the tree. Entries are visited in bytewise-sorted order.
//! - A directory's own mode is set after its entries, so a mode without `r` or `x` for the owner
//!   (say `0644` on a tree) does not lock the walk out halfway, unlike `chmod -R`; a directory
//!   that cannot be listed as it is gets the new mode first and is listed again.

use std::fs;
use std::io;
use std::path::Path;

use kiln_schema::ChmodStep;

use crate::{fsx, FileStepError};

/// Runs a `chmod` step; a relative path resolves against `cwd`.
pub(crate) fn run(step: &ChmodStep, cwd: &Path) -> Result<(), FileStepError> {
    let path = cwd.join(&step.path);
    let mode = step.mode.0;
    if step.recursive {
        let metadata = fs::metadata(&path).map_err(|source| FileStepError::Metadata {
            path: path.clone(),
            source,
        })?;
        if metadata.is_dir() {
            return set_tree(&path, mode);
        }
    }
    fsx::set_mode(&path, mode)
}

/// Sets `mode` on the directory `dir` and everything below it, skipping symlinks.
fn set_tree(dir: &Path, mode: u32) -> Result<(), FileStepError> {
    let names = match fsx::read_dir_sorted(dir) {
        Err(FileStepError::ReadDir { source, .. })
            if source.kind() == io::ErrorKind::PermissionDenied =>
        {
            fsx::set_mode(dir, mode)?;
            fsx::read_dir_sorted(dir)?
        }
        result => result?,
    };
    for name in names {
        let child = dir.join(name);
        let metadata = fs::symlink_metadata(&child).map_err(|source| FileStepError::Metadata {
            path: child.clone(),
            source,
        })?;
        if metadata.is_dir() {
            set_tree(&child, mode)?;
        } else if !metadata.is_symlink() {
            fsx::set_mode(&child, mode)?;
        }
    }
    fsx::set_mode(dir, mode)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{symlink, PermissionsExt as _};

    use kiln_schema::Mode;

    use super::*;

    fn chmod(path: &str, mode: u32, recursive: bool) -> ChmodStep {
        ChmodStep {
            path: path.to_owned(),
            mode: Mode(mode),
            recursive,
        }
    }

    fn mode_of(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn sets_the_exact_mode_of_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        fs::write(&file, "").unwrap();
        for mode in [0o755, 0o600, 0o4711, 0o000, 0o777] {
            run(&chmod("f", mode, false), dir.path()).unwrap();
            assert_eq!(mode_of(&file), mode);
        }
    }

    #[test]
    fn non_recursive_leaves_the_contents_alone() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("d")).unwrap();
        fs::write(dir.path().join("d/f"), "").unwrap();
        fs::set_permissions(dir.path().join("d/f"), fs::Permissions::from_mode(0o644)).unwrap();
        run(&chmod("d", 0o700, false), dir.path()).unwrap();
        assert_eq!(mode_of(&dir.path().join("d")), 0o700);
        assert_eq!(mode_of(&dir.path().join("d/f")), 0o644);
    }

    #[test]
    fn follows_a_symlink_given_as_the_path() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("target"), "").unwrap();
        symlink("target", dir.path().join("link")).unwrap();
        run(&chmod("link", 0o751, false), dir.path()).unwrap();
        assert_eq!(mode_of(&dir.path().join("target")), 0o751);
    }

    #[test]
    fn recursive_sets_everything_below_and_skips_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        fs::create_dir_all(tree.join("a/b")).unwrap();
        fs::write(tree.join("top"), "").unwrap();
        fs::write(tree.join("a/b/deep"), "").unwrap();
        fs::write(dir.path().join("outside"), "").unwrap();
        fs::set_permissions(
            dir.path().join("outside"),
            fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        symlink("../../outside", tree.join("a/out")).unwrap();

        // 0644 on directories would stop `chmod -R` after the first one.
        run(&chmod("tree", 0o644, true), dir.path()).unwrap();

        // Without `x` on the directories the test cannot look inside (unless it runs as root):
        // check each directory, then open it up.
        for path in ["", "a", "a/b"] {
            assert_eq!(mode_of(&tree.join(path)), 0o644, "{path:?}");
            fs::set_permissions(tree.join(path), fs::Permissions::from_mode(0o755)).unwrap();
        }
        assert_eq!(mode_of(&tree.join("top")), 0o644);
        assert_eq!(mode_of(&tree.join("a/b/deep")), 0o644);
        assert_eq!(mode_of(&dir.path().join("outside")), 0o600);
        assert!(fs::symlink_metadata(tree.join("a/out"))
            .unwrap()
            .is_symlink());
    }

    #[test]
    fn recursive_enters_directories_that_cannot_be_listed_yet() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        fs::create_dir_all(tree.join("locked/inner")).unwrap();
        fs::write(tree.join("locked/inner/f"), "").unwrap();
        fs::set_permissions(tree.join("locked/inner"), fs::Permissions::from_mode(0o000)).unwrap();
        fs::set_permissions(tree.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();

        run(&chmod("tree", 0o750, true), dir.path()).unwrap();

        for path in ["", "locked", "locked/inner", "locked/inner/f"] {
            assert_eq!(mode_of(&tree.join(path)), 0o750, "{path:?}");
        }
    }

    #[test]
    fn recursive_on_a_file_sets_just_the_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("f"), "").unwrap();
        run(&chmod("f", 0o755, true), dir.path()).unwrap();
        assert_eq!(mode_of(&dir.path().join("f")), 0o755);
    }

    #[test]
    fn a_missing_path_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let error = run(&chmod("missing", 0o755, false), dir.path()).unwrap_err();
        match error {
            FileStepError::SetMode { path, mode, source } => {
                assert_eq!(path, missing);
                assert_eq!(mode, Mode(0o755));
                assert_eq!(source.kind(), io::ErrorKind::NotFound);
            }
            other => panic!("unexpected error: {other:?}"),
        }
        let error = run(&chmod("missing", 0o755, true), dir.path()).unwrap_err();
        assert!(
            matches!(&error, FileStepError::Metadata { path, .. } if *path == missing),
            "{error:?}"
        );
    }
}
