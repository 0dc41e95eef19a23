//! The step kinds of a plan: [`Step`], and one file per kind holding its type, the fields that
//! hold `${…}` references and the checks of its own fields.
//!
//! Every step type implements the crate's `StepFields` trait; [`mod@crate::reference`] and
//! [`mod@crate::validate`] reach a step's fields only through `Step::fields` /
//! `Step::fields_mut`, so adding a step kind here is its file, a variant of [`Step`] (with its
//! name in [`Step::kind`] and [`Step::KINDS`]) and one line in `step_fields!`, the `match` behind
//! those two methods. The files are named as the implementations in the `kiln-steps` crate
//! (`steps/src/KIND.rs`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{PlanError, PlanErrorKind, Problems};
use crate::path::JsonPath;
use crate::validate::PlanOutputs;

mod auto_patchelf;
mod chmod;
mod configure;
mod copy;
mod fixup;
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

pub use auto_patchelf::AutoPatchelfStep;
pub use chmod::ChmodStep;
pub use configure::ConfigureStep;
pub use copy::CopyStep;
pub use fixup::{FixupStep, OutputCheck, OutputRoles};
pub use graft::{split_store_path, GraftProblem, GraftStep};
pub use make::MakeStep;
pub use mkdir::MkdirStep;
pub use patch::PatchStep;
pub use patch_shebangs::PatchShebangsStep;
pub use remove::RemoveStep;
pub use run::RunStep;
pub use substitute::{IfMissing, Replacement, SubstituteStep};
pub use symlink::SymlinkStep;
pub use unpack::UnpackStep;
pub use write::WriteStep;

/// One typed step. The object's single key names the kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum Step {
    /// Run a program: `argv` is exec'd directly, with no shell.
    Run(RunStep),
    /// Write a file (parent directories are created).
    Write(WriteStep),
    /// Create a directory and its parents.
    Mkdir(MkdirStep),
    /// Copy a file or a directory tree (modes, mtimes and symlinks kept).
    Copy(CopyStep),
    /// Create a symbolic link.
    Symlink(SymlinkStep),
    /// Remove a file, a symlink, or (with `recursive`) a directory tree.
    Remove(RemoveStep),
    /// Change permission bits.
    Chmod(ChmodStep),
    /// Replace literal strings and `@NAME@` placeholders in a file.
    Substitute(SubstituteStep),
    /// Unpack sources (archives or directories); without `into`, the single new directory
    /// becomes the working directory of later phases (stdenv's source root).
    Unpack(UnpackStep),
    /// Apply patches (unified diffs, possibly compressed, or a quilt `series`).
    Patch(PatchStep),
    /// Run a `configure` script with stdenv's automatic flags.
    Configure(ConfigureStep),
    /// Run `make` with parallelism from `NIX_BUILD_CORES`.
    Make(MakeStep),
    /// stdenv's fixup of every output: move docs, patch shebangs, strip, shrink RPATHs, compress
    /// man pages, prune libtool files, check symlinks and references.
    Fixup(Box<FixupStep>),
    /// Point prebuilt ELF files at the store (nixpkgs' autoPatchelfHook): set their interpreter,
    /// and a RUNPATH of the search-path directories that hold their libraries.
    AutoPatchelf(AutoPatchelfStep),
    /// Rewrite the `#!` lines of scripts in the build to interpreters on `PATH` (stdenv's
    /// `patchShebangs`), e.g. a test runner written `#!/usr/bin/env python3`.
    PatchShebangs(PatchShebangsStep),
    /// Copy a store path while replacing some of its dependencies' store paths by others of
    /// the same length (a graft: nixpkgs' `replaceDependencies`), in contents, gzip files,
    /// symlink targets and names, then check that none of the old paths is left.
    Graft(GraftStep),
}

// The step type inside a `Step`, as `&dyn StepFields`, or `&mut dyn StepFields` with `mut`: the
// one `match` of `Step::fields` and `Step::fields_mut`.
macro_rules! step_fields {
    ($step:expr $(, $mut:tt)?) => {
        match $step {
            Step::Run(step) => step,
            Step::Write(step) => step,
            Step::Mkdir(step) => step,
            Step::Copy(step) => step,
            Step::Symlink(step) => step,
            Step::Remove(step) => step,
            Step::Chmod(step) => step,
            Step::Substitute(step) => step,
            Step::Unpack(step) => step,
            Step::Patch(step) => step,
            Step::Configure(step) => step,
            Step::Make(step) => step,
            Step::Fixup(step) => &$($mut)? **step,
            Step::AutoPatchelf(step) => step,
            Step::PatchShebangs(step) => step,
            Step::Graft(step) => step,
        }
    };
}

impl Step {
    /// A `run` step of `argv` with no `env`, `cwd` or `stdout` of its own.
    pub fn run(argv: Vec<String>) -> Step {
        Step::Run(RunStep {
            argv,
            env: BTreeMap::new(),
            cwd: None,
            stdout: None,
        })
    }

    /// The step kind as written in the plan (`run`, `write`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Run(_) => "run",
            Step::Write(_) => "write",
            Step::Mkdir(_) => "mkdir",
            Step::Copy(_) => "copy",
            Step::Symlink(_) => "symlink",
            Step::Remove(_) => "remove",
            Step::Chmod(_) => "chmod",
            Step::Substitute(_) => "substitute",
            Step::Unpack(_) => "unpack",
            Step::Patch(_) => "patch",
            Step::Configure(_) => "configure",
            Step::Make(_) => "make",
            Step::Fixup(_) => "fixup",
            Step::AutoPatchelf(_) => "autoPatchelf",
            Step::PatchShebangs(_) => "patchShebangs",
            Step::Graft(_) => "graft",
        }
    }

    /// Every step kind, in schema order.
    pub const KINDS: &'static [&'static str] = &[
        "run",
        "write",
        "mkdir",
        "copy",
        "symlink",
        "remove",
        "chmod",
        "substitute",
        "unpack",
        "patch",
        "configure",
        "make",
        "fixup",
        "autoPatchelf",
        "patchShebangs",
        "graft",
    ];

    /// The step's own fields: its references, names and checks.
    pub(crate) fn fields(&self) -> &dyn StepFields {
        step_fields!(self)
    }

    /// [`Step::fields`], to rewrite the step's references.
    pub(crate) fn fields_mut(&mut self) -> &mut dyn StepFields {
        step_fields!(self, mut)
    }
}

/// What a step type knows about its own fields, so that validation and reference resolution
/// need not know any kind. Each method keeps the order of the fields in the type: the order of
/// visits is the order of errors.
pub(crate) trait StepFields {
    /// Calls `check` on every name the step holds as a map key (what it names, the name, and its
    /// path, built only when needed), for [`crate::validate::check_name_lengths`].
    fn for_each_name(&self, path: &dyn Fn() -> JsonPath, check: &mut NameCheck<'_>) {
        let _ = (path, check);
    }

    /// Visits every string field that may hold `${…}` references, with its JSON path.
    fn for_each_template(&mut self, path: &JsonPath, visit: &mut dyn FnMut(JsonPath, &mut String));

    /// The step's own problems (empty required fields, bad names), at their JSON paths.
    fn check(&self, path: &JsonPath, errors: &mut Problems) {
        let _ = (path, errors);
    }

    /// The step's names of outputs that the plan does not have (checked after every step's
    /// [`check`](StepFields::check)).
    fn check_outputs(&self, path: &JsonPath, outputs: &PlanOutputs<'_>, errors: &mut Problems) {
        let _ = (path, outputs, errors);
    }
}

/// What [`StepFields::for_each_name`] calls: what the name names, the name, and its path.
pub(crate) type NameCheck<'a> = dyn FnMut(&'static str, &str, &dyn Fn() -> JsonPath) + 'a;

/// Calls `check` on every key of the step's map `field` (at `path.field.KEY`), naming `what`.
pub(crate) fn for_each_key<V>(
    map: &BTreeMap<String, V>,
    what: &'static str,
    field: &str,
    path: &dyn Fn() -> JsonPath,
    check: &mut NameCheck<'_>,
) {
    for name in map.keys() {
        check(what, name, &|| path().key(field).key(name));
    }
}

/// `field` of the step at `path`, `what` for messages, is empty.
pub(crate) fn empty(path: &JsonPath, field: &str, what: &'static str) -> PlanError {
    PlanError::new(path.key(field), PlanErrorKind::Empty { what })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_externally_tagged_and_round_trip() {
        let json = r#"{"run":{"argv":["make","-j4"],"env":{"A":"b"}}}"#;
        let step: Step = serde_json::from_str(json).unwrap();
        assert_eq!(step.kind(), "run");
        assert_eq!(serde_json::to_string(&step).unwrap(), json);
    }
}
