//! The destination of an extraction: [`Dest`] creates files, directories and links under one
//! root and refuses anything that would land outside it.
//!
//! The rules, after uv's `enclosed_name`/`untar_in` and GNU tar's defaults for a non-root user:
//!
//! - An entry path is split into components; an absolute path or a `..` component is refused
//!   ([`UnsafeEntry::Absolute`], [`UnsafeEntry::ParentComponent`]), `.` is ignored.
//! - Every directory on the way to an entry must be a real directory: [`Dest`] remembers the
//!   directories it created or checked with `lstat`, and a symlink on the way is refused
//!   ([`UnsafeEntry::ThroughSymlink`]). So `link -> /tmp/outside` followed by `link/file` never
//!   writes to `/tmp/outside/file`. Symlinks themselves may point anywhere.
//! - The last component is never followed: files are created with `O_CREAT | O_EXCL`
//!   (<https://man7.org/linux/man-pages/man2/open.2.html>: "if pathname is a symbolic link,
//!   open() fails regardless of where it points"), links with `symlink(2)`/`linkat(2)` without
//!   `AT_SYMLINK_FOLLOW`. Something already there is unlinked first, as GNU tar does; a directory
//!   is never replaced.
//! - A hard link's target must be an entry path inside the root, reached without symlinks.
//! - Modes: permission bits only (setuid, setgid and sticky are dropped), the process umask
//!   applied as GNU tar does for a non-root user, and `u+w` added (stdenv's `chmod -R u+w`);
//!   directories also keep `u+rx` so the tree stays traversable. Ownership is not restored.
//! - Times: a file's mtime is set through its open descriptor, a symlink's with `utimensat(2)`
//!   and `AT_SYMLINK_NOFOLLOW`; directories get their mode and mtime last, deepest first, since
//!   creating their entries changes their mtime.
//!
//! This is not hardened against a concurrent process that swaps directories for symlinks while
//! the unpacker runs: the destination is the build's own directory, written by no one else.

use std::collections::HashSet;
use std::fs::{self, DirBuilder, File, FileTimes, OpenOptions, Permissions};
use std::io::{self, Read};
use std::os::unix::fs::{
    DirBuilderExt as _, FileExt as _, OpenOptionsExt as _, PermissionsExt as _,
};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix::sys::stat::{utimensat, UtimensatFlags};
use nix::sys::time::TimeSpec;

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

/// Converts seconds since the epoch (possibly negative) to a [`SystemTime`].
pub(crate) fn system_time(seconds: i64, nanos: u32) -> SystemTime {
    let nanos = Duration::from_nanos(u64::from(nanos.min(999_999_999)));
    if seconds >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds.unsigned_abs()) + nanos
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(seconds.unsigned_abs()) + nanos
    }
}

/// Sets the mtime of `path` itself, not of what it points to if it is a symlink; the atime is
/// left alone.
pub(crate) fn set_mtime_nofollow(path: &Path, seconds: i64, nanos: u32) -> io::Result<()> {
    let mtime = TimeSpec::new(seconds, i64::from(nanos.min(999_999_999)));
    utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &TimeSpec::UTIME_OMIT,
        &mtime,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(io::Error::from)
}

/// The process umask, read from `/proc/self/status` (Linux ≥ 4.7) because `umask(2)` can only
/// be read by setting it, which races with other threads. Falls back to `022`, the umask Nix
/// gives builders.
pub(crate) fn process_umask() -> u32 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                let value = line.strip_prefix("Umask:")?.trim();
                u32::from_str_radix(value, 8).ok()
            })
        })
        .unwrap_or(0o022)
}

/// A directory whose mode and mtime are applied when the extraction finishes.
struct PendingDir {
    relative: PathBuf,
    /// The mode to set; `None` when the directory was created with it already.
    mode: Option<u32>,
    mtime: Option<i64>,
}

/// Creates entries under one root, safely; see the module documentation for the rules.
pub(crate) struct Dest {
    root: PathBuf,
    /// The archive (or directory) being unpacked, for error messages.
    archive: PathBuf,
    /// Directories (relative to `root`; the empty path is `root`) known to be real directories.
    /// MUST only hold paths whose every ancestor is also in the set.
    known_dirs: HashSet<PathBuf>,
    pending: Vec<PendingDir>,
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
        let mut known_dirs = HashSet::new();
        known_dirs.insert(PathBuf::new());
        Ok(Dest {
            root,
            archive: archive.to_owned(),
            known_dirs,
            pending: Vec::new(),
            umask: process_umask(),
            buffer: Vec::new(),
            entries: 0,
            merge_usr: false,
        })
    }

    /// The permission bits a file gets for the archive's `mode`.
    fn file_mode(&self, mode: u32) -> u32 {
        (mode & 0o777 & !self.umask) | 0o200
    }

    /// The permission bits a directory gets for the archive's `mode`: like a file's, and
    /// `u+rwx` so that the tree stays traversable and writable for the build.
    fn dir_mode(&self, mode: u32) -> u32 {
        (mode & 0o777 & !self.umask) | 0o700
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

    /// Makes sure every ancestor of `relative` is a real directory, creating missing ones.
    fn ensure_parents(&mut self, entry: &Path, relative: &Path) -> Result<(), UnpackError> {
        let Some(parent) = relative.parent() else {
            return Ok(());
        };
        if self.known_dirs.contains(parent) {
            return Ok(());
        }
        let mut prefix = PathBuf::new();
        for component in parent.components() {
            prefix.push(component);
            if self.known_dirs.contains(&prefix) {
                continue;
            }
            let path = self.root.join(&prefix);
            let created = DirBuilder::new().mode(self.dir_mode(0o777)).create(&path);
            match created {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                    let metadata = fs::symlink_metadata(&path)
                        .map_err(|source| self.write_error(path.clone(), source))?;
                    if metadata.is_symlink() {
                        return Err(self.unsafe_entry(
                            entry,
                            UnsafeEntry::ThroughSymlink {
                                link: prefix.clone(),
                            },
                        ));
                    } else if !metadata.is_dir() {
                        return Err(self.unsafe_entry(
                            entry,
                            UnsafeEntry::NotADirectory {
                                path: prefix.clone(),
                            },
                        ));
                    }
                }
                Err(source) => return Err(self.write_error(path, source)),
            }
            self.known_dirs.insert(prefix.clone());
        }
        Ok(())
    }

    /// Something is at `path` where a file or link is to be created: unlink it, unless it is a
    /// directory.
    fn clear(&self, entry: &Path, path: &Path) -> Result<(), UnpackError> {
        let metadata =
            fs::symlink_metadata(path).map_err(|source| self.write_error(path.into(), source))?;
        if metadata.is_dir() {
            return Err(UnpackError::ReplaceDirectory {
                archive: self.archive.clone(),
                entry: entry.to_owned(),
                path: path.to_owned(),
            });
        }
        fs::remove_file(path).map_err(|source| self.write_error(path.into(), source))
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
        self.ensure_parents(entry, relative)?;
        let path = self.root.join(relative);
        let mut created_with_mode = false;
        if !self.known_dirs.contains(relative) {
            let builder = {
                let mut builder = DirBuilder::new();
                builder.mode(self.dir_mode(mode));
                builder
            };
            match builder.create(&path) {
                // mkdir(2) applies the umask, which `dir_mode` already did: the mode is final.
                Ok(()) => created_with_mode = true,
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                    let metadata = fs::symlink_metadata(&path)
                        .map_err(|source| self.write_error(path.clone(), source))?;
                    if metadata.is_symlink() {
                        return Err(self.unsafe_entry(
                            entry,
                            UnsafeEntry::ThroughSymlink {
                                link: relative.to_owned(),
                            },
                        ));
                    }
                    if !metadata.is_dir() {
                        self.clear(entry, &path)?;
                        builder
                            .create(&path)
                            .map_err(|source| self.write_error(path.clone(), source))?;
                    }
                }
                Err(source) => return Err(self.write_error(path, source)),
            }
            self.known_dirs.insert(relative.to_owned());
        }
        self.pending.push(PendingDir {
            relative: relative.to_owned(),
            mode: (!created_with_mode).then(|| self.dir_mode(mode)),
            mtime,
        });
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
        self.ensure_parents(entry, relative)?;
        let path = self.root.join(relative);
        let file = self.create_new(entry, &path, mode)?;
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

    /// Opens a new file at `path` for writing, never following a symlink there.
    fn create_new(&self, entry: &Path, path: &Path, mode: u32) -> Result<File, UnpackError> {
        let open = || {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(self.file_mode(mode))
                .open(path)
        };
        match open() {
            Ok(file) => Ok(file),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                self.clear(entry, path)?;
                open().map_err(|source| self.write_error(path.into(), source))
            }
            Err(source) => Err(self.write_error(path.into(), source)),
        }
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
        self.ensure_parents(entry, relative)?;
        let path = self.root.join(relative);
        let rooted = self.rooted_target(relative, target);
        let target = rooted.as_deref().unwrap_or(target);
        match std::os::unix::fs::symlink(target, &path) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                self.clear(entry, &path)?;
                std::os::unix::fs::symlink(target, &path)
                    .map_err(|source| self.write_error(path.clone(), source))?;
            }
            Err(source) => return Err(self.write_error(path, source)),
        }
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
            if self.known_dirs.contains(&prefix) {
                continue;
            }
            match fs::symlink_metadata(self.root.join(&prefix)) {
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
        let target_path = self.root.join(&target_relative);
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
        self.ensure_parents(entry, relative)?;
        let path = self.root.join(relative);
        // `linkat(2)` without AT_SYMLINK_FOLLOW: a symlink target is linked as the symlink.
        match fs::hard_link(&target_path, &path) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                self.clear(entry, &path)?;
                fs::hard_link(&target_path, &path)
                    .map_err(|source| self.write_error(path.clone(), source))?;
            }
            Err(source) => return Err(self.write_error(path, source)),
        }
        self.entries += 1;
        Ok(())
    }

    /// Applies the modes and mtimes of directory entries, deepest first.
    pub(crate) fn finish(mut self) -> Result<u64, UnpackError> {
        let mut pending = std::mem::take(&mut self.pending);
        pending.sort_by_key(|dir| std::cmp::Reverse(dir.relative.components().count()));
        for dir in pending {
            let path = self.root.join(&dir.relative);
            if let Some(mode) = dir.mode {
                // `chmod(2)` ignores the umask; the mode was masked when it was recorded.
                fs::set_permissions(&path, Permissions::from_mode(mode))
                    .map_err(|source| self.write_error(path.clone(), source))?;
            }
            if let Some(mtime) = dir.mtime {
                set_mtime_nofollow(&path, mtime, 0)
                    .map_err(|source| self.write_error(path.clone(), source))?;
            }
        }
        Ok(self.entries)
    }
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

    #[test]
    fn umask_is_read() {
        // The test harness runs with some umask; it must at least parse as permission bits.
        assert_eq!(process_umask() & !0o777, 0);
    }

    #[test]
    fn negative_times() {
        assert_eq!(
            system_time(-1, 0),
            SystemTime::UNIX_EPOCH - Duration::from_secs(1)
        );
    }
}
