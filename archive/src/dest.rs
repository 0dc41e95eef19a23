//! The destination of an extraction: [`Dest`] creates files, directories and links under one
//! root and refuses anything that would land outside it.
//!
//! The rules, after uv's `enclosed_name`/`untar_in` and GNU tar's defaults for a non-root user:
//!
//! - An entry path is split into components; an absolute path or a `..` component is refused
//!   ([`UnsafeEntry::Absolute`], [`UnsafeEntry::ParentComponent`]), `.` is ignored.
//! - Entries are written through a [`TreeWriter`] with [`Existing::Replace`]: every directory
//!   on the way to an entry must be a real directory, and a symlink on the way is refused
//!   ([`UnsafeEntry::ThroughSymlink`]), so `link -> /tmp/outside` followed by `link/file` never
//!   writes to `/tmp/outside/file`; the last component is never followed; something already
//!   there is unlinked first, as GNU tar does, and a directory is never replaced. Symlinks
//!   themselves may point anywhere.
//! - A hard link's target must be an entry path inside the root, reached without symlinks.
//! - Modes: permission bits only (setuid, setgid and sticky are dropped), the process umask
//!   applied as GNU tar does for a non-root user, and `u+w` added (stdenv's `chmod -R u+w`);
//!   directories also keep `u+rx` so the tree stays traversable. Ownership is not restored.
//! - Times: a file's mtime is set through its open descriptor, a symlink's with `utimensat(2)`
//!   and `AT_SYMLINK_NOFOLLOW`; directories get their mode and mtime last, deepest first, since
//!   creating their entries changes their mtime ([`PendingDirs`]).
//!
//! This is not hardened against a concurrent process that swaps directories for symlinks while
//! the unpacker runs: the destination is the build's own directory, written by no one else.

use std::fs::{self, FileTimes};
use std::io::{self, Read};
use std::os::unix::fs::FileExt as _;
use std::path::{Component, Path, PathBuf};

use kiln_fsio::{set_mtime_nofollow, system_time, Existing, PendingDirs, TreeError, TreeWriter};

use crate::{UnpackError, UnsafeEntry};

/// Splits an entry path into its normal components: the path relative to the destination.
///
/// An empty result means the entry is the destination itself (`./`).
pub(crate) fn enclosed(entry: &Path) -> Result<PathBuf, UnsafeEntry> {
    let mut relative = PathBuf::new();
    for component in entry.components() {
        match component {
            Component::Normal(name) => relative.push(name),
            Component::CurDir => {}
            Component::ParentDir => return Err(UnsafeEntry::ParentComponent),
            Component::RootDir | Component::Prefix(_) => return Err(UnsafeEntry::Absolute),
        }
    }
    Ok(relative)
}

/// The process umask ([`kiln_fsio::process_umask`]), or `022`, the umask Nix gives builders,
/// where the kernel does not say.
pub(crate) fn process_umask() -> u32 {
    kiln_fsio::process_umask().unwrap_or(0o022)
}

/// Creates entries under one root, safely; see the module documentation for the rules.
pub(crate) struct Dest {
    /// Writes under the (canonical) root; it knows which directories are real.
    tree: TreeWriter,
    /// The archive (or directory) being unpacked, for error messages.
    archive: PathBuf,
    pending: PendingDirs,
    umask: u32,
    buffer: Vec<u8>,
    entries: u64,
    /// Whether top-level `bin`, `sbin` and `lib*` entries go under `usr/`.
    merge_usr: bool,
}

/// The top-level directories that a merged-/usr system keeps under `usr/` (Debian's usrmerge).
const MERGED_INTO_USR: &[&str] = &["bin", "sbin", "lib", "lib32", "lib64", "libx32", "libo32"];

impl Dest {
    /// A destination rooted at `root`, which must exist; `archive` names the source in errors.
    pub(crate) fn new(root: &Path, archive: &Path) -> Result<Dest, UnpackError> {
        let root = fs::canonicalize(root).map_err(|source| UnpackError::Inspect {
            path: root.to_owned(),
            source,
        })?;
        let umask = process_umask();
        Ok(Dest {
            tree: TreeWriter::new(root, Existing::Replace, dir_mode(umask, 0o777)),
            archive: archive.to_owned(),
            pending: PendingDirs::default(),
            umask,
            buffer: Vec::new(),
            entries: 0,
            merge_usr: false,
        })
    }

    /// The permission bits a file gets for the archive's `mode`.
    fn file_mode(&self, mode: u32) -> u32 {
        (mode & 0o777 & !self.umask) | 0o200
    }

    fn unsafe_entry(&self, entry: &Path, reason: UnsafeEntry) -> UnpackError {
        UnpackError::Unsafe {
            archive: self.archive.clone(),
            entry: entry.to_owned(),
            reason,
        }
    }

    fn write_error(&self, path: PathBuf, source: io::Error) -> UnpackError {
        UnpackError::Write {
            archive: self.archive.clone(),
            path,
            source,
        }
    }

    /// Says why the tree writer refused `entry`, in the unpacker's terms.
    fn tree_error(&self, entry: &Path, error: TreeError) -> UnpackError {
        match error {
            TreeError::ThroughSymlink { link } => {
                self.unsafe_entry(entry, UnsafeEntry::ThroughSymlink { link })
            }
            TreeError::NotADirectory { path } => {
                self.unsafe_entry(entry, UnsafeEntry::NotADirectory { path })
            }
            TreeError::ReplaceDirectory { path } => UnpackError::ReplaceDirectory {
                archive: self.archive.clone(),
                entry: entry.to_owned(),
                path,
            },
            TreeError::Io { path, source } => self.write_error(path, source),
            // Only with `Existing::Refuse`, which a `Dest` does not use.
            TreeError::Exists { path } => {
                self.write_error(path, io::ErrorKind::AlreadyExists.into())
            }
        }
    }

    /// Validates an entry path; the result is relative to the root.
    pub(crate) fn relative(&self, entry: &Path) -> Result<PathBuf, UnpackError> {
        enclosed(entry)
            .map(|relative| self.relocate(relative))
            .map_err(|reason| self.unsafe_entry(entry, reason))
    }

    /// Entries under `bin`, `sbin` and the `lib*` directories go under `usr/` instead, as on a
    /// merged-/usr system, when the destination was made [`Dest::merging_usr`].
    fn relocate(&self, relative: PathBuf) -> PathBuf {
        if !self.merge_usr {
            return relative;
        }
        let mut components = relative.components();
        match components.next() {
            Some(Component::Normal(first)) if MERGED_INTO_USR.iter().any(|d| first == *d) => {
                Path::new("usr").join(&relative)
            }
            _ => relative,
        }
    }

    /// When merging /usr, the target an absolute symlink target at `relative` gets instead: the
    /// path it names in the root being unpacked (merged too), relative to the link's directory.
    /// `None` for relative targets, and for targets with `..` (left as they are).
    fn rooted_target(&self, relative: &Path, target: &Path) -> Option<PathBuf> {
        if !self.merge_usr || !target.is_absolute() {
            return None;
        }
        let inside = self.relocate(enclosed(target.strip_prefix("/").ok()?).ok()?);
        let depth = relative
            .parent()
            .map_or(0, |parent| parent.components().count());
        let mut rooted: PathBuf = std::iter::repeat_n(Component::ParentDir, depth).collect();
        rooted.push(&inside);
        (!rooted.as_os_str().is_empty()).then_some(rooted)
    }

    /// Makes this destination merge `/usr` (see [`crate::ExtractOptions::merge_usr`]).
    pub(crate) fn merging_usr(mut self, merge: bool) -> Dest {
        self.merge_usr = merge;
        self
    }

    /// Creates a directory entry; its mode and mtime are applied by [`Dest::finish`].
    pub(crate) fn dir(
        &mut self,
        entry: &Path,
        relative: &Path,
        mode: u32,
        mtime: Option<i64>,
    ) -> Result<(), UnpackError> {
        if relative.as_os_str().is_empty() {
            // `./` itself: the destination is not ours to change.
            return Ok(());
        }
        let mode = dir_mode(self.umask, mode);
        // mkdir(2) applies the umask, which `dir_mode` already did: a new directory's mode is
        // final.
        let created_with_mode = self
            .tree
            .dir(relative, mode)
            .map_err(|error| self.tree_error(entry, error))?;
        self.pending.push(
            self.tree.root(),
            relative,
            (!created_with_mode).then_some(mode),
            mtime,
        );
        self.entries += 1;
        Ok(())
    }

    /// Creates a regular file with the content of `content`.
    ///
    /// Errors reading `content` are reported as [`UnpackError::ReadEntry`] of `entry`.
    pub(crate) fn file(
        &mut self,
        entry: &Path,
        relative: &Path,
        mode: u32,
        mtime: Option<(i64, u32)>,
        content: &mut dyn Read,
    ) -> Result<(), UnpackError> {
        self.create_file(entry, relative, mode, mtime, content, false)
    }

    /// Creates a sparse file (a GNU tar sparse entry) with the content of `content`, in which
    /// the holes read as zeros: zero chunks are skipped rather than written, so the holes stay
    /// holes on disk, as GNU tar makes them, and a small archive cannot fill the disk with the
    /// zeros of a huge sparse file.
    pub(crate) fn sparse_file(
        &mut self,
        entry: &Path,
        relative: &Path,
        mode: u32,
        mtime: Option<(i64, u32)>,
        content: &mut dyn Read,
    ) -> Result<(), UnpackError> {
        self.create_file(entry, relative, mode, mtime, content, true)
    }

    fn create_file(
        &mut self,
        entry: &Path,
        relative: &Path,
        mode: u32,
        mtime: Option<(i64, u32)>,
        content: &mut dyn Read,
        holes: bool,
    ) -> Result<(), UnpackError> {
        if relative.as_os_str().is_empty() {
            return Err(self.unsafe_entry(entry, UnsafeEntry::Empty));
        }
        let (path, file) = self
            .tree
            .file(relative, self.file_mode(mode))
            .map_err(|error| self.tree_error(entry, error))?;
        if self.buffer.is_empty() {
            self.buffer = vec![0; 256 * 1024];
        }
        let mut length: u64 = 0;
        loop {
            let read = match content.read(&mut self.buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(UnpackError::ReadEntry {
                        archive: self.archive.clone(),
                        entry: entry.to_owned(),
                        source,
                    })
                }
            };
            let chunk = &self.buffer[..read];
            // A fold without early exit, so that it vectorises: holes can be gigabytes.
            let zeros = holes && chunk.iter().fold(0u8, |any, byte| any | byte) == 0;
            if !zeros {
                file.write_all_at(chunk, length)
                    .map_err(|source| self.write_error(path.clone(), source))?;
            }
            length += read as u64;
        }
        if holes {
            // A hole at the end is not written either: the length makes it.
            file.set_len(length)
                .map_err(|source| self.write_error(path.clone(), source))?;
        }
        if let Some((seconds, nanos)) = mtime {
            file.set_times(FileTimes::new().set_modified(system_time(seconds, nanos)))
                .map_err(|source| self.write_error(path.clone(), source))?;
        }
        self.entries += 1;
        Ok(())
    }

    /// Creates a symlink to `target` (which may point anywhere).
    pub(crate) fn symlink(
        &mut self,
        entry: &Path,
        relative: &Path,
        target: &Path,
        mtime: Option<(i64, u32)>,
    ) -> Result<(), UnpackError> {
        if relative.as_os_str().is_empty() {
            return Err(self.unsafe_entry(entry, UnsafeEntry::Empty));
        }
        let rooted = self.rooted_target(relative, target);
        let target = rooted.as_deref().unwrap_or(target);
        let path = self
            .tree
            .symlink(relative, target)
            .map_err(|error| self.tree_error(entry, error))?;
        if let Some((seconds, nanos)) = mtime {
            set_mtime_nofollow(&path, seconds, nanos)
                .map_err(|source| self.write_error(path.clone(), source))?;
        }
        self.entries += 1;
        Ok(())
    }

    /// Creates a hard link to `target`, an entry path extracted before this entry.
    pub(crate) fn hard_link(
        &mut self,
        entry: &Path,
        relative: &Path,
        target: &Path,
    ) -> Result<(), UnpackError> {
        if relative.as_os_str().is_empty() {
            return Err(self.unsafe_entry(entry, UnsafeEntry::Empty));
        }
        let outside = || UnsafeEntry::LinkOutside {
            target: target.to_owned(),
        };
        let target_relative = enclosed(target)
            .map(|relative| self.relocate(relative))
            .map_err(|_| self.unsafe_entry(entry, outside()))?;
        // Every directory on the way to the target must be a real directory too; a target
        // reached through a symlink could be any file on the system.
        let mut prefix = PathBuf::new();
        for component in target_relative
            .parent()
            .into_iter()
            .flat_map(Path::components)
        {
            prefix.push(component);
            if self.tree.is_known_dir(&prefix) {
                continue;
            }
            match fs::symlink_metadata(self.tree.path(&prefix)) {
                Ok(metadata) if metadata.is_dir() => {}
                Ok(metadata) if metadata.is_symlink() => {
                    return Err(self.unsafe_entry(entry, outside()))
                }
                _ => {
                    return Err(self.unsafe_entry(
                        entry,
                        UnsafeEntry::LinkTargetMissing {
                            target: target.to_owned(),
                        },
                    ))
                }
            }
        }
        let target_path = self.tree.path(&target_relative);
        let target_is_file = fs::symlink_metadata(&target_path)
            .map(|metadata| !metadata.is_dir())
            .unwrap_or(false);
        if target_relative.as_os_str().is_empty() || !target_is_file {
            return Err(self.unsafe_entry(
                entry,
                UnsafeEntry::LinkTargetMissing {
                    target: target.to_owned(),
                },
            ));
        }
        if target_relative == relative {
            // An archive that lists a file twice may link it to itself; it is already there.
            self.entries += 1;
            return Ok(());
        }
        self.tree
            .hard_link(relative, &target_path)
            .map_err(|error| self.tree_error(entry, error))?;
        self.entries += 1;
        Ok(())
    }

    /// Applies the modes and mtimes of directory entries, deepest first.
    pub(crate) fn finish(self) -> Result<u64, UnpackError> {
        let Dest {
            pending,
            archive,
            entries,
            ..
        } = self;
        pending.apply().map_err(|error| UnpackError::Write {
            archive,
            path: error.path,
            source: error.source,
        })?;
        Ok(entries)
    }
}

/// The permission bits a directory gets for the archive's `mode`: like a file's, and `u+rwx`
/// so that the tree stays traversable and writable for the build.
fn dir_mode(umask: u32, mode: u32) -> u32 {
    (mode & 0o777 & !umask) | 0o700
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enclosed_paths() {
        assert_eq!(enclosed(Path::new("a/./b/")).unwrap(), Path::new("a/b"));
        assert_eq!(enclosed(Path::new("./")).unwrap(), Path::new(""));
        assert_eq!(
            enclosed(Path::new("a/../../x")),
            Err(UnsafeEntry::ParentComponent)
        );
        assert_eq!(
            enclosed(Path::new("/etc/passwd")),
            Err(UnsafeEntry::Absolute)
        );
    }
}
