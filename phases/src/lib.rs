//! kiln's built-in file steps: `write`, `mkdir`, `copy`, `symlink`, `remove`, `chmod` and
//! `substitute`, done in-process so a build needs no `cp`, `ln`, `sed` or shell among its inputs.
//!
//! The runtime (`kiln-builder`) executes `run` steps as processes and hands every other
//! [`Step`] to [`run_file_step`] with the phase's working directory. A step either succeeds with
//! a [`StepReport`] (warnings to show, such as a `substitute` pattern not found with
//! `ifMissing: warn`) or fails with a [`FileStepError`] naming the operation and the path.
//!
//! Each kind lives in its own module, whose documentation gives its exact semantics. In short:
//! parents of created paths are created, modes are exact whatever the umask, symlinks are never
//! followed inside trees, directory walks go in bytewise-sorted order, and `copy` keeps modes and
//! mtimes.
//!
//! ```
//! use kiln_schema::{IfMissing, Mode, Replacement, Step, SubstituteStep, WriteStep};
//!
//! let build = tempfile::tempdir().unwrap();
//! let write = Step::Write(WriteStep {
//!     path: "bin/hello".to_owned(),
//!     content: "#!@shell@\necho hello\n".to_owned(),
//!     mode: Some(Mode(0o755)),
//! });
//! kiln_phases::run_file_step(&write, build.path()).unwrap();
//!
//! let substitute = Step::Substitute(SubstituteStep {
//!     file: "bin/hello".to_owned(),
//!     out: None,
//!     replace: vec![Replacement {
//!         from: "goodbye".to_owned(),
//!         to: "hello".to_owned(),
//!         if_missing: IfMissing::Warn,
//!     }],
//!     vars: [("shell".to_owned(), "/bin/sh".to_owned())].into(),
//! });
//! let report = kiln_phases::run_file_step(&substitute, build.path()).unwrap();
//! assert_eq!(report.warnings.len(), 1);
//! assert_eq!(
//!     std::fs::read_to_string(build.path().join("bin/hello")).unwrap(),
//!     "#!/bin/sh\necho hello\n"
//! );
//! ```
#![warn(missing_docs)]

use std::path::Path;

use kiln_schema::Step;

mod chmod;
mod copy;
mod error;
mod fsx;
mod mkdir;
mod remove;
mod substitute;
mod symlink;
mod write;

pub use error::FileStepError;

/// What a successful file step has to report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepReport {
    /// Non-fatal findings to show the user, one line each, in the order they happened.
    pub warnings: Vec<String>,
}

/// Runs one file step. Relative paths in the step resolve against `cwd`. Returns warnings to
/// report (e.g. substitute patterns not found with ifMissing=warn).
///
/// A [`Step::Run`] is not a file step: it returns [`FileStepError::NotAFileStep`] and does nothing.
/// References (`${outputs.out}`, ...) MUST already be resolved; the strings are used as paths
/// and contents verbatim.
pub fn run_file_step(step: &Step, cwd: &Path) -> Result<StepReport, FileStepError> {
    let warnings = match step {
        Step::Run(_)
        | Step::Unpack(_)
        | Step::Patch(_)
        | Step::Configure(_)
        | Step::Make(_)
        | Step::Fixup(_)
        | Step::AutoPatchelf(_)
        | Step::PatchShebangs(_) => return Err(FileStepError::NotAFileStep),
        Step::Write(step) => write::run(step, cwd).map(|()| Vec::new())?,
        Step::Mkdir(step) => mkdir::run(step, cwd).map(|()| Vec::new())?,
        Step::Copy(step) => copy::run(step, cwd).map(|()| Vec::new())?,
        Step::Symlink(step) => symlink::run(step, cwd).map(|()| Vec::new())?,
        Step::Remove(step) => remove::run(step, cwd).map(|()| Vec::new())?,
        Step::Chmod(step) => chmod::run(step, cwd).map(|()| Vec::new())?,
        Step::Substitute(step) => substitute::run(step, cwd)?,
    };
    Ok(StepReport { warnings })
}

#[cfg(test)]
mod tests {
    use std::fs;

    use kiln_schema::{CopyStep, MkdirStep, RemoveStep, RunStep, SymlinkStep};

    use super::*;

    #[test]
    fn a_run_step_is_refused_without_side_effects() {
        let dir = tempfile::tempdir().unwrap();
        let step = Step::Run(RunStep {
            argv: vec!["touch".to_owned(), "x".to_owned()],
            env: Default::default(),
            cwd: None,
            stdout: None,
        });
        let error = run_file_step(&step, dir.path()).unwrap_err();
        assert!(matches!(error, FileStepError::NotAFileStep), "{error:?}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn dispatches_each_kind_against_cwd() {
        let dir = tempfile::tempdir().unwrap();
        let steps = [
            Step::Mkdir(MkdirStep {
                path: "a".to_owned(),
            }),
            Step::Write(kiln_schema::WriteStep {
                path: "a/f".to_owned(),
                content: "f".to_owned(),
                mode: None,
            }),
            Step::Copy(CopyStep {
                from: "a".to_owned(),
                to: "b".to_owned(),
            }),
            Step::Symlink(SymlinkStep {
                target: "b/f".to_owned(),
                link: "l".to_owned(),
            }),
            Step::Remove(RemoveStep {
                path: "a".to_owned(),
                recursive: true,
                ignore_missing: false,
            }),
        ];
        for step in &steps {
            assert_eq!(
                run_file_step(step, dir.path()).unwrap(),
                StepReport::default()
            );
        }
        assert!(!dir.path().join("a").exists());
        assert_eq!(fs::read_to_string(dir.path().join("l")).unwrap(), "f");
    }
}
