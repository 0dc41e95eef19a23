//! Why a file step failed: [`FileStepError`], one variant per failed operation.
//!
//! Every variant names the path (or paths) it was working on. Variants caused by the operating
//! system carry the [`io::Error`] as their `#[source]`, so a caller renders the message as
//! `error: ...` followed by `caused by: ...` lines; the message itself never repeats the source.
//! Paths in messages are the resolved ones (the step's relative paths joined to its working
//! directory), so they say exactly which file was touched.

use std::io;
use std::path::PathBuf;

use kiln_schema::Mode;

/// A file step that could not be completed.
///
/// A step stops at its first error. Steps that write a single file (`write`, `substitute`) leave
/// the destination untouched when they fail; `copy`, `chmod` and a recursive `remove` may have done
/// part of their work.
#[derive(Debug, thiserror::Error)]
pub enum FileStepError {
    /// A `run` step was handed to [`crate::run_file_step`]; the runtime executes it as a process.
    #[error("a `run` step is not a file step; the runtime runs it as a process")]
    NotAFileStep,

    /// The metadata of a path (its type, mode or times) could not be read.
    #[error("cannot read the metadata of `{path}`")]
    Metadata {
        /// The path that was inspected.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// A file could not be read.
    #[error("cannot read `{path}`")]
    Read {
        /// The file that was read.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// A file could not be written (created, filled or moved into place).
    #[error("cannot write `{path}`")]
    Write {
        /// The file that was written.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// A directory (or one of its parents) could not be created.
    #[error("cannot create directory `{path}`")]
    CreateDir {
        /// The directory that was created.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// `mkdir` found something other than a directory at its path.
    #[error("`{path}` exists and is not a directory")]
    NotADirectory {
        /// The path that is in the way.
        path: PathBuf,
    },

    /// The entries of a directory could not be listed.
    #[error("cannot list directory `{path}`")]
    ReadDir {
        /// The directory that was listed.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// The destination of `copy` or the link of `symlink` already exists.
    #[error("`{path}` already exists")]
    DestinationExists {
        /// The existing path.
        path: PathBuf,
    },

    /// `copy` was asked to copy a directory into itself, which would never end.
    #[error("cannot copy directory `{from}` into itself (to `{to}`)")]
    CopyIntoItself {
        /// The directory being copied.
        from: PathBuf,
        /// The destination, inside `from`.
        to: PathBuf,
    },

    /// `copy` met something that is not a regular file, a directory or a symlink.
    #[error("cannot copy `{path}`: it is not a regular file, a directory or a symlink")]
    UnsupportedFileType {
        /// The special file (FIFO, socket or device).
        path: PathBuf,
    },

    /// The contents of a regular file could not be copied.
    #[error("cannot copy `{from}` to `{to}`")]
    Copy {
        /// The source file.
        from: PathBuf,
        /// The destination file.
        to: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// The target of a symlink could not be read.
    #[error("cannot read the symlink `{path}`")]
    ReadLink {
        /// The symlink.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// A symlink could not be created.
    #[error("cannot create the symlink `{link}` pointing to `{target}`")]
    Symlink {
        /// Where the link was to be created.
        link: PathBuf,
        /// What it was to point to, verbatim.
        target: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// Permission bits could not be set.
    #[error("cannot set mode `{mode}` on `{path}`")]
    SetMode {
        /// The path whose mode was set.
        path: PathBuf,
        /// The mode that was to be set.
        mode: Mode,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// Access and modification times could not be set.
    #[error("cannot set the times of `{path}`")]
    SetTimes {
        /// The path whose times were set.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// `remove` found nothing at its path and `ignoreMissing` is not set.
    #[error("cannot remove `{path}`: it does not exist (set `ignoreMissing: true` to allow this)")]
    NotFound {
        /// The missing path.
        path: PathBuf,
    },

    /// `remove` without `recursive` met a directory that has entries.
    #[error("cannot remove `{path}`: the directory is not empty (set `recursive: true` to remove it with everything in it)")]
    DirectoryNotEmpty {
        /// The non-empty directory.
        path: PathBuf,
    },

    /// A path could not be removed.
    #[error("cannot remove `{path}`")]
    Remove {
        /// The path that was removed.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// A `substitute` replacement with `ifMissing: fail` found no occurrence of its pattern.
    #[error("pattern `{pattern}` not found in `{file}`")]
    PatternNotFound {
        /// The file being substituted.
        file: PathBuf,
        /// The text that was searched for.
        pattern: String,
    },

    /// A `substitute` replacement has an empty pattern (validation rejects this in plans).
    #[error("empty pattern in the substitution of `{file}`")]
    EmptyPattern {
        /// The file being substituted.
        file: PathBuf,
    },

    /// A `substitute` variable's `@NAME@` placeholder does not occur in the file.
    #[error("placeholder `@{name}@` not found in `{file}`")]
    PlaceholderNotFound {
        /// The file being substituted.
        file: PathBuf,
        /// The variable name, without the `@` signs.
        name: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_path_and_leave_the_source_to_the_chain() {
        let error = FileStepError::Write {
            path: PathBuf::from("/build/out/a"),
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        assert_eq!(error.to_string(), "cannot write `/build/out/a`");
        let source = std::error::Error::source(&error).expect("has a source");
        assert_eq!(
            source.to_string(),
            io::Error::from(io::ErrorKind::PermissionDenied).to_string()
        );

        let error = FileStepError::SetMode {
            path: PathBuf::from("x"),
            mode: Mode(0o755),
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        assert_eq!(error.to_string(), "cannot set mode `0755` on `x`");
        assert_eq!(
            FileStepError::PlaceholderNotFound {
                file: PathBuf::from("f"),
                name: "out".to_owned()
            }
            .to_string(),
            "placeholder `@out@` not found in `f`"
        );
    }
}
