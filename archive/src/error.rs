//! Why unpacking failed: [`UnpackError`], one variant per failed operation, and
//! [`UnsafeEntry`], the reasons an archive entry is refused.
//!
//! Every variant names the source (the archive or directory being unpacked) and, where there is
//! one, the entry inside it. Variants caused by the operating system or a decoder carry the
//! underlying error as their `#[source]`, so a caller renders `error: ...` followed by
//! `caused by: ...` lines; the message never repeats the source. [`UnpackError::hint`] says what
//! to do next where kiln can tell.

use std::io;
use std::path::PathBuf;

/// Unpacking a source, or finding the source root afterwards, failed.
///
/// An archive is unpacked entry by entry, so a failure may leave the entries before it on disk
/// (inside the destination); an entry that is refused is never written, and nothing is ever
/// written outside the destination.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnpackError {
    /// The source could not be opened or inspected.
    #[error("cannot open the source `{source_path}`")]
    Open {
        /// The source that was opened.
        source_path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// The source is a file in a format kiln does not know (by its first bytes).
    #[error("cannot unpack `{source_path}`: not a tar, zip, .deb, gzip, bzip2, xz or zstd file")]
    UnknownFormat {
        /// The source that was inspected.
        source_path: PathBuf,
    },

    /// The archive stream could not be read or decompressed (corrupt, truncated, I/O error).
    #[error("cannot read the archive `{archive}`")]
    Read {
        /// The archive that was read.
        archive: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// An `ar` archive that is not a Debian binary package kiln can read (see deb(5)).
    #[error("`{archive}` is not a Debian binary package: {reason}")]
    NotADeb {
        /// The archive that was read.
        archive: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The zip archive's directory or one of its entries could not be read.
    #[error("cannot read the zip archive `{archive}`")]
    Zip {
        /// The archive that was read.
        archive: PathBuf,
        /// Why it failed.
        #[source]
        source: zip::result::ZipError,
    },

    /// One entry's header or data could not be read.
    #[error("cannot read the entry `{entry}` of `{archive}`")]
    ReadEntry {
        /// The archive that was read.
        archive: PathBuf,
        /// The entry's path as recorded in the archive.
        entry: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// An entry was refused because extracting it could write outside the destination.
    #[error("refusing the entry `{entry}` of `{archive}`")]
    Unsafe {
        /// The archive that holds the entry.
        archive: PathBuf,
        /// The entry's path as recorded in the archive.
        entry: PathBuf,
        /// Why it is unsafe.
        #[source]
        reason: UnsafeEntry,
    },

    /// An entry is of a kind kiln does not create (a device node, a FIFO, ...).
    #[error("the entry `{entry}` of `{archive}` is a {kind}, which kiln does not unpack")]
    UnsupportedEntry {
        /// The archive that holds the entry.
        archive: PathBuf,
        /// The entry's path as recorded in the archive.
        entry: PathBuf,
        /// What kind of entry it is (`character device`, `fifo`, ...).
        kind: String,
    },

    /// An entry would replace a directory that is already there with a file or link.
    #[error("the entry `{entry}` of `{archive}` would replace the directory `{path}`")]
    ReplaceDirectory {
        /// The archive that holds the entry.
        archive: PathBuf,
        /// The entry's path as recorded in the archive.
        entry: PathBuf,
        /// The directory in the way.
        path: PathBuf,
    },

    /// A file, directory or link could not be created or filled, or its metadata (mode, times)
    /// could not be set.
    #[error("cannot write `{path}` (from `{archive}`)")]
    Write {
        /// The archive or directory being unpacked.
        archive: PathBuf,
        /// The path that was written.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// The destination directory could not be created.
    #[error("cannot create the destination `{into}`")]
    CreateDestination {
        /// The destination.
        into: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// A directory source would be copied (or a single compressed file decompressed) onto a
    /// path that already exists.
    #[error("cannot unpack `{source_path}` to `{destination}`: the destination already exists")]
    DestinationExists {
        /// The source being unpacked.
        source_path: PathBuf,
        /// The path that is in the way.
        destination: PathBuf,
    },

    /// A directory could not be listed, or a path's metadata could not be read.
    #[error("cannot read `{path}`")]
    Inspect {
        /// The path that was read.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// A source directory holds something other than files, directories and symlinks.
    #[error("`{path}` is a {kind}, which kiln does not copy")]
    UnsupportedFile {
        /// The path of the special file.
        path: PathBuf,
        /// What it is (`socket`, `fifo`, ...).
        kind: String,
    },

    /// No new directory appeared in the destination and no `sourceRoot` was given.
    #[error("unpacker produced no directory in `{into}`")]
    NoSourceRoot {
        /// The destination the sources were unpacked into.
        into: PathBuf,
    },

    /// Several new directories appeared in the destination and no `sourceRoot` was given.
    #[error("unpacker produced several directories: {}", list(.directories))]
    SeveralSourceRoots {
        /// The new top-level directories, sorted.
        directories: Vec<String>,
    },

    /// The explicit `sourceRoot` is absolute or has a `..` component.
    #[error("`sourceRoot` `{source_root}` must be a relative path without `..`")]
    InvalidSourceRoot {
        /// The value given.
        source_root: String,
    },

    /// The explicit `sourceRoot` is not a directory inside the destination.
    #[error("`sourceRoot` `{source_root}` is not a directory in `{into}`")]
    MissingSourceRoot {
        /// The value given.
        source_root: String,
        /// The destination the sources were unpacked into.
        into: PathBuf,
    },

    /// `chmod u+w` on a path of the source root failed.
    #[error("cannot make `{path}` writable")]
    MakeWritable {
        /// The path whose mode was changed.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
}

impl UnpackError {
    /// What the user can do about it, if kiln can tell.
    pub fn hint(&self) -> Option<String> {
        match self {
            UnpackError::NoSourceRoot { .. } => Some(
                "set `sourceRoot` to the directory to build in (`.` for the destination itself)"
                    .to_owned(),
            ),
            UnpackError::SeveralSourceRoots { directories } => Some(format!(
                "set `sourceRoot` to the one to build in, e.g. `{}`",
                directories.first().map(String::as_str).unwrap_or(".")
            )),
            UnpackError::DestinationExists { .. } => Some(
                "two sources have the same name; give them distinct names or unpack them with \
                 separate steps"
                    .to_owned(),
            ),
            UnpackError::Unsafe { .. } => Some(
                "the archive tries to write outside the directory it is unpacked into; check \
                 where it came from"
                    .to_owned(),
            ),
            _ => None,
        }
    }
}

fn list(names: &[String]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why an archive entry is refused: each reason is a way an entry could escape the destination.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnsafeEntry {
    /// The path is absolute.
    #[error("it is an absolute path")]
    Absolute,
    /// The path has a `..` component.
    #[error("it has a `..` component")]
    ParentComponent,
    /// The path is empty (or only `.`) but the entry is not a directory.
    #[error("its path is empty")]
    Empty,
    /// A directory on the way to the entry is a symlink; writing would go through it.
    #[error("it would be written through the symlink `{link}`")]
    ThroughSymlink {
        /// The symlink, relative to the destination.
        link: PathBuf,
    },
    /// A directory on the way to the entry is a file.
    #[error("`{path}` on its way is not a directory")]
    NotADirectory {
        /// The path in the way, relative to the destination.
        path: PathBuf,
    },
    /// A hard link's target is absolute, has a `..` component or goes through a symlink.
    #[error("its hard link target `{target}` is outside the destination")]
    LinkOutside {
        /// The target as recorded in the archive.
        target: PathBuf,
    },
    /// A hard link's target was not extracted before it (or is a directory).
    #[error("its hard link target `{target}` is not a file extracted before it")]
    LinkTargetMissing {
        /// The target as recorded in the archive.
        target: PathBuf,
    },
}
