//! `patchShebangs`: `#!` lines of the build's scripts pointed at interpreters on `PATH`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{empty, StepFields};
use crate::error::Problems;
use crate::path::JsonPath;
use crate::reference::visit_list;

/// Rewrite `#!` lines as stdenv's `patchShebangs PATH...` does, for scripts the build runs (the
/// sandbox has no `/usr/bin/env`, `/usr/bin/perl` or `/bin/bash`; `/bin/sh` only where the Nix
/// configuration maps one): each executable file gets the interpreter of the same name found on
/// the step's `PATH` (`/usr/bin/env NAME` too), arguments kept. An interpreter found nowhere is a
/// warning. The fixup step does the same for the outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PatchShebangsStep {
    /// Scripts, or directories walked for executable files (symlinks not followed), relative to
    /// the working directory or absolute. Each MUST exist.
    pub paths: Vec<String>,
}

impl StepFields for PatchShebangsStep {
    fn for_each_template(&mut self, path: &JsonPath, visit: &mut dyn FnMut(JsonPath, &mut String)) {
        visit_list(&mut self.paths, &path.key("paths"), visit);
    }

    fn check(&self, path: &JsonPath, errors: &mut Problems) {
        if self.paths.is_empty() {
            errors.push(empty(path, "paths", "the list of scripts and directories"));
        }
    }
}
