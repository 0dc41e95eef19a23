//! Every kind of kiln step, one module each, and the one dispatch the runtime calls: [`run`].
//!
//! A step either does its work here, in kiln's process, and returns its [`StepEffects`] (a new
//! working directory, variables to set, messages to show), or it is a process (`run`,
//! `configure`, `make`) and returns the [`ProcessPlan`] that kiln's runtime runs with its
//! process groups, timeouts and signals. Either way a step sees only its [`StepContext`]: the
//! working directory, the environment, and typed facts of the build (cores, the store
//! directory, the outputs), never re-parsed from environment strings.
//!
//! The file steps (`write`, `mkdir`, `copy`, `symlink`, `remove`, `chmod`, `substitute`) need no
//! `cp`, `ln`, `sed` or shell among a build's inputs. Their exact semantics are in their modules;
//! in short: parents of created paths are created, modes are exact whatever the umask, symlinks
//! are never followed inside trees, directory walks go in bytewise-sorted order, and `copy` keeps
//! modes and mtimes. `unpack`, `patch`, `fixup`, `autoPatchelf` and `patchShebangs` bridge to
//! `kiln-archive`, `kiln-patch` and `kiln-fixup`; `graft` copies a store path with some
//! dependencies' paths replaced, on `kiln-fixup`'s rewrite engine.
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::path::Path;
//!
//! use kiln_schema::{IfMissing, Mode, Replacement, Step, SubstituteStep, WriteStep};
//! use kiln_steps::{Action, StepContext};
//!
//! let build = tempfile::tempdir().unwrap();
//! let (env, outputs) = (BTreeMap::new(), BTreeMap::new());
//! let ctx = StepContext {
//!     cwd: build.path(),
//!     env: &env,
//!     cores: 1,
//!     store_dir: Path::new("/nix/store"),
//!     outputs: &outputs,
//!     build_top: build.path(),
//!     inputs: &[],
//! };
//! let write = Step::Write(WriteStep {
//!     path: "bin/hello".to_owned(),
//!     content: "#!@shell@\necho hello\n".to_owned(),
//!     mode: Some(Mode(0o755)),
//! });
//! kiln_steps::run(&write, &ctx).unwrap();
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
//! let Action::Done(effects) = kiln_steps::run(&substitute, &ctx).unwrap() else {
//!     unreachable!("substitute runs in process")
//! };
//! assert_eq!(effects.messages.len(), 1);
//! assert_eq!(
//!     std::fs::read_to_string(build.path().join("bin/hello")).unwrap(),
//!     "#!/bin/sh\necho hello\n"
//! );
//! ```
#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kiln_schema::events::Level;
use kiln_schema::Step;

mod auto_patchelf;
mod chmod;
mod configure;
mod copy;
mod error;
mod file_error;
mod fixup;
mod fsx;
mod graft;
mod make;
mod mkdir;
mod patch;
mod patch_shebangs;
mod remove;
mod run;
mod substitute;
mod symlink;
mod unpack;
mod write;

pub use error::{FileStepError, StepError};
pub use graft::{GraftError, GraftReport};

/// What a step may know of the build it runs in.
#[derive(Debug, Clone, Copy)]
pub struct StepContext<'a> {
    /// The phase's working directory; a step's relative paths resolve against it.
    pub cwd: &'a Path,
    /// The environment the step runs with (`PATH` for interpreters and `strip`).
    pub env: &'a BTreeMap<String, String>,
    /// The cores the build may use (`NIX_BUILD_CORES`).
    pub cores: u32,
    /// The store directory (`/nix/store`).
    pub store_dir: &'a Path,
    /// Output name → path.
    pub outputs: &'a BTreeMap<String, PathBuf>,
    /// The build directory.
    pub build_top: &'a Path,
    /// The plan's input paths (the references output checks recognise).
    pub inputs: &'a [PathBuf],
}

impl StepContext<'_> {
    /// The directories of `PATH` in the step's environment.
    pub fn search_path(&self) -> Vec<PathBuf> {
        self.env
            .get("PATH")
            .map(|path| {
                path.split(':')
                    .filter(|dir| !dir.is_empty())
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// What a step done in process changed beyond its files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepEffects {
    /// The working directory of the following steps and phases (`unpack`'s source root).
    pub workdir: Option<PathBuf>,
    /// Variables to set for the following steps and phases (`SOURCE_DATE_EPOCH`).
    pub env: BTreeMap<String, String>,
    /// Messages to show, in order (warnings, a line per patch applied, …).
    pub messages: Vec<(Level, String)>,
}

impl StepEffects {
    /// Adds a message.
    pub fn message(&mut self, level: Level, text: String) {
        self.messages.push((level, text));
    }
}

/// One process a step asks the runtime to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The argv; `argv[0]` is looked up on the step's `PATH` unless it has a `/`.
    pub argv: Vec<String>,
    /// Its working directory.
    pub cwd: PathBuf,
    /// Variables on top of the phase's environment.
    pub env: BTreeMap<String, String>,
    /// A file for its standard output (created), instead of the log.
    pub stdout: Option<PathBuf>,
}

/// The processes of a process step: with no probes, `choices[0]`; otherwise the probes run in
/// order, output discarded, and the first that exits 0 picks the choice at its index. When none
/// does, nothing runs and `none_found` is said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessPlan {
    /// Processes whose exit status chooses what runs.
    pub probes: Vec<Invocation>,
    /// What runs: one per probe, or exactly one without probes.
    pub choices: Vec<Invocation>,
    /// The message when no probe succeeds.
    pub none_found: Option<String>,
}

impl ProcessPlan {
    /// A plan of exactly one process.
    pub fn one(invocation: Invocation) -> ProcessPlan {
        ProcessPlan {
            probes: Vec::new(),
            choices: vec![invocation],
            none_found: None,
        }
    }
}

/// What [`run`] did or asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The step ran in process.
    Done(StepEffects),
    /// The step is a process: the runtime runs it.
    Spawn(ProcessPlan),
}

/// Runs `step`: in process, returning its effects, or as the processes to run. References
/// (`${outputs.out}`, …) MUST already be resolved; strings are used verbatim.
pub fn run(step: &Step, ctx: &StepContext<'_>) -> Result<Action, StepError> {
    let done = |warnings: Vec<String>| {
        let mut effects = StepEffects::default();
        for warning in warnings {
            effects.message(Level::Warn, warning);
        }
        Action::Done(effects)
    };
    Ok(match step {
        Step::Run(step) => Action::Spawn(run::plan(step, ctx)),
        Step::Configure(step) => Action::Spawn(configure::plan(step, ctx)?),
        Step::Make(step) => Action::Spawn(make::plan(step, ctx)),
        Step::Unpack(step) => Action::Done(unpack::run(step, ctx)?),
        Step::Patch(step) => Action::Done(patch::run(step, ctx)?),
        Step::Fixup(step) => Action::Done(fixup::run(step, ctx)?),
        Step::AutoPatchelf(step) => Action::Done(auto_patchelf::run(step, ctx)?),
        Step::PatchShebangs(step) => Action::Done(patch_shebangs::run(step, ctx)?),
        Step::Graft(step) => Action::Done(graft::run(step, ctx)?),
        file_step => done(run_file_step(file_step, ctx.cwd)?.warnings),
    })
}

/// A one-line description of a step for logs.
pub fn describe(step: &Step) -> String {
    match step {
        Step::Run(run) => display_argv(&run.argv),
        Step::Write(write) => write.path.clone(),
        Step::Mkdir(mkdir) => mkdir.path.clone(),
        Step::Copy(copy) => format!("{} -> {}", copy.from, copy.to),
        Step::Symlink(symlink) => format!("{} -> {}", symlink.link, symlink.target),
        Step::Remove(remove) => remove.path.clone(),
        Step::Chmod(chmod) => format!("{} {}", chmod.mode, chmod.path),
        Step::Substitute(substitute) => substitute.file.clone(),
        Step::Unpack(unpack) => match &unpack.into {
            Some(into) => format!("{} -> {into}", unpack.srcs.join(" ")),
            None => unpack.srcs.join(" "),
        },
        Step::Patch(patch) => {
            let mut parts = patch.patches.clone();
            parts.extend(patch.series.iter().map(|series| format!("series {series}")));
            format!("-p{} {}", patch.strip, parts.join(" "))
        }
        Step::Configure(configure) => {
            format!("{} {}", configure.script, display_argv(&configure.flags))
        }
        Step::Make(make) => display_argv(&make::make_argv(make, "N", &[], &make.targets)),
        Step::Fixup(_) => "every output".to_owned(),
        Step::AutoPatchelf(patchelf) => patchelf.paths.join(" "),
        Step::PatchShebangs(shebangs) => shebangs.paths.join(" "),
        Step::Graft(graft) => format!(
            "{} -> {} ({} replacement{})",
            graft.from,
            graft.to,
            graft.replace.len(),
            if graft.replace.len() == 1 { "" } else { "s" }
        ),
    }
}

/// Shell-like rendering of an argv, for messages only (never executed).
pub fn display_argv(argv: &[String]) -> String {
    argv.iter()
        .map(|arg| {
            let plain = !arg.is_empty()
                && arg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%^".contains(c));
            if plain {
                arg.clone()
            } else {
                format!("'{}'", arg.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What a successful file step has to report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepReport {
    /// Non-fatal findings to show the user, one line each, in the order they happened.
    pub warnings: Vec<String>,
}

/// Runs one file step (`write`, `mkdir`, `copy`, `symlink`, `remove`, `chmod`, `substitute`).
/// Relative paths in the step resolve against `cwd`. Returns warnings to report (e.g.
/// substitute patterns not found with ifMissing=warn).
///
/// Any other step returns [`FileStepError::NotAFileStep`] and does nothing.
pub fn run_file_step(step: &Step, cwd: &Path) -> Result<StepReport, FileStepError> {
    let warnings = match step {
        Step::Run(_)
        | Step::Unpack(_)
        | Step::Patch(_)
        | Step::Configure(_)
        | Step::Make(_)
        | Step::Fixup(_)
        | Step::AutoPatchelf(_)
        | Step::PatchShebangs(_)
        | Step::Graft(_) => return Err(FileStepError::NotAFileStep),
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
    #[test]
    fn argv_display_quotes_only_when_needed() {
        let argv: Vec<String> = ["gcc", "-o", "a b", "it's", ""].map(String::from).to_vec();
        assert_eq!(super::display_argv(&argv), r"gcc -o 'a b' 'it'\''s' ''");
    }

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
