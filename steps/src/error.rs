//! Why a step failed: [`StepError`] for every kind, with [`FileStepError`] for the file steps.

use std::path::PathBuf;

use thiserror::Error;

pub use crate::file_error::FileStepError;

/// Why a step failed.
#[derive(Debug, Error)]
pub enum StepError {
    /// A file step (`write`, `copy`, `substitute`, …) failed.
    #[error(transparent)]
    File(#[from] FileStepError),
    /// The configure script is missing.
    #[error("configure script `{}` does not exist", path.display())]
    MissingConfigureScript {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The configure script could not be read (to detect its options).
    #[error("cannot read configure script `{}`", path.display())]
    ReadConfigureScript {
        /// The script.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Unpacking failed.
    #[error(transparent)]
    Unpack(#[from] kiln_archive::UnpackError),
    /// Patching failed.
    #[error(transparent)]
    Patch(#[from] kiln_patch::PatchError),
    /// Fixup failed.
    #[error(transparent)]
    Fixup(#[from] kiln_fixup::FixupError),
    /// A quilt series file not named `series` (quilt and dpkg-source read only that name), once
    /// `.` and `..` are resolved.
    #[error("quilt series file `{}` is not named `series`", path.display())]
    SeriesName {
        /// The file.
        path: PathBuf,
    },
    /// An output directory could not be created for splitting.
    #[error("cannot create output directory `{}`", path.display())]
    CreateOutput {
        /// The output.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An output failed its checks (references or size).
    #[error("output checks failed")]
    OutputChecks(#[source] kiln_fixup::StepError),
    /// Patching ELF files (`autoPatchelf`) failed.
    #[error(transparent)]
    AutoPatchelf(kiln_fixup::StepError),
    /// The outputs refer to each other in a loop (Nix could not register them).
    #[error(transparent)]
    OutputCycle(kiln_fixup::StepError),
    /// Patching `#!` lines (`patchShebangs`) failed.
    #[error(transparent)]
    PatchShebangs(kiln_fixup::StepError),
    /// A graft failed, or left an old path behind.
    #[error(transparent)]
    Graft(#[from] crate::GraftError),
}

impl StepError {
    /// What the user can do about it, when the step can tell.
    pub fn hint(&self) -> Option<String> {
        match self {
            StepError::Unpack(error) => error.hint(),
            StepError::Patch(error) => error.hint(),
            StepError::Graft(error) => error.hint(),
            StepError::OutputCycle(_) => Some(
                "move the file that makes one of these references to the other output (in a \
                 stdenv-style derivation: `outputDev`, `outputLib`, …; in a plan: the fixup \
                 step's `outputRoles` or a `copy`/`remove` step), or merge the two outputs"
                    .to_owned(),
            ),
            StepError::MissingConfigureScript { .. } => Some(
                "set the preset's `configureScript`, or generate it in a phase before (e.g. `autoreconf`)"
                    .to_owned(),
            ),
            _ => None,
        }
    }
}
