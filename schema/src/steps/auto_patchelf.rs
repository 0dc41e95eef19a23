//! `autoPatchelf`: prebuilt ELF files pointed at the store (interpreter and RUNPATH).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{empty, StepFields};
use crate::error::Problems;
use crate::path::JsonPath;
use crate::reference::{visit_list, visit_option};

/// Point prebuilt ELF files at the store, as nixpkgs' autoPatchelfHook does: every
/// dynamically linked ELF file under `paths` gets `interpreter` (when it has one) and a
/// `DT_RUNPATH` of the `searchPath` directories that hold its `DT_NEEDED` libraries, in order
/// (`$ORIGIN` entries kept, other old entries dropped). A library found nowhere fails the step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AutoPatchelfStep {
    /// Files or directories (walked without following symlinks) whose ELF files are patched.
    pub paths: Vec<String>,
    /// The dynamic loader to set as the interpreter of every ELF file that has one, e.g.
    /// `${inputs.runtime}/lib/ld-linux-x86-64.so.2`. Without it, interpreters are left alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interpreter: Option<String>,
    /// Directories to look for needed libraries in, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search_path: Vec<String>,
    /// Needed libraries (file names such as `libfoo.so.1`) that may be found nowhere; `*`
    /// allows any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_missing: Vec<String>,
    /// Files or directories under `paths` to leave alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
}

impl StepFields for AutoPatchelfStep {
    fn for_each_template(&mut self, path: &JsonPath, visit: &mut dyn FnMut(JsonPath, &mut String)) {
        visit_list(&mut self.paths, &path.key("paths"), visit);
        visit_option(&mut self.interpreter, path.key("interpreter"), visit);
        visit_list(&mut self.search_path, &path.key("searchPath"), visit);
        visit_list(&mut self.exclude, &path.key("exclude"), visit);
    }

    fn check(&self, path: &JsonPath, errors: &mut Problems) {
        if self.paths.is_empty() {
            errors.push(empty(path, "paths", "the list of paths to patch"));
        }
    }
}
