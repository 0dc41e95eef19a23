//! Restoring a state: [`restore`] puts the build directory and partial outputs of a state back
//! where a phase expects them, and [`extract`] unpacks one for a person to look at.
//!
//! Nothing lands in its final place before the whole payload is verified:
//!
//! 1. Entries are created in staging directories: one inside the build directory for `build/`,
//!    one next to each output path for `outputs/NAME` (same file system, so the final move is a
//!    `rename(2)`). The compressed bytes are hashed as they are decompressed.
//! 2. When the stream ends and its size and SHA-256 match the manifest, the staged entries are
//!    moved into place: every top-level entry of the staged build directory into the build
//!    directory, every staged output to its path. Nothing may exist there yet
//!    ([`StateError::Occupied`]); the moves use `renameat2(2)` with `RENAME_NOREPLACE`, and a
//!    failed move undoes the earlier ones.
//! 3. Directory modes and mtimes are applied last, deepest first, in place: creating entries
//!    and moving directories changes mtimes, and a read-only directory could not be filled or
//!    moved (moving a directory rewrites its `..`).
//!
//! Any failure before step 3 removes the staging directories and returns the error: nothing of
//! the state is left behind. A failure in step 3 (a `chmod` of a directory the restore just
//! created) leaves the restored tree in place.
//!
//! # Entry rules
//!
//! After uv's `untar_in` and `kiln-archive`'s `Dest`, for payloads that may be damaged or
//! hostile:
//!
//! - Paths have normal components only (no absolute path, `..` or `.`), and start with `build`
//!   or `outputs/NAME` for an output being restored ([`UnsafeEntry`]).
//! - Every directory on the way to an entry must be a directory created from the payload; a
//!   symlink on the way is refused ([`UnsafeEntry::ThroughSymlink`]), so `link -> /etc` then
//!   `link/passwd` never writes outside. Symlinks themselves may point anywhere.
//! - Files are created with `O_CREAT | O_EXCL` and links with `symlink(2)`/`link(2)`, which never
//!   follow a symlink in the last component; an entry that is already there is refused
//!   ([`UnsafeEntry::Duplicate`]).
//! - A hard link must point at an earlier non-directory entry of the same root.
//! - Modes keep the permission bits (`0o777`) exactly, whatever the umask; setuid, setgid and
//!   sticky bits are dropped. Ownership is not restored. mtimes are restored to the second.

use std::collections::{BTreeMap, HashSet};
use std::fs::{DirBuilder, FileTimes, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use tar::EntryType;
use tempfile::TempDir;

use crate::manifest::{read_manifest, PAYLOAD_FILE};
use crate::read::{copy_entry, each_entry, CopyError, Entry};
use crate::{Manifest, StateError, UnsafeEntry};

/// Bytes copied per `write(2)` when creating files.
const COPY_BUFFER: usize = 256 * 1024;

/// Restores the state in `dir` (`manifest.json` and `state.tar.zst`): `build/` into
/// `build_dir`, which must exist, and each `outputs/NAME` to `outputs[NAME]`, whose parent must
/// exist. Returns the manifest, whose [`Manifest::workdir`] and [`Manifest::env`] the caller
/// applies.
///
/// Nothing restored may exist yet: a top-level name of the state's build directory that
/// is already in `build_dir`, or an output path that exists, is [`StateError::Occupied`]
/// (Nix's own `.attrs.json` and `env-vars` are fine when the packer excluded them). An entry for
/// an output not in `outputs` is refused. See the module documentation for how a failure leaves
/// nothing behind.
pub fn restore(
    dir: &Path,
    build_dir: &Path,
    outputs: &BTreeMap<String, PathBuf>,
) -> Result<Manifest, StateError> {
    let manifest = read_manifest(dir)?;
    restore_manifest(dir, &manifest, build_dir, outputs)?;
    Ok(manifest)
}

/// Extracts the state in `dir` for inspection: `build/` into `to/build/` and each output into
/// `to/outputs/NAME`, verified like [`restore`]. `to` is created if needed; `to/build` may
/// exist but must not hold anything the state holds.
pub fn extract(dir: &Path, to: &Path) -> Result<(), StateError> {
    let manifest = read_manifest(dir)?;
    let mut created = Vec::new();
    let result = (|| {
        let build_dir = to.join("build");
        let outputs_dir = to.join("outputs");
        for path in [to, &build_dir, &outputs_dir] {
            match std::fs::create_dir(path) {
                Ok(()) => created.push(path.to_owned()),
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => {}
                Err(source) => {
                    return Err(StateError::CreateTarget {
                        path: path.to_owned(),
                        source,
                    })
                }
            }
        }
        let outputs = manifest
            .outputs
            .keys()
            .map(|name| (name.clone(), outputs_dir.join(name)))
            .collect();
        restore_manifest(dir, &manifest, &build_dir, &outputs)
    })();
    if result.is_err() {
        // Only directories this call created, and only if empty: a failed restore left nothing.
        for path in created.iter().rev() {
            let _ = std::fs::remove_dir(path);
        }
    }
    result
}

/// [`restore`] with the manifest already read.
fn restore_manifest(
    dir: &Path,
    manifest: &Manifest,
    build_dir: &Path,
    outputs: &BTreeMap<String, PathBuf>,
) -> Result<(), StateError> {
    let payload = dir.join(PAYLOAD_FILE);
    let mut extractor = Extractor::new(&payload, build_dir, outputs)?;
    each_entry(&payload, manifest, |entry| extractor.entry(entry))?;
    extractor.finish()
    // On an error the extractor is dropped here, and its staging directories with it.
}

/// The first components of an entry path: which root it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RootKey<'p> {
    Build,
    Output(&'p str),
}

/// Splits an entry path into its root and the path relative to that root.
fn route(entry: &Path) -> Result<(RootKey<'_>, &Path), UnsafeEntry> {
    for component in entry.components() {
        match component {
            Component::Normal(_) => {}
            Component::ParentDir => return Err(UnsafeEntry::ParentComponent),
            Component::CurDir => return Err(UnsafeEntry::CurrentComponent),
            Component::RootDir | Component::Prefix(_) => return Err(UnsafeEntry::Absolute),
        }
    }
    let mut components = entry.components();
    match components.next().map(|c| c.as_os_str().as_encoded_bytes()) {
        Some(b"build") => Ok((RootKey::Build, components.as_path())),
        Some(b"outputs") => {
            let name = components.next().ok_or(UnsafeEntry::OutsideRoots)?;
            let name = name
                .as_os_str()
                .to_str()
                .ok_or_else(|| UnsafeEntry::UnknownOutput {
                    name: name.as_os_str().to_string_lossy().into_owned(),
                })?;
            Ok((RootKey::Output(name), components.as_path()))
        }
        _ => Err(UnsafeEntry::OutsideRoots),
    }
}

/// Where one root's entries are staged and where they go.
struct Root {
    /// Removed, with whatever is still in it, when the root is dropped.
    staging: TempDir,
    /// Where entries are created: the staging directory itself for the build directory,
    /// `staging/NAME` for an output.
    content: PathBuf,
    /// The final place: the build directory (its children are moved in) or the output path
    /// (moved as a whole).
    target: PathBuf,
    is_build: bool,
    /// Paths relative to `content` (the empty path is `content`) known to be directories
    /// created from the payload. MUST only hold paths whose every ancestor is also in it.
    known_dirs: HashSet<PathBuf>,
}

impl Root {
    /// The staged path of `relative`.
    fn staged(&self, relative: &Path) -> PathBuf {
        if relative.as_os_str().is_empty() {
            self.content.clone()
        } else {
            self.content.join(relative)
        }
    }

    /// The final path of `relative`.
    fn final_path(&self, relative: &Path) -> PathBuf {
        if relative.as_os_str().is_empty() {
            self.target.clone()
        } else {
            self.target.join(relative)
        }
    }
}

/// A directory whose mode and mtime are applied once everything is in place.
struct PendingDir {
    root: usize,
    relative: PathBuf,
    mode: u32,
    mtime: u64,
}

/// Creates the entries of one payload in staging directories and moves them into place.
struct Extractor<'a> {
    payload: &'a Path,
    outputs: &'a BTreeMap<String, PathBuf>,
    /// `roots[0]` is the build directory; outputs are added when their first entry comes.
    roots: Vec<Root>,
    output_roots: BTreeMap<String, usize>,
    pending: Vec<PendingDir>,
    buffer: Vec<u8>,
    /// The process umask, if known: a file created with a mode the umask does not change
    /// needs no `fchmod(2)`.
    umask: Option<u32>,
}

impl<'a> Extractor<'a> {
    fn new(
        payload: &'a Path,
        build_dir: &Path,
        outputs: &'a BTreeMap<String, PathBuf>,
    ) -> Result<Extractor<'a>, StateError> {
        let staging = stage(build_dir)?;
        let content = staging.path().to_owned();
        Ok(Extractor {
            payload,
            outputs,
            roots: vec![Root {
                staging,
                content,
                target: build_dir.to_owned(),
                is_build: true,
                known_dirs: HashSet::from([PathBuf::new()]),
            }],
            output_roots: BTreeMap::new(),
            pending: Vec::new(),
            buffer: vec![0; COPY_BUFFER],
            umask: process_umask(),
        })
    }

    fn refuse(&self, entry: &Path, reason: UnsafeEntry) -> StateError {
        StateError::Unsafe {
            path: self.payload.to_owned(),
            entry: entry.to_owned(),
            reason,
        }
    }

    /// The index of the root for `key`, staging an output on its first entry.
    fn root(&mut self, entry: &Path, key: RootKey<'_>) -> Result<usize, StateError> {
        let name = match key {
            RootKey::Build => return Ok(0),
            RootKey::Output(name) => name,
        };
        if let Some(&index) = self.output_roots.get(name) {
            return Ok(index);
        }
        let Some(target) = self.outputs.get(name) else {
            return Err(self.refuse(
                entry,
                UnsafeEntry::UnknownOutput {
                    name: name.to_owned(),
                },
            ));
        };
        let parent = match target.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let staging = stage(parent)?;
        let content = staging.path().join(name);
        self.roots.push(Root {
            staging,
            content,
            target: target.clone(),
            is_build: false,
            known_dirs: HashSet::new(),
        });
        let index = self.roots.len() - 1;
        self.output_roots.insert(name.to_owned(), index);
        Ok(index)
    }

    /// Creates one entry in its staging directory.
    fn entry(&mut self, entry: &mut Entry<'_>) -> Result<(), StateError> {
        let entry_path = match entry.path() {
            Ok(path) => path.into_owned(),
            Err(error) => {
                let raw = PathBuf::from(String::from_utf8_lossy(&entry.path_bytes()).into_owned());
                return Err(self.refuse(
                    &raw,
                    UnsafeEntry::BadHeader {
                        detail: error.to_string(),
                    },
                ));
            }
        };
        let (key, relative) =
            route(&entry_path).map_err(|reason| self.refuse(&entry_path, reason))?;
        let relative = relative.to_owned();
        let root = self.root(&entry_path, key)?;
        let header = entry.header();
        let kind = header.entry_type();
        let bad_header = |error: io::Error| UnsafeEntry::BadHeader {
            detail: error.to_string(),
        };
        let mode = header
            .mode()
            .map_err(|error| self.refuse(&entry_path, bad_header(error)))?
            & 0o777;
        let mtime = header
            .mtime()
            .map_err(|error| self.refuse(&entry_path, bad_header(error)))?;
        if system_time(mtime).is_none() {
            return Err(self.refuse(
                &entry_path,
                UnsafeEntry::BadHeader {
                    detail: format!("the mtime `{mtime}` is out of range"),
                },
            ));
        }
        match kind {
            EntryType::Directory => self.dir(root, &entry_path, &relative, mode, mtime),
            EntryType::Regular => self.file(root, &entry_path, &relative, mode, mtime, entry),
            EntryType::Symlink | EntryType::Link => {
                let target = match entry.link_name() {
                    Ok(Some(target)) => target.into_owned(),
                    Ok(None) => {
                        return Err(self.refuse(
                            &entry_path,
                            UnsafeEntry::BadHeader {
                                detail: "a link without a target".to_owned(),
                            },
                        ))
                    }
                    Err(error) => return Err(self.refuse(&entry_path, bad_header(error))),
                };
                if kind == EntryType::Symlink {
                    self.symlink(root, &entry_path, &relative, &target, mtime)
                } else {
                    self.hard_link(root, &entry_path, &relative, &target, key)
                }
            }
            other => Err(self.refuse(
                &entry_path,
                UnsafeEntry::UnsupportedType {
                    kind: format!("{other:?}"),
                },
            )),
        }
    }

    /// Makes sure every ancestor of `relative` in `root` is a directory from the payload,
    /// creating missing ones; refuses a symlink or file on the way.
    fn ensure_parents(
        &mut self,
        root: usize,
        entry: &Path,
        relative: &Path,
    ) -> Result<(), StateError> {
        let Some(parent) = relative.parent() else {
            return Ok(());
        };
        if self.roots[root].known_dirs.contains(parent) {
            return Ok(());
        }
        let mut prefixes = vec![PathBuf::new()];
        let mut prefix = PathBuf::new();
        for component in parent.components() {
            prefix.push(component);
            prefixes.push(prefix.clone());
        }
        for prefix in prefixes {
            if self.roots[root].known_dirs.contains(&prefix) {
                continue;
            }
            let path = self.roots[root].staged(&prefix);
            match DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                    // Staging started empty: whatever is there came from an earlier entry.
                    let is_symlink = std::fs::symlink_metadata(&path)
                        .map(|metadata| metadata.is_symlink())
                        .unwrap_or(false);
                    let reason = if is_symlink {
                        UnsafeEntry::ThroughSymlink { link: prefix }
                    } else {
                        UnsafeEntry::NotADirectory { path: prefix }
                    };
                    return Err(self.refuse(entry, reason));
                }
                Err(source) => return Err(StateError::Write { path, source }),
            }
            self.roots[root].known_dirs.insert(prefix);
        }
        Ok(())
    }

    fn dir(
        &mut self,
        root: usize,
        entry: &Path,
        relative: &Path,
        mode: u32,
        mtime: u64,
    ) -> Result<(), StateError> {
        if relative.as_os_str().is_empty() && self.roots[root].is_build {
            // `build/` is the build directory itself, which is not the state's to change.
            return Ok(());
        }
        self.ensure_parents(root, entry, relative)?;
        if !self.roots[root].known_dirs.contains(relative) {
            let path = self.roots[root].staged(relative);
            match DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(self.refuse(entry, UnsafeEntry::Duplicate))
                }
                Err(source) => return Err(StateError::Write { path, source }),
            }
            self.roots[root].known_dirs.insert(relative.to_owned());
        }
        self.pending.push(PendingDir {
            root,
            relative: relative.to_owned(),
            mode,
            mtime,
        });
        Ok(())
    }

    /// Checks what every non-directory entry needs: not the build directory itself, and its
    /// parents in place. Returns the staged path.
    fn prepare_leaf(
        &mut self,
        root: usize,
        entry: &Path,
        relative: &Path,
    ) -> Result<PathBuf, StateError> {
        if relative.as_os_str().is_empty() && self.roots[root].is_build {
            return Err(self.refuse(entry, UnsafeEntry::ReplacesBuildDir));
        }
        self.ensure_parents(root, entry, relative)?;
        Ok(self.roots[root].staged(relative))
    }

    fn file(
        &mut self,
        root: usize,
        entry_path: &Path,
        relative: &Path,
        mode: u32,
        mtime: u64,
        content: &mut Entry<'_>,
    ) -> Result<(), StateError> {
        let path = self.prepare_leaf(root, entry_path, relative)?;
        // Created with its final mode when the umask leaves that alone (the usual `0644` or
        // `0755` under `022`); otherwise owner-only until the `fchmod(2)` below. The descriptor
        // is writable either way.
        let exact = self.umask.is_some_and(|umask| mode & umask == 0);
        let mut file = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(if exact { mode } else { 0o600 })
            .open(&path)
        {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                return Err(self.refuse(entry_path, UnsafeEntry::Duplicate))
            }
            Err(source) => return Err(StateError::Write { path, source }),
        };
        copy_entry(content, &mut file, &mut self.buffer).map_err(|error| match error {
            CopyError::Read(source) => StateError::ReadPayload {
                path: self.payload.to_owned(),
                source,
            },
            CopyError::Write(source) => StateError::Write {
                path: path.clone(),
                source,
            },
        })?;
        if !exact {
            // `fchmod(2)` ignores the umask.
            file.set_permissions(Permissions::from_mode(mode))
                .map_err(|source| StateError::Write {
                    path: path.clone(),
                    source,
                })?;
        }
        let mtime = system_time(mtime).expect("checked when the header was read");
        file.set_times(FileTimes::new().set_modified(mtime))
            .map_err(|source| StateError::Write { path, source })
    }

    fn symlink(
        &mut self,
        root: usize,
        entry: &Path,
        relative: &Path,
        target: &Path,
        mtime: u64,
    ) -> Result<(), StateError> {
        let path = self.prepare_leaf(root, entry, relative)?;
        match std::os::unix::fs::symlink(target, &path) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                return Err(self.refuse(entry, UnsafeEntry::Duplicate))
            }
            Err(source) => return Err(StateError::Write { path, source }),
        }
        set_mtime_nofollow(&path, mtime).map_err(|source| StateError::Write { path, source })
    }

    fn hard_link(
        &mut self,
        root: usize,
        entry: &Path,
        relative: &Path,
        target: &Path,
        key: RootKey<'_>,
    ) -> Result<(), StateError> {
        let outside = || UnsafeEntry::LinkOutside {
            target: target.to_owned(),
        };
        let (target_key, target_relative) =
            route(target).map_err(|_| self.refuse(entry, outside()))?;
        if target_key != key {
            return Err(self.refuse(entry, outside()));
        }
        let missing = || UnsafeEntry::LinkTargetMissing {
            target: target.to_owned(),
        };
        // The target's parents must be directories from the payload (so no symlink leads out),
        // and the target an earlier entry that is not a directory.
        let parent_known = target_relative
            .parent()
            .is_some_and(|parent| self.roots[root].known_dirs.contains(parent));
        let target_path = self.roots[root].staged(target_relative);
        let target_ok = parent_known
            && std::fs::symlink_metadata(&target_path).is_ok_and(|metadata| !metadata.is_dir());
        if !target_ok {
            return Err(self.refuse(entry, missing()));
        }
        let path = self.prepare_leaf(root, entry, relative)?;
        // `link(2)` does not follow a symlink target: the link is to the symlink itself.
        match std::fs::hard_link(&target_path, &path) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                Err(self.refuse(entry, UnsafeEntry::Duplicate))
            }
            Err(source) => Err(StateError::Write { path, source }),
        }
    }

    /// Moves the verified entries into place and applies directory metadata; see the module
    /// documentation.
    fn finish(self) -> Result<(), StateError> {
        let mut moves = Vec::new();
        for root in &self.roots {
            if root.is_build {
                let children =
                    std::fs::read_dir(&root.content).map_err(|source| StateError::Write {
                        path: root.content.clone(),
                        source,
                    })?;
                for child in children {
                    let child = child.map_err(|source| StateError::Write {
                        path: root.content.clone(),
                        source,
                    })?;
                    moves.push((child.path(), root.target.join(child.file_name())));
                }
            } else if std::fs::symlink_metadata(&root.content).is_ok() {
                moves.push((root.content.clone(), root.target.clone()));
            }
        }
        for (_, to) in &moves {
            if std::fs::symlink_metadata(to).is_ok() {
                return Err(StateError::Occupied { path: to.clone() });
            }
        }
        for (done, (from, to)) in moves.iter().enumerate() {
            if let Err(source) = rename_noreplace(from, to) {
                for (from, to) in moves[..done].iter().rev() {
                    let _ = std::fs::rename(to, from);
                }
                return Err(if source.kind() == io::ErrorKind::AlreadyExists {
                    StateError::Occupied { path: to.clone() }
                } else {
                    StateError::MoveIntoPlace {
                        from: from.clone(),
                        to: to.clone(),
                        source,
                    }
                });
            }
        }
        let Extractor {
            roots, mut pending, ..
        } = self;
        pending.sort_by_key(|dir| std::cmp::Reverse(dir.relative.components().count()));
        for dir in pending {
            let path = roots[dir.root].final_path(&dir.relative);
            std::fs::set_permissions(&path, Permissions::from_mode(dir.mode))
                .and_then(|()| set_mtime_nofollow(&path, dir.mtime))
                .map_err(|source| StateError::Write { path, source })?;
        }
        for root in roots {
            // Empty now. Failing to remove an empty directory leaves only that directory; the
            // state is restored, so that is not worth failing for.
            let _ = root.staging.close();
        }
        Ok(())
    }
}

/// Creates a staging directory in `parent`.
fn stage(parent: &Path) -> Result<TempDir, StateError> {
    tempfile::Builder::new()
        .prefix(".kiln-state-")
        .tempdir_in(parent)
        .map_err(|source| StateError::Stage {
            path: parent.to_owned(),
            source,
        })
}

/// The time `seconds` after the epoch, if the system can represent it (as a `time_t` too).
fn system_time(seconds: u64) -> Option<SystemTime> {
    i64::try_from(seconds).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
}

/// The process umask, from `/proc/self/status` (Linux ≥ 4.7): `umask(2)` can only be read by
/// setting it, which races with other threads.
fn process_umask() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let value = line.strip_prefix("Umask:")?.trim();
        u32::from_str_radix(value, 8).ok()
    })
}

/// Sets the mtime of `path` itself, not of what it points to if it is a symlink; the atime is
/// left alone.
fn set_mtime_nofollow(path: &Path, seconds: u64) -> io::Result<()> {
    use nix::sys::stat::{utimensat, UtimensatFlags};
    use nix::sys::time::TimeSpec;
    let seconds =
        i64::try_from(seconds).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &TimeSpec::UTIME_OMIT,
        &TimeSpec::new(seconds, 0),
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(io::Error::from)
}

/// Renames `from` to `to`, failing with `AlreadyExists` if `to` exists
/// (<https://man7.org/linux/man-pages/man2/rename.2.html>, `RENAME_NOREPLACE`). File systems
/// without the flag get a plain `rename(2)`; the caller has checked that `to` is free.
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use nix::errno::Errno;
        use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
        match renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE) {
            Ok(()) => return Ok(()),
            Err(Errno::EINVAL) => {}
            Err(errno) => return Err(errno.into()),
        }
    }
    std::fs::rename(from, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_entries() {
        assert_eq!(
            route(Path::new("build/a/b")).unwrap(),
            (RootKey::Build, Path::new("a/b"))
        );
        assert_eq!(
            route(Path::new("build")).unwrap(),
            (RootKey::Build, Path::new(""))
        );
        assert_eq!(
            route(Path::new("outputs/out/bin/x")).unwrap(),
            (RootKey::Output("out"), Path::new("bin/x"))
        );
        assert_eq!(
            route(Path::new("outputs/dev")).unwrap(),
            (RootKey::Output("dev"), Path::new(""))
        );
        assert_eq!(route(Path::new("outputs")), Err(UnsafeEntry::OutsideRoots));
        assert_eq!(route(Path::new("src/x")), Err(UnsafeEntry::OutsideRoots));
        assert_eq!(route(Path::new("/build/x")), Err(UnsafeEntry::Absolute));
        assert_eq!(
            route(Path::new("build/../x")),
            Err(UnsafeEntry::ParentComponent)
        );
        assert_eq!(
            route(Path::new("./build/x")),
            Err(UnsafeEntry::CurrentComponent)
        );
    }

    #[test]
    fn umask_is_read() {
        assert_eq!(process_umask().map(|umask| umask & !0o777), Some(0));
    }

    #[test]
    fn rename_does_not_replace() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, "a").unwrap();
        std::fs::write(&b, "b").unwrap();
        let error = rename_noreplace(&a, &b).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "b");
        std::fs::remove_file(&b).unwrap();
        rename_noreplace(&a, &b).unwrap();
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "a");
    }
}
