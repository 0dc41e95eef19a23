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
//! - Entries are written through a [`TreeWriter`] per root with [`Existing::Refuse`]: every
//!   directory on the way to an entry must be a directory created from the payload; a symlink
//!   on the way is refused ([`UnsafeEntry::ThroughSymlink`]), so `link -> /etc` then
//!   `link/passwd` never writes outside. Symlinks themselves may point anywhere.
//! - Files are created with `O_CREAT | O_EXCL` and links with `symlink(2)`/`link(2)`, which never
//!   follow a symlink in the last component; an entry that is already there is refused
//!   ([`UnsafeEntry::Duplicate`]).
//! - A hard link must point at an earlier non-directory entry of the same root.
//! - Modes keep the permission bits (`0o777`) exactly, whatever the umask; setuid, setgid and
//!   sticky bits are dropped. Ownership is not restored. mtimes are restored to the second.

use std::collections::BTreeMap;
use std::fs::{FileTimes, Permissions};
use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Component, Path, PathBuf};

use kiln_fsio::{
    parent_or_dot, process_umask, rename_noreplace, set_mtime_nofollow, system_time, Existing,
    PendingDirs, TreeError, TreeWriter,
};
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
    /// Creates the entries where they are staged: in the staging directory itself for the build
    /// directory, at `staging/NAME` for an output. It knows the directories created from the
    /// payload.
    tree: TreeWriter,
    /// The final place: the build directory (its children are moved in) or the output path
    /// (moved as a whole).
    target: PathBuf,
    is_build: bool,
}

/// The mode of directories while they are filled: the owner's only, until [`PendingDirs`]
/// applies the payload's.
const STAGING_DIR_MODE: u32 = 0o700;

/// Creates the entries of one payload in staging directories and moves them into place.
struct Extractor<'a> {
    payload: &'a Path,
    outputs: &'a BTreeMap<String, PathBuf>,
    /// `roots[0]` is the build directory; outputs are added when their first entry comes.
    roots: Vec<Root>,
    output_roots: BTreeMap<String, usize>,
    /// Directory modes and mtimes, at their final paths.
    pending: PendingDirs,
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
        let tree = TreeWriter::new(
            staging.path().to_owned(),
            Existing::Refuse,
            STAGING_DIR_MODE,
        );
        Ok(Extractor {
            payload,
            outputs,
            roots: vec![Root {
                staging,
                tree,
                target: build_dir.to_owned(),
                is_build: true,
            }],
            output_roots: BTreeMap::new(),
            pending: PendingDirs::default(),
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

    /// Says why a tree writer refused `entry`, in the state's terms.
    fn tree_error(&self, entry: &Path, error: TreeError) -> StateError {
        match error {
            TreeError::ThroughSymlink { link } => {
                self.refuse(entry, UnsafeEntry::ThroughSymlink { link })
            }
            TreeError::NotADirectory { path } => {
                self.refuse(entry, UnsafeEntry::NotADirectory { path })
            }
            TreeError::Exists { .. } => self.refuse(entry, UnsafeEntry::Duplicate),
            TreeError::Io { path, source } => StateError::Write { path, source },
            // Only with `Existing::Replace`, which a restore does not use.
            TreeError::ReplaceDirectory { path } => StateError::Write {
                path,
                source: io::ErrorKind::AlreadyExists.into(),
            },
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
        let staging = stage(parent_or_dot(target))?;
        let tree = TreeWriter::new(
            staging.path().join(name),
            Existing::Refuse,
            STAGING_DIR_MODE,
        )
        .root_missing();
        self.roots.push(Root {
            staging,
            tree,
            target: target.clone(),
            is_build: false,
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
        // A `time_t`, and so a `SystemTime`, holds any mtime that fits in an `i64`.
        let Ok(mtime) = i64::try_from(mtime) else {
            return Err(self.refuse(
                &entry_path,
                UnsafeEntry::BadHeader {
                    detail: format!("the mtime `{mtime}` is out of range"),
                },
            ));
        };
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

    fn dir(
        &mut self,
        root: usize,
        entry: &Path,
        relative: &Path,
        mode: u32,
        mtime: i64,
    ) -> Result<(), StateError> {
        if relative.as_os_str().is_empty() && self.roots[root].is_build {
            // `build/` is the build directory itself, which is not the state's to change.
            return Ok(());
        }
        self.roots[root]
            .tree
            .dir(relative, STAGING_DIR_MODE)
            .map_err(|error| self.tree_error(entry, error))?;
        self.pending
            .push(&self.roots[root].target, relative, Some(mode), Some(mtime));
        Ok(())
    }

    /// Checks what every non-directory entry needs: not the build directory itself.
    fn check_leaf(&self, root: usize, entry: &Path, relative: &Path) -> Result<(), StateError> {
        if relative.as_os_str().is_empty() && self.roots[root].is_build {
            return Err(self.refuse(entry, UnsafeEntry::ReplacesBuildDir));
        }
        Ok(())
    }

    fn file(
        &mut self,
        root: usize,
        entry_path: &Path,
        relative: &Path,
        mode: u32,
        mtime: i64,
        content: &mut Entry<'_>,
    ) -> Result<(), StateError> {
        self.check_leaf(root, entry_path, relative)?;
        // Created with its final mode when the umask leaves that alone (the usual `0644` or
        // `0755` under `022`); otherwise owner-only until the `fchmod(2)` below. The descriptor
        // is writable either way.
        let exact = self.umask.is_some_and(|umask| mode & umask == 0);
        let (path, mut file) = self.roots[root]
            .tree
            .file(relative, if exact { mode } else { 0o600 })
            .map_err(|error| self.tree_error(entry_path, error))?;
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
        file.set_times(FileTimes::new().set_modified(system_time(mtime, 0)))
            .map_err(|source| StateError::Write { path, source })
    }

    fn symlink(
        &mut self,
        root: usize,
        entry: &Path,
        relative: &Path,
        target: &Path,
        mtime: i64,
    ) -> Result<(), StateError> {
        self.check_leaf(root, entry, relative)?;
        let path = self.roots[root]
            .tree
            .symlink(relative, target)
            .map_err(|error| self.tree_error(entry, error))?;
        set_mtime_nofollow(&path, mtime, 0).map_err(|source| StateError::Write { path, source })
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
        let tree = &self.roots[root].tree;
        let parent_known = target_relative
            .parent()
            .is_some_and(|parent| tree.is_known_dir(parent));
        let target_path = tree.path(target_relative);
        let target_ok = parent_known
            && std::fs::symlink_metadata(&target_path).is_ok_and(|metadata| !metadata.is_dir());
        if !target_ok {
            return Err(self.refuse(entry, missing()));
        }
        self.check_leaf(root, entry, relative)?;
        // `link(2)` does not follow a symlink target: the link is to the symlink itself.
        self.roots[root]
            .tree
            .hard_link(relative, &target_path)
            .map(drop)
            .map_err(|error| self.tree_error(entry, error))
    }

    /// Moves the verified entries into place and applies directory metadata; see the module
    /// documentation.
    fn finish(self) -> Result<(), StateError> {
        let mut moves = Vec::new();
        for root in &self.roots {
            let content = root.tree.root();
            if root.is_build {
                let children = std::fs::read_dir(content).map_err(|source| StateError::Write {
                    path: content.to_owned(),
                    source,
                })?;
                for child in children {
                    let child = child.map_err(|source| StateError::Write {
                        path: content.to_owned(),
                        source,
                    })?;
                    moves.push((child.path(), root.target.join(child.file_name())));
                }
            } else if std::fs::symlink_metadata(content).is_ok() {
                moves.push((content.to_owned(), root.target.clone()));
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
        let Extractor { roots, pending, .. } = self;
        pending.apply().map_err(|error| StateError::Write {
            path: error.path,
            source: error.source,
        })?;
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
}
