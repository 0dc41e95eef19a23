//! Filesystem helpers shared by the steps: a sorted, non-following tree walk ([`walk`], on
//! `kiln-fsio`'s sorted listing), file type sniffing, hard-link deduplication and small wrappers
//! that turn [`io::Error`]s from `std::fs` and `kiln_fsio` into [`StepError`]s naming the path.
//!
//! These call `std::fs` directly rather than `fs_err`: every failure is wrapped in a typed
//! [`StepError`] variant that already names the path, and `fs_err` would repeat it in the source.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use rayon::prelude::*;

use crate::error::StepError;

/// What a walked path is. Symlinks are never followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    Other,
}

/// One path found by [`walk`], with the `lstat` facts the steps need.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub path: PathBuf,
    pub kind: Kind,
    pub mode: u32,
    pub dev: u64,
    pub ino: u64,
}

impl Entry {
    pub(crate) fn new(path: PathBuf, meta: &Metadata) -> Entry {
        let file_type = meta.file_type();
        let kind = if file_type.is_symlink() {
            Kind::Symlink
        } else if file_type.is_dir() {
            Kind::Dir
        } else if file_type.is_file() {
            Kind::File
        } else {
            Kind::Other
        };
        Entry {
            path,
            kind,
            mode: meta.mode(),
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// Every path below `root` (not `root` itself), depth first, each directory's entries in
/// bytewise order of their names, without following symlinks. A missing `root`, or a `root`
/// that is a symlink, yields nothing (like `find` on such an argument with `-type` filters).
pub(crate) fn walk(root: &Path) -> Result<Vec<Entry>, StepError> {
    let mut out = Vec::new();
    match fs::symlink_metadata(root) {
        Ok(meta) if meta.is_dir() => walk_into(root, &mut out)?,
        Ok(_) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(StepError::Metadata {
                path: root.to_owned(),
                source,
            })
        }
    }
    Ok(out)
}

/// `root` itself (a directory, a file or a symlink, not followed) followed by [`walk`]'s
/// entries below it; nothing when `root` is missing.
pub(crate) fn walk_with_root(root: &Path) -> Result<Vec<Entry>, StepError> {
    let meta = match fs::symlink_metadata(root) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(StepError::Metadata {
                path: root.to_owned(),
                source,
            })
        }
    };
    let mut entries = vec![Entry::new(root.to_owned(), &meta)];
    entries.extend(walk(root)?);
    Ok(entries)
}

fn walk_into(dir: &Path, out: &mut Vec<Entry>) -> Result<(), StepError> {
    let mut children = Vec::new();
    for name in read_dir_sorted(dir)? {
        let path = dir.join(name);
        let meta = fs::symlink_metadata(&path).map_err(|source| StepError::Metadata {
            path: path.clone(),
            source,
        })?;
        children.push(Entry::new(path, &meta));
    }
    for child in children {
        let is_dir = child.kind == Kind::Dir;
        let path = child.path.clone();
        out.push(child);
        if is_dir {
            walk_into(&path, out)?;
        }
    }
    Ok(())
}

/// The names in `dir`, sorted bytewise so that every walk visits entries in the same order.
pub(crate) fn read_dir_sorted(dir: &Path) -> Result<Vec<OsString>, StepError> {
    kiln_fsio::read_dir_sorted(dir).map_err(|source| StepError::ReadDir {
        path: dir.to_owned(),
        source,
    })
}

/// The regular files among `entries`, keeping only the first name of each inode, so that
/// in-place edits of hard-linked files happen once (and never concurrently).
pub(crate) fn unique_files(entries: &[Entry]) -> Vec<&Entry> {
    let mut seen = HashSet::new();
    entries
        .iter()
        .filter(|entry| entry.kind == Kind::File && seen.insert((entry.dev, entry.ino)))
        .collect()
}

/// `true` if a path component contains `.build-id` (stdenv's `[[ $i =~ .build-id ]]`, used to
/// skip separate debug info).
pub(crate) fn in_build_id(path: &Path) -> bool {
    path.components().any(|component| {
        matches!(component, Component::Normal(name) if name.as_encoded_bytes().windows(9).any(|w| &w[1..] == b"build-id"))
    })
}

/// Reads up to `buf.len()` bytes from the start of `path`; returns how many were read.
pub(crate) fn read_head(path: &Path, buf: &mut [u8]) -> Result<usize, StepError> {
    let read = |source| StepError::Read {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(read)?;
    kiln_fsio::read_full(&mut file, buf).map_err(read)
}

/// `true` if `path` starts with the ELF magic (stdenv's `isELF`).
pub(crate) fn is_elf(path: &Path) -> Result<bool, StepError> {
    let mut head = [0u8; 4];
    Ok(read_head(path, &mut head)? == 4 && head == *b"\x7fELF")
}

/// `true` if `path` starts with `#!` (stdenv's `isScript`).
pub(crate) fn is_script(path: &Path) -> Result<bool, StepError> {
    let mut head = [0u8; 2];
    Ok(read_head(path, &mut head)? == 2 && head == *b"#!")
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, StepError> {
    fs::read(path).map_err(|source| StepError::Read {
        path: path.to_owned(),
        source,
    })
}

pub(crate) fn read_link(path: &Path) -> Result<PathBuf, StepError> {
    fs::read_link(path).map_err(|source| StepError::ReadLink {
        path: path.to_owned(),
        source,
    })
}

pub(crate) fn metadata(path: &Path) -> Result<Metadata, StepError> {
    fs::metadata(path).map_err(|source| StepError::Metadata {
        path: path.to_owned(),
        source,
    })
}

pub(crate) fn create_dir_all(path: &Path) -> Result<(), StepError> {
    fs::create_dir_all(path).map_err(|source| StepError::CreateDir {
        path: path.to_owned(),
        source,
    })
}

pub(crate) fn rename(from: &Path, to: &Path) -> Result<(), StepError> {
    fs::rename(from, to).map_err(|source| StepError::Rename {
        from: from.to_owned(),
        to: to.to_owned(),
        source,
    })
}

pub(crate) fn remove_file(path: &Path) -> Result<(), StepError> {
    fs::remove_file(path).map_err(|source| StepError::Remove {
        path: path.to_owned(),
        source,
    })
}

pub(crate) fn remove_dir(path: &Path) -> Result<(), StepError> {
    fs::remove_dir(path).map_err(|source| StepError::Remove {
        path: path.to_owned(),
        source,
    })
}

/// `true` if something (even a dangling symlink) exists at `path`.
pub(crate) fn lexists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// Sets the permission bits of `path` (following a symlink) to exactly `mode`.
pub(crate) fn set_mode(path: &Path, mode: u32) -> Result<(), StepError> {
    kiln_fsio::set_mode(path, mode).map_err(|source| StepError::SetPermissions {
        path: path.to_owned(),
        source,
    })
}

/// Creates (or atomically replaces) the symlink `path` -> `target`, like `ln -sfn`.
pub(crate) fn replace_symlink(target: &Path, path: &Path) -> Result<(), StepError> {
    kiln_fsio::replace_symlink(target, path).map_err(|source| StepError::Symlink {
        path: path.to_owned(),
        target: target.to_owned(),
        source,
    })
}

/// Runs `edit` on `path` with the owner's write bit set, restoring the original mode after,
/// like stdenv's `patchShebangs` does for read-only scripts.
pub(crate) fn with_writable<T>(
    path: &Path,
    mode: u32,
    edit: impl FnOnce() -> Result<T, StepError>,
) -> Result<T, StepError> {
    if mode & 0o200 != 0 {
        return edit();
    }
    set_mode(path, (mode | 0o200) & 0o7777)?;
    let result = edit();
    set_mode(path, mode & 0o7777)?;
    result
}

/// Lexically normalises an absolute path: drops `.` and resolves `..` against the previous
/// component (like `realpath --no-symlinks --canonicalize-missing`).
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Runs `f` over `items` on the current rayon pool and collects the results in input order, so
/// that reports are deterministic whatever the scheduling. Stops at an error.
pub(crate) fn par_map<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> Result<R, StepError> + Sync + Send,
) -> Result<Vec<R>, StepError> {
    items.par_iter().map(f).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_is_sorted_and_does_not_follow_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("b/c")).unwrap();
        fs::write(root.join("b/c/f"), "x").unwrap();
        fs::write(root.join("a"), "x").unwrap();
        std::os::unix::fs::symlink("b", root.join("l")).unwrap();
        let names: Vec<_> = walk(root)
            .unwrap()
            .into_iter()
            .map(|e| {
                (
                    e.path.strip_prefix(root).unwrap().display().to_string(),
                    e.kind,
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("a".to_owned(), Kind::File),
                ("b".to_owned(), Kind::Dir),
                ("b/c".to_owned(), Kind::Dir),
                ("b/c/f".to_owned(), Kind::File),
                ("l".to_owned(), Kind::Symlink),
            ]
        );
        assert!(walk(&root.join("l")).unwrap().is_empty());
        assert!(walk(&root.join("missing")).unwrap().is_empty());
    }

    #[test]
    fn normalize_is_lexical() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), Path::new("/a/c"));
        assert_eq!(normalize(Path::new("/../a")), Path::new("/a"));
    }

    #[test]
    fn build_id_components_are_recognised() {
        assert!(in_build_id(Path::new("/o/lib/debug/.build-id/ab/cd.debug")));
        assert!(!in_build_id(Path::new("/o/lib/build-id")));
    }
}
