//! Why a patch could not be applied: [`PatchError`], one variant per failed operation.
//!
//! Every variant names the patch file; those about one target file name it too (relative to the
//! tree, after stripping). Variants caused by the operating system carry the [`io::Error`] as
//! their `#[source]`; the message never repeats it. [`PatchError::hint`] says what to do next
//! where kiln can tell.

use std::io;
use std::path::PathBuf;

/// A patch that could not be applied, or a series that could not be read.
///
/// A patch is checked whole before anything is written: when any hunk of any file fails, no
/// file of that patch is changed. Only an I/O error while writing the results can leave a patch
/// half applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PatchError {
    /// The patch file could not be read or decompressed.
    #[error("cannot read the patch `{patch}`")]
    Read {
        /// The patch file.
        patch: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// The patch is malformed at a line.
    #[error("`{patch}` line {line}: {message}")]
    Parse {
        /// The patch file.
        patch: PathBuf,
        /// The 1-based line number in the (decompressed) patch.
        line: usize,
        /// What is wrong there.
        message: String,
    },

    /// The patch holds no diff at all (GNU patch: "only garbage was found").
    #[error("`{patch}` holds no unified diff")]
    Empty {
        /// The patch file.
        patch: PathBuf,
    },

    /// A path in the patch is absolute or has a `..` component after stripping.
    #[error("`{patch}` names `{path}`, which is outside the tree (absolute or with `..`)")]
    UnsafePath {
        /// The patch file.
        patch: PathBuf,
        /// The path after stripping.
        path: PathBuf,
    },

    /// A path in the patch has fewer components than the strip level.
    #[error("`{patch}` names `{name}`, which has fewer than {strip} leading components to strip")]
    StripTooFar {
        /// The patch file.
        patch: PathBuf,
        /// The name as written in the patch.
        name: String,
        /// The strip level (`-pN`).
        strip: usize,
    },

    /// The file to patch does not exist.
    #[error("`{patch}` patches `{file}`, which does not exist")]
    MissingFile {
        /// The patch file.
        patch: PathBuf,
        /// The target, relative to the tree.
        file: PathBuf,
    },

    /// A file to create already exists (with content).
    #[error("`{patch}` creates `{file}`, which already exists")]
    FileExists {
        /// The patch file.
        patch: PathBuf,
        /// The target, relative to the tree.
        file: PathBuf,
    },

    /// The file to patch is a symlink, a directory or a special file, or is reached through a
    /// symlink that leaves the tree.
    #[error("`{patch}` patches `{file}`, which is not a regular file inside the tree")]
    NotRegularFile {
        /// The patch file.
        patch: PathBuf,
        /// The target, relative to the tree.
        file: PathBuf,
    },

    /// A hunk matched nowhere (with offsets and fuzz) in its file.
    #[error("hunk #{number} `{header}` of `{patch}` does not apply to `{file}`")]
    HunkFailed {
        /// The patch file.
        patch: PathBuf,
        /// The target, relative to the tree.
        file: PathBuf,
        /// The hunk's 1-based number within its file.
        number: usize,
        /// The hunk's header line, e.g. `@@ -12,7 +12,8 @@`.
        header: String,
    },

    /// The patch has a git binary diff, which kiln does not apply.
    #[error("`{patch}` has a binary diff for `{file}`, which kiln cannot apply")]
    Binary {
        /// The patch file.
        patch: PathBuf,
        /// The target, relative to the tree.
        file: PathBuf,
    },

    /// A file of the tree could not be read.
    #[error("cannot read `{path}`")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// A result could not be written (or a deleted file removed).
    #[error("cannot write `{path}`")]
    WriteFile {
        /// The file.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// A quilt `series` file could not be read.
    #[error("cannot read the series `{path}`")]
    ReadSeries {
        /// The series file.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },

    /// A quilt `series` line has an option kiln does not know.
    #[error("`{path}` line {line}: unsupported option `{option}`")]
    SeriesOption {
        /// The series file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// The option.
        option: String,
    },
}

impl PatchError {
    /// What the user can do about it, if kiln can tell.
    pub fn hint(&self) -> Option<String> {
        match self {
            PatchError::MissingFile { .. } | PatchError::StripTooFar { .. } => {
                Some("check the strip level (`-p1` strips `a/`, `-p0` strips nothing)".to_owned())
            }
            PatchError::HunkFailed { .. } => Some(
                "the file differs from what the patch expects; the patch may be for another \
                 version, or already applied"
                    .to_owned(),
            ),
            _ => None,
        }
    }
}
