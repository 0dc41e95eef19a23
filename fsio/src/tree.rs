//! Writing a tree under one root without ever writing outside it: [`TreeWriter`] creates
//! directories, files and links at paths relative to its root, and [`PendingDirs`] applies
//! directory modes and mtimes once the tree is complete.
//!
//! The rules, after uv's `enclosed_name`/`untar_in` and GNU tar's defaults for a non-root user:
//!
//! - Callers hand in relative paths of normal components only; checking the entry paths of an
//!   archive (`..`, absolute paths) is theirs, since what is allowed differs.
//! - Every directory on the way to an entry must be a real directory: the writer remembers the
//!   directories it created or checked with `lstat`, and a symlink on the way is refused
//!   ([`TreeError::ThroughSymlink`]). So `link -> /tmp/outside` followed by `link/file` never
//!   writes to `/tmp/outside/file`. Symlinks themselves may point anywhere.
//! - The last component is never followed: files are created with `O_CREAT | O_EXCL`
//!   (<https://man7.org/linux/man-pages/man2/open.2.html>: "if pathname is a symbolic link,
//!   open() fails regardless of where it points"), links with `symlink(2)`/`linkat(2)` without
//!   `AT_SYMLINK_FOLLOW`.
//! - What happens when something is already where an entry goes is the writer's [`Existing`]
//!   policy: replace it as GNU tar does (never a directory), or refuse.
//!
//! This is not hardened against a concurrent process that swaps directories for symlinks while
//! the writer runs: the root is the build's own directory (or a fresh staging directory),
//! written by no one else.

use std::collections::HashSet;
use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use crate::meta::set_mtime_nofollow;

/// What a [`TreeWriter`] does when something is already where it creates an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// The root may hold files already, as GNU tar allows: a real directory on the way to an
    /// entry, or where a directory entry goes, is used as it is; anything else where an entry
    /// goes is unlinked first; a directory is never replaced ([`TreeError::ReplaceDirectory`]).
    Replace,
    /// The root started empty and everything in it came from this writer: anything already
    /// where an entry goes is [`TreeError::Exists`], and only directories this writer created
    /// may be on the way to an entry.
    Refuse,
}

/// Why a [`TreeWriter`] did not create an entry. Paths in [`TreeError::ThroughSymlink`] and
/// [`TreeError::NotADirectory`] are relative to the root; the others are full paths.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// A symlink is where a directory on the way to the entry (or a directory entry) goes.
    #[error("`{link}` is a symlink")]
    ThroughSymlink {
        /// The symlink, relative to the root.
        link: PathBuf,
    },
    /// Something other than a directory is where a directory on the way to the entry goes.
    #[error("`{path}` is not a directory")]
    NotADirectory {
        /// The path in the way, relative to the root.
        path: PathBuf,
    },
    /// Something is already where the entry goes ([`Existing::Refuse`]).
    #[error("`{path}` already exists")]
    Exists {
        /// The entry's full path.
        path: PathBuf,
    },
    /// A directory is where a file or link goes ([`Existing::Replace`]).
    #[error("`{path}` is a directory")]
    ReplaceDirectory {
        /// The directory in the way.
        path: PathBuf,
    },
    /// A system call failed.
    #[error("cannot write `{path}`")]
    Io {
        /// The path it was called on.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> TreeError + '_ {
    move |source| TreeError::Io {
        path: path.to_owned(),
        source,
    }
}

/// `relative` under `base`; `base` itself for the empty path (`join` would add a `/`).
fn under(base: &Path, relative: &Path) -> PathBuf {
    if relative.as_os_str().is_empty() {
        base.to_owned()
    } else {
        base.join(relative)
    }
}

/// Creates entries under one root, safely; see the module documentation for the rules.
#[derive(Debug)]
pub struct TreeWriter {
    root: PathBuf,
    existing: Existing,
    /// The mode directories created on the way to an entry get (before the umask).
    parent_mode: u32,
    /// Directories (relative to `root`; the empty path is `root`) known to be real directories.
    /// MUST only hold paths whose every ancestor is also in the set.
    known_dirs: HashSet<PathBuf>,
}

impl TreeWriter {
    /// A writer under `root`, an existing directory, creating the directories on the way to
    /// entries with `parent_mode`.
    pub fn new(root: PathBuf, existing: Existing, parent_mode: u32) -> TreeWriter {
        TreeWriter {
            root,
            existing,
            parent_mode,
            known_dirs: HashSet::from([PathBuf::new()]),
        }
    }

    /// Makes the root one that does not exist yet: the first entry is the root itself (the
    /// empty relative path), or the root is created as a directory on the way to it.
    pub fn root_missing(mut self) -> TreeWriter {
        self.known_dirs.clear();
        self
    }

    /// The root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The full path of `relative` (the root itself for the empty path).
    pub fn path(&self, relative: &Path) -> PathBuf {
        under(&self.root, relative)
    }

    /// Whether `relative` is a directory this writer created or checked, every ancestor too.
    pub fn is_known_dir(&self, relative: &Path) -> bool {
        self.known_dirs.contains(relative)
    }

    /// Makes sure every ancestor of `relative` is a real directory, creating missing ones.
    pub fn ensure_parents(&mut self, relative: &Path) -> Result<(), TreeError> {
        let Some(parent) = relative.parent() else {
            return Ok(());
        };
        if self.known_dirs.contains(parent) {
            return Ok(());
        }
        let mut prefixes = vec![PathBuf::new()];
        let mut prefix = PathBuf::new();
        for component in parent.components() {
            prefix.push(component);
            prefixes.push(prefix.clone());
        }
        for prefix in prefixes {
            if self.known_dirs.contains(&prefix) {
                continue;
            }
            let path = self.path(&prefix);
            match DirBuilder::new().mode(self.parent_mode).create(&path) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                    let replace = self.existing == Existing::Replace;
                    match fs::symlink_metadata(&path) {
                        Ok(metadata) if metadata.is_symlink() => {
                            return Err(TreeError::ThroughSymlink { link: prefix })
                        }
                        Ok(metadata) if metadata.is_dir() && replace => {}
                        Err(source) if replace => return Err(TreeError::Io { path, source }),
                        _ => return Err(TreeError::NotADirectory { path: prefix }),
                    }
                }
                Err(source) => return Err(TreeError::Io { path, source }),
            }
            self.known_dirs.insert(prefix);
        }
        Ok(())
    }

    /// Something is at `path` where a file, link or directory is to be created: unlink it,
    /// unless it is a directory.
    fn clear(path: &Path) -> Result<(), TreeError> {
        let metadata = fs::symlink_metadata(path).map_err(io_error(path))?;
        if metadata.is_dir() {
            return Err(TreeError::ReplaceDirectory {
                path: path.to_owned(),
            });
        }
        fs::remove_file(path).map_err(io_error(path))
    }

    /// Runs `create` on `path`; when something is already there, clears it and runs `create`
    /// again ([`Existing::Replace`]) or fails ([`Existing::Refuse`]).
    fn create_leaf<T>(
        &self,
        path: &Path,
        create: impl Fn() -> io::Result<T>,
    ) -> Result<T, TreeError> {
        match create() {
            Ok(made) => Ok(made),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => match self.existing {
                Existing::Refuse => Err(TreeError::Exists {
                    path: path.to_owned(),
                }),
                Existing::Replace => {
                    TreeWriter::clear(path)?;
                    create().map_err(io_error(path))
                }
            },
            Err(source) => Err(TreeError::Io {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Creates the directory `relative` with `mode` (the umask applies), unless it is known
    /// already; its parents first. Returns whether `mkdir(2)` made it with `mode` just now: an
    /// existing directory, or one made after clearing a file, keeps or gets other bits.
    pub fn dir(&mut self, relative: &Path, mode: u32) -> Result<bool, TreeError> {
        self.ensure_parents(relative)?;
        if self.known_dirs.contains(relative) {
            return Ok(false);
        }
        let path = self.path(relative);
        let builder = {
            let mut builder = DirBuilder::new();
            builder.mode(mode);
            builder
        };
        let created = match builder.create(&path) {
            Ok(()) => true,
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                if self.existing == Existing::Refuse {
                    return Err(TreeError::Exists { path });
                }
                let metadata = fs::symlink_metadata(&path).map_err(io_error(&path))?;
                if metadata.is_symlink() {
                    return Err(TreeError::ThroughSymlink {
                        link: relative.to_owned(),
                    });
                }
                if !metadata.is_dir() {
                    TreeWriter::clear(&path)?;
                    builder.create(&path).map_err(io_error(&path))?;
                }
                false
            }
            Err(source) => return Err(TreeError::Io { path, source }),
        };
        self.known_dirs.insert(relative.to_owned());
        Ok(created)
    }

    /// Creates the regular file `relative` with `mode` (the umask applies) and opens it for
    /// writing, never following a symlink there; its parents first. Returns its full path too.
    pub fn file(&mut self, relative: &Path, mode: u32) -> Result<(PathBuf, File), TreeError> {
        self.ensure_parents(relative)?;
        let path = self.path(relative);
        let file = self.create_leaf(&path, || {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&path)
        })?;
        Ok((path, file))
    }

    /// Creates the symlink `relative` pointing to `target` (which may point anywhere); its
    /// parents first. Returns its full path.
    pub fn symlink(&mut self, relative: &Path, target: &Path) -> Result<PathBuf, TreeError> {
        self.ensure_parents(relative)?;
        let path = self.path(relative);
        self.create_leaf(&path, || std::os::unix::fs::symlink(target, &path))?;
        Ok(path)
    }

    /// Creates `relative` as a hard link to `target`, a full path the caller has checked (a
    /// non-directory reached inside the root without symlinks); its parents first. `linkat(2)`
    /// without `AT_SYMLINK_FOLLOW`: a symlink target is linked as the symlink. Returns the
    /// link's full path.
    pub fn hard_link(&mut self, relative: &Path, target: &Path) -> Result<PathBuf, TreeError> {
        self.ensure_parents(relative)?;
        let path = self.path(relative);
        self.create_leaf(&path, || fs::hard_link(target, &path))?;
        Ok(path)
    }
}

/// A directory whose mode and mtime are applied when its tree is complete.
#[derive(Debug)]
struct PendingDir {
    path: PathBuf,
    depth: usize,
    mode: Option<u32>,
    mtime: Option<i64>,
}

/// Directory modes and mtimes to apply last, deepest first: creating entries in a directory
/// changes its mtime, and a read-only directory could not be filled.
#[derive(Debug, Default)]
pub struct PendingDirs {
    dirs: Vec<PendingDir>,
}

impl PendingDirs {
    /// Records the directory `relative` under `base`: its exact permission bits `mode`
    /// (`chmod(2)` ignores the umask) and its `mtime` in seconds, each if given.
    pub fn push(&mut self, base: &Path, relative: &Path, mode: Option<u32>, mtime: Option<i64>) {
        self.dirs.push(PendingDir {
            path: under(base, relative),
            depth: relative.components().count(),
            mode,
            mtime,
        });
    }

    /// Applies the modes and mtimes, deepest first (in the order recorded within one depth).
    pub fn apply(self) -> Result<(), DirMetadataError> {
        let mut dirs = self.dirs;
        dirs.sort_by_key(|dir| std::cmp::Reverse(dir.depth));
        for dir in dirs {
            let failed = |source| DirMetadataError {
                path: dir.path.clone(),
                source,
            };
            if let Some(mode) = dir.mode {
                fs::set_permissions(&dir.path, Permissions::from_mode(mode)).map_err(failed)?;
            }
            if let Some(mtime) = dir.mtime {
                set_mtime_nofollow(&dir.path, mtime, 0).map_err(failed)?;
            }
        }
        Ok(())
    }
}

/// [`PendingDirs::apply`] could not set a directory's mode or mtime.
#[derive(Debug, thiserror::Error)]
#[error("cannot set the mode or mtime of `{path}`")]
pub struct DirMetadataError {
    /// The directory.
    pub path: PathBuf,
    /// Why it failed.
    #[source]
    pub source: io::Error,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt as _;

    fn writer(existing: Existing) -> (tempfile::TempDir, TreeWriter) {
        let dir = tempfile::tempdir().unwrap();
        let writer = TreeWriter::new(dir.path().to_owned(), existing, 0o755);
        (dir, writer)
    }

    #[test]
    fn a_symlink_on_the_way_is_refused_under_both_policies() {
        for existing in [Existing::Replace, Existing::Refuse] {
            let (_dir, mut tree) = writer(existing);
            let outside = tempfile::tempdir().unwrap();
            tree.symlink(Path::new("link"), outside.path()).unwrap();
            let error = tree.file(Path::new("link/file"), 0o644).unwrap_err();
            assert!(
                matches!(&error, TreeError::ThroughSymlink { link } if link == Path::new("link")),
                "{existing:?}: {error:?}"
            );
            assert!(fs::read_dir(outside.path()).unwrap().next().is_none());
        }
    }

    #[test]
    fn replace_unlinks_a_symlink_at_the_last_component_instead_of_writing_through_it() {
        let (dir, mut tree) = writer(Existing::Replace);
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        fs::write(&victim, "keep").unwrap();
        tree.symlink(Path::new("f"), &victim).unwrap();
        let (path, _file) = tree.file(Path::new("f"), 0o644).unwrap();
        assert_eq!(path, dir.path().join("f"));
        assert!(fs::symlink_metadata(&path).unwrap().is_file());
        assert_eq!(fs::read(&victim).unwrap(), b"keep");
    }

    #[test]
    fn refuse_reports_what_is_there() {
        let (_dir, mut tree) = writer(Existing::Refuse);
        tree.file(Path::new("a/f"), 0o644).unwrap();
        assert!(matches!(
            tree.symlink(Path::new("a/f"), Path::new("x")),
            Err(TreeError::Exists { .. })
        ));
        assert!(matches!(
            tree.dir(Path::new("a/f"), 0o755),
            Err(TreeError::Exists { .. })
        ));
        assert!(matches!(
            tree.file(Path::new("a/f/g"), 0o644),
            Err(TreeError::NotADirectory { path }) if path == Path::new("a/f")
        ));
    }

    #[test]
    fn replace_never_replaces_a_directory() {
        let (dir, mut tree) = writer(Existing::Replace);
        assert!(tree.dir(Path::new("d"), 0o755).unwrap());
        assert!(matches!(
            tree.file(Path::new("d"), 0o644),
            Err(TreeError::ReplaceDirectory { path }) if path == dir.path().join("d")
        ));
        // A directory entry for an existing directory uses it.
        assert!(!tree.dir(Path::new("d"), 0o700).unwrap());
    }

    #[test]
    fn a_missing_root_is_made_on_the_way_or_is_the_entry() {
        let dir = tempfile::tempdir().unwrap();
        let mut tree =
            TreeWriter::new(dir.path().join("out"), Existing::Refuse, 0o700).root_missing();
        let (path, _) = tree.file(Path::new(""), 0o644).unwrap();
        assert_eq!(path, dir.path().join("out"));

        let mut tree =
            TreeWriter::new(dir.path().join("out2"), Existing::Refuse, 0o700).root_missing();
        tree.file(Path::new("bin/x"), 0o644).unwrap();
        assert!(dir.path().join("out2/bin/x").is_file());
    }

    #[test]
    fn pending_dirs_are_applied_deepest_first() {
        let (dir, mut tree) = writer(Existing::Replace);
        tree.dir(Path::new("a/b"), 0o755).unwrap();
        let mut pending = PendingDirs::default();
        pending.push(dir.path(), Path::new("a"), Some(0o555), Some(1_000));
        pending.push(dir.path(), Path::new("a/b"), Some(0o500), Some(2_000));
        pending.apply().unwrap();
        let a = fs::symlink_metadata(dir.path().join("a")).unwrap();
        let b = fs::symlink_metadata(dir.path().join("a/b")).unwrap();
        assert_eq!((a.mode() & 0o777, a.mtime()), (0o555, 1_000));
        assert_eq!((b.mode() & 0o777, b.mtime()), (0o500, 2_000));
        fs::set_permissions(dir.path().join("a/b"), Permissions::from_mode(0o700)).unwrap();
        fs::set_permissions(dir.path().join("a"), Permissions::from_mode(0o700)).unwrap();
    }
}
