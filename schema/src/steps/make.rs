//! `make`: make with stdenv's parallelism and target detection.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::StepFields;
use crate::path::JsonPath;
use crate::plan::enabled_by_default;
use crate::reference::{visit_list, visit_option};

/// Run `make` (found on `PATH`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MakeStep {
    /// Flags such as `PREFIX=…` or `-C dir`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// Targets to build; none means make's default target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// Build the first of these targets that the makefile has (checked with `make -n`), or skip
    /// the step with a message when it has none: stdenv's `check` / `test` detection.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub first_existing_target: Vec<String>,
    /// Pass `-jN -lN` with N = `NIX_BUILD_CORES` (stdenv's `enableParallelBuilding`).
    #[serde(default = "enabled_by_default")]
    pub parallel: bool,
    /// A makefile other than make's default (`-f FILE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub makefile: Option<String>,
}

impl StepFields for MakeStep {
    fn for_each_template(&mut self, path: &JsonPath, visit: &mut dyn FnMut(JsonPath, &mut String)) {
        visit_list(&mut self.flags, &path.key("flags"), visit);
        visit_list(&mut self.targets, &path.key("targets"), visit);
        visit_list(
            &mut self.first_existing_target,
            &path.key("firstExistingTarget"),
            visit,
        );
        visit_option(&mut self.makefile, path.key("makefile"), visit);
    }
}
