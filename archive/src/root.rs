//! After unpacking: which directory is the source root ([`find_source_root`]), and
//! [`make_writable`], which adds `u+w` under it and finds the newest file mtime on the way.
//!
//! The rule is stdenv's: the top-level entries of the destination are listed before the sources
//! are unpacked; afterwards, with no explicit `sourceRoot`, exactly one new directory must have
//! appeared. Unlike stdenv's `[ -d "$i" ]`, a new top-level symlink is not taken for a
//! directory: the source root is later made writable recursively, and that must not reach
//! outside the destination.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::{self, Permissions};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use crate::dest::enclosed;
use crate::UnpackError;

/// The names of the top-level entries of `dir`.
pub(crate) fn top_level(dir: &Path) -> Result<BTreeSet<OsString>, UnpackError> {
    let inspect = |source| UnpackError::Inspect {
        path: dir.to_owned(),
        source,
    };
    fs::read_dir(dir)
        .map_err(inspect)?
        .map(|entry| entry.map(|entry| entry.file_name()))
        .collect::<Result<_, _>>()
        .map_err(inspect)
}

/// The source root: `into/<source_root>` if given, else the one new top-level directory.
pub(crate) fn find_source_root(
    into: &Path,
    before: &BTreeSet<OsString>,
    source_root: Option<&str>,
) -> Result<PathBuf, UnpackError> {
    if let Some(source_root) = source_root {
        let invalid = || UnpackError::InvalidSourceRoot {
            source_root: source_root.to_owned(),
        };
        let relative = enclosed(Path::new(source_root)).map_err(|_| invalid())?;
        let path = into.join(relative);
        // `cd "$sourceRoot"` follows symlinks, but whatever it reaches must stay inside.
        let inside = match (fs::canonicalize(&path), fs::canonicalize(into)) {
            (Ok(resolved), Ok(into)) => resolved.starts_with(into) && resolved.is_dir(),
            _ => false,
        };
        if !inside {
            return Err(UnpackError::MissingSourceRoot {
                source_root: source_root.to_owned(),
                into: into.to_owned(),
            });
        }
        return Ok(path);
    }
    let mut new_dirs = Vec::new();
    for name in top_level(into)? {
        if before.contains(&name) {
            continue;
        }
        let path = into.join(&name);
        let metadata =
            fs::symlink_metadata(&path).map_err(|source| UnpackError::Inspect { path, source })?;
        if metadata.is_dir() {
            new_dirs.push(name);
        }
    }
    match new_dirs.as_slice() {
        [] => Err(UnpackError::NoSourceRoot {
            into: into.to_owned(),
        }),
        [one] => Ok(into.join(one)),
        several => Err(UnpackError::SeveralSourceRoots {
            directories: several
                .iter()
                .map(|name| name.to_string_lossy().into_owned())
                .collect(),
        }),
    }
}

/// Adds `u+w` to every directory and regular file under `root` (`chmod -R u+w`, symlinks
/// neither followed nor changed) and returns the newest mtime of a regular file there, in
/// seconds since the epoch.
pub(crate) fn make_writable(root: &Path) -> Result<Option<i64>, UnpackError> {
    let metadata = fs::symlink_metadata(root).map_err(|source| UnpackError::Inspect {
        path: root.to_owned(),
        source,
    })?;
    let mut newest = None;
    visit(root, &metadata, &mut newest)?;
    Ok(newest)
}

fn visit(
    path: &Path,
    metadata: &fs::Metadata,
    newest: &mut Option<i64>,
) -> Result<(), UnpackError> {
    let file_type = metadata.file_type();
    if file_type.is_symlink() {
        return Ok(());
    }
    if metadata.mode() & 0o200 == 0 && (file_type.is_dir() || file_type.is_file()) {
        fs::set_permissions(
            path,
            Permissions::from_mode((metadata.mode() & 0o7777) | 0o200),
        )
        .map_err(|source| UnpackError::MakeWritable {
            path: path.to_owned(),
            source,
        })?;
    }
    if file_type.is_file() {
        *newest = Some(newest.map_or(metadata.mtime(), |seen: i64| seen.max(metadata.mtime())));
    } else if file_type.is_dir() {
        let inspect = |source| UnpackError::Inspect {
            path: path.to_owned(),
            source,
        };
        for entry in fs::read_dir(path).map_err(inspect)? {
            let entry = entry.map_err(inspect)?;
            // `DirEntry::metadata` is `fstatat(..., AT_SYMLINK_NOFOLLOW)`: an lstat.
            let metadata = entry.metadata().map_err(|source| UnpackError::Inspect {
                path: entry.path(),
                source,
            })?;
            visit(&entry.path(), &metadata, newest)?;
        }
    }
    Ok(())
}
