//! The `symlink` step: creates a symbolic link, like `ln -s` without `-f` ([`SymlinkStep`]).
//!
//! - `target` is stored verbatim: a relative target stays relative to the link's directory and is
//!   never resolved against the step's working directory; it need not exist.
//! - Missing parents of `link` are created (mode `0777` less the umask).
//! - Anything already at `link`, even a dangling symlink, is [`FileStepError::DestinationExists`];
//!   it is never replaced.

use std::os::unix::fs::symlink;
use std::path::Path;

use kiln_schema::SymlinkStep;

use crate::{fsx, FileStepError};

/// Runs a `symlink` step; a relative `link` resolves against `cwd`.
pub(crate) fn run(step: &SymlinkStep, cwd: &Path) -> Result<(), FileStepError> {
    let link = cwd.join(&step.link);
    fsx::create_parents(&link)?;
    symlink(&step.target, &link).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            FileStepError::DestinationExists { path: link.clone() }
        } else {
            FileStepError::Symlink {
                link: link.clone(),
                target: step.target.clone().into(),
                source,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn symlink_step(target: &str, link: &str) -> SymlinkStep {
        SymlinkStep {
            target: target.to_owned(),
            link: link.to_owned(),
        }
    }

    #[test]
    fn stores_the_target_verbatim_and_creates_parents() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("lib")).unwrap();
        fs::write(dir.path().join("lib/libz.so.1.3"), "elf").unwrap();

        run(&symlink_step("libz.so.1.3", "lib/libz.so"), dir.path()).unwrap();
        run(&symlink_step("../lib/libz.so", "share/x/libz"), dir.path()).unwrap();
        run(&symlink_step("/nix/store/missing", "abs"), dir.path()).unwrap();

        let link = dir.path().join("lib/libz.so");
        assert!(fs::symlink_metadata(&link).unwrap().is_symlink());
        assert_eq!(fs::read_link(&link).unwrap(), Path::new("libz.so.1.3"));
        assert_eq!(fs::read_to_string(&link).unwrap(), "elf");
        assert_eq!(
            fs::read_link(dir.path().join("share/x/libz")).unwrap(),
            Path::new("../lib/libz.so")
        );
        assert_eq!(
            fs::read_link(dir.path().join("abs")).unwrap(),
            Path::new("/nix/store/missing")
        );
    }

    #[test]
    fn an_existing_link_path_is_an_error_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("file"), "file").unwrap();
        std::os::unix::fs::symlink("old", dir.path().join("link")).unwrap();

        for existing in ["file", "link"] {
            let error = run(&symlink_step("new", existing), dir.path()).unwrap_err();
            assert!(
                matches!(&error, FileStepError::DestinationExists { path } if *path == dir.path().join(existing)),
                "{error:?}"
            );
        }
        assert_eq!(fs::read_to_string(dir.path().join("file")).unwrap(), "file");
        assert_eq!(
            fs::read_link(dir.path().join("link")).unwrap(),
            Path::new("old")
        );
    }

    #[test]
    fn a_file_in_the_way_of_a_parent_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("file"), "").unwrap();
        let error = run(&symlink_step("t", "file/link"), dir.path()).unwrap_err();
        assert!(
            matches!(&error, FileStepError::CreateDir { path, .. } if *path == dir.path().join("file")),
            "{error:?}"
        );
    }
}
