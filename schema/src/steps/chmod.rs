//! `chmod`: permission bits of a path (or a tree).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{empty, StepFields};
use crate::error::Problems;
use crate::path::JsonPath;
use crate::plan::Mode;

/// Set permission bits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChmodStep {
    /// The path whose mode is set (symlinks are followed, as `chmod` does).
    pub path: String,
    /// Permission bits as an octal string such as `"0755"`.
    pub mode: Mode,
    /// Apply to every file and directory below `path` too (symlinks inside are not followed).
    #[serde(default)]
    pub recursive: bool,
}

impl StepFields for ChmodStep {
    fn for_each_template(&mut self, path: &JsonPath, visit: &mut dyn FnMut(JsonPath, &mut String)) {
        visit(path.key("path"), &mut self.path);
    }

    fn check(&self, path: &JsonPath, errors: &mut Problems) {
        if self.path.is_empty() {
            errors.push(empty(path, "path", "the path"));
        }
    }
}
