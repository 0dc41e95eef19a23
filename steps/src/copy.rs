//! The `copy` step: copies a file, a symlink or a whole directory tree, like `cp -a` ([`CopyStep`]).
//!
//! - `to` is the new path itself, never a directory to copy into. It MUST NOT exist (not even as a
//!   dangling symlink): an existing destination is [`FileStepError::DestinationExists`]. Missing
//!   parents of `to` are created.
//! - A regular file is copied with its permission bits (setuid/setgid/sticky included), access
//!   time and modification time, to the nanosecond. Keeping mtimes matters: `make` compares them.
//! - A symlink is copied as a symlink with the same target, verbatim; it is never followed, also
//!   not when it is `from` itself. Its own times are kept.
//! - A directory is copied recursively, entries in bytewise-sorted order so that repeated runs do
//!   the same thing. Its mode and times are set after its entries are in place, so read-only
//!   directories copy fine and their mtimes are not disturbed by the copy.
//! - Hard links inside a tree become separate files; ownership is not copied (the build user
//!   owns everything it creates). FIFOs, sockets and devices are
//!   [`FileStepError::UnsupportedFileType`].
//! - Copying a directory into itself is [`FileStepError::CopyIntoItself`], checked before anything is
//!   created.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{symlink, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Component, Path, PathBuf};

use kiln_schema::{CopyStep, Mode};

use crate::{fsx, FileStepError};

/// Runs a `copy` step; relative paths resolve against `cwd`.
pub(crate) fn run(step: &CopyStep, cwd: &Path) -> Result<(), FileStepError> {
    let from = cwd.join(&step.from);
    let to = cwd.join(&step.to);
    let metadata = fs::symlink_metadata(&from).map_err(|source| FileStepError::Metadata {
        path: from.clone(),
        source,
    })?;
    if fs::symlink_metadata(&to).is_ok() {
        return Err(FileStepError::DestinationExists { path: to });
    }
    if metadata.is_dir() {
        let canonical_from = fs::canonicalize(&from).map_err(|source| FileStepError::Metadata {
            path: from.clone(),
            source,
        })?;
        if resolve_missing(&to).starts_with(&canonical_from) {
            return Err(FileStepError::CopyIntoItself { from, to });
        }
    }
    fsx::create_parents(&to)?;
    copy_entry(&from, &to, &metadata)
}

/// Copies whatever `from` is (described by its `symlink_metadata`) to the new path `to`.
fn copy_entry(from: &Path, to: &Path, metadata: &Metadata) -> Result<(), FileStepError> {
    let file_type = metadata.file_type();
    if file_type.is_symlink() {
        copy_symlink(from, to, metadata)
    } else if file_type.is_file() {
        copy_file(from, to, metadata)
    } else if file_type.is_dir() {
        copy_dir(from, to, metadata)
    } else {
        Err(FileStepError::UnsupportedFileType {
            path: from.to_owned(),
        })
    }
}

fn copy_symlink(from: &Path, to: &Path, metadata: &Metadata) -> Result<(), FileStepError> {
    let target = fs::read_link(from).map_err(|source| FileStepError::ReadLink {
        path: from.to_owned(),
        source,
    })?;
    symlink(&target, to).map_err(|source| {
        exists_or(to, source, |source| FileStepError::Symlink {
            link: to.to_owned(),
            target,
            source,
        })
    })?;
    fsx::copy_times(to, metadata)
}

fn copy_file(from: &Path, to: &Path, metadata: &Metadata) -> Result<(), FileStepError> {
    let mut source = File::open(from).map_err(|source| FileStepError::Read {
        path: from.to_owned(),
        source,
    })?;
    // `create_new` (O_EXCL) so that nothing that appeared meanwhile is overwritten; owner-only
    // until the content is complete.
    let mut destination = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .map_err(|source| {
            exists_or(to, source, |source| FileStepError::Write {
                path: to.to_owned(),
                source,
            })
        })?;
    io::copy(&mut source, &mut destination).map_err(|source| FileStepError::Copy {
        from: from.to_owned(),
        to: to.to_owned(),
        source,
    })?;
    let mode = fsx::permission_bits(metadata);
    destination
        .set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|source| FileStepError::SetMode {
            path: to.to_owned(),
            mode: Mode(mode),
            source,
        })?;
    drop(destination);
    fsx::copy_times(to, metadata)
}

fn copy_dir(from: &Path, to: &Path, metadata: &Metadata) -> Result<(), FileStepError> {
    let names = fsx::read_dir_sorted(from)?;
    fs::create_dir(to).map_err(|source| {
        exists_or(to, source, |source| FileStepError::CreateDir {
            path: to.to_owned(),
            source,
        })
    })?;
    // Writable by us while it is filled, whatever the umask; the real mode comes last.
    fsx::set_mode(to, 0o700)?;
    for name in names {
        let child_from = from.join(&name);
        let child_metadata =
            fs::symlink_metadata(&child_from).map_err(|source| FileStepError::Metadata {
                path: child_from.clone(),
                source,
            })?;
        copy_entry(&child_from, &to.join(&name), &child_metadata)?;
    }
    fsx::set_mode(to, fsx::permission_bits(metadata))?;
    fsx::copy_times(to, metadata)
}

/// Maps "already exists" to [`FileStepError::DestinationExists`] and anything else with `other`.
fn exists_or(
    path: &Path,
    source: io::Error,
    other: impl FnOnce(io::Error) -> FileStepError,
) -> FileStepError {
    if source.kind() == io::ErrorKind::AlreadyExists {
        FileStepError::DestinationExists {
            path: path.to_owned(),
        }
    } else {
        other(source)
    }
}

/// Where `path`, which need not exist yet, would be once created: its deepest existing ancestor
/// with symlinks resolved, then the remaining components applied lexically.
pub(crate) fn resolve_missing(path: &Path) -> PathBuf {
    let mut missing = Vec::new();
    let mut existing = path;
    loop {
        if let Ok(mut resolved) = fs::canonicalize(existing) {
            for component in missing.iter().rev() {
                match component {
                    Component::ParentDir => {
                        resolved.pop();
                    }
                    Component::Normal(name) => resolved.push(name),
                    _ => {}
                }
            }
            return resolved;
        }
        match (existing.parent(), existing.components().next_back()) {
            (Some(parent), Some(last)) => {
                missing.push(last);
                existing = parent;
            }
            _ => return path.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};

    use nix::sys::stat::{utimensat, UtimensatFlags};
    use nix::sys::time::TimeSpec;

    use super::*;

    fn copy(from: &str, to: &str) -> CopyStep {
        CopyStep {
            from: from.to_owned(),
            to: to.to_owned(),
        }
    }

    /// Sets distinct, sub-second access and modification times on `path` itself.
    fn set_times(path: &Path, atime: (i64, i64), mtime: (i64, i64)) {
        utimensat(
            nix::fcntl::AT_FDCWD,
            path,
            &TimeSpec::new(atime.0, atime.1),
            &TimeSpec::new(mtime.0, mtime.1),
            UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
    }

    /// (mode bits, atime, atime ns, mtime, mtime ns) of `path` itself.
    fn stat(path: &Path) -> (u32, i64, i64, i64, i64) {
        let m = fs::symlink_metadata(path).unwrap();
        (
            m.mode() & 0o7777,
            m.atime(),
            m.atime_nsec(),
            m.mtime(),
            m.mtime_nsec(),
        )
    }

    fn chmod(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn copies_a_file_with_mode_and_times_and_creates_parents() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("src");
        fs::write(&from, b"\x00binary\xffcontent").unwrap();
        chmod(&from, 0o751);
        set_times(&from, (1_000_000_000, 123), (1_234_567_890, 987_654_321));

        run(&copy("src", "a/b/dst"), dir.path()).unwrap();

        let to = dir.path().join("a/b/dst");
        // Stat before reading: reading the copy would update its atime.
        assert_eq!(
            stat(&to),
            (0o751, 1_000_000_000, 123, 1_234_567_890, 987_654_321)
        );
        assert_eq!(fs::read(&to).unwrap(), b"\x00binary\xffcontent");
    }

    #[test]
    fn copies_a_read_only_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("ro"), "ro").unwrap();
        chmod(&dir.path().join("ro"), 0o444);
        run(&copy("ro", "copy"), dir.path()).unwrap();
        assert_eq!(fs::read_to_string(dir.path().join("copy")).unwrap(), "ro");
        assert_eq!(stat(&dir.path().join("copy")).0, 0o444);
    }

    #[test]
    fn copies_a_symlink_as_a_symlink_without_following_it() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("target"), "t").unwrap();
        symlink("target", dir.path().join("link")).unwrap();
        symlink("../nowhere", dir.path().join("dangling")).unwrap();
        set_times(&dir.path().join("link"), (5, 6), (7, 8));

        run(&copy("link", "sub/link2"), dir.path()).unwrap();
        run(&copy("dangling", "dangling2"), dir.path()).unwrap();

        let link2 = dir.path().join("sub/link2");
        // Stat before `read_link`, which would update the link's atime.
        let (_, atime, atime_ns, mtime, mtime_ns) = stat(&link2);
        assert_eq!((atime, atime_ns, mtime, mtime_ns), (5, 6, 7, 8));
        assert!(fs::symlink_metadata(&link2).unwrap().is_symlink());
        assert_eq!(fs::read_link(&link2).unwrap(), Path::new("target"));
        assert_eq!(
            fs::read_link(dir.path().join("dangling2")).unwrap(),
            Path::new("../nowhere")
        );
    }

    #[test]
    fn copies_a_directory_tree_with_modes_times_and_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("tree");
        fs::create_dir_all(src.join("sub/deeper")).unwrap();
        fs::write(src.join("a.txt"), "a").unwrap();
        fs::write(src.join("sub/run.sh"), "#!x").unwrap();
        fs::write(src.join("sub/deeper/z"), "z").unwrap();
        symlink("../a.txt", src.join("sub/to-a")).unwrap();
        chmod(&src.join("sub/run.sh"), 0o755);
        set_times(&src.join("a.txt"), (10, 1), (20, 2));
        set_times(&src.join("sub/run.sh"), (30, 3), (40, 4));
        set_times(&src.join("sub/to-a"), (50, 5), (60, 6));
        set_times(&src.join("sub/deeper/z"), (70, 7), (80, 8));
        set_times(&src.join("sub/deeper"), (90, 9), (100, 10));
        chmod(&src.join("sub/deeper"), 0o555);
        set_times(&src.join("sub"), (110, 11), (120, 12));
        chmod(&src.join("sub"), 0o750);
        set_times(&src, (130, 13), (140, 14));

        // Reading the source updates its atimes, so record what is to be kept before copying.
        let paths = [
            "a.txt",
            "sub/run.sh",
            "sub/to-a",
            "sub/deeper/z",
            "sub/deeper",
            "sub",
            "",
        ];
        let before: Vec<_> = paths.iter().map(|path| stat(&src.join(path))).collect();

        run(&copy("tree", "out/tree"), dir.path()).unwrap();

        let dst = dir.path().join("out/tree");
        // Likewise, stat the copy before reading it.
        let after: Vec<_> = paths.iter().map(|path| stat(&dst.join(path))).collect();
        assert_eq!(fsx::read_dir_sorted(&dst).unwrap(), ["a.txt", "sub"]);
        assert_eq!(
            fsx::read_dir_sorted(&dst.join("sub")).unwrap(),
            ["deeper", "run.sh", "to-a"]
        );
        assert_eq!(fs::read_to_string(dst.join("a.txt")).unwrap(), "a");
        assert_eq!(fs::read_to_string(dst.join("sub/deeper/z")).unwrap(), "z");
        assert_eq!(
            fs::read_link(dst.join("sub/to-a")).unwrap(),
            Path::new("../a.txt")
        );
        for ((path, expected), actual) in paths.iter().zip(before).zip(after) {
            if *path == "sub/to-a" {
                // A symlink's own mode bits are fixed by the system; compare its times only.
                assert_eq!(
                    (actual.1, actual.2, actual.3, actual.4),
                    (expected.1, expected.2, expected.3, expected.4)
                );
            } else {
                assert_eq!(actual, expected, "{path:?}");
            }
        }
        assert_eq!(stat(&dst.join("sub/deeper")).0, 0o555);
        assert_eq!(stat(&dst.join("sub")).3, 120);
        assert_eq!(stat(&dst.join("sub/run.sh")).0, 0o755);

        // Let the temporary directory be deleted when not running as root.
        for tree in [&src, &dst] {
            chmod(&tree.join("sub/deeper"), 0o755);
        }
    }

    #[test]
    fn an_existing_destination_is_an_error_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("src"), "new").unwrap();
        fs::write(dir.path().join("dst"), "old").unwrap();
        symlink("nowhere", dir.path().join("dangling")).unwrap();
        fs::create_dir(dir.path().join("dir")).unwrap();

        for existing in ["dst", "dangling", "dir"] {
            let error = run(&copy("src", existing), dir.path()).unwrap_err();
            assert!(
                matches!(&error, FileStepError::DestinationExists { path } if *path == dir.path().join(existing)),
                "{error:?}"
            );
        }
        assert_eq!(fs::read_to_string(dir.path().join("dst")).unwrap(), "old");
        assert!(!dir.path().join("nowhere").exists());
        assert!(fsx::read_dir_sorted(&dir.path().join("dir"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_missing_source_is_a_metadata_error() {
        let dir = tempfile::tempdir().unwrap();
        let error = run(&copy("missing", "dst"), dir.path()).unwrap_err();
        match error {
            FileStepError::Metadata { path, source } => {
                assert_eq!(path, dir.path().join("missing"));
                assert_eq!(source.kind(), io::ErrorKind::NotFound);
            }
            other => panic!("unexpected error: {other:?}"),
        }
        assert!(!dir.path().join("dst").exists());
    }

    #[test]
    fn copying_a_directory_into_itself_is_an_error_before_anything_happens() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("tree/sub")).unwrap();
        symlink("tree/sub", dir.path().join("alias")).unwrap();

        for to in ["tree/sub/new/deeper", "alias/new", "tree/x/../sub/y"] {
            let error = run(&copy("tree", to), dir.path()).unwrap_err();
            assert!(
                matches!(&error, FileStepError::CopyIntoItself { to: path, .. } if *path == dir.path().join(to)),
                "{to}: {error:?}"
            );
        }
        assert!(fsx::read_dir_sorted(&dir.path().join("tree/sub"))
            .unwrap()
            .is_empty());
        assert_eq!(
            fsx::read_dir_sorted(&dir.path().join("tree")).unwrap(),
            ["sub"]
        );

        // A sibling whose name merely starts with the same text is fine.
        run(&copy("tree", "tree2"), dir.path()).unwrap();
        assert!(dir.path().join("tree2/sub").is_dir());
    }

    #[test]
    fn special_files_are_unsupported() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let error = run(&copy("fifo", "copy"), dir.path()).unwrap_err();
        assert!(
            matches!(&error, FileStepError::UnsupportedFileType { path } if *path == fifo),
            "{error:?}"
        );
    }
}
