//! `remove`: a file, a symlink, or a directory tree.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{empty, StepFields};
use crate::error::Problems;
use crate::path::JsonPath;

/// Remove a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RemoveStep {
    /// The path to remove. A symlink is removed itself, never followed.
    pub path: String,
    /// Remove a directory with everything in it. Without it, removing a non-empty directory fails.
    #[serde(default)]
    pub recursive: bool,
    /// Succeed when the path does not exist (like `rm -f`).
    #[serde(default)]
    pub ignore_missing: bool,
}

impl StepFields for RemoveStep {
    fn for_each_template(&mut self, path: &JsonPath, visit: &mut dyn FnMut(JsonPath, &mut String)) {
        visit(path.key("path"), &mut self.path);
    }

    fn check(&self, path: &JsonPath, errors: &mut Problems) {
        if self.path.is_empty() {
            errors.push(empty(path, "path", "the path"));
        }
    }
}
