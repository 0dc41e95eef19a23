//! What can go wrong with a state: [`StateError`], one variant per failed operation, and
//! [`UnsafeEntry`], why one payload entry was refused.

use std::io;
use std::path::PathBuf;

/// A state could not be packed, read, listed or restored.
///
/// A failed [`restore`](crate::restore) or [`extract`](crate::extract) leaves nothing behind:
/// the staging directories are removed before the error is returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// `manifest.json` could not be read.
    #[error("failed to read the state manifest `{path}`")]
    ReadManifest {
        /// The manifest file.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: io::Error,
    },

    /// `manifest.json` is not a manifest: bad JSON, a missing or unknown field.
    #[error("the state manifest `{path}` is malformed")]
    ParseManifest {
        /// The manifest file.
        path: PathBuf,
        /// What serde said, with the line and column where it could.
        #[source]
        source: serde_json::Error,
    },

    /// The manifest is of a format this kiln does not read.
    #[error(
        "the state manifest `{path}` has format `{found}`, but this kiln reads format `{supported}`"
    )]
    UnsupportedFormat {
        /// The manifest file.
        path: PathBuf,
        /// The `format` value found, as JSON.
        found: String,
        /// The format this kiln reads and writes.
        supported: u32,
    },

    /// A manifest field has a value that would be unsafe or meaningless to use.
    #[error("the state manifest `{path}` has an invalid `{field}`: {reason}")]
    InvalidManifest {
        /// The manifest file (when packing: the one that was about to be written).
        path: PathBuf,
        /// The field, e.g. `workdir` or `env.PATH`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },

    /// An output path given to [`pack`](crate::pack) is not UTF-8, so the manifest cannot record
    /// it.
    #[error("the path `{path}` of output `{name}` is not valid UTF-8")]
    NonUtf8Output {
        /// The output name.
        name: String,
        /// The path, lossily converted.
        path: PathBuf,
    },

    /// The tree to pack could not be walked: a directory listing, `lstat` or `readlink` failed.
    #[error("failed to read `{path}` while packing the state")]
    ReadTree {
        /// The path that could not be read.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: io::Error,
    },

    /// A regular file could not be read while packing.
    #[error("failed to read the file `{path}` while packing the state")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: io::Error,
    },

    /// A file became shorter while it was packed: something else is writing to the tree.
    #[error("the file `{path}` shrank from `{expected}` to `{found}` bytes while it was packed")]
    FileChanged {
        /// The file.
        path: PathBuf,
        /// Its size when it was listed.
        expected: u64,
        /// The bytes that could be read.
        found: u64,
    },

    /// The tree holds something a state cannot carry (a device or a FIFO).
    #[error(
        "cannot pack `{path}`: it is a {kind}, and a state holds only files, directories and links"
    )]
    SpecialFile {
        /// The file.
        path: PathBuf,
        /// What it is, e.g. `FIFO`.
        kind: &'static str,
    },

    /// The payload file could not be created next to where it belongs.
    #[error("failed to create the state payload in `{path}`")]
    CreatePayload {
        /// The destination directory.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: io::Error,
    },

    /// Compressing or writing the payload failed.
    #[error("failed to write the state payload `{path}`")]
    WritePayload {
        /// The payload file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },

    /// `manifest.json` could not be written.
    #[error("failed to write the state manifest `{path}`")]
    WriteManifest {
        /// The manifest file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },

    /// The payload file could not be opened.
    #[error("failed to open the state payload `{path}`")]
    OpenPayload {
        /// The payload file.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: io::Error,
    },

    /// The payload is not as long as the manifest says: truncated, or not the payload the
    /// manifest was written for.
    #[error(
        "the state payload `{path}` is `{found}` bytes long, but its manifest says `{expected}`"
    )]
    PayloadSize {
        /// The payload file.
        path: PathBuf,
        /// The size in the manifest.
        expected: u64,
        /// The size on disk.
        found: u64,
    },

    /// The payload's SHA-256 is not the one in the manifest: the payload is damaged.
    #[error(
        "the state payload `{path}` has sha256 `{found}`, but its manifest says `{expected}`; the state is damaged"
    )]
    PayloadHash {
        /// The payload file.
        path: PathBuf,
        /// The hash in the manifest.
        expected: String,
        /// The hash of the bytes on disk.
        found: String,
    },

    /// The payload could not be decompressed or is not a valid tar stream (e.g. it ends early).
    #[error("failed to read the state payload `{path}`")]
    ReadPayload {
        /// The payload file.
        path: PathBuf,
        /// What the decompressor or the tar reader said.
        #[source]
        source: io::Error,
    },

    /// A payload entry was refused; see [`UnsafeEntry`].
    #[error("refusing entry `{entry}` of the state payload `{path}`: {reason}")]
    Unsafe {
        /// The payload file.
        path: PathBuf,
        /// The entry path as stored in the payload.
        entry: PathBuf,
        /// Why it was refused.
        reason: UnsafeEntry,
    },

    /// A staging directory could not be created.
    #[error("failed to create a staging directory in `{path}`")]
    Stage {
        /// The directory the staging directory was to be created in.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: io::Error,
    },

    /// Creating a file, directory or link while restoring failed.
    #[error("failed to write `{path}` while restoring the state")]
    Write {
        /// The path being created (in a staging directory or, for directory metadata, in
        /// place).
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: io::Error,
    },

    /// Something is already where a restored entry belongs; a state restores into an empty place.
    #[error("`{path}` already exists; a state is restored only where nothing of it exists yet")]
    Occupied {
        /// The path in the way.
        path: PathBuf,
    },

    /// Moving a verified entry from its staging directory into place failed.
    #[error("failed to move `{from}` to `{to}`")]
    MoveIntoPlace {
        /// The staged path.
        from: PathBuf,
        /// Its final place.
        to: PathBuf,
        /// What the file system said.
        #[source]
        source: io::Error,
    },

    /// The directory [`extract`](crate::extract) writes into could not be created.
    #[error("failed to create `{path}`")]
    CreateTarget {
        /// The directory.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: io::Error,
    },

    /// The decompression thread could not be started.
    #[error("failed to start the decompression thread")]
    SpawnThread {
        /// What the system said.
        #[source]
        source: io::Error,
    },
}

/// Why a payload entry was refused. Each of these means a damaged or hostile state: kiln's own
/// packer never writes such an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnsafeEntry {
    /// The entry path is absolute.
    #[error("its path is absolute")]
    Absolute,
    /// The entry path has a `..` component.
    #[error("its path contains `..`")]
    ParentComponent,
    /// The entry path has a `.` component.
    #[error("its path contains `.`")]
    CurrentComponent,
    /// The entry is not under `build/` or `outputs/NAME/`.
    #[error("it is not under `build/` or `outputs/NAME/`")]
    OutsideRoots,
    /// The entry is under `outputs/NAME/` for an output that is not being restored.
    #[error("output `{name}` is not one of the outputs being restored")]
    UnknownOutput {
        /// The output name.
        name: String,
    },
    /// The entry would replace the build directory itself with something that is not a
    /// directory.
    #[error("it would replace the build directory with a non-directory")]
    ReplacesBuildDir,
    /// A directory on the way to the entry is a symlink in the payload.
    #[error("`{link}` on its way is a symlink")]
    ThroughSymlink {
        /// The symlink, relative to its root (`build/` or `outputs/NAME/`).
        link: PathBuf,
    },
    /// A path on the way to the entry is a file in the payload.
    #[error("`{path}` on its way is not a directory")]
    NotADirectory {
        /// The path, relative to its root.
        path: PathBuf,
    },
    /// The entry is in the payload twice.
    #[error("it appears twice")]
    Duplicate,
    /// A hard link points outside its own root (`build/` or `outputs/NAME/`).
    #[error("it is a hard link to `{target}`, outside its root")]
    LinkOutside {
        /// The link target as stored.
        target: PathBuf,
    },
    /// A hard link points at something that is not an earlier file entry.
    #[error("it is a hard link to `{target}`, which is not an earlier file entry")]
    LinkTargetMissing {
        /// The link target as stored.
        target: PathBuf,
    },
    /// The entry type is not one a state holds.
    #[error("its type `{kind}` is not a file, directory, symlink or hard link")]
    UnsupportedType {
        /// The tar type flag, e.g. `GNUSparse`.
        kind: String,
    },
    /// The entry's header is unreadable (a bad path, mode or mtime field).
    #[error("its header is malformed: {detail}")]
    BadHeader {
        /// What the tar reader said.
        detail: String,
    },
}
